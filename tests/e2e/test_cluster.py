"""Several hosts on one Redis act as one (issue 14, points 3 and 4): three
real hosts share a real redis-server (redislib.py: a loopback port of its
own, persistence off), each with real signature checks, replay protection
on (the default) and its own data_dir.

- a call one host accepted is a replay on every other;
- post_rate_per_min holds per token across the hosts together, and
  without Redis each host paces by its own count;
- store.incr from all three ends exact;
- Redis killed mid-run: every call is still answered, store calls fail
  fast, replay protection falls back to each host's memory, each host says
  so once and says so again once when Redis is back, and sharing resumes;
- Redis paused (SIGSTOP): calls are answered after redis_timeout_ms of
  waiting, or at their deadline when that comes first; the store call says
  Redis gave no answer;
- a Redis with a password: shared; a wrong password says why;
- each host keeps its own outbox, which that host alone delivers.

The scripts are cluster_scripts/commands/count.lua (a store operation) and
post.lua (posts through the outbox to FakeCliq, fake_cliq.py).
"""

import itertools
import json
import os
import re
import shutil
import tempfile
import threading
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from cliq_bodies import body
from fake_cliq import FakeCliq, channel_path
from hostlib import HERE, Host, Key, run_cli
from redislib import Redis
from test_store import metric

SCRIPTS = os.path.join(HERE, "cluster_scripts")
KEY = Key("main")
# The webhook token the hosts share (by other names on each, so that only
# the secret can tie them together). Distinctive, to find it if it leaks.
SECRET = "1001.e2eCluster.6d2b8f4a1c9e3d7b5a0f"
NAMES = ("A", "B", "C")

_nonces = itertools.count(1)

UNREACHABLE = "redis unreachable: "
REACHABLE = "redis reachable again at "
REPLAY_FALLBACKS = 'cliqhost_redis_fallbacks_total{check="replay"}'
REPLAYED = r"^replayed request: this signature was already accepted \d+\.\d{3} s ago"
BY_ANOTHER = REPLAYED + r" \(by a host sharing this Redis\)$"
BY_ITSELF = REPLAYED + "$"


def signed(command="count", **options):
    """A /command call as Cliq sends it, its options in params.options,
    distinct from every other (a nonce), and its signature. No
    response_url: nothing may go to the real Cliq."""
    options.setdefault("nonce", next(_nonces))
    b = body("command", "execution_handler", command, {"arguments": "", "options": options},
             response_url=False)
    raw = json.dumps(b).encode()
    return raw, KEY.sign(raw)


def send(host, call, timeout=30):
    raw, sig = call
    return host.request("POST", "/", raw,
                        {"Content-Type": "application/json", "X-Cliq-Signature": sig},
                        timeout=timeout)


def redis_status(host):
    r = host.request("GET", "/status")
    assert r.status == 200, r
    return r.json()["store"]["redis"]


def count_lines(host, text):
    return sum(1 for line in host.lines if text in line)


