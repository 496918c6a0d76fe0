"""The console's server side (issue 16): the journal of calls and the
/console API, with its guards.

The real binary runs on loopback. Calls come from `cliqhost invoke` (signed
like Cliq's), from the console's own API, and from scripts that make
outbound requests to local fakes; the test reads them back from the
journal as the console's page would, and from its event stream.
"""

import http.client
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

from fake_cliq import FakeCliq
from fakes import Sink
from hostlib import BIN, HERE, REPO, Host

SCRIPTS = os.path.join(HERE, "console_scripts")
TOKEN = "1001.e2eConsoleToken.7a3c9e1f5b2d4c6e8a0f"


def keygen(d):
    return subprocess.run([BIN, "keygen", d], capture_output=True, text=True, timeout=30)


def metric_sum(text, name, labels=""):
    """The sum of a metric's samples whose labels contain `labels`."""
    total = 0
    for line in text.splitlines():
        m = re.match(r"(\w+)(\{[^}]*\})? (\S+)$", line)
        if m and m.group(1) == name and labels in (m.group(2) or ""):
            total += float(m.group(3))
    return total


class ConsoleCase(unittest.TestCase):
    extra_config = ""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-console-")
        cls.scripts = os.path.join(cls.dir, "scripts")
        shutil.copytree(os.path.join(REPO, "scripts"), cls.scripts)
        shutil.copytree(os.path.join(SCRIPTS, "commands"), os.path.join(cls.scripts, "commands"),
                        dirs_exist_ok=True)
        p = keygen(cls.dir)
        assert p.returncode == 0, p.stderr
        cls.pem = os.path.join(cls.dir, "cliq-dev.pem")
        cls.pub = os.path.join(cls.dir, "cliq-dev.pub")
        cls.fake = FakeCliq(tokens=[TOKEN]).start()
        cls.sink = Sink().start()
        cls.config = os.path.join(cls.dir, "cliqhost.lua")
        with open(cls.config, "w") as f:
            f.write(f'''cliq_api = "{cls.fake.url}"
data_dir = "{os.path.join(cls.dir, "data")}"
tokens = {{ default = "{TOKEN}" }}
http_allow = {{ "127.0.0.1" }}
response_url_allow = {{ "127.0.0.1" }}
reload_settle_ms = 10
{cls.extra_config}''')
        cls.host = Host("--config", cls.config, scripts=cls.scripts, keys=[cls.pub],
                        response_url_allow=())
        cls.url = f"http://127.0.0.1:{cls.host.port}/"
        page = cls.host.request("GET", "/console")
        m = re.search(rb'content="([0-9a-f]{32,})"', page.body)
        cls.secret = m.group(1).decode() if m else None

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        reports = cls.host.sanitizer_reports()
        cls.fake.stop()
        cls.sink.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0 and not reports, cls.host.log()

    def api(self, method, path, body=None, headers=None):
        h = {"X-Cliqhost-Console": self.secret, "Host": f"127.0.0.1:{self.host.port}"}
        h.update(headers or {})
        data = json.dumps(body).encode() if body is not None else b""
        return self.host.request(method, "/console/api/" + path, data, h, timeout=30)

    def invoke(self, *args):
        env = dict(os.environ)
        env.pop("CLIQHOST_KEY", None)
        return subprocess.run([BIN, "invoke", "--key", self.pem, "--url", self.url, *args],
                              capture_output=True, text=True, timeout=60, env=env)

    def open_events(self, timeout=20):
        """Opens the event stream as a page would; returns (conn, response)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.host.port, timeout=timeout)
        conn.request("GET", f"/console/api/events?secret={self.secret}",
                     headers={"Host": f"127.0.0.1:{self.host.port}"})
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertIn("text/event-stream", resp.getheader("content-type"))
        return conn, resp

    def entry(self, jid):
        r = self.api("GET", f"calls/{jid}")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def metrics(self):
        r = self.host.request("GET", "/metrics")
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    def wait_events(self, jid, kind, timeout=20):
        """Waits for entry jid to hold events of kind; returns (entry, them)."""
        deadline = time.time() + timeout
        while True:
            e = self.entry(jid)
            found = [ev for ev in e["log"] if ev["kind"] == kind]
            if found or time.time() > deadline:
                return e, found
            time.sleep(0.05)

    def find_call(self, pred, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for c in self.api("GET", "calls").json()["calls"]:
                if pred(c):
                    return c
            time.sleep(0.05)
        return None


class TestGuard(ConsoleCase):
    """Each check of the guard refuses on its own, and says which."""

    def test_page_carries_the_secret(self):
        self.assertIsNotNone(self.secret)
        r = self.host.request("GET", "/console")
        self.assertEqual(r.status, 200)
        self.assertIn("text/html", r.headers["content-type"])
        self.assertNotIn(b"{{CONSOLE_SECRET}}", r.body)
        self.assertNotIn("access-control-allow-origin", r.headers)
        self.assertEqual(self.api("GET", "calls").status, 200)

    def assertRefused(self, r, status, words):
        self.assertEqual(r.status, status, r)
        self.assertIn(words, r.json()["error"])
        self.assertNotIn("access-control-allow-origin", r.headers)

    def test_forwarded_client(self):
        for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"):
            self.assertRefused(self.api("GET", "calls", headers={h: "203.0.113.9"}), 403,
                               "loopback clients only")
        r = self.host.request("GET", "/console", headers={"X-Forwarded-For": "203.0.113.9"})
        self.assertRefused(r, 403, "loopback clients only")

    def test_wrong_host(self):
        for host in ("evil.example:%d" % self.host.port, "127.0.0.1:1",
                     "localhost.evil.example:%d" % self.host.port):
            self.assertRefused(self.api("GET", "calls", headers={"Host": host}), 403,
                               "DNS rebinding")
        ok = self.api("GET", "calls", headers={"Host": f"localhost:{self.host.port}"})
        self.assertEqual(ok.status, 200)

    def test_foreign_origin(self):
        for origin in ("http://evil.example", "https://127.0.0.1:%d" % self.host.port, "null"):
            self.assertRefused(self.api("GET", "calls", headers={"Origin": origin}), 403,
                               "another origin")
            self.assertRefused(self.api("POST", "call", {"type": "command", "name": "greet"},
                                        headers={"Origin": origin}), 403, "another origin")
        same = self.api("GET", "calls", headers={"Origin": f"http://127.0.0.1:{self.host.port}"})
        self.assertEqual(same.status, 200)

    def test_secret(self):
        r = self.host.request("GET", "/console/api/calls")
        self.assertRefused(r, 401, "missing console secret")
        self.assertRefused(self.api("GET", "calls", headers={"X-Cliqhost-Console": "0" * 48}),
                           401, "wrong console secret")
        self.assertRefused(self.api("POST", "call", {"type": "command", "name": "greet"},
                                    headers={"X-Cliqhost-Console": "nope"}), 401, "wrong")
        r = self.host.request("GET", "/console/api/events?secret=nope")
        self.assertRefused(r, 401, "wrong console secret")

    def test_methods(self):
        self.assertRefused(self.api("GET", "call"), 405, "takes POST")
        self.assertRefused(self.api("POST", "calls"), 405, "answers GET")
        self.assertRefused(self.api("GET", "calls/1/replay"), 405, "takes POST")


class TestConsoleOff(ConsoleCase):
    extra_config = 'console = "off"\n'

    def test_everything_refused(self):
        for method, path in (("GET", "/console"), ("GET", "/console/api/calls"),
                             ("POST", "/console/api/call"), ("GET", "/console/api/events")):
            r = self.host.request(method, path, b"{}",
                                  {"Host": f"127.0.0.1:{self.host.port}"})
            self.assertEqual(r.status, 403, (path, r))
            self.assertIn('console = \\"off\\"', r.body.decode())


class TestSettings(unittest.TestCase):
    """The console's settings refuse what they do not know, saying so."""

    def test_bad_values(self):
        for args, words in ((("--console", "bogus"), "console 'bogus' is not one of loopback, off"),
                            (("--journal-calls", "-1"), "journal-calls must be an integer"),
                            (("--journal-entry-bytes", "10"), "journal-entry-bytes must be")):
            p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", *args],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(p.returncode, 2, p)
            self.assertIn(words, p.stderr)


