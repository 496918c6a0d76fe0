#!/usr/bin/env python3
"""Reads the hosts' logs of a bench/tasks.sh schedule case; prints its figures as JSON.

  tasks-ticks.py FROM TO COUNT LOG...

FROM and TO are Unix seconds: the ticks FROM .. TO-1 of COUNT schedules of
every = "1s" (named tick-001 ..) are expected, each run exactly once over
all the LOGs (one host's, or those of hosts sharing a store). A run writes
one outcome line,

  2026-12-06T23:29:25.002Z info  req=... schedule tick-001 tick=2026-12-06T23:29:25Z outcome=ok ms=0

whose timestamp (ms) is the run's end and ms= its length (the run does
nothing, so 0 or 1), so it started at timestamp - ms: its lateness is that
minus the tick. Prints ticks expected, runs, ticks with no run, ticks run
more than once, runs whose outcome is not ok, the ticks the hosts logged
as skipped, and the lateness's p50, p99 (the value at index floor(0.99 n)
of the sorted ones) and max in ms; per host, the runs each took. Exits 1,
saying why on stderr, when a tick was not run exactly once or a run failed.
"""
import calendar
import json
import re
import sys

LINE = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(\d{3})Z \S+ +(?:req=\S+ )?"
    r"schedule (tick-\d+) tick=(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)Z outcome=(\S+) ms=(\d+)")
SKIP = re.compile(r"schedule (tick-\d+): the tick at (\S+)Z is skipped")


def unix(iso):
    return calendar.timegm(tuple(int(x) for x in re.split(r"[-T:]", iso)) + (0, 0, 0))


def main(argv):
    if len(argv) < 5:
        sys.exit(__doc__)
    first, end, count = int(argv[1]), int(argv[2]), int(argv[3])
    runs = {}  # (schedule, tick) -> how many
    late, not_ok, skipped, per_host = [], 0, 0, []
    for path in argv[4:]:
        mine = 0
        with open(path, errors="replace") as f:
            for line in f:
                m = LINE.match(line)
                if not m:
                    s = SKIP.search(line)
                    if s and first <= unix(s.group(2)) < end:
                        skipped += 1
                    continue
                tick = unix(m.group(4))
                if not first <= tick < end:
                    continue
                mine += 1
                key = (m.group(3), tick)
                runs[key] = runs.get(key, 0) + 1
                if m.group(5) != "ok":
                    not_ok += 1
                at_ms = unix(m.group(1)) * 1000 + int(m.group(2))
                late.append(at_ms - int(m.group(6)) - tick * 1000)
        per_host.append(mine)
    ticks = count * (end - first)
    names = {f"tick-{i:03d}" for i in range(1, count + 1)}
    missing = sum(1 for n in names for t in range(first, end) if (n, t) not in runs)
    late.sort()
    n = len(late)
    out = {
        "schedules": count,
        "seconds": end - first,
        "ticks": ticks,
        "runs": n,
        "runs_over_ticks": round(n / ticks, 4) if ticks else None,
        "ticks_not_run": missing,
        "ticks_run_twice_or_more": sum(1 for v in runs.values() if v > 1),
        "runs_not_ok": not_ok,
        "ticks_logged_skipped": skipped,
        "late_p50_ms": late[n // 2] if n else None,
        "late_p99_ms": late[min(int(n * 0.99), n - 1)] if n else None,
        "late_max_ms": late[-1] if n else None,
        "runs_per_host": per_host,
    }
    print(json.dumps(out, separators=(",", ":")))
    bad = [f"{out[k]} {k.replace('_', ' ')}"
           for k in ("ticks_not_run", "ticks_run_twice_or_more", "runs_not_ok") if out[k]]
    if n != ticks:
        bad.insert(0, f"{n} runs for {ticks} ticks")
    if bad:
        sys.exit(", ".join(bad))


if __name__ == "__main__":
    main(sys.argv)
