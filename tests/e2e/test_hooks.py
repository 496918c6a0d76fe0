"""Other tools' webhooks, POST /hooks/<name>, end to end: each scheme
(github, standard-webhooks, bearer, hmac-sha256) takes what its sender
signs and refuses the rest saying which check failed; a Standard Webhooks
delivery runs once, on one host or on two sharing a Redis; the script's
reply shapes, failures and deadline; the log and the metrics; and the
bundled Alertmanager example posting to a fake Cliq.

Requests are signed here, in Python (hmac, hashlib, base64), at the host's
"now": an independent signer of the same published schemes."""

import base64
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest
import uuid

from fake_cliq import FakeCliq, channel_path
from hostlib import HERE, REPO, Host, Key
from redislib import Redis
from test_guard import metric

SCRIPTS = os.path.join(HERE, "hook_scripts")
KEY = Key("main")  # Cliq's: a host needs one, though hooks do not use it

GH_SECRET = "gh-secret-e2e-0123456789"
GH_NEXT = "gh-next-secret-e2e-0123456789"
# The Standard Webhooks test vector's secret (tests/unit/test_hooksig.c),
# and a second one the hook rotates to.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_NEXT = "whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA=="
BEARER = "bearer-token-e2e-0123456789"
NAMED = "named-token-e2e-0123456789"
HEX_SECRET = "hex-secret-e2e-0123456789"
B64_SECRET = "b64-secret-e2e-0123456789"
SECRETS = (GH_SECRET, GH_NEXT, SW_SECRET, SW_SECRET[6:], SW_NEXT, SW_NEXT[6:], BEARER, NAMED,
           HEX_SECRET, B64_SECRET)

HOOKS = f'''
hooks = {{
  gh      = {{ scheme = "github", secret = "{GH_SECRET}", secrets = {{ "{GH_NEXT}" }} }},
  sw      = {{ scheme = "standard-webhooks", secret = "{SW_SECRET}", secrets = {{ "{SW_NEXT}" }},
              tolerance_s = 300 }},
  bearer  = {{ scheme = "bearer", secret = "{BEARER}" }},
  named   = {{ scheme = "bearer", header = "X-Grafana-Token", secret = "{NAMED}" }},
  hexsig  = {{ scheme = "hmac-sha256", header = "X-Signature", secret = "{HEX_SECRET}" }},
  b64sig  = {{ scheme = "hmac-sha256", header = "X-Sig-B64", encoding = "base64",
              prefix = "sha256=", secret = "{B64_SECRET}" }},
  swretry = {{ scheme = "standard-webhooks", secret = "{SW_SECRET}" }},
  replies = {{ scheme = "bearer", secret = "{BEARER}" }},
  ghost   = {{ scheme = "bearer", secret = "{BEARER}" }},
  noreceive = {{ scheme = "bearer", secret = "{BEARER}" }},
}}
'''


def hmac256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def sw_key(secret: str) -> bytes:
    return base64.b64decode(secret[6:] if secret.startswith("whsec_") else secret)


def sw_headers(body: bytes, secret=SW_SECRET, msg_id=None, ts=None, sig=None):
    """A Standard Webhooks delivery's headers: id, timestamp (now unless
    given) and the v1 signature of id.timestamp.body by secret."""
    msg_id = msg_id or "msg_" + uuid.uuid4().hex
    ts = str(int(time.time()) if ts is None else ts)
    if sig is None:
        mac = hmac256(sw_key(secret), f"{msg_id}.{ts}.".encode() + body)
        sig = "v1," + base64.b64encode(mac).decode()
    return {"webhook-id": msg_id, "webhook-timestamp": ts, "webhook-signature": sig}


def gh_headers(body: bytes, secret=GH_SECRET):
    return {"X-Hub-Signature-256": "sha256=" + hmac256(secret.encode(), body).hex()}


def as_bytes(body):
    if isinstance(body, (dict, list)):
        return json.dumps(body).encode()
    return body.encode() if isinstance(body, str) else body


def write_config(folder, text):
    path = os.path.join(folder, "cliqhost.lua")
    with open(path, "w") as f:
        f.write(text)
    return path


def wait(pred, timeout=10):
    """Waits until pred() is true; returns whether it became so."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


class HookHost(unittest.TestCase):
    """One host with a hook of every scheme, on tests/e2e/hook_scripts."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-hooks-")
        # replay_memory = 0 (Cliq calls checked by timestamp only) must not
        # let a webhook id through twice: hooks have their own memory.
        cfg = write_config(cls.dir, f'scripts = "{SCRIPTS}"\ndata_dir = "{cls.dir}/data"\n'
                                    "deadline_ms = 1000\nmax_body_bytes = 2048\n"
                                    "max_cpu_ms = 200\nreplay_memory = 0\n" + HOOKS)
        cls.host = Host("--config", cfg, keys=[KEY.spki])
        cls.runs = {}  # hook name -> its script's run count, as ok() last saw it

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        log = cls.host.log()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, log
        assert not cls.host.sanitizer_reports(), log
        for s in SECRETS:
            assert s not in log, f"secret {s} in the log:\n{log}"

    def hook(self, name, body=b"{}", headers=None, query=""):
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        return self.host.request("POST", f"/hooks/{name}{query}", as_bytes(body), h)

    def refused(self, r, message):
        """r is a 401 whose error is message (that the script did not run
        shows at the hook's next ok())."""
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"], message)

    def ok(self, r, name):
        """r is the echo script's 200 for the hook name, and the script ran
        once since the last ok() of that hook (not for what was refused)."""
        self.assertEqual(r.status, 200, r)
        out = r.json()
        self.assertEqual(out["name"], name)
        self.assertEqual(out["runs"], self.runs.get(name, 0) + 1,
                         "the script ran other than once since the hook's last good delivery")
        self.runs[name] = out["runs"]
        return out


