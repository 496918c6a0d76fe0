"""Attacks on the store on Redis and on what hosts share through it (issue
14): a hostile script filling the shared Redis, a Redis answering in
shapes the host does not expect, a password in a store URL the host
refuses. Each test says what an operator would see; a test that holds is
kept as a guard."""

import json
import os
import re
import shutil
import socket
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

import test_outbound as ob
from cliq_bodies import body
from fake_cliq import channel_path
from hostlib import REPO, Host, Key, run_cli
from redislib import Redis

SCRIPTS = os.path.join(REPO, "tests", "e2e", "attack_scripts")
KEY = Key("main")
NIL = "<nil>"


def at_body(**args):
    return json.dumps(body("command", "execution_handler", "at",
                           {"arguments": json.dumps(args)})).encode()


def results(r):
    """The results of an at.lua reply, as a list (nil as "<nil>")."""
    assert r.status == 200, r
    out = json.loads(r.json()["output"]["text"])
    if "raised" in out:
        return out
    return [out[str(i)] for i in range(1, out["n"] + 1)]


def redis_and_host(test, *flags, workers=1):
    """A Redis of the test's own and a host (no signature checks) on it,
    connected; both go when the test ends."""
    redis = Redis()
    test.addCleanup(redis.stop)
    h = Host("--no-verify", "--store", redis.url, *flags, scripts=SCRIPTS, workers=workers)
    test.addCleanup(stop_host, test, h)
    test.assertTrue(h.wait_for(r"redis: connected to", timeout=10), h.log())
    return redis, h


def stop_host(test, host):
    rc = host.stop()
    test.assertEqual(rc, 0, host.log()[-3000:])
    test.assertFalse(host.sanitizer_reports(), host.log()[-3000:])
    shutil.rmtree(host.data_dir, ignore_errors=True)


class FullRedis(unittest.TestCase):
    """The README tells operators to run Redis with `maxmemory-policy
    noeviction`. Any script can then fill it (store_max_keys x
    store_max_value_bytes is 25 GiB by default, far past any maxmemory):
    from then on Redis refuses every write with OOM, the replay claim (a
    SET) too, and each host falls back to its own memory, so a captured
    call replayed to another host is run again."""

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        used = int(re.search(r"used_memory:(\d+)", cls.redis.command("INFO", "memory")).group(1))
        cls.redis.command("CONFIG", "SET", "maxmemory", str(used + 6 * 1024 * 1024))
        cls.redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        args = ("--store", cls.redis.url)
        cls.a = Host(*args, scripts=SCRIPTS, keys=[KEY.spki], workers=1)
        cls.b = Host(*args, scripts=SCRIPTS, keys=[KEY.spki], workers=1)
        for h in (cls.a, cls.b):
            assert h.wait_for(r"redis: connected to", timeout=10), h.log()
        # The hostile script: writes 64 KiB values until Redis says no.
        r = cls.a.post(at_body(op="fill", bytes=65536, max=1000), key=KEY)
        cls.filled = results(r)
        # Redis' use wavers around the limit (its buffers come and go); the
        # script would write again whenever there is room. Hold it full.
        cls.redis.command("CONFIG", "SET", "maxmemory", str(used_memory(cls.redis) - 2**20))

    @classmethod
    def tearDownClass(cls):
        cls.a.stop()
        cls.b.stop()
        shutil.rmtree(cls.a.data_dir, ignore_errors=True)
        shutil.rmtree(cls.b.data_dir, ignore_errors=True)
        cls.redis.stop()

    def test_the_script_filled_redis(self):
        n, err = self.filled
        self.assertGreater(n, 10)
        self.assertIn("OOM", err)

    def test_a_call_replayed_to_another_host_is_still_refused(self):
        b = at_body(op="get", key="x")
        sig = KEY.sign(b)
        self.assertEqual(self.a.post(b, signature=sig).status, 200)
        r = self.b.post(b, signature=sig)
        self.assertEqual(r.status, 401, f"host B ran a call host A had accepted: {r}")
        self.assertIn("by a host sharing this Redis", r.json().get("error", ""))

    def test_a_full_redis_is_reported_once_and_for_what_it_is(self):
        start = len(self.b.lines)
        for i in range(5):
            self.assertEqual(self.b.post(at_body(op="get", key=f"y{i}"), key=KEY).status, 200)
        log = "\n".join(self.b.lines[start:])
        refused = [l for l in log.splitlines() if "redis refused a replay check" in l]
        self.assertLessEqual(len(refused), 1, log)
        self.assertNotIn("Redis 7.0 or later needed", log)


