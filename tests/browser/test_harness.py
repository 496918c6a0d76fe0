"""The browser harness (browserlib.py) proved against a real `cliqhost
serve` on the bundled scripts and a static page of its own: every function
the console's tests will use, each with an assertion that fails when the
function does not do its job.

Run: cd tests/browser && CLIQHOST_BIN=$PWD/../../build/cliqhost python3 -m unittest -v test_harness
"""

import io
import itertools
import json
import os
import socket
import struct
import sys
import threading
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))

from browserlib import (SCREENSHOT_DIR, Browser, BrowserCase, BrowserError, Page,  # noqa: E402
                        StaticServer)
from hostlib import REPO, Host  # noqa: E402

SCRIPTS = os.path.join(REPO, "scripts")


def closed_port():
    """A port on 127.0.0.1 nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def alive(pid):
    """Whether a process runs (a zombie waiting to be reaped does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2:][:1] != b"Z"


def png_size(path):
    """(width, height) of a PNG file; raises AssertionError if it is not one."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise AssertionError(f"{path} is not a PNG: {head[:16]!r}")
    return struct.unpack(">II", head[16:24])


class HarnessTest(BrowserCase):
    """One chromium, one host and one static server for the class; a new
    tab for each test, which must end with no JavaScript error."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        print(f"\n{cls.browser.version} answered {cls.browser.start_seconds:.2f} s after it was "
              f"started", file=sys.stderr)
        cls.host = Host("--no-verify", scripts=SCRIPTS)
        cls.addClassCleanup(cls.stop_host)
        cls.static = StaticServer(os.path.join(HERE, "pages"))
        cls.addClassCleanup(cls.static.stop)

    @classmethod
    def stop_host(cls):
        """Stops the host; under ASan (CLIQHOST_BIN from build/asan) its
        reports fail the class."""
        rc = cls.host.stop()
        reports = cls.host.sanitizer_reports()
        if rc != 0 or reports:
            raise AssertionError(f"host exited {rc}:\n" + "\n".join(reports or [cls.host.log()]))

    def url(self, path):
        return f"http://127.0.0.1:{self.host.port}{path}"

    def harness_page(self):
        self.assertEqual(self.page.goto(self.static.origin + "/harness.html"), 200)
        self.page.wait_for("#press")

    def test_status_is_read_as_json(self):
        self.assertEqual(self.page.goto(self.url("/status")), 200)
        self.page.wait_for("body")
        status = json.loads(self.page.evaluate("document.body.innerText"))
        files = {s["file"]: s for s in status["scripts"]}
        self.assertIn("commands/deploy.lua", files)
        self.assertTrue(files["commands/deploy.lua"]["serving"])
        self.assertEqual(status["callback_path"], "/")

    def test_metrics_text(self):
        self.assertEqual(self.page.goto(self.url("/metrics")), 200)
        self.page.wait_for("pre")
        self.assertIn("cliqhost_requests_total", self.page.text("pre"))

    def test_forwarding_header_is_refused_and_status_observed(self):
        # The host takes a request with a forwarding header for a remote one
        # (it came through a proxy): /status refuses it, as /console will.
        for header in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            with self.subTest(header=header):
                self.page.set_headers({header: "for=203.0.113.9" if header == "Forwarded"
                                       else "203.0.113.9"})
                self.assertEqual(self.page.goto(self.url("/status")), 403)
                self.assertNotIn('"scripts"', self.page.evaluate("document.body.innerText"))
        self.page.set_headers({})
        self.assertEqual(self.page.goto(self.url("/status")), 200)
        self.assertIn('"scripts"', self.page.evaluate("document.body.innerText"))
        # The 403s were logged by chromium as failed loads, not as page errors.
        self.assertTrue(any("403" in e for e in self.page.network_errors()),
                        self.page.network_errors())
        self.page.take_errors()

    def test_click_type_and_read(self):
        self.harness_page()
        self.assertEqual(self.page.text("h1"), "Harness page")
        self.assertEqual(self.page.attr("h1", "data-role"), "title")
        self.assertIsNone(self.page.attr("#pressed", "data-presses"))
        self.page.click("#press")
        self.page.wait_for("#pressed", text="pressed 1")
        self.page.click("#press")
        self.page.wait_for("#pressed[data-presses='2']")
        self.assertEqual(self.page.text("#pressed"), "pressed 2")
        # Typing fires input events key by key; Enter submits the form.
        self.page.type("#name", "Ada")
        self.page.wait_for("#echo", text="Ada")
        self.page.type("#name", "Zoë Grace")
        self.assertEqual(self.page.value("#name"), "Zoë Grace")
        self.assertEqual(self.page.text("#echo"), "Zoë Grace")
        self.page.press("Enter", key_code=13)
        self.page.wait_for("#greeting", text="Hello, Zoë Grace!")
        self.assertEqual(self.page.count("button"), 3)
        # A <select>: the page hears the change.
        self.page.select("#color", "green")
        self.page.wait_for("#chosen", text="green")
        with self.assertRaisesRegex(BrowserError, "no option with value 'mauve'"):
            self.page.select("#color", "mauve")
        with self.assertRaisesRegex(BrowserError, "not a <select>"):
            self.page.select("#name", "green")
        self.assertEqual(self.page.value("#color"), "green")

    def test_waits_end_with_a_clear_error(self):
        self.harness_page()
        # Hidden elements are not waited for unless asked.
        with self.assertRaisesRegex(BrowserError, r"'#greeting'"):
            self.page.wait_for("#greeting", timeout=0.5)
        self.page.wait_for("#greeting", visible=False, timeout=1)
        with self.assertRaisesRegex(BrowserError, r"'#nothing'"):
            self.page.wait_for("#nothing", timeout=0.5)
        with self.assertRaisesRegex(BrowserError, "no element matches"):
            self.page.click("#nothing")
        with self.assertRaisesRegex(BrowserError, "not visible"):
            self.page.click("#greeting")
        with self.assertRaisesRegex(BrowserError, "ERR_CONNECTION_REFUSED"):
            self.page.goto(f"http://127.0.0.1:{closed_port()}/")

    def test_screenshot_is_a_png(self):
        self.harness_page()
        self.page.click("#press")
        path = self.page.screenshot(self._testMethodName)
        self.assertTrue(path.endswith("/screenshots/test_screenshot_is_a_png.png"), path)
        self.assertEqual(png_size(path), (1280, 900))
        with self.assertRaises(ValueError):
            self.page.screenshot("../escape")

    def test_javascript_errors_are_collected(self):
        self.harness_page()
        self.assertEqual(self.page.errors(), [])
        self.page.click("#throw")
        self.page.wait_for_error("boom from the harness page")
        self.page.evaluate("console.error('said', 42)")
        self.page.wait_for_error("console.error: said 42")
        with self.assertRaisesRegex(AssertionError, "boom from the harness page"):
            self.page.assert_no_errors()
        self.assertEqual(len(self.page.take_errors()), 2)
        self.assertEqual(self.page.errors(), [])

    def test_fetch_to_another_origin_is_blocked(self):
        # The host sends no CORS headers: a page of another origin can send a
        # simple GET but not read its answer, and a POST with a JSON body
        # (a preflight) is not sent at all. /console's actions rely on it.
        self.harness_page()
        got = self.page.evaluate(f"tryFetch({json.dumps(self.url('/status'))})")
        self.assertEqual(got, {"error": "TypeError: Failed to fetch"})
        self.page.wait_for_error("blocked by CORS policy")
        # The host did answer (today it checks no Origin; /console will
        # refuse one that is not its own): the browser kept it from the page.
        self.assertEqual(self.page.wait_response(r"/status$", "GET")["status"], 200)
        self.assertEqual(self.page.wait_response(r"/status$", "GET", blocked=True)["blocked"],
                         "MissingAllowOriginHeader")
        before = len(self.host.lines)
        got = self.page.evaluate(f"tryFetch({json.dumps(self.url('/'))}, {{method: 'POST',"
                                 " headers: {'Content-Type': 'application/json'}, body: '{}'})")
        self.assertEqual(got, {"error": "TypeError: Failed to fetch"})
        self.page.wait_for_error("blocked by CORS policy.*preflight")
        # Only the preflight reached the host (and was refused); the POST did not.
        self.assertTrue(self.host.wait_for(r"method=OPTIONS path=/ status=405", start=before),
                        self.host.log())
        self.assertFalse([l for l in self.host.lines[before:] if "method=POST" in l],
                         self.host.log())
        root = r":%d/$" % self.host.port
        self.assertEqual(self.page.wait_response(root, "OPTIONS")["status"], 405)
        self.assertEqual(self.page.wait_response(root, "POST", blocked=True)["blocked"],
                         "PreflightMissingAllowOriginHeader")
        self.assertEqual(sorted(r["method"] for r in self.page.responses(root)), ["OPTIONS", "POST"])
        self.page.take_errors()
        # The same fetch from the host's own origin is answered.
        self.page.goto(self.url("/status"))
        got = self.page.evaluate("(async () => { const r = await fetch('/metrics');"
                                 " return {status: r.status, text: await r.text()}; })()")
        self.assertEqual(got["status"], 200)
        self.assertIn("cliqhost_requests_total", got["text"])