class TestJournal(ConsoleCase):

    def test_invoke_call_recorded_with_its_reply(self):
        p = self.invoke("command", "greet", "hi there")
        self.assertEqual(p.returncode, 0, p.stderr)
        c = self.find_call(lambda c: c["kind"] == "call" and c["name"] == "greet"
                           and c["status"] == 200)
        self.assertIsNotNone(c)
        self.assertEqual(c["signature"], "ok")
        self.assertEqual(c["type"], "command")
        e = self.entry(c["id"])
        self.assertEqual(json.loads(e["reply"]), {"output": {"text": "hello v1"}})
        self.assertEqual(json.loads(e["body"])["params"]["arguments"], "hi there")

    def test_bad_signature_recorded(self):
        body = json.dumps({"name": "greet", "type": "command",
                           "handler": {"type": "execution_handler"}, "params": {}}).encode()
        r = self.host.request("POST", "/", body, {"X-Cliq-Signature": "AAAA"})
        self.assertEqual(r.status, 401)
        rid = r.headers["x-request-id"]
        c = self.find_call(lambda c: c["request_id"] == rid)
        self.assertIsNotNone(c)
        self.assertEqual(c["status"], 401)
        self.assertNotEqual(c["signature"], "ok")

    def test_script_events_recorded(self):
        target = self.sink.url_for("probe")
        r = self.api("POST", "call", {"type": "command", "name": "probe", "text": target})
        self.assertEqual(r.status, 200, r)
        out = r.json()
        self.assertEqual(out["reply"]["output"]["text"], "fetched 200")
        e = self.entry(out["id"])
        self.assertEqual(e["kind"], "console")
        kinds = [ev["kind"] for ev in e["log"]]
        http_ev = [ev for ev in e["log"] if ev["kind"] == "http"]
        self.assertEqual(len(http_ev), 1, e["log"])
        self.assertEqual(http_ev[0]["url"], target)
        self.assertEqual(http_ev[0]["status"], 200)
        self.assertEqual(http_ev[0]["method"], "POST")
        self.assertEqual(self.sink.count("probe"), 1)
        post = [ev for ev in e["log"] if ev["kind"] == "post"]
        self.assertEqual(len(post), 1, e["log"])
        self.assertIn("post_channel ops", post[0]["url"])
        self.assertEqual(post[0]["status"], 204)  # what Cliq (the fake) answers
        lines = [ev["line"] for ev in e["log"] if ev["kind"] == "log"]
        self.assertIn("probe asked for " + target, lines)
        self.assertIn("probe posted ok", lines)
        self.assertEqual(kinds.index("http") < kinds.index("post"), True)
        self.assertGreater(e["cpu_ms"], 0)
        self.assertGreater(e["peak_bytes"], 0)
        # The token the post used never shows.
        self.assertNotIn(TOKEN, json.dumps(e))

    def test_schedule_run_recorded(self):
        r = self.host.request("POST", "/schedules/standup/run")
        self.assertEqual(r.status, 200, r)
        c = self.find_call(lambda c: c["kind"] == "schedule" and c["status"] is not None)
        self.assertIsNotNone(c)
        self.assertEqual((c["type"], c["name"], c["status"]), ("schedule", "standup", 200))
        e = self.entry(c["id"])
        posts = [ev for ev in e["log"] if ev["kind"] == "post"]
        self.assertEqual(len(posts), 1, e["log"])
        self.assertIn("post_channel standup", posts[0]["url"])

    def test_post_call_runs_a_button_handler(self):
        r = self.api("POST", "call", {"type": "function", "name": "approval",
                                      "handler": "button",
                                      "args": {"key": "approve:billing:prod"}})
        self.assertEqual(r.status, 200, r)
        out = r.json()
        self.assertIn("approved deploying *billing* to *prod*", json.dumps(out["reply"]))
        e = self.entry(out["id"])
        self.assertEqual(e["handler"], "button_handler")
        self.assertEqual(e["type"], "function")

    def test_post_call_bad_input(self):
        for body, words in (([1], "not a JSON object"), ({"name": "x"}, "\"type\" is missing"),
                            ({"type": "command", "name": "greet", "handler": "nope"},
                             "no handler nope")):
            r = self.api("POST", "call", body)
            self.assertEqual(r.status, 400, r)
            self.assertIn(words, r.json()["error"])

    def test_replay_after_edit(self):
        p = self.invoke("command", "greet")
        self.assertEqual(p.returncode, 0, p.stderr)
        c = self.find_call(lambda c: c["kind"] == "call" and c["name"] == "greet"
                           and c["status"] == 200)
        path = os.path.join(self.scripts, "commands", "greet.lua")
        with open(path) as f:
            old = f.read()
        try:
            with open(path, "w") as f:
                f.write(old.replace("hello v1", "hello v2"))
            deadline = time.time() + 10
            while True:
                r = self.api("POST", f"calls/{c['id']}/replay")
                self.assertEqual(r.status, 200, r)
                out = r.json()
                if out["reply"]["output"]["text"] == "hello v2" or time.time() > deadline:
                    break
                time.sleep(0.1)
        finally:
            with open(path, "w") as f:
                f.write(old)
        self.assertEqual(out["reply"], {"output": {"text": "hello v2"}})
        self.assertEqual(out["replay_of"], c["id"])
        self.assertEqual(json.loads(out["old"]["reply"]), {"output": {"text": "hello v1"}})
        self.assertEqual(self.entry(out["id"])["kind"], "replay")
        r = self.api("POST", "calls/999999/replay")
        self.assertEqual(r.status, 404)

    def test_events_stream_new_calls(self):
        conn, resp = self.open_events()
        conn2, resp2 = self.open_events()  # a second page watches at the same time
        seen = {1: [], 2: []}

        def read(n, r):
            buf = b""
            while True:
                try:
                    chunk = r.read1(4096)
                except Exception:
                    return
                if not chunk:
                    return
                buf += chunk
                while b"\n\n" in buf:
                    ev, buf = buf.split(b"\n\n", 1)
                    for line in ev.split(b"\n"):
                        if line.startswith(b"data: "):
                            seen[n].append(json.loads(line[6:]))

        threads = [threading.Thread(target=read, args=(1, resp), daemon=True),
                   threading.Thread(target=read, args=(2, resp2), daemon=True)]
        for t in threads:
            t.start()
        p = self.invoke("command", "greet", "streamed")
        self.assertEqual(p.returncode, 0, p.stderr)
        deadline = time.time() + 10
        while time.time() < deadline:
            if all(any(e["name"] == "greet" and e["status"] == 200 for e in seen[n])
                   for n in (1, 2)):
                break
            time.sleep(0.05)
        conn.close()
        conn2.close()
        for n in (1, 2):
            self.assertTrue(any(e["name"] == "greet" and e["status"] == 200 and
                                e["kind"] == "call" for e in seen[n]), seen[n])


