"""What an attacker on the open internet tries: replaying a captured call,
sending a stale or future one, holding connections open, oversized headers."""

import json
import os
import shutil
import signal
import tempfile
import socket
import threading
import time
import unittest

from cliq_bodies import body, now_ms
from fakes import Sink
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

    def test_the_same_call_spelt_otherwise_is_refused(self):
        # The replay memory keys on what was verified, not on the header's
        # text: quotes, dropped padding, other unused bits, trailing \v.
        raw = call()
        sig = KEY.sign(raw)
        self.assertEqual(self.host.post(raw, signature=sig).status, 200)
        last = sig[-3]
        other_bits = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        flipped = other_bits[other_bits.index(last) ^ 1]
        for s in [f'"{sig}"', sig[:-2], sig[:-3] + flipped + "==", sig + "\v",
                  sig + "\f", f'"{sig}" ']:
            r = self.host.post(raw, signature=s)
            self.assertEqual(r.status, 401, (s, r))

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
            self.assertIsNotNone(h.wait_for(r"replay_memory \(3 calls\) is full", timeout=5))
            # Newer ones are still remembered.
            raw = call()
            s2 = KEY.sign(raw)
            self.assertEqual(h.post(raw, signature=s2).status, 200)
            self.assertEqual(h.post(raw, signature=s2).status, 401)
        finally:
            self.assertEqual(h.stop(), 0)


def metric(text, name, **labels):
    """The value of one sample in Prometheus text, or 0 when absent."""
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    head = f"{name}{{{want}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(head + " "):
            return float(line.split()[-1])
    return 0.0


