"""The `store` scripts keep state in, on both backends: the embedded
SQLite (data_dir/store.db) and Redis (a real redis-server, one per test
class, emptied before each test). Every operation's answers and errors,
state seen by the next call whichever worker takes it, across a host
restart, TTLs, atomic incr and update from many concurrent calls on both
workers, list paging, the limits, and a store.db the host cannot write.

Each group of tests is a mixin (OperationsTests, ...) with two concrete
classes, ...Sqlite and ...Redis, that run it on each backend.
Redis-specific behaviour (Redis killed, paused, password, db, socket,
prefix) is in test_store_redis.py."""

import json
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from cliq_bodies import body
from hostlib import BIN, REPO, Host
from redislib import Redis

SCRIPTS = os.path.join(REPO, "tests", "e2e", "store_scripts")
NIL = "<nil>"

# The Redis hosts' command timeout in these tests: generous, so that a
# loaded machine (or an ASan build) never turns a slow answer, such as an
# 8 MiB page, into "store unavailable". test_store_redis.py tests the
# timeout itself.
REDIS_TIMEOUT_MS = "5000"


def call(host, **args):
    """Runs one store operation in the script st.lua; returns its results
    as a list (nil as "<nil>"), or {"raised": msg}."""
    b = json.dumps(body("command", "execution_handler", "st", {"arguments": json.dumps(args)}))
    r = host.post(b.encode())
    assert r.status == 200, r
    out = json.loads(r.json()["output"]["text"])
    if "raised" in out:
        return out
    return [out[str(i)] for i in range(1, out["n"] + 1)]


def metrics(host):
    r = host.request("GET", "/metrics")
    assert r.status == 200, r
    return r.body.decode()


def metric(host, name):
    for line in metrics(host).splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not on /metrics")


class StoreHost(unittest.TestCase):
    """A host on 2 workers running st.lua, on SQLite (REDIS False: its own
    data_dir) or on a redis-server of the class's own (REDIS True)."""

    FLAGS = ()
    REDIS = False
    redis = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Here, not in setUp: a setUp that raised after a host started
        # would leave the host running (tearDown does not run then).
        if cls.REDIS:
            cls.redis = Redis()

    @classmethod
    def tearDownClass(cls):
        if cls.redis:
            cls.redis.stop()
        super().tearDownClass()

    def setUp(self):
        if self.redis:
            self.redis.command("FLUSHALL")
        self.host = self.start_host()

    def start_host(self, *flags):
        """A host on this class's backend (not yet self.host)."""
        store = ()
        if self.redis:
            store = ("--store", self.redis.url, "--redis-timeout-ms", REDIS_TIMEOUT_MS)
        return Host("--no-verify", *store, *self.FLAGS, *flags, scripts=SCRIPTS, workers=2)

    def tearDown(self):
        rc = self.host.stop()
        self.assertEqual(rc, 0, self.host.log())
        self.assertFalse(self.host.sanitizer_reports(), self.host.log())
        shutil.rmtree(self.host.data_dir, ignore_errors=True)

    def call(self, **args):
        return call(self.host, **args)