class Schemes(HookHost):
    def test_github(self):
        body = b'{"action":"opened","number":7}'
        out = self.ok(self.hook("gh", body, gh_headers(body)), "gh")
        self.assertEqual(out["body"], {"action": "opened", "number": 7})
        self.refused(self.hook("gh", body, gh_headers(body, "another secret")),
                     "X-Hub-Signature-256 does not match the body (wrong secret, or the body "
                     "was changed)")
        self.refused(self.hook("gh", body + b" ", gh_headers(body)),
                     "X-Hub-Signature-256 does not match the body (wrong secret, or the body "
                     "was changed)")
        self.refused(self.hook("gh", body),
                     "missing X-Hub-Signature-256 header (GitHub signs every delivery when "
                     "the webhook has a secret)")
        # The webhook's secret rotated: deliveries signed with the next one pass.
        self.ok(self.hook("gh", body, gh_headers(body, GH_NEXT)), "gh")
        # GitHub's other content type: the form body as sent, signed as is.
        form = b"payload=%7B%22zen%22%3A%22Keep+it+simple.%22%7D"
        out = self.ok(self.hook("gh", form, dict(gh_headers(form), **{
            "Content-Type": "application/x-www-form-urlencoded"})), "gh")
        self.assertEqual((out["kind"], out["text"]), ("string", form.decode()))
        self.assertEqual(out["query"], {})
        sig = gh_headers(body)["X-Hub-Signature-256"]
        for bad in (sig[len("sha256="):], "sha1=" + sig[7:], sig[:-2], sig + "00",
                    sig[:-1] + "g"):
            with self.subTest(header=bad):
                self.refused(self.hook("gh", body, {"X-Hub-Signature-256": bad}),
                             'X-Hub-Signature-256 is not "sha256=" and 64 hex digits')

    def test_standard_webhooks(self):
        body = b'{"type":"deploy.done","data":{"id":42}}'
        h = sw_headers(body)
        out = self.ok(self.hook("sw", body, h), "sw")
        self.assertEqual(out["body"], {"type": "deploy.done", "data": {"id": 42}})
        self.assertEqual(out["headers"]["webhook-id"], h["webhook-id"])
        # Signed with another secret, or over another body.
        self.refused(self.hook("sw", body, sw_headers(body, "whsec_" + base64.b64encode(
            b"some other secret").decode())),
            "no webhook-signature matches (v1 signatures checked: 1)")
        h = sw_headers(body)
        self.refused(self.hook("sw", body + b" ", h),
                     "no webhook-signature matches (v1 signatures checked: 1)")
        # Each header missing.
        for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
            with self.subTest(missing=name):
                h = sw_headers(body)
                del h[name]
                self.refused(self.hook("sw", body, h),
                             f"missing {name} header (a Standard Webhooks delivery has "
                             "webhook-id, webhook-timestamp and webhook-signature)")
        # Malformed: a timestamp that is not seconds, a signature that is
        # not base64 of 32 bytes, no v1 entry at all.
        for ts in ("abc", "-5", "1.5", str(int(time.time()) * 1000000)):
            with self.subTest(ts=ts):
                self.refused(self.hook("sw", body, sw_headers(body, ts=ts)),
                             "webhook-timestamp is not a Unix time in seconds")
        self.refused(self.hook("sw", body, sw_headers(body, sig="v1,not-base64!!")),
                     "no webhook-signature matches (v1 signatures checked: 1)")
        good = sw_headers(body)
        self.refused(self.hook("sw", body, dict(good, **{
            "webhook-signature": "v1a," + good["webhook-signature"][3:]})),
            "no webhook-signature matches (v1 signatures checked: 0)")
        # Several entries: one that matches is enough.
        h = sw_headers(body)
        h["webhook-signature"] = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " + \
            h["webhook-signature"]
        self.ok(self.hook("sw", body, h), "sw")

    def test_standard_webhooks_timestamps(self):
        body = b'{"n":1}'
        now = int(time.time())
        r = self.hook("sw", body, sw_headers(body, ts=now - 3600))
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"],
                         r"^webhook-timestamp is 36\d\d s old, more than the hook's "
                         r"tolerance_s \(300\)$")
        r = self.hook("sw", body, sw_headers(body, ts=now + 3600))
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"],
                         r"^webhook-timestamp is 3[56]\d\d s in the future, more than the "
                         r"hook's tolerance_s \(300\)$")
        # Within the tolerance either way.
        self.ok(self.hook("sw", body, sw_headers(body, ts=now - 200)), "sw")
        self.ok(self.hook("sw", body, sw_headers(body, ts=now + 200)), "sw")

    def test_standard_webhooks_published_vector_is_stale(self):
        # The spec's vector is correctly signed, but from 2021: refused as
        # stale, before its signature is looked at.
        body = b'{"test": 2432232314}'
        h = {"webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek", "webhook-timestamp": "1614265330",
             "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="}
        # Our signer gives the vector's signature, so it signs as the spec does.
        self.assertEqual(sw_headers(body, msg_id=h["webhook-id"], ts=1614265330),
                         h)
        r = self.hook("sw", body, h)
        self.assertEqual(r.status, 401, r)
        self.assertRegex(r.json()["error"],
                         r"^webhook-timestamp is \d+ s old, more than the hook's tolerance_s "
                         r"\(300\)$")

    def test_standard_webhooks_rotation(self):
        body = b'{"rotated":true}'
        self.ok(self.hook("sw", body, sw_headers(body, secret=SW_NEXT)), "sw")
        # A sender in the middle of its rotation signs with both.
        a = sw_headers(body, secret=SW_SECRET)
        b = sw_headers(body, secret=SW_NEXT, msg_id=a["webhook-id"],
                       ts=a["webhook-timestamp"])
        a["webhook-signature"] += " " + b["webhook-signature"]
        self.ok(self.hook("sw", body, a), "sw")

    def test_standard_webhooks_duplicate_runs_once(self):
        body = b'{"once":true}'
        h = sw_headers(body)
        first = self.ok(self.hook("sw", body, h), "sw")
        again = self.hook("sw", body, h)
        self.assertEqual(again.status, 200, again)
        out = again.json()
        self.assertEqual(out["ok"], True)
        self.assertEqual(out["duplicate"], True)
        self.assertNotIn("runs", out)
        self.assertIsNotNone(self.host.wait_for(
            "duplicate webhook id: already received; the script did not run again"),
            self.host.log())
        # Re-signed with a new timestamp (a sender's retry), still the same id.
        h2 = sw_headers(body, msg_id=h["webhook-id"])
        self.assertTrue(self.hook("sw", body, h2).json().get("duplicate"))
        # The script ran once for the three: the next new delivery counts one more.
        nxt = self.ok(self.hook("sw", body, sw_headers(body)), "sw")
        self.assertEqual(nxt["runs"], first["runs"] + 1)

    # A delivery answered 5xx (the script failed, asked for a retry, or
    # max_handlers was reached) gives its id back: the sender's retry runs.
    def test_standard_webhooks_retry_after_a_5xx_runs_again(self):
        body = b'{"retry":true}'
        h = sw_headers(body)
        r = self.hook("swretry", body, h)
        self.assertEqual((r.status, r.json()), (503, {"error": "not now; send it again"}))
        # The sender's retry: the same id, signed again later.
        r = self.hook("swretry", body, sw_headers(body, msg_id=h["webhook-id"]))
        self.assertEqual((r.status, r.json()), (200, {"attempts": 2}))
        # Taken now: the next retry is a duplicate.
        r = self.hook("swretry", body, sw_headers(body, msg_id=h["webhook-id"]))
        self.assertEqual(r.status, 200, r)
        self.assertTrue(r.json()["duplicate"], r)

    def test_standard_webhooks_same_delivery_at_once_runs_once(self):
        # A sender (or several of its workers) sends one delivery many
        # times at once: it runs once, on whichever worker took it first.
        body = b'{"burst":true}'
        h = dict(sw_headers(body), **{"Content-Type": "application/json"})
        before = self.ok(self.hook("sw", body, sw_headers(body)), "sw")["runs"]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(
                lambda _: self.host.request("POST", "/hooks/sw", body, h), range(8)))
        self.assertEqual([r.status for r in replies], [200] * 8)
        ran = [r.json() for r in replies if "runs" in r.json()]
        self.assertEqual(len(ran), 1, replies)
        self.assertEqual(ran[0]["runs"], before + 1)
        self.runs["sw"] = before + 1
        self.assertEqual(sum(1 for r in replies if r.json().get("duplicate")), 7, replies)

    def test_bearer_authorization(self):
        body = {"alert": "disk"}
        out = self.ok(self.hook("bearer", body, {"Authorization": "Bearer " + BEARER}), "bearer")
        self.assertEqual(out["body"], body)
        self.ok(self.hook("bearer", body, {"Authorization": "bearer   " + BEARER}), "bearer")
        self.refused(self.hook("bearer", body, {"Authorization": "Bearer " + BEARER + "x"}),
                     "the bearer token does not match")
        self.refused(self.hook("bearer", body, {"Authorization": "Bearer " + BEARER[:-1]}),
                     "the bearer token does not match")
        self.refused(self.hook("bearer", body), "missing Authorization header")
        for bad in ("Basic " + BEARER, BEARER, "Bearer", "Bearer   ", "Bearer" + BEARER):
            with self.subTest(header=bad):
                self.refused(self.hook("bearer", body, {"Authorization": bad}),
                             'Authorization is not "Bearer <token>"')

    def test_bearer_named_header(self):
        body = {"title": "CPU"}
        self.ok(self.hook("named", body, {"X-Grafana-Token": NAMED}), "named")
        self.refused(self.hook("named", body, {"X-Grafana-Token": NAMED + "x"}),
                     "X-Grafana-Token does not match the hook's token")
        self.refused(self.hook("named", body, {"Authorization": "Bearer " + NAMED}),
                     "missing X-Grafana-Token header")
        # The token itself, not "Bearer <token>", goes in a named header.
        self.refused(self.hook("named", body, {"X-Grafana-Token": "Bearer " + NAMED}),
                     "X-Grafana-Token does not match the hook's token")

    def test_hmac_sha256_hex(self):
        body = b"plain text event"
        sig = hmac256(HEX_SECRET.encode(), body).hex()
        out = self.ok(self.hook("hexsig", body, {"X-Signature": sig}), "hexsig")
        self.assertEqual(out["body"], "plain text event")
        self.ok(self.hook("hexsig", body, {"X-Signature": sig.upper()}), "hexsig")
        wrong = hmac256(b"other", body).hex()
        self.refused(self.hook("hexsig", body, {"X-Signature": wrong}),
                     "X-Signature does not match the body (wrong secret, or the body was "
                     "changed)")
        self.refused(self.hook("hexsig", body), "missing X-Signature header")
        for bad in (sig[:-1], sig + "a", "sha256=" + sig, base64.b64encode(bytes.fromhex(sig))):
            with self.subTest(header=bad):
                self.refused(self.hook("hexsig", body, {"X-Signature": bad}),
                             "X-Signature is not 64 hex digits")

    def test_hmac_sha256_base64_with_prefix(self):
        body = b'{"event":"charge"}'
        sig = "sha256=" + base64.b64encode(hmac256(B64_SECRET.encode(), body)).decode()
        self.ok(self.hook("b64sig", body, {"X-Sig-B64": sig}), "b64sig")
        self.ok(self.hook("b64sig", body, {"X-Sig-B64": sig.rstrip("=")}), "b64sig")
        wrong = "sha256=" + base64.b64encode(hmac256(b"other", body)).decode()
        self.refused(self.hook("b64sig", body, {"X-Sig-B64": wrong}),
                     "X-Sig-B64 does not match the body (wrong secret, or the body was "
                     "changed)")
        self.refused(self.hook("b64sig", body), "missing X-Sig-B64 header")
        self.refused(self.hook("b64sig", body, {"X-Sig-B64": sig[len("sha256="):]}),
                     'X-Sig-B64 does not start with "sha256="')
        for bad in ("sha256=" + hmac256(B64_SECRET.encode(), body).hex(),
                    "sha256=" + base64.b64encode(b"short").decode(), "sha256=!!!"):
            with self.subTest(header=bad):
                self.refused(self.hook("b64sig", body, {"X-Sig-B64": bad}),
                             'X-Sig-B64 is not "sha256=" and the base64 of 32 bytes')


