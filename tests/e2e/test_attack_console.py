"""Attacks on the console and its journal (issue 16): what a hostile page in
the operator's browser, a proxy in front, or a careless script could do
with /console, and what the host answers.

The real binary runs on loopback with the console's own test scripts
(console_scripts/, and attack_console_scripts/ for a script that fetches
URLs); each test plays one attacker and checks the host refuses, or holds,
saying so. Each test here kept a bug this module found (each failed
first): no CSP, nosniff or no-store on the page's API; a proxy without
X-Forwarded-For (Via, nginx's HTTP/1.0) let through; a replay sending the
late result to a second response_url; an entry of control bytes read out
as cut JSON; event streams outliving console = "off"; a script reading the
console through http.request.
"""

import json
import os
import shutil
import signal
import socket
import time
import unittest

from hostlib import HERE
from test_console_api import ConsoleCase


def raw_request(port, text, timeout=10):
    """Sends `text` as it is (an HTTP/1.0 request, say) and returns the
    status and the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(text.encode())
        with s.makefile("rb") as f:
            data = f.read()  # to the end: the host closes
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    return status, data


class TestPageHardening(ConsoleCase):
    """The page itself: what a browser is told about running, framing and
    sniffing it."""

    def test_page_has_a_strict_content_security_policy(self):
        r = self.host.request("GET", "/console")
        self.assertEqual(r.status, 200)
        csp = r.headers.get("content-security-policy")
        self.assertIsNotNone(csp, r.headers)
        rules = {p.split()[0]: p.split()[1:] for p in csp.split(";") if p.strip()}
        self.assertEqual(rules.get("default-src"), ["'none'"], csp)
        self.assertEqual(rules.get("script-src"), ["'self'"], csp)
        self.assertEqual(rules.get("frame-ancestors"), ["'none'"], csp)
        self.assertEqual(rules.get("base-uri"), ["'none'"], csp)
        self.assertEqual(rules.get("form-action"), ["'none'"], csp)
        self.assertEqual(rules.get("object-src"), ["'none'"], csp)
        self.assertNotIn("unsafe-inline", csp)
        self.assertNotIn("unsafe-eval", csp)
        self.assertEqual(r.headers.get("x-frame-options"), "DENY")

    def test_api_answers_are_not_sniffed(self):
        r = self.api("GET", "calls")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff", r.headers)
        r = self.host.request("GET", "/console/api/calls")
        self.assertEqual(r.status, 401)
        self.assertEqual(r.headers.get("x-content-type-options"), "nosniff", r.headers)

    def test_api_answers_are_not_stored(self):
        """The journal holds what users sent: no browser cache keeps it."""
        r = self.api("GET", "calls")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.headers.get("cache-control"), "no-store", r.headers)
        r = self.api("POST", "call", {"type": "command", "name": "greet"})
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.headers.get("cache-control"), "no-store", r.headers)
        conn, resp = self.open_events()
        conn.close()
        self.assertEqual(resp.getheader("cache-control"), "no-store")

    def test_stream_secret_is_not_logged(self):
        conn, resp = self.open_events()
        conn.close()
        self.assertIsNotNone(self.host.wait_for(r"path=/console/api/events"), self.host.log())
        self.assertNotIn(self.secret, self.host.log())


class TestProxyInFront(ConsoleCase):
    """A reverse proxy on this machine connects from loopback for everyone.
    One that names itself in any of the usual headers, or that speaks
    HTTP/1.0 as nginx's proxy_pass does by default (with Host set to the
    upstream's 127.0.0.1:<port> and no X-Forwarded-For), is not the
    operator's browser: the page and its secret must not go to it."""

    def test_other_forwarding_headers(self):
        for h in ("Via", "X-Forwarded-Host", "X-Forwarded-Proto", "CF-Connecting-IP",
                  "True-Client-IP", "X-Client-IP"):
            r = self.host.request("GET", "/console", headers={h: "1.1 proxy"})
            self.assertEqual(r.status, 403, (h, r))
            self.assertIn("loopback clients only", r.json()["error"])
            self.assertNotIn(self.secret.encode(), r.body)
            r = self.api("GET", "calls", headers={h: "203.0.113.9"})
            self.assertEqual(r.status, 403, (h, r))

    def test_empty_and_odd_case_forwarding_headers(self):
        for h in ("x-forwarded-for", "X-REAL-IP", "forwarded"):
            r = self.host.request("GET", "/console", headers={h: ""})
            self.assertEqual(r.status, 403, (h, r))

    def test_nginx_default_proxy_pass(self):
        """nginx's default: HTTP/1.0, Host the upstream's, Connection:
        close, no forwarding header."""
        port = self.host.port
        status, data = raw_request(port, f"GET /console HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n"
                                         "Connection: close\r\n\r\n")
        self.assertEqual(status, 403, data[:300])
        self.assertIn(b"HTTP/1.0", data)
        self.assertNotIn(self.secret.encode(), data)
        status, data = raw_request(port, f"GET /console/api/calls HTTP/1.0\r\nHost: 127.0.0.1:"
                                         f"{port}\r\nX-Cliqhost-Console: {self.secret}\r\n"
                                         "Connection: close\r\n\r\n")
        self.assertEqual(status, 403, data[:300])
        # The browser's way still works.
        self.assertEqual(self.host.request("GET", "/console").status, 200)