def rss_kb(host):
    with open(f"/proc/{host.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class MemoryOutsideLuaTests:
    """What the store allocates outside the Lua heap (a value's JSON, a
    page of values) is freed at once, also when building the answer fails:
    none of it escapes the handler's memory limit by piling up."""

    # The sync reply waits for the handler, and 200 writes of 250 KB
    # without a pause (SQLite answers at once) may take their CPU time,
    # however slow the build (ASan) and busy the machine: what is measured
    # is memory.
    FLAGS = ("--max-handler-memory-bytes", "4194304", "--deadline", "60000", "--max-cpu", "60000")

    def setUp(self):
        super().setUp()
        # ASan keeps freed memory in quarantine, so RSS says nothing there;
        # LeakSanitizer checks that build when the host exits (tearDown).
        with open(f"/proc/{self.host.proc.pid}/maps") as f:
            self.asan = "libasan" in f.read()

    def assertGrewLessThan(self, before, kb):
        if not self.asan:
            self.assertLess(rss_kb(self.host) - before, kb, self.host.log()[-2000:])

    def test_writes_leave_nothing_behind(self):
        self.assertEqual(self.call(op="many_sets", key="k", bytes=250000, times=10), [True])
        before = rss_kb(self.host)
        # 800 writes of 250 kB: 200 MB of JSON if each buffer waited for a
        # collection (the handler's own heap stays under 1 MB meanwhile).
        for _ in range(4):
            self.assertEqual(self.call(op="many_sets", key="k", bytes=250000, times=200),
                             [True])
        self.assertGrewLessThan(before, 64 * 1024)

    def test_a_page_that_does_not_fit_is_freed(self):
        self.assertEqual(self.call(op="fill", prefix="big:", count=30, bytes=250000), [True])
        before = rss_kb(self.host)
        # Each call reads ~7.5 MB pages until the 4 MiB limit stops it.
        args = json.dumps({"op": "hold_pages", "prefix": "big:", "pages": 5})
        for _ in range(20):
            r = self.host.post(json.dumps(body("command", "execution_handler", "st",
                                               {"arguments": args})).encode())
            self.assertEqual(r.status, 200, r)
            self.assertIn("memory", r.json()["output"]["text"])
        self.assertGrewLessThan(before, 64 * 1024)


class MemoryOutsideLuaSqlite(MemoryOutsideLuaTests, StoreHost):
    pass


class MemoryOutsideLuaRedis(MemoryOutsideLuaTests, StoreHost):
    REDIS = True


class OperationsTests:
    def test_get_set_delete(self):
        self.assertEqual(self.call(op="get", key="a"), [NIL])
        self.assertEqual(self.call(op="set", key="a", value={"x": [1, 2.5, "s", None]}), [True])
        self.assertEqual(self.call(op="get", key="a"), [{"x": [1, 2.5, "s", None]}])
        self.assertEqual(self.call(op="set", key="a", value="plain"), [True])
        self.assertEqual(self.call(op="get", key="a"), ["plain"])
        self.assertEqual(self.call(op="delete", key="a"), [True])
        self.assertEqual(self.call(op="get", key="a"), [NIL])
        self.assertEqual(self.call(op="delete", key="a"), [True])

    def test_only_if_absent(self):
        self.assertEqual(self.call(op="set", key="o", value=1, opts={"only_if_absent": True}),
                         [True])
        self.assertEqual(self.call(op="set", key="o", value=2, opts={"only_if_absent": True}),
                         [False])
        self.assertEqual(self.call(op="get", key="o"), [1])

    def test_incr(self):
        self.assertEqual(self.call(op="incr", key="n"), [1])
        self.assertEqual(self.call(op="incr", key="n", by=5), [6])
        self.assertEqual(self.call(op="incr", key="n", by=-10), [-4])
        self.assertEqual(self.call(op="incr", key="n", by=0.5), [-3.5])
        self.call(op="set", key="s", value="text")
        self.assertEqual(self.call(op="incr", key="s"), [NIL, "not a number: s"])

    def test_update(self):
        self.assertEqual(self.call(op="append", key="l", item="a"), [["a"]])
        self.assertEqual(self.call(op="append", key="l", item="b"), [["a", "b"]])
        self.assertEqual(self.call(op="get", key="l"), [["a", "b"]])
        self.assertEqual(self.call(op="update_nil", key="l"), [NIL])
        self.assertEqual(self.call(op="get", key="l"), [NIL])
        r = self.call(op="update_raise", key="l")
        self.assertIn("fn failed on purpose", r["raised"])

    def test_update_gives_up_after_16_conflicts(self):
        r = self.call(op="update_conflict", key="c")
        self.assertEqual(r, [NIL, "conflict: c changed 16 times"])
        # fn ran 16 times, and the last set it made stays.
        self.assertEqual(self.call(op="get", key="c"), [16])

    def test_list_pages_in_key_order(self):
        for k in ["u:b", "u:a", "u:c", "v:a", "u:d", "u"]:
            self.call(op="set", key=k, value=k.upper())
        self.assertEqual(self.call(op="list", prefix="u:", opts={"limit": 2}),
                         [[{"key": "u:a", "value": "U:A"}, {"key": "u:b", "value": "U:B"}], "u:b"])
        self.assertEqual(self.call(op="list", prefix="u:", opts={"limit": 2, "after": "u:b"}),
                         [[{"key": "u:c", "value": "U:C"}, {"key": "u:d", "value": "U:D"}], NIL])
        self.assertEqual(self.call(op="list", prefix="w"), [[], NIL])
        r = self.call(op="list", prefix="")
        self.assertEqual([i["key"] for i in r[0]], ["u", "u:a", "u:b", "u:c", "u:d", "v:a"])
        # `after` before the prefix starts at the prefix; past it, nothing.
        r = self.call(op="list_keys", prefix="u:", opts={"after": "a"})
        self.assertEqual(r, [["u:a", "u:b", "u:c", "u:d"], NIL])
        r = self.call(op="list_keys", prefix="u:", opts={"after": "u:"})
        self.assertEqual(r, [["u:a", "u:b", "u:c", "u:d"], NIL])
        self.assertEqual(self.call(op="list_keys", prefix="u:", opts={"after": "u:zz"}),
                         [[], NIL])
        self.assertEqual(self.call(op="list_keys", prefix="u:", opts={"after": "v"}), [[], NIL])

    def test_keys_are_bytes(self):
        keys = ["k\u0001a", "k", "k\u00e9", "k\u0001", "k\uffff", "k a", "k\n"]
        for i, k in enumerate(keys):
            self.assertEqual(self.call(op="set", key=k, value=i), [True])
        for i, k in enumerate(keys):
            self.assertEqual(self.call(op="get", key=k), [i])
        # In byte order (UTF-8).
        want = sorted(keys, key=lambda k: k.encode())
        self.assertEqual(self.call(op="list_keys", prefix="k"), [want, NIL])
        self.assertEqual(self.call(op="list_keys", prefix="k\u0001"),
                         [["k\u0001", "k\u0001a"], NIL])
        self.assertEqual(self.call(op="list_keys", prefix="k", opts={"after": "k\u0001a"}),
                         [want[want.index("k\u0001a") + 1:], NIL])
        # A NUL byte is a byte like any other.
        self.assertEqual(self.call(op="nul_keys", prefix="n"), [1, 2, ["n", "n\u0000a"]])

    def test_a_page_of_large_values_stops_at_8_mib(self):
        # 40 values of 250 kB: 10 MB in all, more than one page holds.
        for i in range(40):
            self.assertEqual(self.call(op="big", key=f"big:{i:02}", len=250000), [True])
        keys, after, pages = [], None, 0
        while True:
            opts = {"limit": 1000}
            if after:
                opts["after"] = after
            r = self.call(op="list_keys", prefix="big:", opts=opts)
            pages += 1
            keys += r[0]
            after = r[1] if r[1] != NIL else None
            if not after:
                break
        self.assertEqual(keys, [f"big:{i:02}" for i in range(40)])
        self.assertEqual(pages, 2)

    def test_wrong_arguments_raise(self):
        self.assertIn("bad argument", self.call(op="bad_key")["raised"])
        self.assertIn("key", self.call(op="empty_key")["raised"])
        self.assertIn("512", self.call(op="long_key", len=513)["raised"])
        self.assertEqual(self.call(op="long_key", len=512), [NIL])
        self.assertIn("ttl", self.call(op="bad_ttl", key="t")["raised"])
        self.assertIn("delete", self.call(op="set_nil", key="t")["raised"])

    def test_a_value_json_cannot_carry(self):
        r = self.call(op="set_fn", key="f")
        self.assertEqual(r[0], NIL)
        self.assertIn("function", r[1])
        self.assertEqual(self.call(op="get", key="f"), [NIL])

    def test_the_keys_stay_private(self):
        self.call(op="set", key="secret", value="s")
        path = os.path.join(self.host.data_dir, "store.db")
        if self.redis:
            # In Redis only: nothing of the store is written to data_dir.
            self.assertFalse(os.path.exists(path))
            self.assertEqual(self.redis.command("HGET", "cliqhost:k:secret", "v"), '"s"')
        else:
            self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)

    def test_metrics_and_status(self):
        self.call(op="set", key="m1", value=1)
        self.call(op="set", key="m2", value=1)
        self.call(op="get", key="m1")
        self.call(op="incr", key="m2")
        self.call(op="set", key="s", value="x")
        self.call(op="incr", key="s")
        self.assertEqual(metric(self.host, "cliqhost_store_keys"), 3)
        self.assertGreaterEqual(metric(self.host, 'cliqhost_store_ops_total{op="set"}'), 3)
        self.assertGreaterEqual(metric(self.host, 'cliqhost_store_ops_total{op="get"}'), 1)
        self.assertEqual(metric(self.host, 'cliqhost_store_ops_total{op="incr"}'), 2)
        self.assertEqual(metric(self.host, "cliqhost_store_errors_total"), 1)
        st = self.host.request("GET", "/status").json()["store"]
        if self.redis:
            self.assertEqual(st.pop("redis")["state"], "up")
            self.assertEqual(st, {"backend": "redis", "keys": 3})
        else:
            self.assertEqual(st, {"backend": "sqlite", "keys": 3})