class Requests(HookHost):
    def bearer(self, name, body=b"{}", query="", headers=None):
        h = {"Authorization": "Bearer " + BEARER}
        h.update(headers or {})
        return self.hook(name, body, h, query)

    def test_names_and_configuration(self):
        r = self.bearer("nohook")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"],
                         "hook 'nohook' is refused: the config gives it no verification "
                         "(hooks = { nohook = { scheme = ..., secret = ... } })")
        for bad in ("bad.name", "a" * 65, "", "sw%2F..", "a%20b"):
            with self.subTest(name=bad):
                r = self.bearer(bad)
                self.assertEqual(r.status, 404, r)
                self.assertTrue(r.json()["error"].startswith("no such hook"), r)
        # Configured and verified, but scripts/hooks/ghost.lua does not exist.
        # The tool that called is told which script is missing, not where
        # the scripts folder is on this machine.
        r = self.bearer("ghost")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"], "no script for hook ghost: looked for hooks/ghost.lua")
        r = self.bearer("noreceive")
        self.assertEqual(r.status, 404, r)
        self.assertEqual(r.json()["error"],
                         "hooks/noreceive.lua has no 'receive' handler (it has: handle)")
        self.assertNotIn(SCRIPTS, r.body.decode())
        # Not verified: 401 before the missing script is looked for.
        self.assertEqual(self.hook("ghost").status, 401)

    def test_method_and_size(self):
        r = self.host.request("GET", "/hooks/bearer", headers={"Authorization": "Bearer " + BEARER})
        self.assertEqual(r.status, 405, r)
        self.assertEqual(r.json()["error"], "method not allowed: a hook takes POST")
        self.assertEqual(r.headers.get("allow"), "POST")
        r = self.bearer("bearer", b"x" * 4000)
        self.assertEqual(r.status, 413, r)
        self.assertEqual(r.json()["error"], "body of 4000 bytes is over the limit of 2048 bytes")
        self.ok(self.bearer("bearer", b"x" * 2000), "bearer")
        # Sent in chunks (no Content-Length): the same cap, and a body
        # under it arrives whole, its signature checked over all of it.
        for size, status in ((1900, 200), (3000, 413)):
            body = b'{"k":"' + b"x" * size + b'"}'
            conn = http.client.HTTPConnection("127.0.0.1", self.host.port, timeout=10)
            try:
                conn.request("POST", "/hooks/gh", body=iter([body[:50], body[50:]]),
                             headers=gh_headers(body), encode_chunked=True)
                r = conn.getresponse()
                got = json.loads(r.read())
            finally:
                conn.close()
            self.assertEqual(r.status, status, got)
            if status == 200:
                self.assertEqual(got["text"], body.decode())
            else:
                self.assertEqual(got["error"], "body is over the limit of 2048 bytes")

    def test_body_json_or_text(self):
        out = self.ok(self.bearer("bearer", b' {"a": [1, 2, {"b": null}]}\n'), "bearer")
        self.assertEqual(out["kind"], "table")
        self.assertEqual(out["body"]["a"][:2], [1, 2])
        self.assertEqual(out["text"], ' {"a": [1, 2, {"b": null}]}\n')
        out = self.ok(self.bearer("bearer", b"[3, 4]"), "bearer")
        self.assertEqual((out["kind"], out["body"]), ("table", [3, 4]))
        # Only an object or an array is decoded: JSON's scalars stay text.
        for text in ("name=value&x=1", '{"a":1} trailing', '{"unclosed": ', "", "[1,2",
                     "123", "null", '"quoted"', "true"):
            with self.subTest(text=text):
                out = self.ok(self.bearer("bearer", text.encode()), "bearer")
                self.assertEqual(out["kind"], "string")
                self.assertEqual(out["body"], text)
                self.assertEqual(out["text"], text)

    def test_headers_query_and_request_fields(self):
        r = self.bearer("bearer", b"{}", "?q=1&name=two%20words&empty=",
                        {"X-Custom-Thing": "Value Kept", "X-Event": "push"})
        out = self.ok(r, "bearer")
        self.assertEqual(out["method"], "POST")
        self.assertEqual(out["headers"]["x-custom-thing"], "Value Kept")
        self.assertEqual(out["headers"]["x-event"], "push")
        self.assertEqual(out["headers"]["content-type"], "application/json")
        self.assertNotIn("X-Custom-Thing", out["headers"])
        self.assertEqual(out["query"], {"q": "1", "name": "two words", "empty": ""})
        # req.id is the request id in the log line.
        self.assertRegex(out["id"], r"^\S+$")
        self.assertIsNotNone(self.host.wait_for(re.escape(out["id"]) + ".*type=hook.*name=bearer"),
                             self.host.log())

    def test_reply_shapes(self):
        r = self.bearer("replies", query="?mode=table")
        self.assertEqual((r.status, r.json()), (201, {"made": "here", "n": 3}))
        self.assertIn("application/json", r.headers["content-type"])
        r = self.bearer("replies", query="?mode=string")
        self.assertEqual((r.status, r.json()), (200, {"message": "taken"}))
        r = self.bearer("replies", query="?mode=nothing")
        self.assertEqual((r.status, r.json()), (200, {"ok": True}))
        r = self.bearer("replies", query="?mode=status_only&status=418")
        self.assertEqual((r.status, r.json()), (418, {"ok": True}))
        r = self.bearer("replies", query="?mode=status_only&status=202.0")
        self.assertEqual((r.status, r.json()), (202, {"ok": True}))
        r = self.bearer("replies", query="?mode=unknown")
        self.assertEqual((r.status, r.json()), (400, {"error": "unknown mode unknown"}))
        # An empty table is an object; a list, JSON's null and the marks
        # as the json module writes them.
        r = self.bearer("replies", query="?mode=empty")
        self.assertEqual((r.status, r.body), (200, b"{}"))
        r = self.bearer("replies", query="?mode=list")
        self.assertEqual((r.status, r.json()), (207, ["a", "b"]))
        r = self.bearer("replies", query="?mode=null_inside")
        self.assertEqual(r.json(), {"gone": None, "list": [], "obj": {}})

    def failed(self, r, error="the hook's script failed; the host's log has the details"):
        self.assertEqual(r.status, 500, r)
        out = r.json()
        self.assertEqual(out["error"], error)
        self.assertRegex(out["request_id"], r"^\S+$")
        return out

    def test_bad_replies_are_500(self):
        for mode, logged in (("bad_status", "receive returned the status 99; use an integer "
                                            "from 200 to 599"),
                             ("text_status", "receive returned a string as the status; use an "
                                             "integer from 200 to 599"),
                             ("status_only&status=200.5", "receive returned the status 200.5"),
                             ("status_only&status=100", "receive returned the status 100;"),
                             ("not_json", "reply.f: cannot encode a function"),
                             ("number", "receive returned a number")):
            with self.subTest(mode=mode):
                mark = len(self.host.lines)
                out = self.failed(self.bearer("replies", query="?mode=" + mode))
                line = self.host.wait_for(re.escape(out["request_id"]) + ".*failure=reply",
                                          start=mark)
                self.assertIsNotNone(line, self.host.log())
                self.assertIn(logged, line)

    def test_script_that_raises(self):
        mark = len(self.host.lines)
        r = self.bearer("replies", query="?mode=raise")
        out = self.failed(r)
        self.assertNotIn("secret plan", r.body.decode())
        line = self.host.wait_for(re.escape(out["request_id"]) + ".*the secret plan", start=mark)
        self.assertIsNotNone(line, self.host.log())

    def test_script_stopped_by_a_limit(self):
        r = self.bearer("replies", query="?mode=spin")
        self.assertEqual(r.status, 500, r)
        self.assertEqual(r.json()["error"], "the hook's script was stopped: used more than "
                         "200 ms of CPU without pausing")

    def test_past_the_deadline_202_then_the_log(self):
        mark = len(self.host.lines)
        r = self.bearer("replies", query="?mode=slow&sleep=2&tag=t1")
        self.assertEqual(r.status, 202, r)
        out = r.json()
        self.assertEqual((out["ok"], out["accepted"]), (True, True))
        rid = out["request_id"]
        line = self.host.wait_for(re.escape(rid) + ".*the script finished after the reply "
                                  r"\(status 200\)", timeout=30, start=mark)
        self.assertIsNotNone(line, self.host.log())
        self.assertIsNotNone(self.host.wait_for("slow hook: done t1", start=mark))
        # One that fails late: the log says so, without the 202 changing.
        r = self.bearer("replies", query="?mode=slow_raise&sleep=2")
        self.assertEqual(r.status, 202, r)
        rid = r.json()["request_id"]
        line = self.host.wait_for(re.escape(rid) + ".*the script failed after the reply",
                                  timeout=30, start=mark)
        self.assertIsNotNone(line, self.host.log())
        self.assertNotIn("sk-late-0123", r.body.decode())

    def test_caller_that_hangs_up(self):
        # The tool gives up before the answer: the script still finishes
        # (before the deadline or after it) and its outcome is logged.
        mark = len(self.host.lines)
        for q in ("?mode=slow&sleep=0.5&tag=hang1", "?mode=slow&sleep=1.5&tag=hang2"):
            with socket.create_connection(("127.0.0.1", self.host.port)) as s:
                s.sendall((f"POST /hooks/replies{q} HTTP/1.1\r\nHost: x\r\n"
                           f"Authorization: Bearer {BEARER}\r\nContent-Length: 2\r\n\r\n{{}}")
                          .encode())
                tag = q.rsplit("=", 1)[1]
                self.assertIsNotNone(self.host.wait_for("slow hook: start " + tag, start=mark))
            # (hung up: the socket is closed before any answer)
        self.assertIsNotNone(self.host.wait_for("slow hook: done hang1", timeout=30))
        self.assertIsNotNone(self.host.wait_for("the script finished after the reply",
                                                timeout=30, start=mark), self.host.log())
        self.assertIsNotNone(self.host.wait_for("slow hook: done hang2", timeout=30))
        r = self.bearer("replies", query="?mode=string")
        self.assertEqual((r.status, r.json()), (200, {"message": "taken"}))

    def test_secrets_are_masked_in_the_log(self):
        for secret in (BEARER, GH_SECRET, SW_SECRET, SW_SECRET[6:], HEX_SECRET, B64_SECRET,
                       NAMED):
            with self.subTest(secret=secret):
                mark = len(self.host.lines)
                self.ok(self.bearer("bearer", headers={"X-Echo": f"got <{secret}>"}), "bearer")
                line = self.host.wait_for("echo: got <", start=mark)
                self.assertIsNotNone(line, self.host.log())
                self.assertIn("echo: got <" + "*" * len(secret) + ">", line)

    def test_metrics_and_log_lines(self):
        def scrape():
            r = self.host.request("GET", "/metrics")
            self.assertEqual(r.status, 200)
            return r.body.decode()

        def count(text, status):
            return metric(text, "cliqhost_requests_total", type="hook", handler="receive",
                          status=status)

        before = scrape()
        for _ in range(3):
            self.ok(self.bearer("bearer"), "bearer")
        self.failed(self.bearer("replies", query="?mode=raise"))
        self.assertEqual(self.bearer("replies", query="?mode=unknown").status, 400)
        self.assertEqual(self.hook("bearer").status, 401)
        self.assertEqual(self.hook("nohook").status, 401)
        self.assertEqual(self.bearer("ghost").status, 404)
        after = scrape()
        self.assertEqual(count(after, "401") - count(before, "401"), 2, after)
        self.assertEqual(count(after, "404") - count(before, "404"), 1, after)
        self.assertEqual(count(after, "200") - count(before, "200"), 3, after)
        self.assertEqual(count(after, "500") - count(before, "500"), 1, after)
        self.assertEqual(count(after, "400") - count(before, "400"), 1, after)
        # One log line per request: its id, the path, the hook's name and status.
        out = self.ok(self.bearer("bearer"), "bearer")
        line = self.host.wait_for(re.escape(out["id"]) + ".*path=/hooks/bearer")
        self.assertIsNotNone(line, self.host.log())
        self.assertIn("type=hook", line)
        self.assertIn("name=bearer", line)
        self.assertIn("status=200", line)
        self.assertEqual(sum(1 for l in self.host.lines if out["id"] in l and "path=" in l), 1)