class RedisRestartedUnderLoad(unittest.TestCase):
    """Redis killed and started again (its scripts gone: NOSCRIPT, then
    EVAL) while handlers on both workers run store calls in a loop: every
    call is answered, errors are "store unavailable", and the host is clean
    at exit (the ASan build checks)."""

    def test_every_call_is_answered(self):
        redis, h = redis_and_host(self, workers=2)
        with ThreadPoolExecutor(6) as pool:
            futs = []
            for _ in range(3):
                futs += [pool.submit(results_of, h, op="incr_loop", key="n", times=400)
                         for _ in range(6)]
                redis.kill()
                redis.start()  # empty, without the scripts
            futs += [pool.submit(results_of, h, op="incr_loop", key="n", times=400)
                     for _ in range(6)]
            got = [f.result() for f in futs]
        for ok, err in got:
            if err != "<none>":
                self.assertRegex(err, r"^store unavailable: ")
        # Back by itself (reconnects come at most a second apart).
        deadline = time.monotonic() + 15
        while results_of(h, op="incr_loop", key="m", times=3) != [3, "<none>"]:
            self.assertLess(time.monotonic(), deadline, h.log()[-3000:])
            time.sleep(0.2)


class ReplayRace(unittest.TestCase):
    """One signed call sent four times at once, twice to each of two hosts
    (two workers each): SET ... NX lets exactly one through."""

    def test_the_same_call_raced_to_two_hosts_runs_once(self):
        redis = Redis()
        self.addCleanup(redis.stop)
        hosts = [Host("--store", redis.url, scripts=SCRIPTS, keys=[KEY.spki], workers=2)
                 for _ in range(2)]
        for h in hosts:
            self.addCleanup(stop_host, self, h)
            self.assertTrue(h.wait_for(r"redis: connected to", timeout=10), h.log())
        with ThreadPoolExecutor(8) as pool:
            for i in range(8):
                b = at_body(op="get", key=f"race{i}")
                sig = KEY.sign(b)
                got = sorted(f.result().status for f in
                             [pool.submit(h.post, b, None, sig) for h in hosts for _ in range(2)])
                self.assertEqual(got, [200, 401, 401, 401], i)