class OperationsSqlite(OperationsTests, StoreHost):
    pass


class OperationsRedis(OperationsTests, StoreHost):
    REDIS = True


class SharedAndLastingTests:
    def test_the_next_call_sees_it_whatever_worker_takes_it(self):
        # The /oncall problem: one worker's module table was another's.
        for i in range(40):
            self.assertEqual(self.call(op="set", key="oncall", value=f"person {i}"), [True])
            for _ in range(3):
                self.assertEqual(self.call(op="get", key="oncall"), [f"person {i}"])

    def test_incr_from_many_concurrent_calls(self):
        with ThreadPoolExecutor(16) as ex:
            rs = list(ex.map(lambda _: call(self.host, op="incr", key="hits"), range(200)))
        self.assertEqual(sorted(r[0] for r in rs), list(range(1, 201)))
        self.assertEqual(self.call(op="get", key="hits"), [200])

    def test_update_from_many_concurrent_calls(self):
        # 32 handlers at once on one key: each update gets its turn within
        # its 16 tries (none answers "conflict"), and none is lost.
        with ThreadPoolExecutor(32) as ex:
            rs = list(ex.map(lambda i: call(self.host, op="append", key="log", item=i),
                             range(160)))
        self.assertEqual([r for r in rs if r[0] == NIL], [])
        got = self.call(op="get", key="log")[0]
        self.assertEqual(sorted(got), list(range(160)))

    def test_it_survives_a_restart(self):
        self.call(op="set", key="kept", value={"a": 1})
        self.call(op="incr", key="count", by=3)
        self.assertEqual(self.host.stop(), 0)
        if self.redis:
            # The keys are in Redis: a host with a data_dir of its own (as
            # on another machine) finds them.
            shutil.rmtree(self.host.data_dir, ignore_errors=True)
            self.host = self.start_host()
        else:
            data_dir = self.host.data_dir
            self.host = self.start_host("--data-dir", data_dir)
            self.host.data_dir = data_dir
        self.assertEqual(self.call(op="get", key="kept"), [{"a": 1}])
        # The new host counts the keys it found, without writing any.
        self.wait_for_keys(2)
        self.assertEqual(self.call(op="incr", key="count"), [4])
        self.assertEqual(metric(self.host, "cliqhost_store_keys"), 2)

    def wait_for_keys(self, n):
        """Reads (on SQLite, nothing) until cliqhost_store_keys is n."""
        deadline = time.monotonic() + 30
        while metric(self.host, "cliqhost_store_keys") != n:
            self.assertLess(time.monotonic(), deadline, metrics(self.host))
            self.call(op="get", key="x")
            time.sleep(0.1)

    def test_expired_keys_leave_the_count_without_a_write(self):
        self.call(op="set", key="kept", value=1)
        self.call(op="set", key="brief", value=1, opts={"ttl": 0.2})
        self.assertEqual(metric(self.host, "cliqhost_store_keys"), 2)
        self.wait_for_keys(1)
        self.assertEqual(self.call(op="list_keys", prefix=""), [["kept"], NIL])

    def test_ttl(self):
        self.assertEqual(self.call(op="set", key="brief", value="v", opts={"ttl": 0.2}), [True])
        self.assertEqual(self.call(op="set", key="long", value="v", opts={"ttl": 3600}), [True])
        self.assertEqual(self.call(op="incr", key="window", opts={"ttl": 0.2}), [1])
        deadline = time.monotonic() + 30
        while self.call(op="get", key="brief") != [NIL]:
            self.assertLess(time.monotonic(), deadline, "the key never expired")
            time.sleep(0.05)
        # An expired key is absent to every operation.
        while self.call(op="incr", key="window") != [1]:
            self.assertLess(time.monotonic(), deadline, "the counter never expired")
            time.sleep(0.05)
        self.assertEqual(self.call(op="set", key="brief", value=2, opts={"only_if_absent": True}),
                         [True])
        self.assertEqual(self.call(op="get", key="long"), ["v"])


