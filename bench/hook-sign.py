#!/usr/bin/env python3
"""Signs hook deliveries for bench/tasks.sh; writes bench/hook.lua's headers file.

  hook-sign.py github SECRET BODY_FILE OUT
      one line: the X-Hub-Signature-256 of the body (hex HMAC-SHA256).
  hook-sign.py standard-webhooks SECRET BODY_FILE OUT N [FIRST]
      N lines, deliveries FIRST (0) .. FIRST+N-1 of the same body, each with
      its own webhook-id ("msg_bench_<i>"), the current time as its
      webhook-timestamp and its webhook-signature ("v1,<base64 HMAC-SHA256>"
      of "<id>.<timestamp>.<body>" under the key SECRET encodes, "whsec_"
      and base64, as the Standard Webhooks spec says).
"""
import base64
import hashlib
import hmac
import sys
import time


def main(argv):
    if len(argv) < 5 or argv[1] not in ("github", "standard-webhooks"):
        sys.exit(__doc__)
    scheme, secret, body_file, out = argv[1:5]
    with open(body_file, "rb") as f:
        body = f.read()
    with open(out, "w") as f:
        if scheme == "github":
            sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            f.write(f"X-Hub-Signature-256: sha256={sig}\n")
            return
        if len(argv) < 6 or not argv[5].isdigit():
            sys.exit(__doc__)
        n, first = int(argv[5]), int(argv[6]) if len(argv) > 6 else 0
        key = base64.b64decode(secret.removeprefix("whsec_"))
        ts = str(int(time.time()))
        for i in range(first, first + n):
            wid = f"msg_bench_{i}"
            mac = hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()
            sig = base64.b64encode(mac).decode()
            f.write(f"webhook-id: {wid}\twebhook-timestamp: {ts}\twebhook-signature: v1,{sig}\n")


if __name__ == "__main__":
    main(sys.argv)
