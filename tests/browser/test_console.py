"""The console (issue 16) in headless chromium against a real host: a real
`cliqhost serve` on a copy of the repo's scripts/ in a temporary folder,
signed calls from `cliqhost invoke` with the development key of `cliqhost
keygen`. What is asserted is what a user sees on the page: the journal,
a call arriving live, the deploy card and its buttons, the reject form and
its answer, replay after an edit side by side, and the guard refusing
another origin and a forwarded client.

Three tests each keep a bug this module found in the page and the server
fixed (each failed first): a call lost from the page when the list's
answer lands after it came live (test_9) or when it lands between the list
and the event stream's start (test_10), and a warning logged for each
closed tab (test_8).

    cd tests/browser && CLIQHOST_BIN=$PWD/../../build/cliqhost python3 -m unittest -v test_console

Screenshots go to build/browser/screenshots/ (browserlib). With
CLIQHOST_UPDATE_DOCS=1 the deploy card's is also copied to docs/console.png,
the README's picture (optimised by optipng when installed); a plain run
leaves the repository's files alone.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import browserlib  # noqa: E402
from hostlib import BIN, REPO, Host, run_cli  # noqa: E402

SCREENSHOT_FOR_README = os.path.join(REPO, "docs", "console.png")

# The other origin's page: fetches the console's API as a foreign site
# would, without and with the secret (passed in the URL's fragment, as if it
# had leaked), and keeps what each fetch saw for the test to read.
CROSS_ORIGIN_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>another site</title></head><body>
<pre id="out">running</pre>
<script>
var target = new URLSearchParams(location.hash.slice(1));
var api = target.get('api'), secret = target.get('secret');
function attempt(headers) {
  return fetch(api, { headers: headers }).then(
    function (r) { return r.text().then(function (t) { return 'answered ' + r.status + ' ' + t; }); },
    function (e) { return 'failed: ' + e.message; });
}
Promise.all([attempt({}), attempt({ 'X-Cliqhost-Console': secret })]).then(function (seen) {
  window.seen = seen;
  document.getElementById('out').textContent = seen.join('\\n');
});
</script></body></html>
"""


def update_readme_picture(path):
    """Copies the screenshot at path to docs/console.png, optimised by
    optipng when it is installed (Debian's optipng)."""
    os.makedirs(os.path.dirname(SCREENSHOT_FOR_README), exist_ok=True)
    shutil.copyfile(path, SCREENSHOT_FOR_README)
    if shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", SCREENSHOT_FOR_README], check=True, timeout=120)