class EvictingRedis(unittest.TestCase):
    """The README asks for maxmemory-policy noeviction, but nothing checked
    it (neither `cliqhost check` nor the host at start). On a Redis that
    evicts keys with a time to live (volatile-lru, volatile-ttl, ...: the
    policies a Redis also used as a cache is given), the replay claims are
    the only keys that can go: a script that filled the store evicted every
    one, and a captured call replayed to another host (this module's first
    version showed it). Now check says so, and the host refuses such a
    Redis at start."""

    def test_check_says_the_policy_drops_replay_claims(self):
        redis = Redis()
        self.addCleanup(redis.stop)
        redis.command("CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
        p = run_cli("check", "--scripts", os.path.join(REPO, "scripts"), "--store", redis.url)
        self.assertIn("maxmemory-policy", p.stderr)

    def test_a_host_does_not_start_on_a_redis_that_evicts(self):
        """The fix: such a Redis would let a script evict the replay claims
        at will, so the host refuses it at start, saying what to set."""
        redis = Redis()
        self.addCleanup(redis.stop)
        redis.command("CONFIG", "SET", "maxmemory-policy", "volatile-ttl")
        h = Host("--store", redis.url, scripts=SCRIPTS, keys=[KEY.spki], wait=False)
        self.assertTrue(h.wait_for(r"evicts keys when full \(maxmemory-policy volatile-ttl\)",
                                   timeout=15), h.log())
        self.assertNotEqual(h.stop(), 0)
        shutil.rmtree(h.data_dir, ignore_errors=True)


def used_memory(redis):
    return int(re.search(r"used_memory:(\d+)", redis.command("INFO", "memory")).group(1))


class MaxmemoryBypassed(unittest.TestCase):
    """Redis refuses a script's first write when it is over maxmemory, but
    not the writes after a write (the script is already "dirty"). Every
    store write starts with a sweep that DELs and ZREMs expired keys: when
    there is one, the value's HSET that follows goes through whatever
    maxmemory says. A script that leaves keys with a short ttl behind (here
    3000, before Redis is full) can then write store_max_keys x
    store_max_value_bytes into a Redis the operator capped, until the
    kernel kills it and every host loses the store."""

    def test_a_full_redis_stays_full(self):
        redis, h = redis_and_host(self)
        redis.command("CONFIG", "SET", "maxmemory", str(used_memory(redis) + 6 * 1024 * 1024))
        redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        self.assertEqual(results_of(h, op="seed", count=3000, ttl=3), [3000])
        n, err = results_of(h, op="fill", bytes=65536, max=1000)
        self.assertIn("OOM", err)
        # The seeded keys expire (Redis drops their values; the store's
        # expiry index still lists them for the sweep).
        deadline = time.monotonic() + 30
        while redis.command("EXISTS", "cliqhost:k:seed:3000"):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.1)
        more, err = results_of(h, op="fill", bytes=65536, max=1000, start=n + 1)
        over = used_memory(redis) - int(redis.command("CONFIG", "GET", "maxmemory")[1])
        # What the expired keys freed may be written again (Redis itself
        # dropped them); past maxmemory, a write goes in only while Redis is
        # under it when the write starts: by one value at most.
        self.assertIn("OOM", err)
        self.assertLess(over, 2 * 65536, f"{more} more 64 KiB values written into a full Redis, "
                                         f"{over // 1024} KiB past its maxmemory ({err})")


class HeavyReadsDropTheLink(unittest.TestCase):
    """One script's burst of large store.list pages (its command called a
    few dozen times at once, each call reading ~7.5 MB pages) queues on the
    worker's one Redis connection. Redis answers them all, one after the
    other, but the commands at the back wait longer than redis_timeout_ms,
    and a timeout drops the whole connection: the host logs "redis
    unreachable", every script's store calls on it fail ("store
    unavailable"), and replay checks fall back to this host's memory,
    though Redis is up and answering."""

    def test_redis_answering_slowly_under_load_is_not_down(self):
        # The replies wait for the handlers however slow the build (ASan):
        # what is asserted is the link, not the time.
        redis, h = redis_and_host(self, "--deadline", "60000")
        self.assertEqual(results_of(h, op="fill", bytes=250000, max=32), [32, "<none>"])
        with ThreadPoolExecutor(32) as pool:
            got = list(pool.map(lambda _: results_of(h, op="read_pages", prefix="fill:",
                                                     times=3), range(32)))
        failed = [g for g in got if g[1] != "<none>"]
        self.assertEqual(failed[:2], [], f"{len(failed)} of 32 calls failed")
        self.assertIsNone(h.wait_for(r"redis unreachable", timeout=0), h.log()[-2000:])