class TestMetricsApart(ConsoleCase):
    """Calls the console makes are not Cliq's: cliqhost_requests_total and
    the latency histogram count only what Cliq sent; the console's runs
    have their own counter, and their log line says where they came from."""

    def test_console_calls_counted_apart(self):
        before = self.metrics()
        r = self.api("POST", "call", {"type": "command", "name": "greet"})
        self.assertEqual(r.status, 200, r)
        rid = r.json()["request_id"]
        r = self.api("POST", f"calls/{r.json()['id']}/replay")
        self.assertEqual(r.status, 200, r)
        after = self.metrics()
        for name in ("cliqhost_requests_total", "cliqhost_request_duration_seconds_count"):
            self.assertEqual(metric_sum(after, name), metric_sum(before, name), name)
        for kind in ("call", "replay"):
            labels = f'kind="{kind}"'
            self.assertEqual(metric_sum(after, "cliqhost_console_calls_total", labels)
                             - metric_sum(before, "cliqhost_console_calls_total", labels), 1,
                             after)
        line = self.host.wait_for(rid + r".*status=200")
        self.assertIsNotNone(line, self.host.log())
        self.assertIn("from=console", line)
        # A call Cliq would send (signed, by invoke) still counts there.
        p = self.invoke("command", "greet")
        self.assertEqual(p.returncode, 0, p.stderr)
        third = self.metrics()
        self.assertEqual(metric_sum(third, "cliqhost_requests_total", 'handler="execution"')
                         - metric_sum(after, "cliqhost_requests_total", 'handler="execution"'),
                         1, third)
        self.assertEqual(metric_sum(third, "cliqhost_console_calls_total"),
                         metric_sum(after, "cliqhost_console_calls_total"))


