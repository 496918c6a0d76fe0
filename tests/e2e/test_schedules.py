"""Scheduled scripts (issue 15, point 1): scripts/schedules/<name>.lua run at
their ticks on a real host, once per tick across the workers of a host
(SQLite) and across hosts on one real redis-server; a run still going makes
the next tick skipped; catch-up at start; live reload; daylight-saving
changes on the schedules' test clock (CLIQHOST_SCHEDULE_CLOCK: a start
instant and a speed); `cliqhost schedules`, `cliqhost invoke schedule`,
/status and /metrics.

Every test asserts what an operator sees (log lines, the CLI's output,
/status, what the scripts wrote), never how long something took."""

import calendar
import json
import os
import re
import shutil
import tempfile
import time
import unittest

from fake_cliq import FakeCliq, channel_path
from hostlib import REPO, Host, run_cli
from redislib import Redis

RAN = r"schedule (\S+) tick=(\S+) outcome=(\S+)"


def epoch(iso):
    """Unix seconds of "2026-03-29T01:00:00Z"."""
    return calendar.timegm(time.strptime(iso, "%Y-%m-%dT%H:%M:%SZ"))


class Folder:
    """A scripts folder the test writes."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="cliqhost-e2e-sched-")

    def write(self, rel, text):
        path = os.path.join(self.root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, path)

    def remove(self, rel):
        os.unlink(os.path.join(self.root, rel))

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


def schedule(when, body, extra=""):
    """A schedule script: `when` is 'every = "1s"' or 'cron = ..., timezone = ...'."""
    return "return {\n  %s,%s\n  run = function(job)\n%s\n  end,\n}\n" % (when, extra, body)


# Counts the run of each tick in the store and logs what it saw: the count
# must be 1 for every tick, on every host.
COUNT_TICK = """
    local n = store.incr("tick:" .. job.scheduled_at, 1)
    log.info("ran", job.name, "at=" .. job.scheduled_at, "count=" .. tostring(n),
             "catch_up=" .. tostring(job.catch_up), "id=" .. job.id)
"""


def runs(host, name=None):
    """(tick, outcome) of every run the host logged."""
    out = []
    for line in host.log().splitlines():
        m = re.search(RAN, line)
        if m and (name is None or m.group(1) == name):
            out.append((m.group(2), m.group(3)))
    return out


def wait_until(pred, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return pred()


class WithHosts(unittest.TestCase):
    """A scripts folder and the hosts a test starts on it, stopped after."""

    def setUp(self):
        self.f = Folder()
        self.hosts = []

    def tearDown(self):
        for h in self.hosts:
            self.assertEqual(h.stop(), 0, h.log()[-3000:])
            self.assertFalse(h.sanitizer_reports(), h.log())
        self.f.cleanup()


class OneHost(WithHosts):
    """Two workers and the SQLite store: each tick runs once."""

    def host(self, *flags, **kw):
        h = Host("--no-verify", *flags, scripts=self.f.root, **kw)
        self.hosts.append(h)
        return h

    def test_every_second_runs_once_per_tick_with_its_job(self):
        self.f.write("schedules/tick.lua", schedule('every = "1s"', COUNT_TICK))
        h = self.host()
        self.assertTrue(wait_until(lambda: len(runs(h, "tick")) >= 4), h.log())
        ticks = [t for t, _ in runs(h, "tick")]
        self.assertEqual(len(ticks), len(set(ticks)), ticks)  # no tick twice
        self.assertEqual({o for _, o in runs(h, "tick")}, {"ok"})
        lines = [l for l in h.log().splitlines() if "msg=" in l and "count=" in l]
        self.assertTrue(lines)
        for line in lines:
            self.assertIn("count=1 ", line)  # the store saw each tick once
            self.assertIn("catch_up=false", line)
            at = int(re.search(r"at=(\d+)", line).group(1))  # whole seconds
            run_id = re.search(r"id=(\w+)", line).group(1)
            # The run's id tags its own log lines, the script's and the outcome's.
            self.assertIn("req=%s " % run_id, line)
            self.assertTrue(h.wait_for(r"req=%s schedule tick tick=\S+ outcome=ok" % run_id, 5))
            self.assertEqual(at, epoch(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))))

    def test_a_run_still_going_skips_the_next_tick_and_says_so(self):
        self.f.write("schedules/slow.lua", schedule('every = "1s"', """
    local n = store.incr("running", 1)
    log.info("started", "running=" .. tostring(n))
    sleep(2.5)
    store.incr("running", -1)