def wait_until(what, timeout=30, step=0.1):
    """Calls what() until it returns something true; returns its last
    answer (false on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        got = what()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(step)


class Cluster(unittest.TestCase):
    """A Redis, a FakeCliq and three hosts A, B and C for each test."""

    rate = 0  # post_rate_per_min
    flags = ()
    password = None  # Redis' requirepass

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-cluster-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.redis = Redis(password=self.password)
        self.addCleanup(self.redis.stop)
        self.fake = FakeCliq(tokens=[SECRET]).start()
        self.addCleanup(self.fake.stop)
        self.configs = {n: self.write_config(n) for n in NAMES}
        self.hosts = {}
        self.every_host = []
        self.addCleanup(self.stop_hosts)
        for n in NAMES:
            self.start_host(n)

    def write_config(self, name):
        data_dir = os.path.join(self.dir, "data-" + name)
        os.makedirs(data_dir)
        path = os.path.join(self.dir, f"host-{name}.lua")
        with open(path, "w") as f:
            # Each host calls the shared token by a name of its own.
            f.write(f'''-- written by test_cluster.py: host {name}
data_dir = "{data_dir}"
cliq_api = "{self.fake.url}"
post_rate_per_min = {self.rate}
tokens = {{ paging_{name.lower()} = "{SECRET}" }}
''')
        return path

    def start_host(self, name):
        h = Host("--config", self.configs[name], "--store", self.redis.url, *self.flags,
                 scripts=SCRIPTS, keys=[KEY.spki], workers=2)
        self.every_host.append(h)
        self.hosts[name] = h
        line = h.wait_for(r"redis: connected to ", timeout=15)
        self.assertIsNotNone(line, h.log())
        return h

    def stop_hosts(self):
        problems = []
        for h in self.every_host:
            rc = h.stop()
            if rc != 0:
                problems.append(f"host exited {rc}")
            if h.sanitizer_reports():
                problems.append(f"sanitizer: {h.sanitizer_reports()}")
            if SECRET.rsplit(".", 1)[1] in h.log():
                problems.append("the token's secret is in the host's output")
            if self.password and self.password in h.log():
                problems.append("Redis' password is in the host's output")
        logs = "\n---\n".join(h.log()[-5000:] for h in self.every_host)
        self.assertEqual(problems, [], logs)

    def token(self, name):
        return "paging_" + name.lower()

    def ok(self, host, call):
        """Sends call; it must be answered 200. Returns the handler's output."""
        r = send(host, call)
        self.assertEqual(r.status, 200, f"{r}\n{host.log()[-3000:]}")
        return r.json()["output"]

    def run_op(self, host, op, key=None):
        return self.ok(host, signed(op=op, key=key))

    def outbox_lines(self, name, channel):
        """The lines of `cliqhost outbox list` on host name's config that
        mention channel."""
        p = run_cli("outbox", "list", "--config", self.configs[name])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertNotIn(SECRET, p.stdout + p.stderr)
        return [line for line in p.stdout.splitlines() if channel in line]


class Replay(Cluster):
    def test_a_call_one_host_accepted_is_a_replay_on_every_other(self):
        a, b, c = (self.hosts[n] for n in NAMES)
        call = signed(op="incr", key="ran")
        self.assertEqual(self.ok(a, call)["value"], 1)
        for other in (b, c):
            r = send(other, call)
            self.assertEqual(r.status, 401, r)
            self.assertRegex(r.json()["error"], BY_ANOTHER)
        # The host that accepted it refuses it by its own memory.
        r = send(a, call)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"], BY_ITSELF)
        # No refused call ran its handler.
        self.assertEqual(self.run_op(c, "get", "ran")["value"], 1)

        # Distinct calls are taken by every host.
        for h in (a, b, c, c, b, a):
            self.assertEqual(self.run_op(h, "echo")["op"], "echo")
        for h in (a, b, c):
            self.assertEqual(metric(h, REPLAY_FALLBACKS), 0)
            self.assertEqual(redis_status(h)["state"], "up")


    def test_one_call_sent_to_every_host_at_once_runs_once(self):
        hosts = [self.hosts[n] for n in NAMES]
        with ThreadPoolExecutor(3) as ex:
            for i in range(10):
                call = signed(op="incr", key=f"race{i}")
                rs = list(ex.map(lambda h: send(h, call), hosts))
                self.assertEqual(sorted(r.status for r in rs), [200, 401, 401], rs)
                for r in rs:
                    if r.status == 401:
                        self.assertRegex(r.json()["error"], BY_ANOTHER)
                self.assertEqual(self.run_op(hosts[i % 3], "get", f"race{i}")["value"], 1)