class SharedAndLastingSqlite(SharedAndLastingTests, StoreHost):
    pass


class SharedAndLastingRedis(SharedAndLastingTests, StoreHost):
    REDIS = True


class ExpiryTests:
    """Which write keeps a key's expiry, which replaces it: the same on
    both backends."""

    def wait_gone(self, key):
        deadline = time.monotonic() + 30
        while self.call(op="get", key=key) != [NIL]:
            self.assertLess(time.monotonic(), deadline, f"{key} never expired")
            time.sleep(0.05)

    def test_which_write_keeps_the_expiry(self):
        ttl = {"ttl": 0.3}
        self.call(op="set", key="witness", value=1, opts=ttl)
        self.call(op="set", key="set_again", value=1, opts=ttl)
        self.call(op="set", key="set_again", value=2)  # a set replaces: no ttl
        self.call(op="set", key="absent", value=1, opts=ttl)
        self.assertEqual(self.call(op="set", key="absent", value=2,
                                   opts={"only_if_absent": True, "ttl": 3600}), [False])
        self.call(op="set", key="updated", value=[], opts=ttl)
        self.call(op="append", key="updated", item=1)  # an update keeps it
        self.call(op="set", key="updated_ttl", value=[], opts={"ttl": 3600})
        self.call(op="append", key="updated_ttl", item=1, opts=ttl)  # or sets its own
        self.call(op="incr", key="window", opts=ttl)
        self.call(op="incr", key="window", opts={"ttl": 3600})  # a window is not extended
        self.wait_gone("witness")
        for key in ("absent", "updated", "updated_ttl", "window"):
            with self.subTest(key=key):
                self.wait_gone(key)
        self.assertEqual(self.call(op="get", key="set_again"), [2])
        self.assertEqual(self.call(op="list_keys", prefix=""), [["set_again"], NIL])