class Console(browserlib.BrowserCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-browser-console-")
        cls.addClassCleanup(shutil.rmtree, cls.dir, ignore_errors=True)
        cls.scripts = os.path.join(cls.dir, "scripts")
        shutil.copytree(os.path.join(REPO, "scripts"), cls.scripts)
        p = run_cli("keygen", cls.dir)
        assert p.returncode == 0, p.stderr
        cls.pem = os.path.join(cls.dir, "cliq-dev.pem")
        cls.host = Host(scripts=cls.scripts, keys=[os.path.join(cls.dir, "cliq-dev.pub")])
        cls.addClassCleanup(cls.stop_host)
        cls.base = f"http://127.0.0.1:{cls.host.port}"
        page = cls.host.request("GET", "/console")
        m = re.search(rb'name="cliqhost-console-secret" content="([0-9a-f]{32,})"', page.body)
        assert m, page
        cls.secret = m.group(1).decode()

    @classmethod
    def stop_host(cls):
        rc = cls.host.stop()
        reports = cls.host.sanitizer_reports()
        assert rc == 0 and not reports, cls.host.log()

    # Helpers.

    def invoke(self, *args):
        """`cliqhost invoke` signed with the development key; its output."""
        p = run_cli("invoke", "--key", self.pem, "--url", self.base + "/", *args, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def newest_deploy(self, after=0):
        """The id of the newest journal entry for /deploy past id after, read
        from the API as the page does; None if there is none."""
        req = urllib.request.Request(self.base + "/console/api/calls",
                                     headers={"X-Cliqhost-Console": self.secret})
        with urllib.request.urlopen(req, timeout=10) as r:
            calls = json.load(r)["calls"]
        for c in calls:
            if (c.get("type"), c.get("name")) == ("command", "deploy") and \
                    c.get("handler", "").startswith("execution") and int(c["id"]) > after:
                return int(c["id"])
        return None

    def open_console(self):
        """Opens /console and waits until its event stream is live."""
        p = self.page
        self.assertEqual(p.goto(self.base + "/console"), 200)
        p.wait_for("#live", text="live", timeout=15)
        return p

    def deploy_live(self, service):
        """Runs /deploy SERVICE prod with invoke while the console is open
        and waits for its row to appear there, live; returns its row's
        selector and its journal id."""
        p = self.page
        before = self.newest_deploy() or 0
        p.evaluate("window.notReloaded = true")
        out = self.invoke("command", "deploy", f"{service} prod")
        self.assertIn("Approval needed", out)
        jid = self.newest_deploy(before)
        self.assertIsNotNone(jid, "the journal has no entry for the invoke")
        row = f"#calls tr.call[data-id='{jid}']"
        p.wait_for(row, text="command deploy execution", timeout=15)
        self.assertTrue(p.evaluate("window.notReloaded === true"), "the page reloaded")
        return row, jid

    def deploy_on_page(self, service="api"):
        """Opens the console, runs /deploy SERVICE prod (deploy_live), and
        opens its entry; returns its id."""
        p = self.open_console()
        row, jid = self.deploy_live(service)
        p.click(row)
        p.wait_for("#detail h2", text="command deploy execution")
        p.wait_for("#detail .chat .cq-card-title", text="Approval needed")
        return jid

    # The tests.

    def test_1_page_loads(self):
        p = self.open_console()
        self.assertEqual(p.evaluate("document.title"), "cliqhost console")
        p.wait_for("#calls thead", text="status")
        self.assertTrue(p.evaluate("document.querySelector('#error').hidden"),
                        "the page shows an error: " + p.text("#error"))
        # No call yet, or the rows of the calls made so far: the list is there.
        p.wait_for("#calls tbody", visible=False)
        if p.count("#calls tr.call") == 0:
            p.wait_for("#calls-empty", text="No calls yet")
        self.assertEqual(p.network_errors(), [])

    def test_2_invoke_appears_live(self):
        self.deploy_on_page("api")
        p = self.page
        self.assertIn("200", p.text("#calls tr.call.selected"))

    def test_3_deploy_card(self):
        p = self.page
        # The README's picture is 1280x800.
        p.send("Emulation.setDeviceMetricsOverride",
               {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False})
        self.deploy_on_page("api")
        chat = "#detail .chat"
        self.assertIn("wants to deploy api to production", p.text(chat + " .cq-text"))
        p.wait_for(chat + " .cq-slide-label")
        slide = p.text(chat + " .cq-slide-label")
        self.assertIn("Details", slide)
        self.assertIn("api", slide)
        self.assertIn("Production", slide)
        self.assertEqual(p.text(chat + " .cq-btn-plus"), "Approve")
        self.assertEqual(p.text(chat + " .cq-btn-minus"), "Reject")
        path = p.screenshot("console_deploy_card")
        if os.environ.get("CLIQHOST_UPDATE_DOCS"):
            update_readme_picture(path)

    def test_4_reject_form(self):
        self.deploy_on_page("web")
        p = self.page
        p.click("#detail .chat .cq-btn-minus")
        form = "#detail form.cq-form"
        p.wait_for(form + " .cq-form-title", text="Reject the deploy")
        p.type(form + " textarea[name=reason]", "the canary is red")
        p.select(form + " select[name=retry]", "next_week")
        p.click(form + " button[type=submit]")
        answer = "#detail .answers .answers"
        p.wait_for(answer + " .cq-card-title", text="Rejected", timeout=15)
        shown = p.text(answer)
        self.assertIn("Deploying web to prod was rejected.", shown)
        self.assertIn("the canary is red", shown)
        self.assertIn("Next week", shown)
        # The form's submission is a call of its own in the journal.
        p.wait_for("#calls tr.call", text="function approval form", timeout=15)

    def test_5_replay_after_edit(self):
        jid = self.deploy_on_page("db")
        path = os.path.join(self.scripts, "commands", "deploy.lua")
        with open(path) as f:
            old = f.read()
        self.assertIn("wants to deploy", old)
        mark = len(self.host.lines)
        with open(path, "w") as f:
            f.write(old.replace("wants to deploy", "asks to ship"))

        def restore():
            again = len(self.host.lines)
            with open(path, "w") as f:
                f.write(old)
            self.assertTrue(self.host.wait_for(r"commands/deploy\.lua reloaded", 20, again),
                            self.host.log())
        self.addCleanup(restore)
        self.assertTrue(self.host.wait_for(r"commands/deploy\.lua reloaded", 20, mark),
                        self.host.log())
        p = self.page
        p.click("#replay")
        p.wait_for("#replay-out .replay .new .cq-text", text="asks to ship", timeout=15)
        old_side = p.text("#replay-out .replay .old")
        new_side = p.text("#replay-out .replay .new")
        self.assertIn(f"before (call {jid})", old_side)
        self.assertIn("wants to deploy db to production", old_side)
        self.assertNotIn("asks to ship", old_side)
        self.assertIn("asks to ship db to production", new_side)
        self.assertIn("Approval needed", new_side)
        # Side by side: the two replies share a row.
        tops = p.evaluate("[...document.querySelectorAll('#replay-out .replay > div')]"
                          ".map(d => Math.round(d.getBoundingClientRect().top))")
        self.assertEqual(len(tops), 2)
        self.assertEqual(tops[0], tops[1])

    def test_6_other_origin_refused(self):
        folder = tempfile.mkdtemp(prefix="cliqhost-browser-other-", dir=self.dir)
        with open(os.path.join(folder, "index.html"), "w") as f:
            f.write(CROSS_ORIGIN_PAGE)
        other = browserlib.StaticServer(folder)
        self.addCleanup(other.stop)
        mark = len(self.host.lines)
        p = self.page
        api = self.base + "/console/api/calls"
        self.assertEqual(p.goto(f"{other.origin}/index.html#api={api}&secret={self.secret}"), 200)
        deadline = time.monotonic() + 15
        while p.evaluate("window.seen === undefined") and time.monotonic() < deadline:
            time.sleep(0.05)
        seen = p.evaluate("window.seen")
        # What the other site's page saw: nothing of the journal.
        self.assertEqual(seen, ["failed: Failed to fetch"] * 2)
        # What happened on the wire: the host refused the plain GET (its
        # Origin is foreign) and the secret's preflight (its log says so
        # below), and the browser kept both answers from the page. (Whether
        # the browser also reports the status of a response it blocked
        # differs between chromium's builds: the host's log is the proof.)
        # The browser reports each refusal, and logs its CORS errors, on its
        # own time: wait for them (a busy machine is slow, not wrong).
        deadline = time.monotonic() + 15
        errors = []
        while True:
            refused = [r for r in p.responses(r"/console/api/calls$") if r["blocked"]]
            errors += p.take_errors()
            if (len(refused) >= 2 and any("CORS" in e for e in errors)) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        self.assertEqual(len(refused), 2, p.responses(r"/console/api/calls$"))
        for method in ("GET", "OPTIONS"):
            self.assertTrue(self.host.wait_for(
                f"method={method} path=/console/api/calls status=403 .*another origin", 10, mark),
                self.host.log())
        self.assertTrue(any("CORS" in e for e in errors), errors)

    # Found by this module: closing a console tab is routine, but the next
    # call the host streams to the closed page's event stream logs
    # `warn http: Failed to send the chunked response body for the request
    # for `/console/api/events'...` (libmicrohttpd's message through
    # server.c's mhd_logger), one warning per tab ever closed. Fixed:
    # server.c watches a waiting stream's socket (on_sse_hangup) and ends
    # the stream as soon as the page goes away.
    def test_8_closed_tab_leaves_no_warning(self):
        gone = self.browser.new_page()
        gone.goto(self.base + "/console")
        gone.wait_for("#live", text="live", timeout=15)
        gone.close()
        mark = len(self.host.lines)
        # Two calls, each streamed to this page and to the closed one: the
        # first write into the closed connection is taken by the kernel (the
        # peer answers it with a reset), the second fails.
        self.open_console()
        self.deploy_live("cache")
        self.deploy_live("queue")
        # The closed page's stream may be another worker's: its send can
        # come a moment after the open page's. A bounded wait for the
        # warning (while the bug is there it is logged at once; fixed, this
        # waits out its deadline).
        warning = self.host.wait_for(r" warn .*/console/api/events", 5, mark)
        self.assertIsNone(warning)

    # Found by this module (test_2 once missed its row, run alone): the
    # page asks for the list (loadCalls) and opens the event stream at the
    # same time, and when the list's answer lands after a live event,
    # console.js's loadCalls replaces `calls` with it: the call that came
    # live disappears from the journal until the page is reloaded. The same
    # happens at every reconnect (onopen calls loadCalls). Here the list's
    # answer is held in the browser (the Fetch domain) until the live call
    # is on the page, so the race goes the bad way every time. Fixed:
    # console.js merges the list with what is shown (mergeCalls).
    def test_9_late_list_keeps_live_call(self):
        self.invoke("command", "deploy", "earlier prod")  # in the list the page will get
        earlier = self.newest_deploy()
        p = self.page
        p.send("Fetch.enable", {"patterns": [{"urlPattern": "*/console/api/calls",
                                              "requestStage": "Response"}]})
        since = self.browser.mark()
        self.assertEqual(p.goto(self.base + "/console"), 200)
        held = self.browser.wait_event("Fetch.requestPaused", p.session, since)
        p.wait_for("#live", text="live", timeout=15)
        row, _ = self.deploy_live("late")
        self.assertEqual(p.count(f"#calls tr.call[data-id='{earlier}']"), 0)
        p.send("Fetch.continueRequest", {"requestId": held["requestId"]})
        p.send("Fetch.disable")
        # The list is on the page once the earlier call's row is.
        p.wait_for(f"#calls tr.call[data-id='{earlier}']", timeout=15)
        self.assertEqual(p.count(row), 1, "the call that came live is gone from the journal")

    # Found by this module, the other side of test_9's window: the page
    # reads the list first and opens the event stream after, and the
    # stream starts at the journal as it is when it opens. A call that
    # lands between the two is in neither, and never shows. Here the
    # stream's request is held in the browser (CDP Fetch) until such a call
    # is made; a later call's row shows the stream works. Fixed: the page
    # reads the list again each time the stream opens, merged.
    def test_10_call_before_stream_opens_shows(self):
        p = self.page
        p.send("Fetch.enable", {"patterns": [{"urlPattern": "*/console/api/events*",
                                              "requestStage": "Request"}]})
        since = self.browser.mark()
        self.assertEqual(p.goto(self.base + "/console"), 200)
        held = self.browser.wait_event("Fetch.requestPaused", p.session, since)
        self.assertEqual(p.wait_response(r"/console/api/calls$", "GET")["status"], 200)
        self.invoke("command", "deploy", "between prod")
        between = self.newest_deploy()
        p.send("Fetch.continueRequest", {"requestId": held["requestId"]})
        p.send("Fetch.disable")
        p.wait_for("#live", text="live", timeout=15)
        self.deploy_live("after")
        self.assertEqual(p.count(f"#calls tr.call[data-id='{between}']"), 1,
                         "the call made before the stream opened is not on the page")

    def test_7_forwarded_page_refused(self):
        p = self.page
        p.set_headers({"X-Forwarded-For": "203.0.113.9"})
        self.assertEqual(p.goto(self.base + "/console"), 403)
        p.wait_for("body", text="loopback clients only")
        self.assertEqual(p.count("#calls"), 0)
        self.assertEqual(p.errors(), [])
        p.take_errors()  # the 403 itself, a failed load
        p.set_headers({})


if __name__ == "__main__":
    unittest.main()