class Pacing(Cluster):
    """post_rate_per_min = 6 for one token, which the three hosts share."""

    rate = 6

    def test_the_pace_holds_for_the_hosts_together(self):
        channel = "e2e-cluster-paced"
        path = channel_path(channel)
        per_host = 8  # more than the pace on each, so that each host has some waiting
        t0 = time.monotonic()
        for n in NAMES:
            msgs = [f"{n}{i}" for i in range(per_host)]
            out = self.ok(self.hosts[n], signed("post", channel=channel, token=self.token(n),
                                                msgs=msgs))
            self.assertEqual(out["results"], ["queued"] * per_host, out)

        self.assertEqual(len(self.fake.wait_requests(6, path, timeout=30)), 6)
        # Each host lists what it holds back as queued for later: not tried
        # yet, its next attempt at a time (not "now").
        def all_deferred():
            lines = {n: self.outbox_lines(n, channel) for n in NAMES}
            deferred = all(lines[n] and all(re.search(r"\bqueued\b.*attempts=0  next=\d", line)
                                            for line in lines[n]) for n in NAMES)
            return lines if deferred else None
        lines = wait_until(all_deferred, timeout=30, step=0.3)
        self.assertTrue(lines, {n: self.outbox_lines(n, channel) for n in NAMES})
        # A few seconds on (the window is a minute), still 6 in all.
        time.sleep(max(0.0, t0 + 4 - time.monotonic()))
        self.assertEqual(self.fake.count(path), 6)
        self.assertEqual(self.fake.max_per_window(SECRET), 6)
        lines = {n: self.outbox_lines(n, channel) for n in NAMES}
        self.assertEqual(sum(len(v) for v in lines.values()), 3 * per_host - 6, lines)
        queued = [metric(self.hosts[n], 'cliqhost_outbox_posts{state="queued"}') for n in NAMES]
        self.assertEqual(sum(queued), 3 * per_host - 6)
        for n in NAMES:
            self.assertGreaterEqual(len(lines[n]), per_host - 6, lines)
            self.assertEqual(metric(self.hosts[n], 'cliqhost_redis_fallbacks_total{check="pacing"}'),
                             0)
        sent = sorted(r.json()["text"] for r in self.fake.requests(path))
        self.assertEqual(len(set(sent)), 6, sent)
        self.assertTrue(all(r.status == 204 for r in self.fake.requests(path)))


    def test_without_redis_each_host_paces_alone(self):
        channel = "e2e-cluster-alone"
        path = channel_path(channel)
        self.redis.kill()
        for n in NAMES:
            self.assertIsNotNone(self.hosts[n].wait_for(UNREACHABLE, timeout=15))
        t0 = time.monotonic()
        for n in NAMES:
            out = self.ok(self.hosts[n], signed("post", channel=channel, token=self.token(n),
                                                msgs=[f"{n}{i}" for i in range(8)]))
            self.assertEqual(out["results"], ["queued"] * 8, out)
        # Posts still leave, paced by each host's own count: 6 each.
        self.assertEqual(len(self.fake.wait_requests(18, path, timeout=30)), 18)
        time.sleep(max(0.0, t0 + 4 - time.monotonic()))
        self.assertEqual(self.fake.count(path), 18)
        for n in NAMES:
            self.assertEqual(len(self.outbox_lines(n, channel)), 2)
            self.assertGreater(
                metric(self.hosts[n], 'cliqhost_redis_fallbacks_total{check="pacing"}'), 0)


class Consistency(Cluster):
    def test_incr_from_three_hosts_ends_exact(self):
        hosts = [self.hosts[n] for n in NAMES]
        with ThreadPoolExecutor(12) as ex:
            outs = list(ex.map(lambda i: self.run_op(hosts[i % 3], "incr", "hits"), range(300)))
        self.assertEqual([o.get("err") for o in outs if "err" in o], [])
        self.assertEqual(sorted(o["value"] for o in outs), list(range(1, 301)))
        for h in hosts:
            self.assertEqual(self.run_op(h, "get", "hits")["value"], 300)