class PasswordInABadUrl(unittest.TestCase):
    """A store URL the host refuses is quoted whole in the error, password
    and all: on the terminal, in `cliqhost check`'s output, in the journal
    of a host that would not start. (The URL it accepts is shown with the
    password masked.)"""

    URLS = [
        "redis://:s3cret@127.0.0.1:99999/0",          # a port out of range
        "redis://:s3cret@127.0.0.1:6379/x",           # a db that is no number
        "redis://:s3cret@[::1:6379/0",                # an unclosed '['
        "redis://:s3cret@/0",                         # no host
        "unix:/run/redis.sock?password=s3cret&dbx=1",  # an unknown parameter
        "rediss://:s3cret@127.0.0.1:6379/0",          # TLS, which the host has not
    ]

    def test_check_does_not_print_the_password(self):
        for url in self.URLS:
            with self.subTest(url=url):
                p = run_cli("check", "--scripts", os.path.join(REPO, "scripts"), "--store", url)
                self.assertNotEqual(p.returncode, 0, p.stderr)
                self.assertNotIn("s3cret", p.stdout + p.stderr)

    def test_serve_does_not_log_the_password(self):
        for url in self.URLS[:1] + self.URLS[-1:]:
            with self.subTest(url=url):
                h = Host("--no-verify", "--store", url, scripts=SCRIPTS, wait=False)
                # A URL the host cannot use: it says so and does not start
                # (a scheme it has not is a config error, the rest "cannot start").
                self.assertTrue(h.wait_for(r"cannot start|is not sqlite", timeout=15), h.log())
                rc = h.stop()
                shutil.rmtree(h.data_dir, ignore_errors=True)
                self.assertNotEqual(rc, 0)
                self.assertNotIn("s3cret", h.log())


class Namespace(unittest.TestCase):
    """What a script can name stays under redis_prefix.."k:" and in the
    index: keys that look like the index's names, the replay and pacing
    keys, or ZRANGEBYLEX's bound marks are keys like any other."""

    ODD = [b"keys", b"exp", b"ver", b"r:00", b"pace:00", b"\0", b"\xff", b"[a", b"(a", b"+",
           b"-", b"k:k:", b"a\0b", b"\xff\xff" * 256]

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.host = Host("--no-verify", "--store", cls.redis.url, scripts=SCRIPTS, workers=1)
        assert cls.host.wait_for(r"redis: connected to", timeout=10), cls.host.log()

    @classmethod
    def tearDownClass(cls):
        cls.host.stop()
        shutil.rmtree(cls.host.data_dir, ignore_errors=True)
        cls.redis.stop()

    def call(self, **args):
        return results(self.host.post(at_body(**args)))

    def test_odd_keys_stay_in_the_store(self):
        for i, k in enumerate(self.ODD):
            self.assertEqual(self.call(op="set", kb=list(k), value=i), [True], k)
        for i, k in enumerate(self.ODD):
            self.assertEqual(self.call(op="get", kb=list(k)), [i], k)
        names = self.redis.command("KEYS", "*")
        self.assertEqual(sorted(n for n in names if not n.startswith("cliqhost:k:")),
                         ["cliqhost:keys", "cliqhost:ver"])
        self.assertEqual(self.redis.command("TYPE", "cliqhost:keys"), "zset")
        self.assertEqual(self.redis.command("TYPE", "cliqhost:ver"), "string")
        keys, nxt = self.call(op="list", prefix="")
        want = [list(k) for k in sorted(self.ODD)]
        self.assertEqual((keys, nxt), (want, NIL))
        for p in (b"[", b"(", b"+", b"-", b"\0", b"\xff", b"k:"):
            keys, _ = self.call(op="list", pb=list(p))
            self.assertEqual(keys, [list(k) for k in sorted(self.ODD) if k.startswith(p)], p)

    def test_a_long_after_is_refused_before_it_reaches_redis(self):
        """opts.after is a key, but its length is not checked: a handler
        sends a 4 MB bound to the shared Redis (copied twice outside the Lua
        heap on the way), as often as it likes."""
        stats = lambda: int(re.search(r"total_net_input_bytes:(\d+)",
                                      self.redis.command("INFO", "stats")).group(1))
        before = stats()
        out = self.call(op="list_after_len", prefix="a", len=4_000_000)
        sent = stats() - before
        self.assertIn("raised", out, f"a 4 MB opts.after was taken; Redis received {sent} bytes")
        self.assertIn("at most 512 bytes", out["raised"])
        self.assertLess(sent, 100_000)