class SharedRedis(unittest.TestCase):
    """Two hosts on one Redis: a Standard Webhooks delivery sent to both
    runs its script once."""

    def test_same_delivery_on_two_hosts_runs_once(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-hooks-redis-")
        self.addCleanup(shutil.rmtree, d, True)
        redis = Redis()
        self.addCleanup(redis.stop)
        hosts = []
        for n in ("a", "b"):
            os.makedirs(os.path.join(d, n))
            cfg = write_config(os.path.join(d, n),
                               f'scripts = "{SCRIPTS}"\ndata_dir = "{d}/{n}/data"\n'
                               f'store = "{redis.url}"\n' + HOOKS)
            h = Host("--config", cfg, keys=[KEY.spki])
            self.addCleanup(h.stop)
            self.assertIsNotNone(h.wait_for("redis: connected to ", timeout=15), h.log())
            hosts.append(h)
        a, b = hosts
        body = b'{"shared":true}'
        hd = sw_headers(body)
        hd["Content-Type"] = "application/json"
        r = a.request("POST", "/hooks/sw", body, hd)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["runs"], 1)
        r = b.request("POST", "/hooks/sw", body, hd)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["duplicate"], True, r)
        self.assertNotIn("runs", r.json())
        # A sender resends a delivery whose answer it did not get for hours
        # (with a new timestamp): the shared claim of its id lasts a day,
        # as a host's own memory of ids does, not just the timestamp's
        # tolerance. (The claim's key: the prefix, "r:" and the SHA-256 of
        # "hook", the name and the id.)
        digest = hashlib.sha256(b"hook\0sw\0" + hd["webhook-id"].encode()).hexdigest()
        ttl_ms = redis.command("PTTL", "cliqhost:r:" + digest)
        self.assertGreater(ttl_ms, 23 * 3600 * 1000)
        # A new delivery on b runs there: the counter (in the shared store)
        # went up once for the two.
        r = b.request("POST", "/hooks/sw", body, dict(sw_headers(body),
                                                         **{"Content-Type": "application/json"}))
        self.assertEqual(r.json()["runs"], 2, r)
        # One delivery sent to both hosts at once, four times each: it runs once.
        hd = dict(sw_headers(body), **{"Content-Type": "application/json"})
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            replies = list(pool.map(lambda i: hosts[i % 2].request("POST", "/hooks/sw", body, hd),
                                    range(8)))
        self.assertEqual([r.status for r in replies], [200] * 8)
        self.assertEqual([r.json().get("runs") for r in replies if "runs" in r.json()], [3],
                         replies)
        # A delivery a's script answered 503 is given back: its retry runs on
        # b, and is taken there.
        body = b'{"retry":true}'
        hd = dict(sw_headers(body), **{"Content-Type": "application/json"})
        r = a.request("POST", "/hooks/swretry", body, hd)
        self.assertEqual(r.status, 503, r)
        retry = dict(sw_headers(body, msg_id=hd["webhook-id"]),
                     **{"Content-Type": "application/json"})
        self.assertTrue(wait(lambda: redis.command("EXISTS", "cliqhost:r:" + hashlib.sha256(
            b"hook\0swretry\0" + hd["webhook-id"].encode()).hexdigest()) == 0))
        r = b.request("POST", "/hooks/swretry", body, retry)
        self.assertEqual((r.status, r.json()), (200, {"attempts": 2}), r)
        r = a.request("POST", "/hooks/swretry", body, retry)
        self.assertTrue(r.json().get("duplicate"), r)
        for h in hosts:
            self.assertEqual(h.stop(), 0, h.log())
            self.assertEqual(h.sanitizer_reports(), [], h.log())