class Outage(Cluster):
    def flow(self, stop, results):
        """Calls the three hosts in turn until stop is set; appends (host,
        reply) to results."""
        hosts = [self.hosts[n] for n in NAMES]
        for i in itertools.count():
            if stop.is_set():
                return
            h = hosts[i % 3]
            try:
                results.append((h, send(h, signed(op="incr", key="flow"))))
            except OSError as e:
                results.append((h, e))

    def test_redis_killed_and_restarted_mid_run(self):
        hosts = [self.hosts[n] for n in NAMES]
        stop, results = threading.Event(), []
        flows = [threading.Thread(target=self.flow, args=(stop, results)) for _ in range(2)]
        for t in flows:
            t.start()
        try:
            self.assertTrue(wait_until(lambda: len(results) >= 12, timeout=30))
            self.redis.kill()
            for h in hosts:
                self.assertIsNotNone(h.wait_for(UNREACHABLE, timeout=15), h.log()[-3000:])

            def failed_calls():
                return sum(1 for _, r in list(results) if getattr(r, "status", 0) == 200
                           and r.json()["output"].get("err"))
            self.assertTrue(wait_until(lambda: failed_calls() >= 12, timeout=30))
        finally:
            stop.set()
            for t in flows:
                t.join(60)

        # Every call was answered by its handler: a number, or the store's
        # failure.
        values = []
        for h, r in results:
            self.assertEqual(getattr(r, "status", r), 200, f"{r}\n{h.log()[-3000:]}")
            out = r.json()["output"]
            if "value" in out:
                values.append(out["value"])
            else:
                self.assertTrue(out["err"].startswith("store unavailable: "), out)
        # Each increment answered once (one whose answer the kill cut off
        # may be missing).
        self.assertEqual(len(set(values)), len(values), values)
        self.assertLessEqual(set(values), set(range(1, len(results) + 1)))
        self.assertGreater(len(values), 1)

        for i, h in enumerate(hosts):
            self.assertEqual(redis_status(h)["state"], "down")
            self.assertEqual(metric(h, "cliqhost_redis_up"), 0)
            before = metric(h, REPLAY_FALLBACKS)
            call = signed(op="incr", key="flow")
            out = self.ok(h, call)
            self.assertNotIn("value", out)
            self.assertRegex(out["err"], r"^store unavailable: redis is unreachable: .+")
            # This host's memory still refuses a replay...
            r = send(h, call)
            self.assertEqual(r.status, 401, r)
            self.assertRegex(r.json()["error"], BY_ITSELF)
            self.assertGreater(metric(h, REPLAY_FALLBACKS), before)
            # ...but only its own: the next host never heard of the call.
            self.assertEqual(self.ok(hosts[(i + 1) % 3], call)["op"], "incr")

        # Redis comes back, empty (no persistence), on the same port.
        self.redis.start()
        for h in hosts:
            self.assertIsNotNone(h.wait_for(REACHABLE, timeout=15), h.log()[-3000:])
            st = redis_status(h)
            self.assertEqual((st["state"], st["connections"], st["up"]), ("up", 2, 2), st)
            self.assertEqual(metric(h, "cliqhost_redis_up"), 1)
        call = signed(op="incr", key="flow")
        self.assertEqual(self.ok(hosts[0], call)["value"], 1)
        for h in hosts[1:]:
            r = send(h, call)
            self.assertEqual(r.status, 401, r)
            self.assertRegex(r.json()["error"], BY_ANOTHER)
        self.assertEqual(self.run_op(hosts[1], "incr", "flow")["value"], 2)
        self.assertEqual(self.run_op(hosts[2], "incr", "flow")["value"], 3)
        # Each host said so once each way.
        for h in hosts:
            self.assertEqual(count_lines(h, UNREACHABLE), 1, h.log()[-3000:])
            self.assertEqual(count_lines(h, REACHABLE), 1, h.log()[-3000:])
            self.assertEqual(metric(h, "cliqhost_redis_down_total"), 1)


    def test_a_call_accepted_in_an_outage_stays_a_replay_on_its_host(self):
        """Redis learns nothing of what a host accepted while it was down
        (the README says so), but that host still does: once Redis is back
        and lets the call through as new, the host's own memory refuses it."""
        a, b = self.hosts["A"], self.hosts["B"]
        self.redis.kill()
        for h in (a, b):
            self.assertIsNotNone(h.wait_for(UNREACHABLE, timeout=15), h.log()[-3000:])
        call = signed(op="echo")
        self.assertEqual(self.ok(a, call)["op"], "echo")
        self.redis.start()
        for h in (a, b):
            self.assertIsNotNone(h.wait_for(REACHABLE, timeout=15), h.log()[-3000:])
            self.assertTrue(wait_until(lambda: redis_status(h)["state"] == "up", timeout=15))
        r = send(a, call)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"], BY_ITSELF)
        # Its second coming was claimed in Redis: now every host knows it.
        r = send(b, call)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"], BY_ANOTHER)

    def test_a_host_started_before_its_redis_serves_then_shares(self):
        self.redis.kill()
        self.assertEqual(self.hosts["C"].stop(), 0)
        c = Host("--config", self.configs["C"], "--store", self.redis.url, scripts=SCRIPTS,
                 keys=[KEY.spki], workers=2)
        self.every_host.append(c)
        self.assertIsNotNone(c.wait_for(UNREACHABLE + "cannot connect to ", timeout=15), c.log())
        self.assertEqual(redis_status(c)["state"], "down")
        out = self.run_op(c, "incr", "late")
        self.assertRegex(out["err"], r"^store unavailable: redis is unreachable: cannot connect")
        self.redis.start()
        self.assertIsNotNone(c.wait_for(REACHABLE, timeout=15), c.log())
        for h in (self.hosts["A"], self.hosts["B"]):
            self.assertIsNotNone(h.wait_for(REACHABLE, timeout=15), h.log())
        call = signed(op="incr", key="late")
        self.assertEqual(self.ok(c, call)["value"], 1)
        r = send(self.hosts["A"], call)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"], BY_ANOTHER)