"""))
        h = self.host()
        self.assertTrue(h.wait_for(r"schedule slow: the tick at \S+ is skipped: its previous run "
                                   r"is still going", 15), h.log())
        self.assertTrue(wait_until(lambda: len(runs(h, "slow")) >= 2, 20), h.log())
        started = re.findall(r"running=(\d+)", h.log())
        self.assertTrue(started)
        self.assertEqual(set(started), {"1"}, "two runs overlapped")
        self.assertIn('cliqhost_schedule_runs_total{schedule="slow",outcome="skipped"}',
                      h.request("GET", "/metrics").body.decode())

    def test_a_run_that_fails_or_breaks_a_limit_is_logged_and_the_host_goes_on(self):
        self.f.write("schedules/boom.lua", schedule('every = "1s"', '    error("boom")'))
        self.f.write("schedules/spin.lua", schedule('every = "1s"', "    while true do end"))
        h = self.host("--max-cpu", "100")
        self.assertTrue(h.wait_for(r"schedule boom tick=\S+ outcome=failed .*error=.*boom", 10),
                        h.log())
        self.assertTrue(h.wait_for(r"schedule spin tick=\S+ outcome=limit", 10), h.log())
        self.assertEqual(h.request("GET", "/healthz").status, 200)
        metrics = h.request("GET", "/metrics").body.decode()
        self.assertRegex(metrics, r'cliqhost_schedule_runs_total\{schedule="boom",outcome="failed"\} [1-9]')
        self.assertRegex(metrics, r'cliqhost_schedule_runs_total\{schedule="spin",outcome="limit"\} [1-9]')

    def test_live_reload_changes_stops_and_keeps_a_broken_one(self):
        self.f.write("schedules/r.lua", schedule('every = "1s"', '    log.info("version one")'))
        h = self.host()
        self.assertTrue(h.wait_for("version one", 10), h.log())
        self.f.write("schedules/r.lua", schedule('every = "1s"', '    log.info("version two")'))
        self.assertTrue(h.wait_for("version two", 10), h.log())
        # Broken: a syntax error, then a bad expression; version two goes on.
        self.f.write("schedules/r.lua", "return { every = ")
        self.assertTrue(h.wait_for(r"schedules/r\.lua.*(unexpected|expected)", 10), h.log())
        self.f.write("schedules/r.lua", schedule('every = "5x"', '    log.info("version three")'))
        self.assertTrue(h.wait_for(r"schedules/r\.lua.*every \"5x\"", 10), h.log())
        mark = len(h.log().splitlines())
        self.assertTrue(h.wait_for("version two", 10, start=mark), h.log())
        self.assertNotIn("version three", h.log())
        # Deleted: it stops.
        self.f.remove("schedules/r.lua")
        self.assertTrue(h.wait_for("schedule r removed", 10), h.log())
        time.sleep(1.5)  # a tick that was under way may still end
        mark = len(h.log().splitlines())
        time.sleep(2.5)
        self.assertNotIn("version two", "\n".join(h.log().splitlines()[mark:]))

    def test_the_schedule_table_is_checked_when_it_loads(self):
        cases = {
            "schedules/a.lua": (schedule('cron = "0 25 * * *"', ""), r"hour 25"),
            "schedules/b.lua": (schedule('cron = "0 9 * * *", timezone = "Europe/Nowhere"', ""),
                                r"Europe/Nowhere"),
            "schedules/c.lua": (schedule('every = "1s", cron = "* * * * *"', ""),
                                r"fields 'cron' and 'every' both set"),
            "schedules/d.lua": (schedule('every = "1s"', "", "\n  when = 3,"),
                                r'unknown field "when"'),
            "schedules/e.lua": ('return { every = "1s", run = 3 }',
                                r"field 'run' must be a function \(is a number\)"),
        }
        for rel, (text, _) in cases.items():
            self.f.write(rel, text)
        r = run_cli("check", "--scripts", self.f.root)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        for rel, (_, why) in cases.items():
            self.assertRegex(r.stdout + r.stderr, re.escape(rel) + ".*" + why)

    def test_catch_up_runs_the_latest_missed_tick_once_at_start(self):
        self.f.write("schedules/cu.lua",
                     schedule('every = "3s"', COUNT_TICK, "\n  catch_up = true,"))
        self.f.write("schedules/nocu.lua", schedule('every = "3s"', COUNT_TICK))
        data = tempfile.mkdtemp(prefix="cliqhost-e2e-sched-data-")
        try:
            h = self.host("--data-dir", data)
            self.assertTrue(wait_until(lambda: runs(h, "cu") and runs(h, "nocu"), 10), h.log())
            h.stop()
            self.hosts.remove(h)
            time.sleep(7)  # at least one tick of each passes with no host up
            h2 = self.host("--data-dir", data)
            line = h2.wait_for(r"schedule cu: catching up the tick at (\S+), missed while no host "
                               r"ran", 10)
            self.assertTrue(line, h2.log())
            self.assertTrue(h2.wait_for(r"ran cu at=\d+ count=1 catch_up=true", 10), h2.log())
            self.assertTrue(h2.wait_for(r"schedule cu tick=\S+ outcome=ok ms=\d+ catch_up=1", 10))
            self.assertNotIn("catching up", "\n".join(
                l for l in h2.log().splitlines() if "nocu" in l))
            self.assertNotRegex(h2.log(), r"ran nocu at=\d+ count=1 catch_up=true")
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def test_a_schedule_added_while_serving_does_not_catch_up(self):
        """Catch-up is for ticks missed while no host ran: a schedule saved
        while the host serves starts at its next tick, whatever its record
        says of an older life."""
        self.f.write("schedules/cu.lua",
                     schedule('every = "2s"', COUNT_TICK, "\n  catch_up = true,"))
        data = tempfile.mkdtemp(prefix="cliqhost-e2e-sched-data-")
        try:
            h = self.host("--data-dir", data)
            self.assertTrue(wait_until(lambda: runs(h, "cu"), 10), h.log())
            h.stop()
            self.hosts.remove(h)
            self.f.remove("schedules/cu.lua")
            h2 = self.host("--data-dir", data)
            time.sleep(5)  # ticks pass while the host serves without it
            self.f.write("schedules/cu.lua",
                         schedule('every = "2s"', COUNT_TICK, "\n  catch_up = true,"))
            self.assertTrue(h2.wait_for(r"schedule cu scheduled", 10), h2.log())
            self.assertTrue(wait_until(lambda: runs(h2, "cu"), 10), h2.log())
            self.assertNotIn("catching up", h2.log())
            self.assertNotIn("catch_up=true", h2.log())
        finally:
            shutil.rmtree(data, ignore_errors=True)

    def test_cli_status_and_invoke(self):
        self.f.write("schedules/report.lua",
                     schedule('cron = "0 9 * * 1-5", timezone = "Europe/Paris"',
                              '    log.info("report ran", job.scheduled_at)'))
        self.f.write("schedules/bad.lua", schedule('every = "1h"', '    error("no data")'))
        h = self.host()
        url = "http://127.0.0.1:%d" % h.port
        self.assertTrue(h.wait_for("schedule report scheduled", 10))
        r = run_cli("schedules", "--url", url)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertRegex(r.stdout, r"report\s+0 9 \* \* 1-5 Europe/Paris\s+\d{4}-\d\d-\d\d "
                                   r"\d\d:\d\d:\d\d UTC\s+-\s+-")
        st = json.loads(h.request("GET", "/status").body)
        names = {s["name"]: s for s in st["schedules"]}
        self.assertEqual(set(names), {"report", "bad"})
        self.assertEqual(names["report"]["when"], "0 9 * * 1-5 Europe/Paris")
        # The next run is a weekday at 09:00 in Paris.
        nxt = names["report"]["next_run_ms"] // 1000
        self.assertIn(time.gmtime(nxt).tm_hour, (7, 8))
        self.assertLess(time.gmtime(nxt).tm_wday, 5)

        r = run_cli("invoke", "schedule", "report", "--url", url)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertRegex(r.stdout, r"schedule report ran: ok in \d+ ms \(run id (\w+);")
        run_id = re.search(r"run id (\w+)", r.stdout).group(1)
        self.assertTrue(h.wait_for(r"req=%s .*report ran" % run_id, 5), h.log())
        r = run_cli("invoke", "schedule", "bad", "--url", url)
        self.assertEqual(r.returncode, 5, r.stdout + r.stderr)
        self.assertIn("error: ", r.stdout)
        self.assertIn("no data", r.stdout)
        r = run_cli("invoke", "schedule", "nope", "--url", url)
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("no script for schedule nope", r.stderr)
        # The last run, as the store recorded it, reaches `schedules`.
        self.assertTrue(wait_until(lambda: "failed (" in run_cli("schedules", "--url", url).stdout,
                                   15))
        out = run_cli("schedules", "--url", url).stdout
        self.assertRegex(out, r"bad\s+every 1h\s+.*failed \(.*no data")
        self.assertRegex(out, r"report\s+.*\sok")
        st = json.loads(h.request("GET", "/status").body)
        last = {s["name"]: s.get("shared", {}).get("last", {}) for s in st["schedules"]}
        self.assertEqual(last["report"]["outcome"], "ok")
        self.assertTrue(last["report"]["manual"])


class DaylightSaving(unittest.TestCase):
    """Europe/Paris on the test clock: "30 2 * * *" runs once on both days
    the clocks change: on 2026-03-29 02:30 never happens (it runs when the
    clocks jump, 03:00 CEST = 01:00 UTC) and on 2026-10-25 it happens twice
    (it runs at the first, 00:30 UTC)."""

    def run_day(self, start_iso, speed, until_iso):
        f = Folder()
        f.write("schedules/night.lua", schedule(
            'cron = "30 2 * * *", timezone = "Europe/Paris"',
            '    log.info("night run at=" .. job.scheduled_at)'))
        f.write("schedules/hourly.lua", schedule(
            'cron = "0 * * * *", timezone = "Europe/Paris"',
            '    log.info("hourly run at=" .. job.scheduled_at)'))
        h = Host("--no-verify", scripts=f.root,
                 env={"CLIQHOST_SCHEDULE_CLOCK": "%dx%d" % (epoch(start_iso), speed)})
        try:
            self.assertTrue(h.wait_for("schedules run on a test clock", 5))
            # The test clock passes `until` after (until - start) / speed s.
            wait = (epoch(until_iso) - epoch(start_iso)) / speed
            time.sleep(wait + 1)
            night = [int(x) for x in re.findall(r"night run at=(\d+)", h.log())]
            hourly = [int(x) for x in re.findall(r"hourly run at=(\d+)", h.log())]
            return night, hourly, h.log()
        finally:
            h.stop()
            f.cleanup()

    def test_spring_forward_runs_once_when_the_clocks_jump(self):
        night, hourly, log = self.run_day("2026-03-29T00:55:00Z", 600, "2026-03-29T03:05:00Z")
        self.assertEqual(night, [epoch("2026-03-29T01:00:00Z")], log)
        # Hourly: 02:00 CET..03:00 CEST is one real hour; no 02:00 local.
        self.assertEqual(hourly, [epoch("2026-03-29T01:00:00Z"), epoch("2026-03-29T02:00:00Z"),
                                  epoch("2026-03-29T03:00:00Z")], log)

    def test_fall_back_runs_once_at_the_first_0230(self):
        night, hourly, log = self.run_day("2026-10-25T00:25:00Z", 600, "2026-10-25T02:05:00Z")
        self.assertEqual(night, [epoch("2026-10-25T00:30:00Z")], log)
        # Hourly: every real hour, 02:00 local twice (00:00 and 01:00 UTC).
        self.assertEqual(hourly, [epoch("2026-10-25T01:00:00Z"), epoch("2026-10-25T02:00:00Z")],
                         log)


class SeveralHosts(WithHosts):
    """Three hosts on one Redis: each tick runs on one of them."""

    @classmethod
    def setUpClass(cls):
        cls.redis = Redis()

    @classmethod
    def tearDownClass(cls):
        cls.redis.stop()

    def start(self, n=3, prefix="s1:"):
        for _ in range(n):
            self.hosts.append(Host("--no-verify", "--store", self.redis.url,
                                   "--redis-prefix", prefix, scripts=self.f.root))

    def all_runs(self, name):
        return [r for h in self.hosts for r in runs(h, name)]

    def test_each_tick_runs_on_one_host(self):
        self.f.write("schedules/tick.lua", schedule('every = "1s"', COUNT_TICK))
        self.start(prefix="once:")
        self.assertTrue(wait_until(lambda: len(self.all_runs("tick")) >= 6, 20))
        ticks = [t for t, _ in self.all_runs("tick")]
        self.assertEqual(len(ticks), len(set(ticks)), ticks)
        counts = re.findall(r"count=(\d+)", "\n".join(h.log() for h in self.hosts))
        self.assertEqual(set(counts), {"1"})

    def test_a_run_dropped_at_shutdown_does_not_hold_its_schedule(self):
        """A host stopped while a run goes on (past shutdown_grace_s)
        records the run as dropped in Redis, so the host that takes over
        runs the next tick instead of finding it held for max_run_ms."""
        self.f.write("schedules/long.lua", schedule('every = "1s"', """
    if not store.get("first") then
      store.set("first", job.id)
      log.info("first run", job.id)
      sleep(60)
    end
    log.info("later run", job.id)