class TestReplaySpentResponseUrl(ConsoleCase):
    """A replay never sends the result to the recorded response_url, even
    when the body names it twice (the JSON a network client sent, unsigned,
    is recorded as it came)."""
    extra_config = "deadline_ms = 200\n"

    def test_duplicate_response_url_is_not_used(self):
        u1, u2 = self.sink.url_for("dup1"), self.sink.url_for("dup2")
        body = ('{"name":"slow","type":"command","handler":{"type":"execution_handler"},'
                '"params":{"arguments":"1"},'
                f'"response_url":"{u1}","response_url":"{u2}"' + "}")
        r = self.host.post(body.encode(), signature="bad")
        self.assertEqual(r.status, 401, r)
        c = self.find_call(lambda c: c["status"] == 401 and c["kind"] == "call")
        self.assertIsNotNone(c)
        r = self.api("POST", f"calls/{c['id']}/replay", {})
        self.assertEqual(r.status, 200, r)
        out = r.json()
        self.assertTrue(out["late"], out)
        e, results = self.wait_events(out["id"], "late_result")
        self.assertEqual(len(results), 1, e["log"])
        self.assertNotIn("response_url", e["body"] or "")
        line = self.host.wait_for(out["request_id"] + r".*respond kind=late outcome=")
        self.assertIsNotNone(line, self.host.log())
        self.assertIn("outcome=kept", line)
        self.assertEqual(self.sink.posts("dup1") + self.sink.posts("dup2"), [])


class TestEntryReadOut(ConsoleCase):
    """A stranger's unsigned call is recorded as it came; reading its entry
    back is whole JSON however its bytes escape (a control byte is six)."""

    def test_control_bytes_body(self):
        body = b"\x01" * 60000
        r = self.host.post(body, signature="bad")
        self.assertEqual(r.status, 401, r)
        c = self.find_call(lambda c: c["status"] == 401 and c["kind"] == "call")
        self.assertIsNotNone(c)
        r = self.api("GET", f"calls/{c['id']}")
        self.assertEqual(r.status, 200, r)
        e = json.loads(r.body)
        self.assertEqual(e["body"], body.decode())
        self.assertFalse(e["truncated"], e)
        r = self.api("POST", f"calls/{c['id']}/replay", {})
        self.assertEqual(r.status, 400, r)
        out = json.loads(r.body)
        self.assertEqual(out["old"]["body"], body.decode())
        self.assertIn("not valid JSON", json.dumps(out["reply"]))


class TestTurnedOffWhileWatched(ConsoleCase):
    """console = "off" by SIGHUP ends the pages already watching: an open
    event stream carries no call made after it."""

    def test_open_stream_ends(self):
        conn, resp = self.open_events()
        self.addCleanup(conn.close)
        self.assertIn(b"retry:", resp.readline() + resp.readline())
        with open(self.config) as f:
            before = f.read()
        self.addCleanup(self.turn, before)
        self.turn(before + 'console = "off"\n')
        self.assertEqual(self.api("GET", "calls").status, 403)
        p = self.invoke("command", "greet")
        self.assertEqual(p.returncode, 0, p.stderr)
        rest = resp.read()  # to the end of the stream, which must come
        self.assertNotIn(b"event: call", rest)

    def turn(self, text):
        with open(self.config, "w") as f:
            f.write(text)
        mark = len(self.host.lines)
        self.host.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(self.host.wait_for("SIGHUP: config reloaded", 10, mark),
                             self.host.log())


class TestScriptReachesTheConsole(ConsoleCase):
    """A script that fetches URLs it is given (a link preview's, say), on a
    host whose http_allow lets it reach loopback, is pointed at the host's
    own console: it must not get the page (and its secret), nor the API,
    whatever User-Agent it sends; nor can it send the header the host marks
    its own requests with."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        shutil.copytree(os.path.join(HERE, "attack_console_scripts", "commands"),
                        os.path.join(cls.scripts, "commands"), dirs_exist_ok=True)

    def peek(self, how):
        deadline = time.time() + 20
        while True:  # the new script is picked up by the reload watcher
            p = self.invoke("command", "peek", f"{how} http://127.0.0.1:{self.host.port}")
            if "no script" not in p.stdout + p.stderr or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout

    def test_own_http_request_refused(self):
        out = self.peek("plain")
        self.assertIn("page 403", out)
        self.assertNotIn("journal", out)

    # Found after the review: a script that names a browser's User-Agent
    # was let in (the check looked at the User-Agent only).
    def test_own_http_request_with_a_browser_user_agent_refused(self):
        out = self.peek("ua")
        self.assertIn("page 403", out)
        self.assertNotIn("journal", out)

    def test_script_cannot_send_the_hosts_marker(self):
        out = self.peek("own")
        self.assertIn("refused: ", out)
        self.assertIn("X-Cliqhost-", out)


if __name__ == "__main__":
    unittest.main()