class TestShutdown(ConsoleCase):
    """A page watching does not hold the host at shutdown: its stream ends
    cleanly and the host stops without waiting for it (a grace far longer
    than stop()'s patience: a stream that held the host would be killed)."""

    extra_config = "shutdown_grace_s = 120\n"

    @classmethod
    def tearDownClass(cls):
        cls.fake.stop()
        cls.sink.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_stream_ends_at_shutdown(self):
        conn, resp = self.open_events(timeout=30)
        self.assertTrue(resp.read1(4096).startswith(b"retry:"))
        rc = self.host.stop(timeout=20)
        self.assertEqual(rc, 0, self.host.log())
        self.assertEqual(resp.read(), b"")  # the chunked stream's own end, not a cut
        conn.close()
        self.assertEqual(self.host.sanitizer_reports(), [])


class TestLate(ConsoleCase):
    """A call past its deadline: the journal holds the interim reply, the
    handler's result, and the late reply's outcome."""

    extra_config = "deadline_ms = 300\n"

    def test_interim_and_late_reply(self):
        p = self.invoke("command", "slow", "1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("slow done", p.stdout)
        c = self.find_call(lambda c: c["name"] == "slow" and c["status"] == 200)
        self.assertIsNotNone(c)
        self.assertTrue(c["late"])
        e, outcomes = self.wait_events(c["id"], "late_reply")
        self.assertEqual(json.loads(e["reply"]), {"output": {"text": "Working on it\u2026"}})
        results = [ev for ev in e["log"] if ev["kind"] == "late_result"]
        self.assertEqual(len(results), 1, e["log"])
        self.assertEqual(json.loads(results[0]["body"]), {"output": {"text": "slow done"}})
        self.assertEqual([o["outcome"] for o in outcomes], ["delivered"], e["log"])

    def test_waited_call_keeps_its_body_for_replay(self):
        """A handler that waits gives its body buffer back at once
        (server.c, drop_body): the journal's copy still holds the body as
        received, and a replay runs on that copy."""
        p = self.invoke("command", "slow", "0.5")
        self.assertEqual(p.returncode, 0, p.stderr)
        c = self.find_call(lambda c: c["name"] == "slow" and c["status"] == 200
                           and json.loads(self.entry(c["id"])["body"])["params"]["arguments"]
                           == "0.5")
        self.assertIsNotNone(c)
        body = self.entry(c["id"])["body"]
        self.assertEqual(json.loads(body)["name"], "slow")
        r = self.api("POST", f"calls/{c['id']}/replay")
        self.assertEqual(r.status, 200, r)
        # A replay is stamped anew (timestamp, no response_url); what the
        # handler is given comes from the original's body.
        replay = json.loads(self.entry(r.json()["id"])["body"])
        self.assertEqual(replay["params"], json.loads(body)["params"])
        e, results = self.wait_events(r.json()["id"], "late_result")
        self.assertEqual(json.loads(results[0]["body"]), {"output": {"text": "slow done"}})

    def test_console_call_answers_at_the_deadline(self):
        """The console is answered as Cliq would be: the interim reply at
        deadline_ms; the handler's result comes into the entry later (the
        page shows it live), not to a response_url it does not have."""
        before = self.metrics()
        r = self.api("POST", "call", {"type": "command", "name": "slow", "text": "1"})
        self.assertEqual(r.status, 200, r)
        out = r.json()
        self.assertTrue(out["late"], out)
        self.assertEqual(out["reply"], {"output": {"text": "Working on it\u2026"}})
        e, results = self.wait_events(out["id"], "late_result")
        self.assertEqual(len(results), 1, e["log"])
        self.assertEqual(json.loads(results[0]["body"]), {"output": {"text": "slow done"}})
        self.assertEqual([ev for ev in e["log"] if ev["kind"] == "late_reply"], [], e["log"])
        self.assertTrue(e["late"], e)
        self.assertEqual(json.loads(e["reply"]), {"output": {"text": "Working on it\u2026"}})
        line = self.host.wait_for(out["request_id"] + r".*respond kind=late outcome=")
        self.assertIsNotNone(line, self.host.log())
        self.assertIn("outcome=kept", line)
        # Cliq's hand-off and late-reply counters did not move.
        after = self.metrics()
        for name in ("cliqhost_handoffs_total", "cliqhost_late_replies_total"):
            self.assertEqual(metric_sum(after, name), metric_sum(before, name), name)


class TestMemoryBound(ConsoleCase):
    extra_config = "journal_calls = 5\njournal_entry_bytes = 4096\n"

    def test_cap_holds(self):
        ids = []
        for i in range(12):
            r = self.api("POST", "call", {"type": "command", "name": "probe", "text": "big"})
            self.assertEqual(r.status, 200, r)
            ids.append(r.json()["id"])
        lst = self.api("GET", "calls").json()
        self.assertEqual(lst["kept"], 5)
        self.assertEqual(lst["max"], 5)
        self.assertLessEqual(lst["bytes"], 5 * 4096)
        for c in lst["calls"]:
            self.assertLessEqual(c["bytes"], 4096)
            self.assertTrue(c["truncated"])
        self.assertEqual([c["id"] for c in lst["calls"]], list(reversed(ids[-5:])))
        self.assertEqual(self.api("GET", f"calls/{ids[0]}").status, 404)
        e = self.entry(ids[-1])
        self.assertGreater(e["dropped_events"], 0)
        metrics = self.host.request("GET", "/metrics").body.decode()
        self.assertIn("\ncliqhost_journal_calls 5\n", metrics)
        held = int(re.search(r"\ncliqhost_journal_bytes (\d+)\n", metrics).group(1))
        self.assertEqual(held, lst["bytes"])
        self.assertLessEqual(held, 5 * 4096)


if __name__ == "__main__":
    unittest.main()