class Reload(unittest.TestCase):
    """SIGHUP: a hook added to the config is served, a changed token
    replaces the old one, a removed hook is refused."""

    def test_hooks_follow_the_config(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-hooks-reload-")
        self.addCleanup(shutil.rmtree, d, True)
        base = f'scripts = "{SCRIPTS}"\ndata_dir = "{d}/data"\n'
        cfg = write_config(d, base)
        h = Host("--config", cfg, keys=[KEY.spki])
        self.addCleanup(h.stop)

        def send(token):
            return h.request("POST", "/hooks/bearer", b"{}",
                             {"Authorization": "Bearer " + token})

        def reload(text):
            write_config(d, base + text)
            mark = len(h.lines)
            h.proc.send_signal(signal.SIGHUP)
            self.assertIsNotNone(h.wait_for("SIGHUP: config reloaded", start=mark), h.log())

        r = send(BEARER)
        self.assertEqual(r.status, 401, r)
        self.assertIn("the config gives it no verification", r.json()["error"])
        reload(f'hooks = {{ bearer = {{ scheme = "bearer", secret = "{BEARER}" }} }}')
        self.assertEqual(send(BEARER).json()["name"], "bearer")
        reload(f'hooks = {{ bearer = {{ scheme = "bearer", secret = "{NAMED}" }} }}')
        self.assertEqual(send(BEARER).json()["error"], "the bearer token does not match")
        self.assertEqual(send(NAMED).status, 200)
        reload("")
        self.assertEqual(send(NAMED).status, 401)
        self.assertEqual(h.stop(), 0, h.log())
        self.assertEqual(h.sanitizer_reports(), [], h.log())
        for s in (BEARER, NAMED):
            self.assertNotIn(s, h.log())


ALERTS_TOKEN = "1001.e2eHookAlerts.5c1e9a7b3d2f4e6a8b90"
AM_TOKEN = "am-token-e2e-0123456789"


def alertmanager_payload(status, n=1, channel=None):
    alerts = []
    for i in range(n):
        alerts.append({
            "status": status,
            "labels": {"alertname": "DiskFull", "severity": "critical",
                       "instance": f"db{i}:9100"},
            "annotations": {"summary": f"Disk on db{i} is 95% full"},
            "startsAt": "2026-11-23T09:30:00.123Z",
            "endsAt": "2026-11-23T10:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example/graph?g0.expr=disk",
        })
    common = {"alertname": "DiskFull"}
    if channel:
        common["channel"] = channel
    return {"version": "4", "groupKey": "{}:{alertname=\"DiskFull\"}", "status": status,
            "receiver": "cliq", "groupLabels": {"alertname": "DiskFull"},
            "commonLabels": common, "commonAnnotations": {},
            "externalURL": "http://alertmanager.example", "alerts": alerts}


class AlertmanagerExample(unittest.TestCase):
    """scripts/hooks/alertmanager.lua on a real host with a bearer hook,
    posting to a fake Cliq."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-hooks-am-")
        cls.fake = FakeCliq(tokens=[ALERTS_TOKEN]).start()
        cfg = write_config(cls.dir, f'''scripts = "{os.path.join(REPO, "scripts")}"
data_dir = "{cls.dir}/data"
cliq_api = "{cls.fake.url}"
post_rate_per_min = 0
tokens = {{ default = "{ALERTS_TOKEN}" }}
hooks = {{ alertmanager = {{ scheme = "bearer", secret = "{AM_TOKEN}" }} }}
''')
        cls.host = Host("--config", cfg, keys=[KEY.spki])
        cls.runs = {}  # hook name -> its script's run count, as ok() last saw it

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        cls.fake.stop()
        log = cls.host.log()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0, log
        assert not cls.host.sanitizer_reports(), log
        assert AM_TOKEN not in log and ALERTS_TOKEN.rsplit(".", 1)[1] not in log, log

    def send(self, payload, token=AM_TOKEN):
        return self.host.request("POST", "/hooks/alertmanager", as_bytes(payload),
                                 {"Content-Type": "application/json",
                                  "Authorization": "Bearer " + token})

    def posted(self, channel, n):
        got = self.fake.wait_requests(n, channel_path(channel), timeout=30, token=ALERTS_TOKEN)
        self.assertEqual(len(got), n, self.host.log()[-3000:])
        return json.loads(got[n - 1].body)

    def test_firing_then_resolved(self):
        alerts = self.fake.count(channel_path("alerts"))
        r = self.send(alertmanager_payload("firing", n=7))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json(), {"posted": True, "alerts": 7})
        msg = self.posted("alerts", alerts + 1)
        self.assertEqual(msg["text"], "🔥 *7 firing* of 7: DiskFull")
        self.assertEqual(msg["card"]["title"], "🔥 Firing: DiskFull (7)")
        self.assertEqual(msg["slides"][0]["data"]["headers"],
                         ["Alert", "Severity", "Instance", "Summary", "When"])
        rows = msg["slides"][0]["data"]["rows"]
        self.assertEqual(len(rows), 5)
        self.assertEqual(rows[0]["Alert"], "🔥 DiskFull")
        self.assertEqual(rows[0]["Instance"], "db0:9100")
        self.assertEqual(rows[0]["When"], "since 2026-11-23 09:30 UTC")
        self.assertEqual(msg["slides"][1]["data"], "and 2 more")
        self.assertEqual([b["label"] for b in msg["buttons"]], ["Source", "Alertmanager"])

        r = self.send(alertmanager_payload("resolved", channel="db-team"))
        self.assertEqual(r.status, 200, r)
        msg = self.posted("db-team", 1)
        self.assertEqual(msg["text"], "✅ *DiskFull resolved*\nDisk on db0 is 95% full")
        self.assertEqual(msg["card"]["title"], "✅ Resolved: DiskFull (1)")
        self.assertEqual(self.fake.count(channel_path("alerts")), alerts + 1)

    def test_a_channel_label_that_is_no_channel_name(self):
        before = self.fake.count(channel_path("alerts"))
        mark = len(self.host.lines)
        r = self.send(alertmanager_payload("firing", channel="ops team!"))
        self.assertEqual(r.status, 200, r)
        self.posted("alerts", before + 1)
        self.assertIsNotNone(self.host.wait_for(
            "alertmanager: label channel ops team! is not a channel name; posting to alerts",
            start=mark), self.host.log())

    def test_no_token_is_503_so_alertmanager_sends_again(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-hooks-am2-")
        self.addCleanup(shutil.rmtree, d, True)
        cfg = write_config(d, f'''scripts = "{os.path.join(REPO, "scripts")}"
data_dir = "{d}/data"
cliq_api = "{self.fake.url}"
tokens = {{ other = "{ALERTS_TOKEN}" }}
hooks = {{ alertmanager = {{ scheme = "bearer", secret = "{AM_TOKEN}" }} }}
''')
        h = Host("--config", cfg, keys=[KEY.spki])
        self.addCleanup(h.stop)
        before = self.fake.count()
        r = h.request("POST", "/hooks/alertmanager", as_bytes(alertmanager_payload("firing")),
                      {"Authorization": "Bearer " + AM_TOKEN})
        self.assertEqual(r.status, 503, r)
        self.assertEqual(r.json()["error"],
                         "could not post to alerts: no token named 'default' in the config (a "
                         "token set from an unset environment variable is missing)")
        self.assertEqual(h.stop(), 0, h.log())
        self.assertEqual(self.fake.count(), before)

    def test_malformed_payload_is_400_and_nothing_posted(self):
        before = self.fake.count()
        for payload, error in (
                ({"version": "3", "status": "firing", "alerts": []},
                 "version 3 is not Alertmanager's webhook version 4"),
                (dict(alertmanager_payload("firing"), alerts=[]),
                 "alerts must be a non-empty list"),
                (dict(alertmanager_payload("firing"), status="burning"),
                 'status must be "firing" or "resolved", got burning'),
                ("not json at all", "the body is not Alertmanager's JSON object")):
            with self.subTest(error=error):
                r = self.send(payload)
                self.assertEqual(r.status, 400, r)
                self.assertEqual(r.json(), {"error": error})
        r = self.send(alertmanager_payload("firing"), token="wrong-token")
        self.assertEqual(r.status, 401, r)
        self.assertEqual(r.json()["error"], "the bearer token does not match")
        # The posts go out in order: after a good payload's post, nothing
        # else reached Cliq.
        r = self.send(alertmanager_payload("firing", channel="after-refusals"))
        self.assertEqual(r.status, 200, r)
        self.posted("after-refusals", 1)
        self.assertEqual(self.fake.count(), before + 1,
                         [x.decoded_path for x in self.fake.requests()])


if __name__ == "__main__":
    unittest.main()