class ExpirySqlite(ExpiryTests, StoreHost):
    pass


class ExpiryRedis(ExpiryTests, StoreHost):
    REDIS = True


class LimitsTests:
    FLAGS = ("--store-max-value-bytes", "1024", "--store-max-keys", "3")

    def test_value_too_large(self):
        self.assertEqual(self.call(op="big", key="b", len=1000), [True])
        r = self.call(op="big", key="b", len=1100)
        self.assertEqual(r[0], NIL)
        self.assertTrue(r[1].startswith("value too large: "), r)
        self.assertIn("store_max_value_bytes (1024)", r[1])
        self.assertEqual(len(self.call(op="get", key="b")[0]), 1000)

    def test_store_full(self):
        for k in "abc":
            self.assertEqual(self.call(op="set", key=k, value=1), [True])
        self.assertEqual(self.call(op="set", key="a", value=2), [True])  # not new
        for r in (self.call(op="set", key="d", value=1), self.call(op="incr", key="d"),
                  self.call(op="append", key="d", item=1)):
            self.assertEqual(r[0], NIL)
            self.assertTrue(r[1].startswith("store full: "), r)
            self.assertIn("store_max_keys (3)", r[1])
        self.call(op="delete", key="a")
        self.assertEqual(self.call(op="set", key="d", value=1), [True])

    def test_expired_keys_make_room(self):
        for k in "ab":
            self.call(op="set", key=k, value=1)
        self.call(op="set", key="c", value=1, opts={"ttl": 0.1})
        deadline = time.monotonic() + 30
        while self.call(op="get", key="c") != [NIL]:
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.05)
        self.assertEqual(self.call(op="set", key="d", value=1), [True])


class LimitsSqlite(LimitsTests, StoreHost):
    pass


class LimitsRedis(LimitsTests, StoreHost):
    REDIS = True


