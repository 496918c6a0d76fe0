"""What an attacker on the open internet tries: replaying a captured call,
sending a stale or future one, holding connections open, oversized headers."""

import json
import os
import socket
import threading
import time
import unittest

from cliq_bodies import body, now_ms
from hostlib import REPO, Host, Key

KEY = Key("guard")
SCRIPTS = os.path.join(REPO, "tests", "e2e", "scripts")


def call(timestamp=None, **kw):
    b = body("command", "execution_handler", "cmd", {"arguments": "x"}, **kw)
    if timestamp is not None:
        b["timestamp"] = timestamp
    return json.dumps(b).encode()


class Replay(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = Host(scripts=SCRIPTS, keys=[KEY.spki])

    @classmethod
    def tearDownClass(cls):
        assert cls.host.stop() == 0
        assert not cls.host.sanitizer_reports(), cls.host.log()

    def refused(self, raw, why):
        r = self.host.post(raw, key=KEY)
        self.assertEqual(r.status, 401, r)
        self.assertIn(why, r.json()["error"])
        self.assertIn("request_id", r.json())
        return r

    def test_a_fresh_call_is_served(self):
        self.assertEqual(self.host.post(call(), key=KEY).status, 200)

    def test_the_same_call_twice_is_refused(self):
        raw = call()
        sig = KEY.sign(raw)
        self.assertEqual(self.host.post(raw, signature=sig).status, 200)
        r = self.host.post(raw, signature=sig)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"], r"^replayed request: this signature was already "
                                            r"accepted \d+\.\d{3} s ago$")
        # Whichever worker gets it (SO_REUSEPORT spreads connections).
        for _ in range(6):
            self.assertEqual(self.host.post(raw, signature=sig).status, 401)

    def test_stale_call_is_refused(self):
        self.refused(call(now_ms() - 301_000), "stale request: its timestamp is 301 s old, more "
                                               "than replay_window_s (300 s)")

    def test_call_from_the_future_is_refused(self):
        self.refused(call(now_ms() + 400_000), "request from the future")

    def test_just_inside_the_window_is_served(self):
        self.assertEqual(self.host.post(call(now_ms() - 290_000), key=KEY).status, 200)
        self.assertEqual(self.host.post(call(now_ms() + 290_000), key=KEY).status, 200)

    def test_no_timestamp_is_refused(self):
        b = body("command", "execution_handler", "cmd", {"arguments": "x"})
        del b["timestamp"]
        self.refused(json.dumps(b).encode(), "no timestamp in the body")
        b["timestamp"] = "yesterday"
        self.refused(json.dumps(b).encode(), "no timestamp in the body")

    def test_refused_calls_run_no_script(self):
        n = len(self.host.lines)
        self.refused(call(now_ms() - 3_600_000), "stale request")
        time.sleep(0.2)
        self.assertFalse([l for l in self.host.lines[n:] if "status=200" in l])

    def test_unsigned_replay_is_still_a_signature_failure(self):
        r = self.host.post(call(now_ms() - 3_600_000), signature="bm9wZQ==")
        self.assertEqual(r.status, 401)
        self.assertNotIn("stale", r.json()["error"])


class ReplaySettings(unittest.TestCase):
    def test_window_zero_turns_the_checks_off(self):
        h = Host("--replay-window", "0", scripts=SCRIPTS, keys=[KEY.spki])
        try:
            raw = call(1569520690703)  # Zoho's sample timestamp, from 2019
            sig = KEY.sign(raw)
            self.assertEqual(h.post(raw, signature=sig).status, 200)
            self.assertEqual(h.post(raw, signature=sig).status, 200)
        finally:
            self.assertEqual(h.stop(), 0)

    def test_memory_zero_checks_timestamps_only(self):
        h = Host("--replay-memory", "0", "--replay-window", "60", scripts=SCRIPTS, keys=[KEY.spki])
        try:
            raw = call()
            sig = KEY.sign(raw)
            self.assertEqual(h.post(raw, signature=sig).status, 200)
            self.assertEqual(h.post(raw, signature=sig).status, 200)
            r = h.post(call(now_ms() - 61_000), key=KEY)
            self.assertEqual(r.status, 401)
            self.assertIn("more than replay_window_s (60 s)", r.json()["error"])
        finally:
            self.assertEqual(h.stop(), 0)

    def test_full_memory_forgets_the_oldest_and_says_so(self):
        h = Host("--replay-memory", "3", scripts=SCRIPTS, keys=[KEY.spki])
        try:
            first = call(now_ms() - 200_000)
            sig = KEY.sign(first)
            self.assertEqual(h.post(first, signature=sig).status, 200)
            for _ in range(3):
                self.assertEqual(h.post(call(), key=KEY).status, 200)
            self.assertIsNotNone(h.wait_for(r"replay_memory \(3 signatures\) is full", timeout=5))
            # Newer ones are still remembered.
            raw = call()
            s2 = KEY.sign(raw)
            self.assertEqual(h.post(raw, signature=s2).status, 200)
            self.assertEqual(h.post(raw, signature=s2).status, 401)
        finally:
            self.assertEqual(h.stop(), 0)


if __name__ == "__main__":
    unittest.main()