class Paused(Cluster):
    """Redis stops answering but keeps its connections (SIGSTOP)."""

    flags = ("--redis-timeout-ms", "300")

    def test_calls_are_answered_while_redis_is_paused(self):
        hosts = [self.hosts[n] for n in NAMES]
        for i, h in enumerate(hosts):
            self.assertEqual(self.run_op(h, "incr", "p")["value"], i + 1)
        self.redis.pause()
        self.addCleanup(self.redis.resume)
        no_answer = (r"^store unavailable: redis is unreachable: no answer from "
                     + re.escape(f"redis://127.0.0.1:{self.redis.port}/0") + r" in 300 ms$")
        for _ in range(3):
            for h in hosts:
                out = self.run_op(h, "incr", "p")
                self.assertEqual(out["op"], "incr")
                self.assertNotIn("value", out)
                self.assertRegex(out["err"], no_answer)
        for h in hosts:
            self.assertEqual(redis_status(h)["state"], "down")
            self.assertGreater(metric(h, REPLAY_FALLBACKS), 0)
        self.redis.resume()
        for h in hosts:
            self.assertIsNotNone(h.wait_for(REACHABLE, timeout=15), h.log()[-3000:])
        # What Redis held is still there.
        self.assertEqual([self.run_op(h, "incr", "p")["value"] for h in hosts], [4, 5, 6])


class LongRedisTimeout(Cluster):
    """redis_timeout_ms longer than the call's deadline (Cliq waits 5 s):
    the deadline still holds while Redis does not answer."""

    flags = ("--redis-timeout-ms", "30000", "--deadline", "1000")

    def test_the_deadline_bounds_the_wait_for_the_replay_check(self):
        a = self.hosts["A"]
        self.redis.pause()
        self.addCleanup(self.redis.resume)
        call = signed(op="echo")
        # Far past the deadline, far short of redis_timeout_ms.
        r = send(a, call, timeout=20)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["output"]["op"], "echo")
        self.assertEqual(metric(a, REPLAY_FALLBACKS), 1)
        r = send(a, call, timeout=20)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"], BY_ITSELF)