class StoppedWhileWaiting(unittest.TestCase):
    """A handler (or a replay claim) waiting on a Redis that does not answer
    is stopped by its time limit, or by shutdown: the call is answered,
    nothing is left behind (the ASan build checks), and the host serves on
    once Redis is back."""

    def setUp(self):
        self.redis = Redis()
        self.addCleanup(self.redis.stop)

    def start(self, *flags, timeout_ms=20000, **kw):
        h = Host("--store", self.redis.url, "--redis-timeout-ms", str(timeout_ms), *flags,
                 scripts=SCRIPTS, workers=1, **kw)
        self.assertTrue(h.wait_for(r"redis: connected to", timeout=10), h.log())
        return h

    def in_thread(self, fn):
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", fn()), daemon=True)
        t.start()
        return t, out

    def test_the_run_limit_stops_a_handler_waiting_on_a_paused_redis(self):
        h = self.start("--no-verify", "--max-run", "300", "--deadline", "200")
        self.addCleanup(stop_host, self, h)
        self.redis.pause()
        try:
            results = [h.post(at_body(op="wait_forever", key="k")) for _ in range(3)]
        finally:
            self.redis.resume()
        for r in results:
            self.assertIn(r.status, (200, 503, 504), r)
        self.assertTrue(h.wait_for(r"stopped", timeout=10), h.log())
        self.assertEqual(results_of(h, op="set", key="after", value=1), [True])

    def test_shutdown_answers_a_handler_waiting_on_a_paused_redis(self):
        h = self.start("--no-verify")
        t, out = self.in_thread(lambda: h.post(at_body(op="get", key="k")))
        self.redis.pause()
        try:
            t2, out2 = self.in_thread(lambda: h.post(at_body(op="get", key="k2")))
            self.assertTrue(h.wait_for(r"status=", timeout=10), h.log())
            rc = h.stop()
        finally:
            self.redis.resume()
        t.join(10)
        t2.join(10)
        self.assertEqual(rc, 0, h.log()[-3000:])
        self.assertFalse(h.sanitizer_reports(), h.log()[-3000:])
        self.assertEqual(out["r"].status, 200)
        # Answered: by the deadline's "Working on it" or shutdown's 503.
        self.assertIn(out2["r"].status, (200, 503), out2)
        shutil.rmtree(h.data_dir, ignore_errors=True)

    def test_shutdown_answers_a_call_waiting_for_its_replay_claim(self):
        h = self.start("--shutdown-grace", "1", timeout_ms=8000, keys=[KEY.spki])
        self.redis.pause()
        try:
            b = at_body(op="get", key="k")
            sig = KEY.sign(b)
            t, out = self.in_thread(lambda: h.post(b, signature=sig))
            time.sleep(1.5)  # the call reaches the host and waits for Redis
            rc = h.stop()
        finally:
            self.redis.resume()
        t.join(10)
        self.assertEqual(rc, 0, h.log()[-3000:])
        self.assertFalse(h.sanitizer_reports(), h.log()[-3000:])
        self.assertEqual(out["r"].status, 503, out)
        shutil.rmtree(h.data_dir, ignore_errors=True)

    def test_a_call_waiting_for_its_replay_claim_is_answered_by_its_deadline(self):
        """deadline_ms is there so that Cliq gets an answer before it gives
        up on the call; the wait for the replay claim is bounded only by
        redis_timeout_ms (up to 60 s), so a Redis that does not answer keeps
        the call past the deadline, unanswered."""
        h = self.start("--deadline", "500", timeout_ms=20000, keys=[KEY.spki])
        self.addCleanup(stop_host, self, h)
        self.redis.pause()
        try:
            b = at_body(op="get", key="k")
            sig = KEY.sign(b)
            try:
                r = h.request("POST", "/", b, {"Content-Type": "application/json",
                                               "X-Cliq-Signature": sig}, timeout=5)
            except TimeoutError:
                r = None
        finally:
            self.redis.resume()
        self.assertIsNotNone(r, "no answer 5 s after a call with a 500 ms deadline")


def results_of(host, **args):
    return results(host.post(at_body(**args)))


