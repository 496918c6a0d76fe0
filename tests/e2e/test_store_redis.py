"""The store on Redis, where it differs from SQLite: a real redis-server
(redislib) killed, restarted, paused and resumed under a running host;
a host started while Redis is down; a password, a database number, a
unix socket, the server's script cache flushed, redis_prefix, TTLs and
store_max_keys across the whole Redis store, and incr answering exactly
as on SQLite. What both backends share is in test_store.py."""

import json
import os
import re
import shutil
import signal
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from cliq_bodies import body
from hostlib import Host
from redislib import Redis
from test_store import NIL, SCRIPTS, call, metric

UNAVAILABLE = "store unavailable: "


def status(host):
    r = host.request("GET", "/status")
    assert r.status == 200, r
    return r.json()["store"]


def wait_until(what, check, timeout=30):
    """Polls check() until it returns something true; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still not so after {timeout} s")
        time.sleep(0.05)


def lines(host, pattern):
    return [line for line in host.log().splitlines() if re.search(pattern, line)]


def count_lines(host, pattern, n):
    """How many log lines match, once at least n do (a worker writes its
    lines out at the end of its loop's turn, so one may come a moment
    after what it reports is seen on /status)."""
    try:
        wait_until(f"{n} lines of {pattern!r}", lambda: len(lines(host, pattern)) >= n, 10)
    except AssertionError:
        pass
    return len(lines(host, pattern))


class RedisHost(unittest.TestCase):
    """A redis-server of the class's own, running and empty at the start of
    each test; hosts made with self.host_on() are stopped (and checked) at
    its end."""

    REDIS_ARGS = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Here, not in setUp: a setUp that raised after a host started
        # would leave the host running (tearDown does not run then).
        cls.redis = Redis(**cls.REDIS_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        super().tearDownClass()

    def setUp(self):
        if not self.redis.running():
            self.redis.start()
        self.redis.command("FLUSHALL")
        self.hosts = []
        self.addCleanup(self.stop_hosts)

    def stop_hosts(self):
        if self.redis.running():
            self.redis.resume()  # a paused one, so that the hosts stop quickly
        for h in self.hosts:
            rc = h.stop()
            shutil.rmtree(h.data_dir, ignore_errors=True)
            self.assertEqual(rc, 0, h.log())
            self.assertFalse(h.sanitizer_reports(), h.log())

    def host_on(self, store=None, *flags, workers=2):
        """A host whose store is `store` (this class's Redis by default)."""
        h = Host("--no-verify", "--store", store or self.redis.url, *flags, scripts=SCRIPTS,
                 workers=workers)
        self.hosts.append(h)
        return h

    def assertUnavailable(self, answer, *parts):
        """answer is nil, "store unavailable: ..." containing every part."""
        self.assertEqual(answer[0], NIL, answer)
        self.assertTrue(answer[1].startswith(UNAVAILABLE), answer)
        for p in parts:
            self.assertIn(p, answer[1])


class Killed(RedisHost):
    def test_killed_then_restarted(self):
        h = self.host_on()
        addr = f"redis://127.0.0.1:{self.redis.port}/0"
        self.assertEqual(call(h, op="set", key="before", value=1), [True])
        wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
        self.assertEqual(metric(h, "cliqhost_redis_up"), 1)
        self.assertEqual(metric(h, "cliqhost_redis_down_total"), 0)

        self.redis.kill()
        st = wait_until("/status says down", lambda: status(h)["redis"]["state"] == "down"
                        and status(h))
        self.assertIn(addr, st["redis"]["why"])
        self.assertEqual(st["redis"]["address"], addr)
        self.assertEqual(metric(h, "cliqhost_redis_up"), 0)
        self.assertEqual(metric(h, "cliqhost_redis_down_total"), 1)
        # Every operation answers at once, and the handler goes on to
        # reply with it.
        for args in ({"op": "get", "key": "before"}, {"op": "set", "key": "k", "value": 1},
                     {"op": "incr", "key": "n"}, {"op": "append", "key": "l", "item": 1},
                     {"op": "delete", "key": "before"}, {"op": "list", "prefix": ""}):
            with self.subTest(op=args["op"]):
                self.assertUnavailable(call(h, **args), "redis is unreachable: ", addr)
        self.assertEqual(metric(h, "cliqhost_store_errors_total"), 6)

        self.redis.start()  # the same port, and empty: it kept nothing
        wait_until("store calls work again",
                   lambda: call(h, op="set", key="after", value=2) == [True])
        self.assertEqual(call(h, op="get", key="before"), [NIL])
        self.assertEqual(call(h, op="get", key="after"), [2])
        self.assertEqual(call(h, op="incr", key="n"), [1])
        st = wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up"
                        and status(h))
        self.assertEqual(st["redis"]["why"], "connected")
        self.assertEqual(st["redis"]["up"], 2)
        self.assertEqual(metric(h, "cliqhost_redis_up"), 1)
        self.assertEqual(metric(h, "cliqhost_redis_down_total"), 1)
        # One warning for the outage, one line when it ended.
        self.assertEqual(count_lines(h, r"warn .*redis unreachable: ", 1), 1, h.log())
        self.assertEqual(count_lines(h, r"redis reachable again at " + re.escape(addr), 1), 1,
                         h.log())

    def test_two_outages_count_twice(self):
        h = self.host_on()
        wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
        for n in (1, 2):
            self.redis.kill()
            wait_until("/status says down", lambda: status(h)["redis"]["state"] == "down")
            self.assertUnavailable(call(h, op="get", key="k"))
            self.redis.start()
            wait_until("store calls work again",
                       lambda: call(h, op="set", key="k", value=n) == [True])
            wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
            self.assertEqual(metric(h, "cliqhost_redis_down_total"), n)
        self.assertEqual(count_lines(h, r"warn .*redis unreachable: ", 2), 2, h.log())
        self.assertEqual(count_lines(h, r"redis reachable again at ", 2), 2, h.log())

    def test_a_host_starts_while_redis_is_down(self):
        self.redis.kill()
        h = self.host_on()  # it listens, and serves
        addr = f"redis://127.0.0.1:{self.redis.port}/0"
        self.assertUnavailable(call(h, op="set", key="k", value=1), addr)
        self.assertEqual(h.request("GET", "/healthz").status, 200)
        st = wait_until("/status says down", lambda: status(h)["redis"]["state"] == "down"
                        and status(h))
        self.assertIn(f"cannot connect to {addr}", st["redis"]["why"])
        self.assertEqual(metric(h, "cliqhost_redis_up"), 0)
        self.redis.start()
        wait_until("store calls work", lambda: call(h, op="set", key="k", value=1) == [True])
        self.assertEqual(self.redis.command("HGET", "cliqhost:k:k", "v"), "1")
        wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
        self.assertEqual(count_lines(h, r"warn .*redis unreachable: ", 1), 1, h.log())
        self.assertEqual(count_lines(h, r"redis reachable again at ", 1), 1, h.log())