class Metrics(unittest.TestCase):
    """The counters move as requests are made."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-metrics-")
        os.makedirs(os.path.join(cls.dir, "commands"))
        for name, code in {
            "ok": 'return { execution = function() return "ok" end }',
            "boom": 'return { execution = function() error("boom") end }',
            "spin": 'return { execution = function() while true do end end }',
            "slow": 'return { execution = function() sleep(6) return "late" end }',
        }.items():
            with open(os.path.join(cls.dir, "commands", name + ".lua"), "w") as f:
                f.write(code + "\n")
        cls.sink = Sink().start()
        # Every handler but "slow" answers well before the deadline (3 s;
        # spin is stopped after 50 ms), and "slow" sleeps twice as long as
        # it: one handoff however slow the machine.
        cls.host = Host("--deadline", "3000", "--max-cpu", "50", scripts=cls.dir, keys=[KEY.spki])

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        cls.sink.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, cls.host.log()
        assert not cls.host.sanitizer_reports(), cls.host.log()

    def scrape(self):
        r = self.host.request("GET", "/metrics")
        self.assertEqual(r.status, 200)
        self.assertIn("text/plain", r.headers["content-type"])
        return r.body.decode()

    def post(self, name, response_url=None):
        b = body("command", "execution_handler", name, {"arguments": ""})
        if response_url:
            b["response_url"] = response_url
        return self.host.post(b, key=KEY)

    def test_counters_move(self):
        before = self.scrape()
        req = lambda t, st, h="execution", ty="command": metric(
            t, "cliqhost_requests_total", type=ty, handler=h, status=st)
        for _ in range(3):
            self.assertEqual(self.post("ok").status, 200)
        self.assertEqual(self.post("nosuch").status, 404)
        self.assertEqual(self.host.post(call(), signature="bm9wZQ==").status, 401)
        self.assertEqual(self.host.post(call(now_ms() - 900_000), key=KEY).status, 401)
        raw = call()
        sig = KEY.sign(raw)
        self.host.post(raw, signature=sig)
        self.assertEqual(self.host.post(raw, signature=sig).status, 401)
        self.assertIn("wrong", self.post("boom").json()["output"]["text"])
        self.assertIn("CPU", self.post("spin").json()["output"]["text"])
        r = self.post("slow", response_url=self.sink.url_for("m1"))
        self.assertEqual(r.headers.get("x-cliqhost-late"), "response_url")
        self.assertTrue(self.sink.wait_posts(1, "m1", timeout=60), self.host.log()[-2000:])
        # The outcome is counted once the sink's answer is in: poll for it.
        t0 = time.monotonic()
        while True:
            after = self.scrape()
            delivered = (metric(after, "cliqhost_late_replies_total", outcome="delivered") -
                         metric(before, "cliqhost_late_replies_total", outcome="delivered"))
            if delivered >= 1 or time.monotonic() - t0 > 30:
                break
            time.sleep(0.05)

        def moved(name, **labels):
            return metric(after, name, **labels) - metric(before, name, **labels)

        self.assertEqual(req(after, "200") - req(before, "200"), 6)  # ok x3, boom, spin, slow
        # nosuch, and the first of the replayed pair (call() names "cmd", not here)
        self.assertEqual(req(after, "404") - req(before, "404"), 2)
        # A bad signature reaches no handler; stale and replayed calls were decoded.
        self.assertEqual(moved("cliqhost_requests_total", type="none", handler="none",
                               status="401"), 1)
        self.assertEqual(req(after, "401") - req(before, "401"), 2)
        self.assertEqual(moved("cliqhost_refused_total", reason="signature"), 1)
        self.assertEqual(moved("cliqhost_refused_total", reason="stale"), 1)
        self.assertEqual(moved("cliqhost_refused_total", reason="replayed"), 1)
        self.assertEqual(moved("cliqhost_script_failures_total", kind="error"), 1)
        self.assertEqual(moved("cliqhost_script_failures_total", kind="cpu"), 1)
        self.assertEqual(moved("cliqhost_handoffs_total"), 1)
        self.assertEqual(moved("cliqhost_late_replies_total", outcome="delivered"), 1)
        self.assertGreaterEqual(
            moved("cliqhost_request_duration_seconds_count", type="command"), 8)
        self.assertGreater(metric(after, "cliqhost_request_duration_seconds_bucket",
                                  type="command", le="+Inf"), 0)
        self.assertGreater(metric(after, "cliqhost_lua_memory_bytes", worker="0"), 0)
        self.assertIn("cliqhost_outbox_posts", after)
        self.assertIn("cliqhost_reloads_total", after)
        # No secret in it.
        self.assertNotIn(sig, after)

    def test_reloads_are_counted(self):
        before = metric(self.scrape(), "cliqhost_reloads_total")
        # Written to a temporary name and renamed, so a loaded machine cannot
        # split the save into an empty file and its text (two reloads).
        path = os.path.join(self.dir, "commands", "ok.lua")
        with open(path + ".tmp", "w") as f:
            f.write('return { execution = function() return "ok2" end }\n')
        os.replace(path + ".tmp", path)
        t0 = time.time()
        while time.time() - t0 < 30 and self.post("ok").json()["output"]["text"] != "ok2":
            time.sleep(0.01)
        self.assertEqual(metric(self.scrape(), "cliqhost_reloads_total"), before + 1)
        with open(path, "w") as f:
            f.write('return { execution = function() return "ok" end }\n')


class Connections(unittest.TestCase):
    """Connection limits: idle and slow clients cannot crowd out Cliq."""

    @classmethod
    def setUpClass(cls):
        cls.host = Host("--request-timeout", "2", scripts=SCRIPTS, keys=[KEY.spki])

    @classmethod
    def tearDownClass(cls):
        assert cls.host.stop() == 0
        assert not cls.host.sanitizer_reports(), cls.host.log()

    def connect(self):
        s = socket.create_connection(("127.0.0.1", self.host.port), timeout=10)
        return s

    def test_500_idle_connections_do_not_stop_signed_calls(self):
        idle = [self.connect() for _ in range(500)]
        try:
            for _ in range(20):
                self.assertEqual(self.host.post(call(), key=KEY).status, 200)
        finally:
            for s in idle:
                s.close()

    def test_slowloris_is_cut(self):
        n = len(self.host.lines)
        s = self.connect()
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
            t0 = time.time()
            closed = False
            # Nothing else would cut it within 60 s (the idle timeout, which
            # a header line now and then keeps off anyway).
            while time.time() - t0 < 45:
                try:
                    s.sendall(b"X-A: b\r\n")  # a header line now and then, forever
                    s.settimeout(0.5)
                    if s.recv(1024) == b"":
                        closed = True
                        break
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
            self.assertTrue(closed, "the slow client was never cut")
            self.assertIsNotNone(self.host.wait_for(r"connection cut: no whole request within "
                                                    r"request_timeout_s \(2 s\)", timeout=30,
                                                    start=n), self.host.log()[-2000:])
        finally:
            s.close()
        # And the host still serves.
        self.assertEqual(self.host.post(call(), key=KEY).status, 200)

    def test_slow_body_is_cut(self):
        n = len(self.host.lines)
        s = self.connect()
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            t0 = time.time()
            got = b""
            closed = False
            while time.time() - t0 < 45:
                try:
                    s.sendall(b"{")
                    s.settimeout(0.5)
                    chunk = s.recv(1024)
                    if chunk == b"":
                        closed = True
                        break
                    got += chunk
                except socket.timeout:
                    continue
                except OSError:
                    closed = True
                    break
            self.assertTrue(closed, "the slow body was never cut")
            self.assertIsNotNone(self.host.wait_for(r"connection cut: no whole request within "
                                                    r"request_timeout_s \(2 s\)", timeout=30,
                                                    start=n), self.host.log()[-2000:])
        finally:
            s.close()

    def test_keep_alive_between_calls_is_fine(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.host.port, timeout=10)
        for _ in range(3):
            raw = call()
            conn.request("POST", "/", raw, {"X-Cliq-Signature": KEY.sign(raw)})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            time.sleep(0.5)
        conn.close()

    def raw_exchange(self, request):
        s = self.connect()
        try:
            s.sendall(request)
            s.settimeout(5)
            data = b""
            while b"\r\n\r\n" not in data or not data.split(b"\r\n\r\n", 1)[1]:
                try:
                    chunk = s.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                data += chunk
            return data
        finally:
            s.close()

    def test_admin_endpoints_keep_the_connection_open(self):
        # (issue 13, point 11) /healthz closed its connection after each
        # answer; a load balancer polling it opened one a time.
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.host.port, timeout=10)
        try:
            for path in ("/healthz", "/metrics", "/status", "/healthz"):
                conn.request("GET", path)
                r = conn.getresponse()
                r.read()
                self.assertEqual(r.status, 200, path)
                self.assertNotEqual((r.getheader("Connection") or "").lower(), "close", path)
            first = conn.sock
            raw = call()
            conn.request("POST", "/", raw, {"X-Cliq-Signature": KEY.sign(raw)})
            r = conn.getresponse()
            r.read()
            self.assertEqual(r.status, 200)
            self.assertIs(conn.sock, first)  # all on one connection
        finally:
            conn.close()

    def test_two_content_lengths_are_refused(self):
        # (issue 13, point 11) A proxy that reads the other length could
        # be smuggled past: a call with two that differ is a 400.
        raw = call()
        data = self.raw_exchange(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Cliq-Signature: " + KEY.sign(raw).encode() + b"\r\n"
            b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(raw), len(raw) + 5)
            + raw + b"xxxxx")
        head, _, body_ = data.partition(b"\r\n\r\n")
        self.assertRegex(head.split(b"\r\n", 1)[0], rb"^HTTP/1\.1 400 ", data)
        self.assertIn("Content-Length", json.loads(body_)["error"])

    def test_oversized_headers_are_refused(self):
        s = self.connect()
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            s.settimeout(5)
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except (ConnectionResetError, socket.timeout):
                    break
                if not chunk:
                    break
                data += chunk
            self.assertRegex(data.split(b"\r\n", 1)[0], rb"^HTTP/1\.1 431 ")
        finally:
            s.close()


class PerAddress(unittest.TestCase):
    def test_one_address_cannot_take_every_connection(self):
        h = Host("--max-connections-per-ip", "20", "--workers", "1", workers=None,
                 scripts=SCRIPTS, keys=[KEY.spki])
        socks = []
        try:
            for _ in range(20):
                socks.append(socket.create_connection(("127.0.0.1", h.port), timeout=5))
            extra = socket.create_connection(("127.0.0.1", h.port), timeout=5)
            extra.settimeout(5)
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(extra.recv(100), b"")  # closed at once, unanswered
            except (ConnectionResetError, BrokenPipeError):
                pass
            extra.close()
        finally:
            for s in socks:
                s.close()
            self.assertEqual(h.stop(), 0)


def read_json_answer(sock):
    """Reads one answer with a JSON body from sock: b"" when the connection
    closes (or times out) before any."""
    data = b""
    try:
        while b"\r\n\r\n" not in data or b"}" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def strict_json(line):
    """json.loads that refuses an object with a repeated key."""
    def pairs(kv):
        keys = [k for k, _ in kv]
        if len(keys) != len(set(keys)):
            raise ValueError("repeated key in %r" % line)
        return dict(kv)
    return json.loads(line, object_pairs_hook=pairs)


class Logs(unittest.TestCase):
    def test_what_a_script_logged_comes_back_byte_for_byte(self):
        said = 'a\rb\nc\td "q" \\ \x01 \x7f é 😀 end'
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-logs-")
        self.addCleanup(shutil.rmtree, d, ignore_errors=True)
        os.makedirs(os.path.join(d, "commands"))
        with open(os.path.join(d, "commands", "raw.lua"), "w") as f:
            f.write('return { execution = function(req)\n'
                    '  log.info(req.params.arguments)\n'
                    '  return "ok"\nend }\n')
        h = Host("--log-format", "json", scripts=d, keys=[KEY.spki])
        try:
            b = body("command", "execution_handler", "raw", {"arguments": said})
            r = h.post(b, key=KEY)
            self.assertEqual(r.status, 200)
            rid = r.headers["x-request-id"]
            time.sleep(0.2)
        finally:
            self.assertEqual(h.stop(), 0)
        lines = [strict_json(l) for l in h.lines]  # one object each, no repeated key
        mine = [l for l in lines if l.get("request_id") == rid and l.get("script")]
        self.assertEqual(len(mine), 1, mine)
        self.assertEqual(mine[0]["msg"], said)
        self.assertEqual(mine[0]["script"], "commands/raw.lua")

    def test_json_lines_with_request_ids_and_no_secrets(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-logs-")
        os.makedirs(os.path.join(d, "commands"))
        with open(os.path.join(d, "commands", "talk.lua"), "w") as f:
            f.write('return { execution = function(req)\n'
                    '  log.info("working on", req.params.arguments, {n = 2})\n'
                    '  log.warn("url was https://x.example/?zapikey=sekrit123&a=1")\n'
                    '  return "said"\nend }\n')
        h = Host("--log-format", "json", "--log-level", "debug", scripts=d, keys=[KEY.spki])
        try:
            b = body("command", "execution_handler", "talk", {"arguments": "hello \"there\""})
            raw = json.dumps(b).encode()
            sig = KEY.sign(raw)
            r = h.post(raw, signature=sig)
            self.assertEqual(r.status, 200)
            rid = r.headers["x-request-id"]
            bad = h.post(call(), signature=sig)
            self.assertEqual(bad.status, 401)
            time.sleep(0.2)
        finally:
            self.assertEqual(h.stop(), 0)
            shutil.rmtree(d, ignore_errors=True)
        lines = [json.loads(l) for l in h.lines]  # every line is one JSON object
        for l in lines:
            self.assertRegex(l["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            self.assertIn(l["level"], ("debug", "info", "warn", "error"))
        mine = [l for l in lines if l.get("request_id") == rid]
        self.assertEqual(len(mine), 3, mine)  # two script lines and the request line
        req = [l for l in mine if l.get("path") == "/"][0]
        self.assertEqual((req["status"], req["type"], req["name"], req["handler"]),
                         (200, "command", "talk", "execution"))
        self.assertIsInstance(req["ms"], float)
        said = [l for l in mine if "working on" in l["msg"]][0]
        self.assertIn('hello "there"', said["msg"])
        text = "\n".join(h.lines)
        self.assertNotIn("sekrit123", text)
        self.assertNotIn(sig, text)
        self.assertNotIn(sig[:40], text)


class Shutdown(unittest.TestCase):
    """SIGTERM: stop accepting, let handlers finish, deliver their late
    replies, keep the outbox, exit 0."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-shutdown-")
        os.makedirs(os.path.join(self.dir, "commands"))
        for name, code in {
            # Says when it starts (the tests wait for that instead of sleeping).
            "slow": 'return { execution = function(req) log.info("slow started") '
                    'sleep(tonumber(req.params.arguments)) '
                    'return "done after " .. req.params.arguments end }',
            # Holds its worker for the given CPU seconds, from the moment
            # the call arrives (it never pauses).
            "cpu": 'return { execution = function(req) local t = os.clock() '
                   'while os.clock() - t < tonumber(req.params.arguments) do end '
                   'return "spun" end }',
            # (The pause lets its worker write the log line out.)
            "spin": 'return { execution = function(req) log.info("spin started") '
                    'sleep(0.05) while true do end end }',
        }.items():
            with open(os.path.join(self.dir, "commands", name + ".lua"), "w") as f:
                f.write(code + "\n")
        self.sink = Sink().start()

    def tearDown(self):
        self.sink.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def slow(self, host, seconds, tag, results):
        b = body("command", "execution_handler", "slow", {"arguments": str(seconds)})
        b["response_url"] = self.sink.url_for(tag)
        results[tag] = host.post(b, key=KEY)

    def started(self, host, n, timeout=30):
        """Waits until n handlers have said they started."""
        t0 = time.time()
        while time.time() - t0 < timeout:
            if sum("slow started" in l for l in list(host.lines)) >= n:
                return
            time.sleep(0.02)
        self.fail(f"{n} handlers did not start\n{host.log()[-3000:]}")

    def test_sigterm_loses_no_late_reply(self):
        # The three slow handlers outlast the deadline (1 s) by seconds and
        # the quick one answers at once, however slow the machine; the grace
        # (60 s) is far beyond the longest of them.
        h = Host("--deadline", "1000", "--shutdown-grace", "60", scripts=self.dir,
                 keys=[KEY.spki])
        results = {}
        slow = [3.0, 3.5, 4.0]
        threads = [threading.Thread(target=self.slow, args=(h, s, f"t{i}", results))
                   for i, s in enumerate(slow + [0])]
        for t in threads:
            t.start()
        # Three are past the deadline, handed off; one answered.
        t0 = time.time()
        while len(results) < 4 and time.time() - t0 < 30:
            time.sleep(0.02)
        self.assertEqual(len(results), 4, h.log()[-3000:])
        t0 = time.time()
        rc = h.stop(signal.SIGTERM, timeout=90)
        took = time.time() - t0
        for t in threads:
            t.join(5)
        self.assertEqual(rc, 0, h.log())
        for i, s in enumerate(slow):
            self.assertEqual(results[f"t{i}"].headers.get("x-cliqhost-late"), "response_url")
            posts = self.sink.posts(f"t{i}")
            self.assertEqual(len(posts), 1, h.log()[-3000:])
            self.assertEqual(json.loads(posts[0].body)["output"]["text"], f"done after {s}")
        self.assertEqual(results["t3"].json()["output"]["text"], "done after 0")
        # It waited for them, not for the whole grace.
        self.assertLess(took, 30)
        self.assertIsNone(h.wait_for(r"handler still running at shutdown", timeout=0))
        self.assertIsNotNone(h.wait_for(r"worker \d: waiting up to 60 s for \d+ handlers? and", timeout=1))
        self.assertFalse(h.sanitizer_reports(), h.log())

    def test_sync_reply_in_flight_is_answered(self):
        h = Host("--deadline", "60000", scripts=self.dir, keys=[KEY.spki])
        results = {}
        t = threading.Thread(target=self.slow, args=(h, 1.0, "sync", results))
        t.start()
        self.started(h, 1)
        self.assertEqual(h.stop(signal.SIGTERM, timeout=30), 0)
        t.join(5)
        self.assertEqual(results["sync"].status, 200)
        self.assertEqual(results["sync"].json()["output"]["text"], "done after 1.0")

    def test_every_connection_open_at_sigterm_gets_its_answer(self):
        # One handler keeps one worker (and so the process) busy for 8 s;
        # the other worker has nothing running. Requests begun before
        # SIGTERM and finished after it are answered on both workers while
        # the host still runs, and idle connections are closed, not left
        # hanging until the process exits.
        h = Host("--shutdown-grace", "60", "--deadline", "60000", scripts=self.dir,
                 keys=[KEY.spki])
        results = {}
        t = threading.Thread(target=self.slow, args=(h, 8, "busy", results))
        t.start()
        self.started(h, 1)
        begun = [socket.create_connection(("127.0.0.1", h.port), timeout=15) for _ in range(16)]
        idle = [socket.create_connection(("127.0.0.1", h.port), timeout=15) for _ in range(4)]
        for s in begun:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for s in idle:  # a request answered: kept alive, then idle
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertIn(b"200", s.recv(4096))
        # Each worker's loop has taken its connections' bytes in (their
        # /healthz never completes, so nothing else can be awaited).
        time.sleep(0.5)
        h.proc.send_signal(signal.SIGTERM)
        self.assertIsNotNone(h.wait_for(r"waiting up to 60 s for 1 handler", timeout=10), h.log())
        answers = []
        for s in begun:
            s.sendall(b"\r\n")
            answers.append(read_json_answer(s))
            s.close()
        closed = []
        for s in idle:
            try:
                closed.append(s.recv(4096) == b"")
            except socket.timeout:
                closed.append(False)
            s.close()
        # All of it happened while the busy handler still ran (its reply is
        # the host's last act before it exits).
        self.assertNotIn("busy", results, "answered only as the host exited")
        self.assertIsNone(h.proc.poll(), "the host exited before answering")
        for a in answers:
            self.assertTrue(a.startswith(b"HTTP/1.1 503"), answers)
            self.assertIn(b"shutting down", a)
            self.assertIn(b"Connection: close", a)
        self.assertEqual(closed, [True] * len(idle))
        self.assertEqual(h.stop(signal.SIGTERM, timeout=60), 0)
        t.join(5)
        self.assertEqual(results["busy"].status, 200)

    def test_a_request_waiting_unread_at_sigterm_is_answered(self):
        # A kept-alive connection, idle for a while, sends a whole request
        # while its only worker runs a handler; SIGTERM comes before the
        # worker reads it. The request is answered, not dropped as idle.
        h = Host("--workers", "1", "--shutdown-grace", "30", "--deadline", "60000",
                 "--max-cpu", "20000", workers=None, scripts=self.dir, keys=[KEY.spki])
        k = socket.create_connection(("127.0.0.1", h.port), timeout=20)
        k.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"200", k.recv(4096))
        time.sleep(1.5)  # longer than a fresh connection is given at shutdown
        results = {}
        t = threading.Thread(target=lambda: results.update(r=h.post(
            body("command", "execution_handler", "cpu", {"arguments": "3"}), key=KEY)))
        t.start()
        # The worker is in the handler (3 s of CPU) for a while: it cannot
        # say so (its log lines go out when it gets back to its loop).
        time.sleep(1.0)
        k.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        h.proc.send_signal(signal.SIGTERM)
        data = read_json_answer(k)
        k.close()
        self.assertTrue(data.startswith(b"HTTP/1.1 "), data)
        self.assertEqual(h.stop(signal.SIGTERM, timeout=60), 0)
        t.join(5)
        self.assertEqual(results["r"].status, 200)

    def test_grace_bounds_the_wait(self):
        h = Host("--deadline", "300", "--shutdown-grace", "1", scripts=self.dir, keys=[KEY.spki])
        results = {}
        t = threading.Thread(target=self.slow, args=(h, 120, "long", results))
        t.start()
        self.started(h, 1)
        t0 = time.time()
        self.assertEqual(h.stop(signal.SIGTERM, timeout=60), 0)
        # Stopped after the grace (1 s), long before the handler's 120 s.
        self.assertLess(time.time() - t0, 60)
        t.join(5)
        self.assertIsNotNone(h.wait_for(r"handler still running at shutdown; dropped", timeout=1))
        self.assertEqual(self.sink.posts("long"), [])

    def test_grace_bounds_a_handler_that_never_pauses(self):
        # Its CPU limit is the largest allowed (600 s): only the shutdown can
        # stop it, at the end of the grace (1 s), far inside the 60 s wait.
        h = Host("--deadline", "60000", "--max-cpu", "600000", "--max-run", "3600000",
                 "--shutdown-grace", "1", scripts=self.dir, keys=[KEY.spki])
        results = {}
        t = threading.Thread(target=lambda: results.update(
            r=h.post(body("command", "execution_handler", "spin", {}), key=KEY)))
        t.start()
        self.assertIsNotNone(h.wait_for(r"spin started", timeout=30), h.log())
        self.assertEqual(h.stop(signal.SIGTERM, timeout=60), 0, h.log()[-3000:])
        t.join(5)
        self.assertIn("shutting down", results["r"].json()["output"]["text"])
        self.assertIsNotNone(h.wait_for(r"failure=limit limit=time .*shutting down", timeout=1),
                             h.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
