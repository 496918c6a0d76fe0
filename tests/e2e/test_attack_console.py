"""Attacks on the console and its journal (issue 16): what a hostile page in
the operator's browser, a proxy in front, or a careless script could do
with /console, and what the host answers.

The real binary runs on loopback with the console's own test scripts
(console_scripts/); each test plays one attacker and checks the host
refuses, or holds, saying so.
"""

import json
import socket
import unittest

from test_console_api import ConsoleCase


def raw_request(port, text, timeout=10):
    """Sends `text` as it is (an HTTP/1.0 request, say) and returns the
    status and the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(text.encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
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

    def test_stream_secret_is_not_logged(self):
        conn, resp = self.open_events()
        conn.close()
        self.assertIsNotNone(self.host.wait_for(r"path=/console/api/events"), self.host.log())
        self.assertNotIn(self.secret, self.host.log())


if __name__ == "__main__":
    unittest.main()