class BrowserCaseTest(unittest.TestCase):
    """BrowserCase, run by unittest as the console's tests will be: each test
    leaves its screenshot, and a JavaScript error fails the test."""

    def test_screenshot_and_errors(self):
        static = StaticServer(os.path.join(HERE, "pages"))
        self.addCleanup(static.stop)

        class Inner(BrowserCase):
            def test_clean(self):
                self.assertEqual(self.page.goto(static.origin + "/harness.html"), 200)
                self.page.click("#press")

            def test_throws(self):
                self.assertEqual(self.page.goto(static.origin + "/harness.html"), 200)
                self.page.click("#throw")
                self.page.wait_for_error("boom")

        shots = [os.path.join(SCREENSHOT_DIR, f"Inner.test_{n}.png") for n in ("clean", "throws")]
        for path in shots:
            if os.path.exists(path):
                os.remove(path)
        out = io.StringIO()
        result = unittest.TextTestRunner(stream=out, verbosity=2).run(
            unittest.defaultTestLoader.loadTestsFromTestCase(Inner))
        self.assertEqual(result.testsRun, 2)
        self.assertEqual(result.errors, [], out.getvalue())
        self.assertEqual([t.id().rsplit(".", 1)[1] for t, _ in result.failures], ["test_throws"],
                         out.getvalue())
        self.assertIn("boom from the harness page", result.failures[0][1])
        for path in shots:
            self.assertEqual(png_size(path), (1280, 900))
        self.assertIsNotNone(Inner.browser)
        self.assertEqual(Inner.browser.leftovers(), set())