class Password(Cluster):
    """A Redis that asks for a password (requirepass), as a shared one
    should."""

    password = "e2e-redis-pw.4c7a"

    def test_hosts_share_it_and_a_wrong_password_says_why(self):
        a, b = self.hosts["A"], self.hosts["B"]
        call = signed(op="incr", key="pw")
        self.assertEqual(self.ok(a, call)["value"], 1)
        r = send(b, call)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"], BY_ANOTHER)

        url = self.redis.url.replace(self.password, "not-the-password")
        bad = Host("--config", self.configs["C"], "--store", url, scripts=SCRIPTS,
                   keys=[KEY.spki], workers=2)
        self.every_host.append(bad)
        line = bad.wait_for(UNREACHABLE, timeout=15)
        self.assertIsNotNone(line, bad.log())
        self.assertIn("refused the setup: WRONGPASS", line)
        self.assertNotIn("not-the-password", bad.log())
        # Calls are answered; the store says why it cannot be used, and
        # keeps saying it as the host tries again.
        for _ in range(3):
            out = self.ok(bad, signed(op="incr", key="pw"))
            self.assertRegex(out["err"], r"^store unavailable: redis is unreachable: "
                             r"redis://:\*\*\*@127\.0\.0\.1:\d+/0 refused the setup: WRONGPASS")
            time.sleep(0.5)
        self.assertIn("WRONGPASS", redis_status(bad)["why"])
        self.assertEqual(count_lines(bad, UNREACHABLE), 1)


class ManyWorkers(unittest.TestCase):
    """A host makes all its workers (and their connections to Redis) before
    their loops start: the setup's answer must not be timed from then."""

    def test_a_slow_start_is_not_an_outage(self):
        redis = Redis()
        self.addCleanup(redis.stop)
        # Making 128 workers takes longer than 30 ms on any machine.
        h = Host("--no-verify", "--store", redis.url, "--redis-timeout-ms", "30",
                 scripts=SCRIPTS, workers=128)
        self.addCleanup(shutil.rmtree, h.data_dir, True)
        try:
            line = h.wait_for(r"redis: connected to |redis unreachable", timeout=30)
            self.assertIn("redis: connected to", line or "", h.log())
            self.assertIn("(128 connections)", line)
            r = h.post(json.dumps(body("command", "execution_handler", "count",
                                       {"options": {"op": "incr", "key": "k"}},
                                       response_url=False)))
            self.assertEqual(r.json()["output"]["value"], 1, r)
            self.assertEqual(count_lines(h, "redis unreachable"), 0, h.log())
        finally:
            self.assertEqual(h.stop(), 0, h.log())
            self.assertFalse(h.sanitizer_reports(), h.log())


class OwnOutbox(Cluster):
    def test_each_host_keeps_and_delivers_its_own_queue(self):
        channel = "e2e-cluster-own"
        path = channel_path(channel)
        self.fake.down()
        msgs = ["one", "two", "three"]
        out = self.ok(self.hosts["A"], signed("post", channel=channel, token=self.token("A"),
                                              msgs=msgs))
        self.assertEqual(out["results"], ["queued"] * 3, out)
        self.assertEqual(len(self.outbox_lines("A", channel)), 3)
        for n in ("B", "C"):
            self.assertEqual(self.outbox_lines(n, channel), [])
            self.assertEqual(metric(self.hosts[n], 'cliqhost_outbox_posts{state="queued"}'), 0)
        self.assertEqual(metric(self.hosts["A"], 'cliqhost_outbox_posts{state="queued"}'), 3)

        # A stops; Cliq is back. B and C do not touch A's queue.
        self.assertEqual(self.hosts["A"].stop(), 0)
        self.fake.up()
        time.sleep(1.5)
        self.assertEqual(self.fake.count(path), 0)
        self.assertEqual(len(self.outbox_lines("A", channel)), 3)

        # A restarts and delivers them.
        a = self.start_host("A")
        reqs = self.fake.wait_requests(3, path, timeout=30)
        self.assertEqual(sorted(r.json()["text"] for r in reqs), sorted(msgs), a.log()[-3000:])
        self.assertTrue(wait_until(lambda: not self.outbox_lines("A", channel), timeout=30))
        self.assertEqual(metric(a, 'cliqhost_outbox_attempts_total{outcome="delivered"}'), 3)
        for n in ("B", "C"):
            self.assertEqual(
                metric(self.hosts[n], 'cliqhost_outbox_attempts_total{outcome="delivered"}'), 0)


if __name__ == "__main__":
    unittest.main()