class Paused(RedisHost):
    def test_no_answer_in_redis_timeout_ms(self):
        # One worker: one connection, so which call meets the timeout is
        # known.
        h = self.host_on(None, "--redis-timeout-ms", "300", workers=1)
        addr = f"redis://127.0.0.1:{self.redis.port}/0"
        self.assertEqual(call(h, op="set", key="k", value=1), [True])
        wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
        self.redis.pause()
        self.assertUnavailable(call(h, op="get", key="k"), f"no answer from {addr} in 300 ms")
        # From then on while it is down (the host tries again, and gets no
        # answer to its setup either): "unreachable", without waiting.
        # 30 calls in one handler would take 9 s if each waited its 300 ms,
        # past the 4.5 s deadline: the handler's own answer shows none did.
        time.sleep(1)
        r = call(h, op="times", times=30, what={"op": "incr", "key": "n"})[0]
        self.assertEqual(len(r), 30)
        for answer in r:
            self.assertUnavailable(answer, "redis is unreachable: ", addr, " in 300 ms")
        self.assertEqual(status(h)["redis"]["state"], "down")
        self.assertIn("in 300 ms", status(h)["redis"]["why"])
        self.redis.resume()
        wait_until("store calls work again", lambda: call(h, op="get", key="k") == [1])
        self.assertEqual(call(h, op="incr", key="n"), [1])
        wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
        self.assertEqual(count_lines(h, r"warn .*redis unreachable: ", 1), 1, h.log())
        self.assertEqual(count_lines(h, r"redis reachable again at ", 1), 1, h.log())


    def test_the_handler_run_time_limit_stops_a_wait(self):
        # A long redis_timeout_ms: the handler's own limit comes first.
        h = self.host_on(None, "--redis-timeout-ms", "60000", "--max-run", "1000", workers=1)
        self.assertEqual(call(h, op="set", key="k", value=1), [True])
        self.redis.pause()
        b = json.dumps(body("command", "execution_handler", "st",
                            {"arguments": json.dumps({"op": "get", "key": "k"})}))
        r = h.post(b.encode())
        self.assertEqual(r.status, 200, r)
        self.assertIn("limit=time", h.wait_for("failure=limit") or "", h.log())
        self.redis.resume()
        # The answer that came late went nowhere; the connection serves on.
        self.assertEqual(call(h, op="incr", key="k"), [2])
        self.assertEqual(status(h)["redis"]["state"], "up")

    def test_sighup_sets_redis_timeout_ms(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-data-")
        cfg = os.path.join(d, "cliqhost.lua")

        def write(ms):
            with open(cfg, "w") as f:
                f.write(f'data_dir = "{d}"\nredis_timeout_ms = {ms}\n')

        write(3000)
        h = self.host_on(None, "--config", cfg, workers=1)
        h.data_dir = d
        addr = f"redis://127.0.0.1:{self.redis.port}/0"
        wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
        write(300)
        h.proc.send_signal(signal.SIGHUP)
        self.assertTrue(h.wait_for(r"SIGHUP: config reloaded"), h.log())
        self.assertEqual(call(h, op="set", key="k", value=1), [True])
        self.redis.pause()
        self.assertUnavailable(call(h, op="get", key="k"), f"no answer from {addr} in 300 ms")

    def test_killed_while_calls_wait(self):
        h = self.host_on(None, "--redis-timeout-ms", "3000", workers=1)
        addr = f"redis://127.0.0.1:{self.redis.port}/0"
        wait_until("/status says up", lambda: status(h)["redis"]["state"] == "up")
        # A first outage, of another kind: no answer in time.
        self.redis.pause()
        self.assertUnavailable(call(h, op="get", key="k"), f"no answer from {addr} in 3000 ms")
        self.redis.resume()
        wait_until("store calls work again", lambda: call(h, op="get", key="k") == [NIL])
        # Calls that wait for an answer when the server dies say so, not
        # what ended the last outage.
        self.redis.pause()
        with ThreadPoolExecutor(4) as ex:
            waiting = [ex.submit(call, h, op="incr", key="n") for _ in range(4)]
            time.sleep(0.5)
            self.redis.kill()
            for f in waiting:
                answer = f.result()
                self.assertUnavailable(answer, f"connection to {addr} lost")
                self.assertNotIn("no answer", answer[1])


class Password(RedisHost):
    REDIS_ARGS = {"password": "s3cr3t-Pa55"}

    def assertNotShown(self, h, *words):
        shown = h.log() + json.dumps(status(h)) + h.request("GET", "/metrics").body.decode()
        for w in words:
            self.assertNotIn(w, shown)

    def test_the_right_password(self):
        h = self.host_on(f"redis://:s3cr3t-Pa55@127.0.0.1:{self.redis.port}/0")
        self.assertEqual(call(h, op="set", key="k", value="v"), [True])
        self.assertEqual(call(h, op="get", key="k"), ["v"])
        st = status(h)["redis"]
        self.assertEqual(st["address"], f"redis://:***@127.0.0.1:{self.redis.port}/0")
        self.assertEqual(st["state"], "up")
        self.assertNotShown(h, "s3cr3t")

    def test_a_wrong_password(self):
        h = self.host_on(f"redis://:Wr0ng-Pa55@127.0.0.1:{self.redis.port}/0")
        addr = f"redis://:***@127.0.0.1:{self.redis.port}/0"
        self.assertRefused(h, f"{addr} refused the setup: WRONGPASS")
        self.assertEqual(self.redis.command("DBSIZE"), 0)
        self.assertNotShown(h, "Wr0ng", "s3cr3t")

    def test_no_password(self):
        h = self.host_on(f"redis://127.0.0.1:{self.redis.port}/0")
        self.assertRefused(h, "refused the setup: NOAUTH")

    def assertRefused(self, h, why):
        """Redis refused h's connection setup: /status, the log and every
        store call (while it is down, and so on each retry) say why."""
        st = wait_until("/status says down", lambda: status(h)["redis"]["state"] == "down"
                        and status(h)["redis"])
        self.assertIn(why, st["why"])
        self.assertEqual(count_lines(h, "warn .*redis unreachable: .*" + re.escape(why), 1), 1,
                         h.log())
        # A call before the first retry, and one after (every second).
        self.assertUnavailable(call(h, op="set", key="k", value="v"), why)
        time.sleep(1.5)
        self.assertUnavailable(call(h, op="get", key="k"), why)
        self.assertEqual(count_lines(h, "redis unreachable", 1), 1, h.log())


class Databases(RedisHost):
    REDIS_ARGS = {"unixsocket": True}

    def assertIn_db(self, db, key, value):
        self.assertEqual(self.redis.command("HGET", "cliqhost:k:" + key, "v", db=db), value)
        for other in {0, 3, 5} - {db}:
            self.assertEqual(self.redis.command("EXISTS", "cliqhost:k:" + key, db=other), 0)

    def test_a_database_number(self):
        h = self.host_on(f"redis://127.0.0.1:{self.redis.port}/3")
        self.assertEqual(call(h, op="set", key="in3", value="x"), [True])
        self.assertIn_db(3, "in3", '"x"')
        self.assertEqual(status(h)["redis"]["address"],
                         f"redis://127.0.0.1:{self.redis.port}/3")

    def test_a_unix_socket(self):
        for store, db in ((f"unix:{self.redis.socket}", 0),
                          (f"unix:{self.redis.socket}?db=5", 5)):
            with self.subTest(store=store):
                h = self.host_on(store)
                key = f"sock{db}"
                self.assertEqual(call(h, op="set", key=key, value=db), [True])
                self.assertEqual(call(h, op="incr", key=key), [db + 1])
                self.assertIn_db(db, key, str(db + 1))
                self.assertEqual(status(h)["redis"]["address"],
                                 f"unix:{self.redis.socket}?db={db}")

    def test_a_unix_socket_with_a_password_in_the_url(self):
        # The socket has no password: AUTH is refused, and said so.
        h = self.host_on(f"unix:{self.redis.socket}?password=n0-Such")
        wait_until("/status says down", lambda: status(h)["redis"]["state"] == "down")
        self.assertUnavailable(call(h, op="get", key="k"), "refused the setup: ERR AUTH")
        self.assertNotIn("n0-Such", h.log() + json.dumps(status(h)))


class Scripts(RedisHost):
    def test_a_flushed_script_cache(self):
        h = self.host_on()
        self.assertEqual(call(h, op="set", key="k", value=1), [True])
        for args, answer in (({"op": "set", "key": "k", "value": 2}, [True]),
                             ({"op": "incr", "key": "k"}, [3]),
                             ({"op": "append", "key": "l", "item": "a"}, [["a"]]),
                             ({"op": "list", "prefix": "k"},
                              [[{"key": "k", "value": 3}], NIL]),
                             ({"op": "delete", "key": "l"}, [True])):
            self.redis.command("SCRIPT", "FLUSH")
            with self.subTest(op=args["op"]):
                # Both workers, each on its own connection.
                self.assertEqual(call(h, **args), answer)
                self.redis.command("SCRIPT", "FLUSH")
                if args["op"] in ("set", "list"):
                    self.assertEqual(call(h, **args), answer)
        self.assertEqual(metric(h, "cliqhost_store_errors_total"), 0)


class Prefixes(RedisHost):
    def test_hosts_with_other_prefixes_see_other_keys(self):
        a = self.host_on(None, "--redis-prefix", "team-a:")
        b = self.host_on(None, "--redis-prefix", "team-b:")
        a2 = self.host_on(None, "--redis-prefix", "team-a:")
        self.assertEqual(call(a, op="set", key="k", value="a"), [True])
        self.assertEqual(call(b, op="get", key="k"), [NIL])
        self.assertEqual(call(b, op="list", prefix=""), [[], NIL])
        self.assertEqual(call(b, op="set", key="k", value="b"), [True])
        self.assertEqual(call(a2, op="get", key="k"), ["a"])
        self.assertEqual(call(a2, op="incr", key="n"), [1])
        self.assertEqual(call(a, op="incr", key="n"), [2])
        self.assertEqual(call(b, op="get", key="k"), ["b"])
        for key in self.redis.command("KEYS", "*"):
            self.assertTrue(key.startswith(("team-a:", "team-b:")), key)


class Expiry(RedisHost):
    def test_ttl(self):
        h = self.host_on()
        self.assertEqual(call(h, op="set", key="a", value=1), [True])
        self.assertEqual(call(h, op="set", key="brief", value=2, opts={"ttl": 0.3}), [True])
        self.assertEqual(metric(h, "cliqhost_store_keys"), 2)
        self.assertEqual(call(h, op="list_keys", prefix=""), [["a", "brief"], NIL])
        wait_until("the key expired", lambda: call(h, op="get", key="brief") == [NIL])
        self.assertEqual(call(h, op="list_keys", prefix=""), [["a"], NIL])
        # A value Redis dropped that the sets still name (its own expiry,
        # before a sweep) is seen by no operation either.
        self.assertEqual(call(h, op="set", key="gone", value=1, opts={"ttl": 3600}), [True])
        self.redis.command("DEL", "cliqhost:k:gone")
        self.assertEqual(self.redis.command("ZSCORE", "cliqhost:keys", "gone"), "0")
        self.assertEqual(call(h, op="list_keys", prefix=""), [["a"], NIL])
        self.assertEqual(call(h, op="get", key="gone"), [NIL])
        self.assertEqual(call(h, op="delete", key="gone"), [True])
        self.assertEqual(call(h, op="set", key="brief", value=3, opts={"only_if_absent": True}),
                         [True])
        self.assertEqual(call(h, op="delete", key="brief"), [True])
        self.assertEqual(metric(h, "cliqhost_store_keys"), 1)
        self.assertEqual(self.redis.command("ZCARD", "cliqhost:exp"), 0)

    def test_expired_keys_are_swept(self):
        h = self.host_on()
        for i in range(5):
            call(h, op="set", key=f"t{i}", value=i, opts={"ttl": 0.2})
        self.assertEqual(metric(h, "cliqhost_store_keys"), 5)
        wait_until("the keys expired", lambda: call(h, op="list", prefix="t") == [[], NIL])
        self.assertEqual(call(h, op="set", key="other", value=1), [True])
        self.assertEqual(metric(h, "cliqhost_store_keys"), 1)
        self.assertEqual(self.redis.command("ZCARD", "cliqhost:keys"), 1)
        self.assertEqual(self.redis.command("ZCARD", "cliqhost:exp"), 0)

    def test_store_max_keys_counts_every_host(self):
        a = self.host_on(None, "--store-max-keys", "3")
        b = self.host_on(None, "--store-max-keys", "3")
        self.assertEqual(call(a, op="set", key="a1", value=1), [True])
        self.assertEqual(call(b, op="set", key="b1", value=1), [True])
        self.assertEqual(call(a, op="set", key="short", value=1, opts={"ttl": 0.3}), [True])
        for h, args in ((a, {"op": "set", "key": "a2", "value": 1}),
                        (b, {"op": "incr", "key": "b2"}),
                        (b, {"op": "append", "key": "b3", "item": 1})):
            r = call(h, **args)
            self.assertEqual(r[0], NIL)
            self.assertTrue(r[1].startswith("store full: 3 keys, store_max_keys (3)"), r)
        self.assertEqual(call(b, op="set", key="a1", value=2), [True])  # not new
        # The expired key makes room, on either host.
        wait_until("the short key expired", lambda: call(b, op="get", key="short") == [NIL])
        self.assertEqual(call(b, op="set", key="b2", value=1), [True])
        r = call(a, op="set", key="a2", value=1)
        self.assertTrue(r[1].startswith("store full: 3 keys"), r)
        self.assertEqual(metric(b, "cliqhost_store_keys"), 3)


def typed(v):
    """v with each number and string paired with its type's name."""
    if isinstance(v, dict):
        return {k: typed(x) for k, x in v.items()}
    if isinstance(v, list):
        return [typed(x) for x in v]
    return (type(v).__name__, v)


class IncrParity(unittest.TestCase):
    """The same incr sequence on SQLite and on Redis answers the same,
    and leaves the same values."""

    STEPS = [
        ("incr", "n", None), ("incr", "n", 5), ("incr", "n", -10), ("incr", "n", 0.5),
        ("incr", "n", 0.5), ("get", "n", None), ("incr", "n", 2),
        # Past the integers: a float, as Lua's own + would not give.
        ("incr", "max", 9223372036854775806), ("incr", "max", 1), ("incr", "max", 1),
        ("get", "max", None), ("incr", "max", 1),
        ("incr", "min", -9223372036854775807), ("incr", "min", -1), ("incr", "min", -1),
        ("incr", "f", 0.1), ("incr", "f", 0.2), ("get", "f", None),
        ("incr", "huge", 1e308), ("incr", "huge", 1e308), ("get", "huge", None),
        ("incr", "e", 1e20), ("incr", "e", 1), ("incr", "neg", -0.25),
        ("set", "s", "text"), ("incr", "s", 1), ("set", "q", "12"), ("incr", "q", 1),
        ("set", "t", True), ("incr", "t", 1), ("set", "o", {"a": 1}), ("incr", "o", 1),
        ("set", "x", 7.0), ("incr", "x", 1), ("set", "y", 1e16), ("incr", "y", 1),
        ("get", "y", None), ("set", "z", -0.0), ("incr", "z", 1), ("get", "z", None),
        # A float stays a float, past 1e15 too (where "%.17g" has no ".").
        ("incr", "w", 1e15), ("incr", "w", 0.5), ("incr", "w", 0.5), ("get", "w", None),
        ("incr", "w", 1), ("incr", "v", 123456789012345678.0), ("get", "v", None),
    ]

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = Redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()
        super().tearDownClass()

    def answers(self, *flags):
        h = Host("--no-verify", *flags, scripts=SCRIPTS, workers=2)
        try:
            out = []
            for op, key, arg in self.STEPS:
                args = {"op": op, "key": key}
                if op == "incr" and arg is not None:
                    args["by"] = arg
                elif op == "set":
                    args["value"] = arg
                b = json.dumps(body("command", "execution_handler", "st",
                                    {"arguments": json.dumps(args)}))
                r = h.post(b.encode())
                self.assertEqual(r.status, 200, r)
                out.append((op, key, arg, r.json()["output"]["text"]))
            return out
        finally:
            self.assertEqual(h.stop(), 0, h.log())
            self.assertFalse(h.sanitizer_reports(), h.log())
            shutil.rmtree(h.data_dir, ignore_errors=True)

    def test_the_same_answers(self):
        sqlite = self.answers()
        redis = self.answers("--store", self.redis.url)
        # The same values, and each of the same type (1.0 is not 1).
        self.assertEqual([(s, typed(json.loads(text))) for *s, text in redis],
                         [(s, typed(json.loads(text))) for *s, text in sqlite])
        # And what they are.
        got = [json.loads(text) for _, _, _, text in sqlite]

        def answer(op, key, arg, nth=1):
            """The answer of the nth step (op, key, arg), as a list."""
            i = [k for k, s in enumerate(self.STEPS) if s == (op, key, arg)][nth - 1]
            return [got[i][str(k)] for k in range(1, got[i]["n"] + 1)]

        self.assertEqual(answer("get", "n", None), [-3.0])
        self.assertEqual(answer("incr", "n", 2), [-1.0])
        self.assertEqual(answer("incr", "max", 1, 1), [9223372036854775807])
        self.assertEqual(answer("incr", "max", 1, 2), [9.223372036854776e18])
        self.assertEqual(answer("get", "max", None), [9.223372036854776e18])
        self.assertEqual(answer("incr", "min", -1, 1), [-9223372036854775808])
        self.assertEqual(answer("incr", "min", -1, 2), [-9.223372036854776e18])
        self.assertEqual(answer("get", "f", None), [0.1 + 0.2])
        self.assertEqual(answer("incr", "huge", 1e308, 2),
                         [NIL, "not a number: huge would not be finite"])
        self.assertEqual(answer("get", "huge", None), [1e308])
        for key in "sqto":
            self.assertEqual(answer("incr", key, 1), [NIL, f"not a number: {key}"])
        self.assertEqual(answer("incr", "x", 1), [8.0])
        self.assertEqual(typed(answer("incr", "y", 1)), [("float", 1e16)])
        self.assertEqual(typed(answer("get", "y", None)), [("float", 1e16)])
        self.assertEqual(typed(answer("get", "w", None)), [("float", 1e15 + 1)])
        self.assertEqual(typed(answer("incr", "w", 1)), [("float", 1e15 + 2)])
        self.assertEqual(typed(answer("get", "v", None)), [("float", 123456789012345678.0)])

if __name__ == "__main__":
    unittest.main()