class ResponsesTest(unittest.TestCase):
    """responses() on the DevTools events as they may arrive: Chrome sends a
    response's ExtraInfo (the status of an answer it then refuses to the
    page) from the network service, which can run ahead of the page's own
    requestWillBeSent. No browser: the events are given."""

    def page_with(self, events):
        class FakeBrowser:
            _cv = threading.Condition()
            _events = [("S", m, p) for m, p in events]

        page = Page.__new__(Page)
        page.browser, page.session, page._since = FakeBrowser(), "S", 0
        return page

    SENT = ("Network.requestWillBeSent",
            {"requestId": "7", "request": {"method": "GET", "url": "http://h:1/status"}})
    STATUS = ("Network.responseReceivedExtraInfo", {"requestId": "7", "statusCode": 200})
    REFUSED = ("Network.loadingFailed", {"requestId": "7", "errorText": "net::ERR_FAILED",
                                         "corsErrorStatus": {"corsError": "MissingAllowOriginHeader"}})

    def test_any_order_gives_the_status_and_the_refusal(self):
        want = [{"method": "GET", "url": "http://h:1/status", "status": 200,
                 "blocked": "MissingAllowOriginHeader"}]
        for order in itertools.permutations([self.SENT, self.STATUS, self.REFUSED]):
            page = self.page_with(order)
            self.assertEqual(page.responses(r"/status$"), want, [m for m, _ in order])
            self.assertEqual(page.wait_response(r"/status$", "GET", timeout=0)["status"], 200)

    def test_a_redirect_is_two_requests_with_their_own_answers(self):
        first = ("Network.responseReceivedExtraInfo", {"requestId": "7", "statusCode": 302})
        hop = ("Network.requestWillBeSent",
               {"requestId": "7", "request": {"method": "GET", "url": "http://h:1/status"},
                "redirectResponse": {"status": 302}})
        sent = ("Network.requestWillBeSent",
                {"requestId": "7", "request": {"method": "GET", "url": "http://h:1/old/status"}})
        page = self.page_with([sent, first, hop, self.STATUS])
        self.assertEqual([(r["url"], r["status"]) for r in page.responses(r"/status$")],
                         [("http://h:1/old/status", 302), ("http://h:1/status", 200)])

    def test_events_of_other_requests_and_sessions_are_not_taken(self):
        other = ("Network.responseReceivedExtraInfo", {"requestId": "8", "statusCode": 500})
        page = self.page_with([self.STATUS, other, self.SENT])
        page.browser._events.append(("T", "Network.loadingFailed", self.REFUSED[1]))
        self.assertEqual(page.responses(r"/status$"),
                         [{"method": "GET", "url": "http://h:1/status", "status": 200,
                           "blocked": None}])
        self.assertEqual(page.responses(r"/other$"), [])


class LifecycleTest(unittest.TestCase):
    """Chromium starts, answers, and leaves nothing behind."""

    def test_close_leaves_no_process_and_no_profile(self):
        b = Browser()
        try:
            pids = b.pids()
            self.assertIn(b.proc.pid, pids)
            self.assertGreater(len(pids), 1)  # the browser and its helpers
            page = b.new_page()
            self.assertEqual(page.goto("about:blank"), None)
            profile = b.profile
            self.assertTrue(os.path.isdir(profile))
        finally:
            b.close()
        self.assertEqual(b.leftovers(), set())
        for pid in pids:
            self.assertFalse(alive(pid), f"process {pid} is still there")
        self.assertFalse(os.path.exists(profile))
        b.close()  # again: nothing happens
        with self.assertRaisesRegex(BrowserError, "chromium is gone"):
            b.send("Browser.getVersion")

    def test_a_browser_that_does_not_start_is_a_clear_error(self):
        with self.assertRaisesRegex(BrowserError, "Browser.getVersion: chromium is gone"):
            Browser(binary="/bin/false")
        with self.assertRaises(FileNotFoundError):
            Browser(binary="/nonexistent/chromium")

    def test_a_killed_browser_is_a_clear_error(self):
        b = Browser()
        try:
            page = b.new_page()
            pids = b.pids()
            b.proc.kill()
            with self.assertRaisesRegex(BrowserError, "chromium is gone"):
                page.goto("about:blank")
        finally:
            b.close()
        # The helpers outlived the browser's own process: close() killed them.
        for pid in pids:
            self.assertFalse(alive(pid), f"process {pid} is still there")


if __name__ == "__main__":
    unittest.main()
