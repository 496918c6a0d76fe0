#!/usr/bin/env python3
"""bench/reload-probe.py PORT SCRIPTS_DIR KEY_PEM EDITS OUT_JSON

Times edit-to-reply for live reload: EDITS times, saves SCRIPTS_DIR/
commands/probe.lua with a new version tag (write to a temp file, then
rename over the old one, as most editors and git do), and from just before
the save calls /probe on a keep-alive connection until the reply shows the
new tag. Records each time (ms, time.perf_counter, CLOCK_MONOTONIC) and the
calls that failed (must be none)."""

import base64
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import time

port, scripts, key, edits, out = (int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]),
                                  sys.argv[5])
body = json.dumps({"type": "command", "name": "probe", "handler": {"type": "execution_handler"},
                   "timestamp": time.time_ns() // 1_000_000,
                   "params": {"arguments": ""}}).encode()
sig = base64.b64encode(subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=body,
                                      capture_output=True, check=True).stdout).decode()
headers = {"Content-Type": "application/json", "X-Cliq-Signature": sig}
path = os.path.join(scripts, "commands", "probe.lua")
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)


def call():
    conn.request("POST", "/", body, headers)
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {data[:200]!r}")
    return json.loads(data)["output"]["text"]


def save(tag):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write('-- probe\nreturn {\n  execution = function(req)\n    return "%s"\n  end,\n}\n'
                % tag)
    os.replace(tmp, path)


times, calls, failed = [], 0, 0
save("start")
deadline = time.time() + 10
while True:
    try:
        if call() == "start":
            break
    except RuntimeError:
        pass  # 404 until the new file is picked up
    if time.time() > deadline:
        sys.exit("probe.lua never loaded")
    time.sleep(0.01)
rng = random.Random(7)
for i in range(edits):
    tag = f"edit-{i}"
    t0 = time.perf_counter()
    save(tag)
    while True:
        calls += 1
        try:
            got = call()
        except Exception as e:  # counted, and the run fails
            failed += 1
            print("call failed:", e, file=sys.stderr)
            conn.close()
            continue
        if got == tag:
            break
        if time.perf_counter() - t0 > 5:
            sys.exit(f"edit {i} not served after 5 s")
    times.append((time.perf_counter() - t0) * 1000)
    time.sleep(rng.uniform(0.05, 0.15))

times_sorted = sorted(times)
res = {
    "edits": edits,
    "median_ms": round(statistics.median(times), 2),
    "p90_ms": round(times_sorted[int(0.9 * (len(times) - 1))], 2),
    "worst_ms": round(max(times), 2),
    "best_ms": round(min(times), 2),
    "probe_calls": calls,
    "failed_calls": failed,
    "all_ms": [round(t, 2) for t in times],
}
with open(out, "w") as f:
    json.dump(res, f)
print(f"median {res['median_ms']} ms, p90 {res['p90_ms']} ms, worst {res['worst_ms']} ms "
      f"over {edits} edits; {failed} failed calls")