"""))
        a = Host("--no-verify", "--store", self.redis.url, "--redis-prefix", "drop:",
                 "--shutdown-grace", "1", scripts=self.f.root)
        self.assertTrue(a.wait_for("first run", 20), a.log())
        self.assertEqual(a.stop(), 0, a.log())
        self.assertIn("dropped at shutdown", a.log())
        b = Host("--no-verify", "--store", self.redis.url, "--redis-prefix", "drop:",
                 scripts=self.f.root)
        self.hosts.append(b)
        line = b.wait_for(r"later run|is skipped", 20)
        self.assertIsNotNone(line, b.log())
        self.assertIn("later run", line)

    def test_no_overlap_across_hosts_and_one_skip_line_per_tick(self):
        self.f.write("schedules/slow.lua", schedule('every = "1s"', """
    local n = store.incr("running", 1)
    log.info("started", "running=" .. tostring(n))
    sleep(2.2)
    store.incr("running", -1)
"""))
        self.start(prefix="slow:")
        skipped = r"schedule slow: the tick at (\S+) is skipped: its previous run is still going"
        self.assertTrue(wait_until(lambda: len(self.all_runs("slow")) >= 2, 20))
        logs = "\n".join(h.log() for h in self.hosts)
        self.assertEqual(set(re.findall(r"running=(\d+)", logs)), {"1"}, "two runs overlapped")
        skips = re.findall(skipped, logs)
        self.assertTrue(skips, logs)
        self.assertEqual(len(skips), len(set(skips)), "a skipped tick was logged twice")


class StandupExample(unittest.TestCase):
    """scripts/schedules/standup.lua on a real host, its posts reaching a
    fake Cliq through the outbox: at its tick (Monday 9:30 in Paris, on the
    test clock) and run now with `cliqhost invoke schedule`."""

    SECRET = "1001.e2eStandup.4c1d9a7e2b"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-standup-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.fake = FakeCliq(tokens=[self.SECRET]).start()
        self.addCleanup(self.fake.stop)
        self.config = os.path.join(self.dir, "host.lua")
        with open(self.config, "w") as f:
            f.write('data_dir = "%s"\ncliq_api = "%s"\ntokens = { default = "%s" }\n'
                    % (self.dir, self.fake.url, self.SECRET))

    def posts(self, n):
        got = self.fake.wait_requests(n, path=channel_path("standup"), timeout=15)
        return [json.loads(r.body) for r in got]

    def test_at_its_tick_and_run_now(self):
        monday = epoch("2026-12-07T08:29:57Z")  # 09:29:57 in Paris
        h = Host("--no-verify", "--config", self.config, scripts=os.path.join(REPO, "scripts"),
                 env={"CLIQHOST_SCHEDULE_CLOCK": "%d" % monday})
        try:
            posts = self.posts(1)
            self.assertEqual(len(posts), 1, h.log())
            text = posts[0]["text"]
            self.assertIn("*Standup*, Monday 07 December", text)
            self.assertIn("Facilitating today: *Ada* (next: Grace).", text)
            self.assertEqual(posts[0]["buttons"][0]["label"], "Join")
            self.assertTrue(h.wait_for(r"schedule standup tick=2026-12-07T08:30:00Z outcome=ok"))
            r = run_cli("invoke", "schedule", "standup", "--url", "http://127.0.0.1:%d" % h.port)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            posts = self.posts(2)
            self.assertEqual(len(posts), 2, h.log())
            self.assertIn("Facilitating today: *Grace* (next: Linus).", posts[1]["text"])
        finally:
            self.assertEqual(h.stop(), 0)
        self.assertNotIn(self.SECRET, h.log())


if __name__ == "__main__":
    unittest.main()