class ReloadTests:
    """SIGHUP sets the store's limits, on either backend."""

    def start_host(self, *flags):
        self.config = os.path.join(tempfile.mkdtemp(prefix="cliqhost-e2e-data-"), "c.lua")
        self.write_config(keys=2, value_bytes=100)
        host = super().start_host("--config", self.config, *flags)
        host.data_dir = os.path.dirname(self.config)
        return host

    def write_config(self, keys, value_bytes):
        with open(self.config, "w") as f:
            f.write(f'data_dir = "{os.path.dirname(self.config)}"\n'
                    f"store_max_keys = {keys}\nstore_max_value_bytes = {value_bytes}\n")

    def test_sighup_sets_the_limits(self):
        for k in "ab":
            self.assertEqual(self.call(op="set", key=k, value=1), [True])
        self.assertTrue(self.call(op="set", key="c", value=1)[1].startswith("store full: 2 keys"))
        self.assertTrue(self.call(op="big", key="a", len=200)[1].startswith("value too large"))
        self.write_config(keys=3, value_bytes=1000)
        start = len(self.host.lines)
        self.host.proc.send_signal(signal.SIGHUP)
        self.assertTrue(self.host.wait_for("SIGHUP: config reloaded", start=start),
                        self.host.log())
        for _ in range(4):  # both workers
            self.assertEqual(self.call(op="big", key="a", len=200), [True])
        self.assertEqual(self.call(op="set", key="c", value=1), [True])
        r = self.call(op="set", key="d", value=1)
        self.assertTrue(r[1].startswith("store full: 3 keys, store_max_keys (3)"), r)


class ReloadSqlite(ReloadTests, StoreHost):
    pass


class ReloadRedis(ReloadTests, StoreHost):
    REDIS = True


class Settings(unittest.TestCase):
    def test_a_store_it_cannot_use_is_refused_at_start(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-store-")
        cases = [
            ("mongo", "is not sqlite, redis://host:port/db or unix:/path/to/redis.sock"),
            ("redis://127.0.0.1:99999/0", "the port must be 1 to 65535"),
            ("redis://127.0.0.1:6379/zero", "the database after '/' must be a number"),
            ("redis://no-such-host.invalid:6379/0", "does not resolve"),
            ("unix:relative.sock", "needs an absolute path"),
            ("unix:/run/redis.sock?dbx=1", "unknown parameter 'dbx'"),
        ]
        try:
            for store, message in cases:
                with self.subTest(store=store):
                    p = subprocess.run([BIN, "serve", "--listen", "127.0.0.1:0", "--no-verify",
                                        "--scripts", SCRIPTS, "--data-dir", d, "--store", store],
                                       capture_output=True, text=True, timeout=30)
                    self.assertEqual(p.returncode, 2 if store == "mongo" else 1, p.stderr)
                    self.assertIn(message, p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_help_lists_the_settings(self):
        p = subprocess.run([BIN, "--help"], capture_output=True, text=True, timeout=30)
        for flag in ("--store ", "--store-max-value-bytes", "--store-max-keys",
                     "--redis-timeout-ms", "--redis-prefix"):
            self.assertIn(flag, p.stdout + p.stderr)


@unittest.skipUnless(os.geteuid() == 0, "needs root to run the binary as another user")
class StoreDbNotWritable(unittest.TestCase):
    """SQLite's own: a Redis store writes nothing to data_dir
    (OperationsRedis.test_the_keys_stay_private)."""

    def test_serve_says_so(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-store-")
        try:
            os.chmod(d, 0o755)
            binary = os.path.join(d, "cliqhost")
            shutil.copy(BIN, binary)
            os.chmod(binary, 0o755)
            scripts = os.path.join(d, "scripts")
            shutil.copytree(SCRIPTS, scripts)
            data = os.path.join(d, "data")
            os.makedirs(data)
            os.chmod(data, 0o777)
            path = os.path.join(data, "store.db")
            with open(path, "w"):
                pass
            os.chmod(path, 0o600)  # root's, left by a command run as root
            p = subprocess.run(["runuser", "-u", "nobody", "--", binary, "serve", "--listen",
                                "127.0.0.1:0", "--no-verify", "--scripts", scripts,
                                "--data-dir", data], capture_output=True, text=True,
                               timeout=30, cwd=d)
            self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn(f"store: data_dir file {path} is not writable by user nobody",
                          p.stderr)
            self.assertIn("chown", p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