class FakeRedis:
    """A RESP server that answers PING as Redis does and every other command
    with `reply` (raw bytes), to see what the host does with a Redis (or
    something in its place) that answers in shapes it does not expect."""

    def __init__(self, reply):
        self.reply = reply
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.commands = []
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        f = c.makefile("rb")
        try:
            while True:
                line = f.readline()
                if not line:
                    return
                n = int(line[1:-2])
                args = []
                for _ in range(n):
                    size = int(f.readline()[1:-2])
                    args.append(f.read(size + 2)[:-2])
                name = args[0].upper()
                self.commands.append(name)
                if name == b"PING":
                    c.sendall(b"+PONG\r\n")
                elif callable(self.reply):
                    self.reply(c, name)
                else:
                    c.sendall(self.reply)
        except (OSError, ValueError):
            return

    def close(self):
        self.sock.close()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass


class RedisAnsweringOddShapes(unittest.TestCase):
    """Whatever answers on the Redis address, the host answers every call
    and does not crash."""

    def run_against(self, reply, **args):
        fake = FakeRedis(reply)
        self.addCleanup(fake.close)
        h = Host("--no-verify", "--store", fake.url, scripts=SCRIPTS, workers=1)
        try:
            self.assertTrue(h.wait_for(r"redis: connected to", timeout=10), h.log())
            r = h.post(at_body(**args))
            self.assertEqual(r.status, 200, f"{r}\n{h.log()[-3000:]}")
            self.assertEqual(h.request("GET", "/healthz").status, 200)
            return results(r)
        finally:
            stop_host(self, h)

    def test_a_list_page_that_says_more_but_holds_nothing(self):
        # {more = 1, next = ""}: the script never answers so, but a Redis
        # (or a proxy) that does must not make the host read items[-1].
        out = self.run_against(b"*2\r\n:1\r\n$0\r\n\r\n", op="list", prefix="a")
        self.assertEqual(out[0], NIL)
        self.assertIn("shape", out[1])

    def test_an_array_header_of_two_billion_elements(self):
        """hiredis 0.14 takes a multi-bulk header at its word (up to
        INT_MAX elements): it callocs 16 GiB for the element pointers, and
        when the command times out, freeing the half-read reply walks all
        2^31 slots, holding the worker (every call on it) for seconds, again
        at every reconnect. Anything that answers on Redis' address (the
        link is plain TCP) can do it."""
        fake = FakeRedis(b"*2147483647\r\n")
        self.addCleanup(fake.close)
        h = Host("--no-verify", "--store", fake.url, "--deadline", "500", scripts=SCRIPTS,
                 workers=1)
        self.addCleanup(stop_host, self, h)
        self.assertTrue(h.wait_for(r"redis: connected to", timeout=10), h.log())

        def vm_peak_kb():
            with open(f"/proc/{h.proc.pid}/status") as f:
                return int(re.search(r"VmPeak:\s+(\d+)", f.read()).group(1))
        # What the call adds (under ASan the shadow memory alone is
        # terabytes of address space before it).
        before = vm_peak_kb()
        try:
            r = h.request("POST", "/", at_body(op="get", key="a"),
                          {"Content-Type": "application/json"}, timeout=5)
        except TimeoutError:
            r = None
        self.assertLess(vm_peak_kb() - before, 4 * 1024 * 1024,
                        "the host reserved 16 GiB on one reply")
        self.assertIsNotNone(r, "no answer within 5 s (deadline_ms 500, redis_timeout_ms 250)")

    def test_a_get_answered_with_an_integer(self):
        out = self.run_against(b":7\r\n", op="get", key="a")
        self.assertEqual(out, [NIL, "store: redis answered in a shape this host does not expect"])

    def test_a_set_answered_with_nested_arrays(self):
        out = self.run_against(b"*2\r\n*1\r\n:1\r\n*0\r\n", op="set", key="a", value=1)
        self.assertEqual(out, [NIL, "store: redis answered in a shape this host does not expect"])


class RedisTrickling(unittest.TestCase):
    """The blocking connection (redis_sync: `cliqhost check`, and the
    outbox's pacing check before every post) times each read(), not the
    command: a Redis (or a proxy, or a half-broken link) that sends its
    answer a byte at a time holds it for as long as it likes. For the host
    that is the outbox thread: no post leaves while it waits."""

    def test_check_gives_up_after_its_timeout(self):
        def trickle(c, name):
            c.sendall(b"$100000\r\n")
            for _ in range(100000):
                c.sendall(b"x")
                time.sleep(0.1)

        fake = FakeRedis(trickle)
        self.addCleanup(fake.close)
        try:
            p = run_cli("check", "--scripts", os.path.join(REPO, "scripts"), "--store", fake.url,
                        "--redis-timeout-ms", "500", timeout=8)
        except Exception as e:  # subprocess.TimeoutExpired
            self.fail(f"check still waiting 8 s on a 500 ms redis_timeout_ms: {e}")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("redis is unreachable", p.stderr)


class TwoHostsOnRedis(ob.OutboundTest):
    """Two hosts, each with its own data_dir, on one Redis, posting to the
    fake Cliq with post_rate_per_min = 5."""

    rate = 5

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()
        cls.extra_config = f'store = "{cls.redis.url}"\n'
        try:
            super().setUpClass()
            data_b = os.path.join(cls.dir, "data-b")
            os.makedirs(data_b)
            cls.config_b = cls.write_config(cls.fake.url, data_b, "cliqhost-b.lua")
            cls.host_b = Host("--config", cls.config_b, scripts=ob.SCRIPTS, keys=[ob.KEY.spki])
            cls.hosts.append(cls.host_b)
            for h in cls.hosts:
                assert h.wait_for(r"redis: connected to", timeout=10), h.log()
        except Exception:
            cls.redis.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.redis.stop()


class PacingOnAFullRedis(TwoHostsOnRedis):
    """Once Redis is full (FullRedis shows a script can fill it; here
    maxmemory is set below what Redis holds), a host whose pacing script
    were refused would fall back to its own count, and the token would get
    5 posts a minute from each host. It holds: the script's first write
    (ZREMRANGEBYSCORE) lets the ZADD after it through (see
    MaxmemoryBypassed for the same rule turned against maxmemory)."""

    def test_the_rate_holds_across_hosts_when_redis_is_full(self):
        self.redis.command("CONFIG", "SET", "maxmemory-policy", "noeviction")
        self.redis.command("CONFIG", "SET", "maxmemory", "1")
        name = ob.unique("paced")
        path = channel_path(name)
        for h in self.hosts:
            msgs = [f"alert {i}" for i in range(10)]
            out, _ = self.call("post_channel", name, msgs=msgs, token="alerts", wait=False,
                               host=h)
            self.assertEqual(out["results"], [{"ok": True, "is_true": True}] * 10, out)
        self.fake.wait_requests(10, path, timeout=5)
        self.assertLessEqual(self.fake.max_per_window(ob.SECRETS["alerts"]), 5,
                             "more posts than post_rate_per_min in a minute, across hosts")


class CliPostOnRedis(TwoHostsOnRedis):
    """`cliqhost post` (a cron job's message) opens the outbox without the
    shared pacer (host/tools/cli.c cli_post: outbox_open(&c, 1, ...), and
    only server.c calls outbox_share_pacing): with store = redis its posts
    neither wait for the token's window across hosts nor count in it."""

    def test_cli_post_counts_in_the_shared_window(self):
        name = ob.unique("cron")
        path = channel_path(name)
        out, _ = self.call("post_channel", name, msgs=[f"alert {i}" for i in range(5)],
                           token="alerts", wait=False)
        self.assertEqual(out["results"], [{"ok": True, "is_true": True}] * 5, out)
        self.assertEqual(len(self.fake.wait_requests(5, path, timeout=10)), 5)
        # The window is full (5 in this minute, all from host A): host B's
        # cron post waits for it.
        p = self.cli("post", "channel", name, "from cron", "--token", "alerts", "--wait", "2",
                     config=self.config_b)
        self.assertEqual(self.fake.count(path), 5, "a 6th post within the minute: " + p.stdout)
        self.assertIn("queued", p.stdout)


if __name__ == "__main__":
    unittest.main()
