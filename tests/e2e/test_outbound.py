"""End-to-end tests of outbound webhooks (issue 4): scripts and operators
post to channels, bots and extensions through Cliq's incoming-webhook
endpoints, authenticated by named webhook tokens, through a durable outbox.

The real binary runs on loopback against FakeCliq (fake_cliq.py), which
checks every request the way Cliq would: the path, the webhook token
(zapikey), the app key, the Content-Type and the body. The handler script
(outbound_scripts/commands/post.lua) takes the binding, the target, the
message and the options from the request's params, so one script covers
every case.

Each class writes its own config file (tokens, cliq_api pointing at its
fake, a data_dir in a temporary folder) and runs its own host. The token
secrets are distinctive strings: when a class ends, the whole output of
every host it ran is searched for them, as is every reply and every
command's output along the way.
"""

import itertools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import tempfile
import time
import unittest

from cliq_bodies import body
from fake_cliq import (FakeCliq, app_incoming_path, bot_incoming_path, bot_message_path,
                       channel_path)
from hostlib import HERE, Host, Key, run_cli

SCRIPTS = os.path.join(HERE, "outbound_scripts")
KEY = Key("main")

# The webhook tokens of the config, by name. Each has a distinctive core so
# that a leak is found even when only part of a token is printed.
SECRETS = {
    "default": "1001.e2eDefault.5f0c9a7d31b2e8c4a6f1",
    "alerts": "1001.e2eAlerts.9b3d7e1f05c2a6b8d4e2",
    "opsdesk": "1001.e2eOpsdesk.2c8e4a6f19d3b7e0f5a3",
    "revoked": "1001.e2eRevoked.7a1c5e9b3f2d8a4c6b94",  # Cliq no longer knows it
    "paused_token": "1001.e2ePaused.4e6a2c8d0b1f3e5a7c85",  # disabled in the config
}
APP_ID = "2980000000000123"
APPKEY = "e2eAppkey.3d9f1b7c5a2e8d60b4c7"
LEAKABLE = list(SECRETS.values()) + [APPKEY]
LEAK_CORES = [s.rsplit(".", 1)[1] for s in LEAKABLE]

# The default token comes from the environment, as it would in production;
# unset_token's variable is never set, so that token is "not configured".
TOKEN_ENV = "CLIQHOST_E2E_TOKEN"
UNSET_ENV = "CLIQHOST_E2E_UNSET_TOKEN"
os.environ[TOKEN_ENV] = SECRETS["default"]
os.environ.pop(UNSET_ENV, None)

_names = itertools.count(1)


def unique(what):
    """A channel or bot name used by one test only. It holds no number
    standing alone, so counts in the host's output are not confused with it."""
    return f"e2e-{what}-p{os.getpid()}n{next(_names)}"


def now_ms():
    return int(time.time() * 1000)


def command(options):
    """A /post command body as Cliq sends it, the test's knobs in
    params.options. No response_url: nothing may go to the real Cliq."""
    return body("command", "execution_handler", "post", {"arguments": "", "options": options},
                response_url=False, timestamp=now_ms())


def closed_port():
    """A loopback port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


TIMES = [
    r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d(:\d\d)?(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?",  # ISO 8601
    r"\b\d{1,2}:\d\d(:\d\d)?(\.\d+)?\b",  # a clock time
    r"\b\d+(\.\d+)?\s*(ms|s|sec|secs|seconds?|m|min|minutes?|h|hours?|d|days?)\s+ago\b",
    r"\b1\d{9}(\d{3})?\b",  # Unix time in s or ms
]


def strip_times(text):
    """text without times (in the forms TIMES knows), so the numbers left
    are counts and statuses."""
    for rx in TIMES:
        text = re.sub(rx, " ", text)
    return text


def post_id(line):
    """The post's id in a line of `cliqhost outbox list`: the number the
    line starts with (optionally "#"), or one labelled id."""
    m = re.match(r"\s*#?(\d+)\b", line) or re.search(r"\bid\W{0,2}#?(\d+)\b", line, re.I)
    return m.group(1) if m else None


class OutboundTest(unittest.TestCase):
    """One fake Cliq, one config and one host per class."""

    rate = 0  # post_rate_per_min: no pacing unless the class tests it
    max_age = None  # post_max_age_s, or None for the default
    fake_down = False  # Cliq is unreachable from the start
    extra_config = ""  # more settings for the config file

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-outbound-")
        cls.data_dir = os.path.join(cls.dir, "data")
        os.makedirs(cls.data_dir)
        # Cliq knows every token but "revoked"; it knows "paused_token", so
        # only the host can stop a post made with it.
        cls.fake = FakeCliq(tokens=[v for k, v in SECRETS.items() if k != "revoked"],
                            apps={APP_ID: APPKEY}).start()
        cls.config = cls.write_config(cls.fake.url, cls.data_dir, "cliqhost.lua")
        cls.hosts = []
        cls.killed = []
        if cls.fake_down:
            cls.fake.down()
        try:
            cls.host = cls.start_host()
        except Exception:
            cls.fake.stop()
            shutil.rmtree(cls.dir, ignore_errors=True)
            raise

    @classmethod
    def write_config(cls, api, data_dir, filename):
        text = f'''-- written by test_outbound.py for {cls.__name__}
cliq_api = "{api}"
data_dir = "{data_dir}"
deadline_ms = 30000  -- a waiting post may take a while; keep it in the sync reply
post_rate_per_min = {cls.rate}
tokens = {{
  default = os.getenv("{TOKEN_ENV}"),
  alerts = {{ token = "{SECRETS["alerts"]}", disabled = false }},
  opsdesk = "{SECRETS["opsdesk"]}",
  revoked = "{SECRETS["revoked"]}",
  paused_token = {{ token = "{SECRETS["paused_token"]}", disabled = true }},
  unset_token = {{ token = os.getenv("{UNSET_ENV}") }},
}}
'''
        if cls.max_age is not None:
            text += f"post_max_age_s = {cls.max_age}\n"
        text += cls.extra_config
        path = os.path.join(cls.dir, filename)
        with open(path, "w") as f:
            f.write(text)
        return path

    @classmethod
    def start_host(cls):
        host = Host("--config", cls.config, scripts=SCRIPTS, keys=[KEY.spki])
        cls.hosts.append(host)
        return host

    @classmethod
    def tearDownClass(cls):
        problems = []
        for h in cls.hosts:
            if h.proc.poll() is None:
                try:
                    m = h.request("GET", "/metrics")
                except OSError:
                    m = None
                if m is not None and m.status == 200:
                    problems += cls.leaks(m.body.decode("utf-8", "replace"), "/metrics")
        for h in cls.hosts:
            rc = h.stop()
            if h not in cls.killed and rc != 0:
                problems.append(f"host exited {rc}")
            reports = h.sanitizer_reports()
            if reports:
                problems.append(f"sanitizer: {reports}")
            problems += cls.leaks(h.log(), "the host's output")
        cls.fake.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        logs = "\n---\n".join(h.log()[-6000:] for h in cls.hosts)
        assert not problems, "\n".join(problems) + "\n" + logs

    @staticmethod
    def leaks(text, where):
        """A line per secret (or distinctive part of one) found in text."""
        found = [s for s in LEAKABLE + LEAK_CORES if s in text]
        return [f"token text {s!r} in {where}" for s in found]

    def assertNoSecrets(self, text, where):
        self.assertEqual(self.leaks(text, where), [])

    # ---- driving the host -------------------------------------------------

    def call(self, fn, name, msg=None, msgs=None, host=None, timeout=45, **opts):
        """Runs /post: cliq.<fn>(name, msg, opts) in a handler (or one call
        per message of msgs). Returns (the handler's output, seconds the
        exchange took)."""
        host = host or self.host
        options = {"fn": fn, "name": name, "opts": opts}
        if msgs is not None:
            options["msgs"] = msgs
        else:
            options["msg"] = msg
        raw = json.dumps(command(options)).encode()
        sig = KEY.sign(raw)
        t0 = time.monotonic()
        try:
            r = host.request("POST", "/", raw,
                             {"Content-Type": "application/json", "X-Cliq-Signature": sig},
                             timeout=timeout)
        except socket.timeout:
            self.fail(f"/post {fn} {name}: no reply within {timeout} s\n{host.log()[-4000:]}")
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 200, f"{r}\n{host.log()[-4000:]}")
        self.assertNoSecrets(r.body.decode("utf-8", "replace"), "the sync reply")
        data = r.json()
        self.assertEqual(set(data), {"output"}, data)
        out = data["output"]
        self.assertNotIn("raised", out, out)
        return out, elapsed

    def assertPosted(self, out):
        """The handler saw `true`: delivered (or, with wait = false, queued)."""
        self.assertEqual(out, {"text": "posted", "ok": True, "is_true": True})

    def assertFailed(self, out):
        """The handler saw nil, err; returns err."""
        self.assertIs(out.get("ok"), False, out)
        self.assertIsInstance(out.get("err"), str, out)
        self.assertTrue(out["err"], out)
        return out["err"]

    def cli(self, *args, input=None, timeout=60, config=None):
        """Runs `cliqhost ARGS --config FILE`; its output must hold no token."""
        p = run_cli(*args, "--config", config or self.config, input=input, timeout=timeout)
        self.assertNoSecrets(p.stdout + p.stderr, f"`cliqhost {' '.join(args)}`")
        return p

    def outbox_lines(self, name):
        """The lines of `cliqhost outbox list` that mention name: one per
        queued or failed post to it."""
        p = self.cli("outbox", "list")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return [line for line in (p.stdout + "\n" + p.stderr).splitlines() if name in line]

    def only(self, path):
        """The one request that reached path."""
        reqs = self.fake.requests(path)
        self.assertEqual(len(reqs), 1, f"{reqs}\n{self.host.log()[-4000:]}")
        return reqs[0]

    def assertJsonRequest(self, req, query, body_):
        """req carried exactly this query and this JSON body, and Cliq took it."""
        self.assertEqual(req.query, query)
        self.assertEqual(len(req.query_list), len(query), req.query_list)  # nothing twice
        self.assertTrue(req.headers.get("content-type", "").startswith("application/json"),
                        req.headers)
        self.assertEqual(req.json(), body_)
        self.assertLess(req.status, 300, req)


class Bindings(OutboundTest):
    """Each Lua binding reaches its endpoint with the right token, query and
    body, and hands the script what Cliq answered."""

    def test_post_channel_with_text(self):
        name = unique("ch")
        out, _ = self.call("post_channel", name, "Deploy of api finished")
        self.assertPosted(out)
        # The call waited for delivery: the post is already at Cliq.
        req = self.only(channel_path(name))
        self.assertEqual(req.method, "POST")
        self.assertJsonRequest(req, {"zapikey": SECRETS["default"]},
                               {"text": "Deploy of api finished"})
        self.assertEqual(req.status, 204)

    def test_post_channel_with_a_card_and_a_named_token(self):
        name = unique("card")
        msg = {"text": "Build *42* passed",
               "card": {"title": "CI", "theme": "modern-inline",
                        "thumbnail": "https://example.com/ci.png"},
               "buttons": [{"label": "Open", "type": "+",
                            "action": {"type": "open.url",
                                       "data": {"web": "https://ci.example.com/42"}}}]}
        out, _ = self.call("post_channel", name, msg, token="alerts")
        self.assertPosted(out)
        self.assertJsonRequest(self.only(channel_path(name)), {"zapikey": SECRETS["alerts"]}, msg)

    def test_post_channel_as_a_bot(self):
        name = unique("asbot")
        out, _ = self.call("post_channel", name, "From the deploy bot", as_bot="deploybot")
        self.assertPosted(out)
        self.assertJsonRequest(self.only(channel_path(name)),
                               {"zapikey": SECRETS["default"], "bot_unique_name": "deploybot"},
                               {"text": "From the deploy bot"})

    def test_post_bot_to_users(self):
        for userids in (["55501", "55502"], "55501,55502"):
            with self.subTest(userids=userids):
                name = unique("bot")
                out, _ = self.call("post_bot", name, "Your build passed", userids=userids)
                self.assertPosted(out)
                req = self.only(bot_message_path(name))
                self.assertJsonRequest(req, {"zapikey": SECRETS["default"]},
                                       {"text": "Your build passed", "userids": "55501,55502"})
                self.assertEqual(req.status, 204)

    def test_post_bot_broadcast(self):
        name = unique("bcast")
        msg = {"text": "Maintenance at 22:00", "card": {"title": "Heads up"}}
        out, _ = self.call("post_bot", name, msg, broadcast=True)
        self.assertPosted(out)
        self.assertJsonRequest(self.only(bot_message_path(name)), {"zapikey": SECRETS["default"]},
                               dict(msg, broadcast=True))

    def test_bot_incoming_returns_the_user_ids(self):
        name = unique("inbot")
        payload = {"alert": "disk full", "host": "db-1", "level": 3, "tags": ["prod", "disk"]}
        out, _ = self.call("bot_incoming", name, payload)
        self.assertEqual(out, {"text": "posted", "ok": True, "is_true": False,
                               "result": {"user_ids": ["55501", "55502"]}})
        req = self.only(bot_incoming_path(name))
        self.assertJsonRequest(req, {"zapikey": SECRETS["default"]}, payload)
        self.assertEqual(req.status, 200)

    def test_app_incoming_with_its_appkey(self):
        payload = {"event": "ticket.created", "id": "T-77"}
        before = self.fake.count(app_incoming_path(APP_ID))
        out, _ = self.call("app_incoming", APP_ID, payload, appkey=APPKEY, token="alerts")
        self.assertIs(out.get("ok"), True, out)
        self.assertNotIn("err", out)
        # Cliq answered 200 {}: the script gets that (empty) table, or true.
        self.assertIn(out.get("result"), (None, {}, []), out)
        reqs = self.fake.requests(app_incoming_path(APP_ID))
        self.assertEqual(len(reqs), before + 1)
        self.assertJsonRequest(reqs[-1], {"appkey": APPKEY, "zapikey": SECRETS["alerts"]}, payload)

    def test_app_incoming_needs_an_appkey(self):
        # Without one the call fails (or raises, as a wrong argument), and
        # nothing is sent.
        before = self.fake.count()
        out = self.call_raw("app_incoming", APP_ID, {"event": "x"})
        self.assertIsNot(out.get("ok"), True, out)
        self.assertTrue(out.get("err") or out.get("raised"), out)
        time.sleep(0.5)
        self.assertEqual(self.fake.count(), before)

    def call_raw(self, fn, name, msg, **opts):
        """Like call(), but a binding that raised is a result, not a failure."""
        options = {"fn": fn, "name": name, "msg": msg, "opts": opts}
        r = self.host.post(command(options), key=KEY)
        self.assertEqual(r.status, 200, r)
        self.assertNoSecrets(r.body.decode("utf-8", "replace"), "the sync reply")
        return r.json()["output"]

    def test_names_are_url_encoded(self):
        name = unique("release notes/\u03b2")
        out, _ = self.call("post_channel", name, "encoded")
        self.assertPosted(out)
        req = self.only(channel_path(name))
        self.assertEqual(req.name, name)
        self.assertNotIn(" ", req.path)
        self.assertIn("%2F", req.path.upper())

    def test_by_default_a_call_waits_for_delivery(self):
        name = unique("slow")
        self.fake.answer(channel_path(name), [(204, {}, None, 1.5)])  # Cliq takes 1.5 s
        out, elapsed = self.call("post_channel", name, "slow")
        self.assertPosted(out)
        self.assertGreaterEqual(elapsed, 1.4)
        self.only(channel_path(name))

    def test_wait_false_returns_once_queued_then_delivers(self):
        name = unique("nowait")
        delay = 8.0  # Cliq's answer: far longer than queueing takes on any machine
        self.fake.answer(channel_path(name), [(204, {}, None, delay)])
        out, _ = self.call("post_channel", name, "queued", wait=False)
        replied = time.monotonic()
        self.assertPosted(out)
        reqs = self.fake.wait_requests(1, channel_path(name), timeout=30)
        self.assertEqual(len(reqs), 1, self.host.log()[-4000:])
        # The reply came before Cliq answered (it answers `delay` s after the
        # post arrived): wait = false did not wait for Cliq.
        self.assertLess(replied, reqs[0].time + delay, "wait = false waited for Cliq")
        self.assertJsonRequest(reqs[0], {"zapikey": SECRETS["default"]}, {"text": "queued"})
        # Past the slow answer (the post leaves the outbox): delivered once,
        # not again.
        t0 = time.monotonic()
        while self.outbox_lines(name) and time.monotonic() - t0 < delay + 30:
            time.sleep(0.2)
        self.assertEqual(self.outbox_lines(name), [])
        time.sleep(1.0)
        self.assertEqual(self.fake.count(channel_path(name)), 1)


class Connections(OutboundTest):
    """The outbox keeps its connections to Cliq open between bursts."""

    extra_config = "post_concurrency = 8\n"

    def test_bursts_of_posts_reuse_the_connections(self):
        # Each burst: 8 posts queued at once, each answered 0.3 s after it
        # arrives, so all 8 are in flight together; then the outbox is idle.
        # curl by itself keeps 4 idle connections per transfer still
        # running: as a burst's last transfers ended it closed most of its
        # connections, and the next burst connected again (in
        # bench/outbox.sh, one post in 7 opened a connection).
        name = unique("burst")
        path = channel_path(name)
        opened = self.fake.connections_opened
        for burst in range(3):
            self.fake.answer(path, [(204, {}, None, 0.3)] * 8)
            msgs = [f"burst {burst} post {i}" for i in range(8)]
            out, _ = self.call("post_channel", name, msgs=msgs, wait=False)
            self.assertEqual(out["results"], [{"ok": True, "is_true": True}] * 8, out)
            self.assertEqual(len(self.fake.wait_requests(8 * (burst + 1), path, timeout=30)),
                             8 * (burst + 1), self.host.log()[-4000:])
            t0 = time.monotonic()
            while self.outbox_lines(name) and time.monotonic() - t0 < 30:
                time.sleep(0.1)
            self.assertEqual(self.outbox_lines(name), [])
        self.assertLessEqual(self.fake.connections_opened - opened, 8,
                             "the outbox connected again for a later burst")
        self.assertEqual(self.fake.count(path), 24)


class Tokens(OutboundTest):
    """Tokens the host must not use fail at once, and nothing reaches Cliq."""

    def assertRefused(self, token, words):
        for wait in (True, False):
            with self.subTest(token=token, wait=wait):
                name = unique("tok")
                out, elapsed = self.call("post_channel", name, "should not be sent",
                                         token=token, wait=wait)
                err = self.assertFailed(out)
                self.assertIn(token, err)
                for w in words:
                    self.assertIn(w, err)
                # Refused at once: a post that waited for the token would be
                # kept for a day (post_max_age_s) and outlast the call's 45 s.
                self.assertLess(elapsed, 30, "refused only after waiting")
                time.sleep(0.3)
                self.assertEqual(self.fake.count(channel_path(name)), 0)

    def test_disabled_token(self):
        self.assertRefused("paused_token", ["disabled"])
        # Cliq would have taken it: only the host stood in the way.
        self.assertEqual(self.fake.count(token=SECRETS["paused_token"]), 0)

    def test_unknown_token(self):
        self.assertRefused("no_such_token", ["no token named"])

    def test_token_whose_variable_is_unset(self):
        self.assertRefused("unset_token", [])

    def test_tokens_command_shows_each_status(self):
        p = self.cli("tokens")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        blocks = token_blocks(p.stdout)
        for name in SECRETS.keys() | {"unset_token"}:
            self.assertIn(name, blocks, p.stdout)
        self.assertIn("disabled", blocks["paused_token"])
        self.assertIn("not configured", blocks["unset_token"])
        for name in ("default", "alerts", "opsdesk", "revoked"):
            self.assertIn("active", blocks[name])


def token_blocks(text):
    """Splits `cliqhost tokens` output into a block per configured token:
    from the first line naming it to the next line that starts with
    another token's name (its summary line)."""
    names = list(SECRETS) + ["unset_token"]
    starts = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        for n in names:
            if n not in starts and re.search(r"(^|[\s'\"])%s\b" % re.escape(n), line):
                starts[n] = i
    order = sorted(starts.items(), key=lambda kv: kv[1])
    blocks = {}
    for k, (n, i) in enumerate(order):
        end = order[k + 1][1] if k + 1 < len(order) else len(lines)
        blocks[n] = "\n".join(lines[i:max(end, i + 1)])
    return blocks


class Delivery(OutboundTest):
    """What each answer of Cliq leads to: 4xx final, 5xx and 429 retried."""

    def test_client_errors_are_final(self):
        cases = []
        # A token Cliq no longer knows: its own 401.
        name = unique("e401")
        cases.append((name, 401, "Invalid webhook token", {"token": "revoked"}))
        name = unique("e403")
        self.fake.answer(channel_path(name), [(403, {}, {
            "code": "bot_message_forbidden", "message": "Bot is not a member of this channel"})])
        cases.append((name, 403, "Bot is not a member of this channel", {"as_bot": "deploybot"}))
        name = unique("e404")
        self.fake.answer(channel_path(name), [(404, {}, {"message": "channel not found"})])
        cases.append((name, 404, "channel not found", {}))
        name = unique("e400")
        self.fake.answer(channel_path(name), [(400, {}, {"code": "input_invalid",
                                                         "message": "text is too long"})])
        cases.append((name, 400, "text is too long", {}))
        for name, status, message, opts in cases:
            with self.subTest(status=status):
                out, _ = self.call("post_channel", name, f"expect {status}", **opts)
                err = self.assertFailed(out)
                self.assertIn(f"HTTP {status}", err)
                self.assertIn(message, err)
        time.sleep(1.5)  # any retry would come now
        for name, status, message, _ in cases:
            with self.subTest(status=status):
                reqs = self.fake.requests(channel_path(name))
                self.assertEqual([r.status for r in reqs], [status])
                # Kept with their reason for the operator.
                lines = self.outbox_lines(name)
                self.assertEqual(len(lines), 1, lines)
                self.assertIn(str(status), lines[0])

    def test_an_error_that_quotes_the_token_does_not_leak_it(self):
        # Issue 12, finding 9: Cliq's error text can quote the token; the
        # host scrubs every token by value, wherever it writes or returns
        # text (the script's result, the log, `cliqhost outbox`).
        name = unique("e400q")
        secret = SECRETS["alerts"]
        self.fake.answer(channel_path(name), [(400, {}, {
            "code": "invalid_token",
            "message": f"invalid webhook token {secret} (ZAPIKEY: {secret})"})])
        out, _ = self.call("post_channel", name, "quote me", token="alerts")
        err = self.assertFailed(out)
        self.assertIn("HTTP 400", err)
        self.assertIn("invalid webhook token", err)
        self.assertNoSecrets(json.dumps(out), "the script's result")
        self.assertNoSecrets("\n".join(self.outbox_lines(name)), "`cliqhost outbox`")

    def test_server_error_then_success(self):
        name = unique("e500")
        self.fake.answer(channel_path(name), [(500, {}, {"message": "Internal Server Error"})])
        out, _ = self.call("post_channel", name, "second time lucky")
        self.assertPosted(out)
        reqs = self.fake.requests(channel_path(name))
        self.assertEqual([r.status for r in reqs], [500, 204])
        self.assertEqual(reqs[0].body, reqs[1].body)
        self.assertEqual(reqs[0].query, reqs[1].query)
        time.sleep(0.5)
        self.assertEqual(self.fake.count(channel_path(name)), 2, "delivered more than once")
        self.assertEqual(self.outbox_lines(name), [], "a delivered post is still listed")

    def test_unavailable_twice_then_success(self):
        name = unique("e503")
        self.fake.answer(bot_incoming_path(name), [(503, {}, {"message": "busy"}),
                                                   (502, {}, "<html>Bad Gateway</html>")])
        out, _ = self.call("bot_incoming", name, {"n": 1})
        self.assertEqual(out.get("result"), {"user_ids": ["55501", "55502"]}, out)
        reqs = self.fake.requests(bot_incoming_path(name))
        self.assertEqual([r.status for r in reqs], [503, 502, 200])
        time.sleep(0.5)
        self.assertEqual(self.fake.count(bot_incoming_path(name)), 3, "delivered more than once")

    def test_rate_limited_waits_retry_after(self):
        name = unique("e429")
        self.fake.answer(channel_path(name), [(429, {"Retry-After": "1"},
                                               {"message": "Too many requests"})])
        out, _ = self.call("post_channel", name, "after the pause", token="alerts")
        self.assertPosted(out)
        reqs = self.fake.requests(channel_path(name))
        self.assertEqual([r.status for r in reqs], [429, 204])
        gap = reqs[1].time - reqs[0].time
        # Timers may round to the millisecond.
        self.assertGreaterEqual(gap, 0.98, "retried before Retry-After")
        self.assertLess(gap, 10)


class Pacing(OutboundTest):
    """post_rate_per_min = 6: at most 6 posts in any minute per token; the
    excess waits in the queue instead of tripping Cliq's lock."""

    rate = 6

    def test_posts_over_the_rate_wait_in_the_queue(self):
        name = unique("paced")
        path = channel_path(name)
        msgs = [f"alert {chr(ord('a') + i)}" for i in range(10)]
        out, _ = self.call("post_channel", name, msgs=msgs, token="alerts", wait=False)
        t0 = time.monotonic()
        self.assertEqual(out["results"], [{"ok": True, "is_true": True}] * 10, out)
        # The call did not wait for the paced ones (the 7th may go only a
        # minute after the first).
        self.assertLessEqual(self.fake.count(path), 6, "queueing waited for the pace")

        # Another token is not held back by this one's pace: it is sent
        # before anything more of the paced token's.
        other = unique("unpaced")
        out, _ = self.call("post_channel", other, "not paced", token="default", timeout=40)
        self.assertPosted(out)
        self.assertLessEqual(self.fake.count(path), 6, "a post with another token waited")

        self.assertGreaterEqual(len(self.fake.wait_requests(1, path, timeout=30)), 1,
                                "nothing was sent")
        time.sleep(max(0.0, t0 + 3 - time.monotonic()))
        first = self.fake.count(path)
        self.assertLessEqual(first, 6, "more than the rate went at once")
        # The rest wait in the outbox, visible to the operator.
        lines = self.outbox_lines(name)
        self.assertGreaterEqual(len(lines), 10 - 6, lines)
        self.assertLessEqual(len(lines), 10 - first, lines)
        for line in lines:
            self.assertRegex(line.lower(), "queued|waiting|pending")

        # Watch on past 10 s, when a bucket refilled at 6 a minute would let
        # a seventh go: still no more than 6 in any 60 s.
        time.sleep(max(0.0, t0 + 11.5 - time.monotonic()))
        self.assertLessEqual(self.fake.max_per_window(SECRETS["alerts"]), 6)
        sent = [r.json()["text"] for r in self.fake.requests(path)]
        self.assertEqual(len(sent), len(set(sent)), f"sent twice: {sent}")
        self.assertLessEqual(set(sent), set(msgs))
        self.assertTrue(all(r.status == 204 for r in self.fake.requests(path)))


class Durability(OutboundTest):
    """A post accepted with wait = false survives the host's death and is
    delivered exactly once by the next host on the same data_dir."""

    def restart_after(self, sig):
        """Queues 5 posts while Cliq is down, stops the host with sig, brings
        Cliq up and starts a new host; checks each post arrives once."""
        name = unique("durable")
        path = channel_path(name)
        msgs = [f"durable #{chr(ord('a') + i)}" for i in range(5)]
        self.fake.down()
        self.addCleanup(self.fake.up)  # however the test ends, Cliq is back
        out, _ = self.call("post_channel", name, msgs=msgs, wait=False)
        # true means durably queued: stop the host at once.
        rc = self.host.stop(sig)
        if sig == signal.SIGKILL:
            type(self).killed.append(self.host)
            self.assertEqual(rc, -signal.SIGKILL)
        else:
            self.assertEqual(rc, 0, self.host.log()[-4000:])
        self.assertEqual(out["results"], [{"ok": True, "is_true": True}] * 5, out)
        self.assertEqual(self.fake.count(path), 0)

        # With no host running, the operator sees the 5 posts waiting.
        self.assertEqual(len(self.outbox_lines(name)), 5)

        self.fake.up()
        type(self).host = self.start_host()
        reqs = self.fake.wait_requests(5, path, timeout=20)
        self.assertEqual(len(reqs), 5, f"{reqs}\n{self.host.log()[-4000:]}")
        time.sleep(1.5)  # anything sent twice would show now
        reqs = self.fake.requests(path)
        self.assertEqual(sorted(r.json()["text"] for r in reqs), msgs)
        for r in reqs:
            self.assertJsonRequest(r, {"zapikey": SECRETS["default"]}, {"text": r.json()["text"]})
        self.assertEqual(self.outbox_lines(name), [])
        self.assertEqual(self.host.request("GET", "/healthz").status, 200)
        return path

    def test_queued_posts_survive_a_clean_stop(self):
        self.restart_after(signal.SIGTERM)

    def test_queued_posts_survive_kill_9(self):
        path = self.restart_after(signal.SIGKILL)
        # Delivered means done: a later crash and start sends none again.
        self.assertEqual(self.host.stop(signal.SIGKILL), -signal.SIGKILL)
        type(self).killed.append(self.host)
        type(self).host = self.start_host()
        time.sleep(1.5)
        self.assertEqual(self.fake.count(path), 5, "delivered again after a restart")


class Unreachable(OutboundTest):
    """Cliq cannot be reached at all (connection refused): posts are retried
    until post_max_age_s, then fail with a reason that holds no token."""

    fake_down = True
    max_age = 10

    def test_cli_post_still_queued_exits_75(self):
        name = unique("cliq75")
        t0 = time.monotonic()
        p = self.cli("post", "channel", name, "nobody home", "--token", "alerts", "--wait", "2")
        elapsed = time.monotonic() - t0
        # 75: it stopped waiting with the post still queued, so before the
        # post could fail at post_max_age_s (10 s; that would exit 1).
        self.assertEqual(p.returncode, 75, p.stdout + p.stderr)
        self.assertGreaterEqual(elapsed, 1.9)
        self.assertEqual(len(self.outbox_lines(name)), 1)

    def test_post_fails_after_max_age(self):
        name = unique("gone")
        out, elapsed = self.call("post_channel", name, "nobody home", token="alerts")
        self.assertFailed(out)  # the last network error; call() checked it holds no token
        self.assertGreaterEqual(elapsed, 9.0, "gave up before post_max_age_s")
        self.assertLess(elapsed, 25)
        lines = self.outbox_lines(name)
        self.assertEqual(len(lines), 1, lines)
        self.assertRegex(lines[0].lower(), "fail")


class CommandLine(OutboundTest):
    """`cliqhost post`, `tokens` and `outbox`, next to a running host on the
    same data_dir."""

    def test_post_channel_text(self):
        name = unique("clich")
        p = self.cli("post", "channel", name, "Nightly backup done")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertJsonRequest(self.only(channel_path(name)), {"zapikey": SECRETS["default"]},
                               {"text": "Nightly backup done"})
        time.sleep(1.0)  # the host shares the outbox: it must not send it again
        self.assertEqual(self.fake.count(channel_path(name)), 1)

    def test_post_channel_json_from_stdin(self):
        name = unique("clijson")
        msg = {"text": "Release 1.4 is out",
               "card": {"title": "Releases", "theme": "modern-inline"},
               "slides": [{"type": "list", "title": "Changes", "data": ["faster", "smaller"]}]}
        p = self.cli("post", "channel", name, "--json", "-", input=json.dumps(msg))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertJsonRequest(self.only(channel_path(name)), {"zapikey": SECRETS["default"]}, msg)

    def test_post_channel_json_file_as_bot_with_a_token(self):
        name = unique("clifile")
        msg = {"text": "On call: Priya", "card": {"title": "Rota"}}
        path = os.path.join(self.dir, "msg.json")
        with open(path, "w") as f:
            json.dump(msg, f)
        p = self.cli("post", "channel", name, "--json", path, "--bot", "rotabot",
                     "--token", "alerts")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertJsonRequest(self.only(channel_path(name)),
                               {"zapikey": SECRETS["alerts"], "bot_unique_name": "rotabot"}, msg)

    def test_post_bot_to_users(self):
        name = unique("clibot")
        p = self.cli("post", "bot", name, "Your report is ready", "--users", "55501,55502")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertJsonRequest(self.only(bot_message_path(name)), {"zapikey": SECRETS["default"]},
                               {"text": "Your report is ready", "userids": "55501,55502"})

    def test_post_bot_broadcast(self):
        name = unique("clibcast")
        p = self.cli("post", "bot", name, "Office closed Friday", "--broadcast")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertJsonRequest(self.only(bot_message_path(name)), {"zapikey": SECRETS["default"]},
                               {"text": "Office closed Friday", "broadcast": True})

    def test_post_that_fails_exits_1_with_the_reason(self):
        name = unique("cli404")
        self.fake.answer(channel_path(name), [(404, {}, {"message": "channel not found"})])
        p = self.cli("post", "channel", name, "into the void")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("404", p.stdout + p.stderr)
        self.assertIn("channel not found", p.stdout + p.stderr)
        self.assertEqual(self.fake.count(channel_path(name)), 1)

    def test_post_with_a_token_it_cannot_use(self):
        for token, word in (("no_such_token", "no_such_token"), ("paused_token", "disabled")):
            with self.subTest(token=token):
                name = unique("clitok")
                p = self.cli("post", "channel", name, "x", "--token", token)
                self.assertIn(p.returncode, (1, 2), p.stdout + p.stderr)
                self.assertIn(word, p.stdout + p.stderr)
                self.assertEqual(self.fake.count(channel_path(name)), 0)

    def test_usage_errors_exit_2(self):
        before = self.fake.count()
        for args in (("post",), ("post", "channel"), ("post", "channel", unique("u")),
                     ("post", "pigeon", unique("u"), "coo"),
                     ("post", "bot", unique("u"), "hi", "--users", "1", "--broadcast")):
            with self.subTest(args=args):
                p = self.cli(*args)
                self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
                self.assertTrue(p.stderr.strip(), "no word on what was wrong")
        self.assertEqual(self.fake.count(), before)

    def test_flags_override_the_config(self):
        # A config whose Cliq is unreachable and whose data_dir is elsewhere;
        # --cliq-api and --data-dir put both right.
        other = os.path.join(self.dir, "other-data")
        os.makedirs(other, exist_ok=True)
        cfg = self.write_config(f"http://127.0.0.1:{closed_port()}", other, "elsewhere.lua")
        name = unique("cliflags")
        p = self.cli("post", "channel", name, "via flags", "--cliq-api", self.fake.url,
                     "--data-dir", self.data_dir, "--wait", "10", config=cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.only(channel_path(name))

    def test_tokens_lists_use_without_the_secret(self):
        ok_name, bad_name = unique("tokok"), unique("tokbad")
        self.fake.answer(channel_path(bad_name), [(404, {}, {"message": "channel not found"})])
        for name, rc in ((ok_name, 0), (ok_name, 0), (bad_name, 1)):
            p = self.cli("post", "channel", name, "counted", "--token", "opsdesk")
            self.assertEqual(p.returncode, rc, p.stdout + p.stderr)
        p = self.cli("tokens")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        blocks = token_blocks(p.stdout)
        self.assertIn("opsdesk", blocks, p.stdout)
        block = blocks["opsdesk"]
        self.assertIn("active", block)
        # 3 invocations, then 1 failure; and a last-invoked time.
        self.assertRegex(strip_times(block), r"\b3\b[\s\S]*?\b1\b", block)
        self.assertTrue(any(re.search(rx, block) for rx in TIMES), "no time in " + block)
        # Its last calls: time, endpoint and status of each.
        self.assertIn(ok_name, block)
        self.assertIn(bad_name, block)
        self.assertIn("204", block)
        self.assertIn("404", block)
        self.assertIn("disabled", blocks["paused_token"])
        self.assertIn("not configured", blocks["unset_token"])

    def test_outbox_list_retry_and_drop(self):
        keep, lose = unique("retry"), unique("drop")
        for name in (keep, lose):
            self.fake.answer(channel_path(name), [(404, {}, {"message": "channel not found"})])
            p = self.cli("post", "channel", name, "first try")
            self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        ids = {}
        for name in (keep, lose):
            lines = self.outbox_lines(name)
            self.assertEqual(len(lines), 1, lines)
            self.assertIn("channel not found", lines[0])
            self.assertRegex(lines[0].lower(), "fail")
            ids[name] = post_id(lines[0])
            self.assertIsNotNone(ids[name], lines[0])

        # The channel exists now: retry delivers it.
        p = self.cli("outbox", "retry", ids[keep])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        reqs = self.fake.wait_requests(2, channel_path(keep), timeout=15)
        self.assertEqual([r.status for r in reqs], [404, 204], self.host.log()[-4000:])
        self.assertEqual(reqs[1].json(), {"text": "first try"})
        deadline = time.monotonic() + 30
        while self.outbox_lines(keep) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(self.outbox_lines(keep), [])

        p = self.cli("outbox", "drop", ids[lose])
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(self.outbox_lines(lose), [])
        # Gone for good: not sent again, and no longer there to retry.
        p = self.cli("outbox", "retry", ids[lose])
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        time.sleep(1.0)
        self.assertEqual(self.fake.count(channel_path(lose)), 1)


if __name__ == "__main__":
    unittest.main()


class Handoffs(OutboundTest):
    """A post that is mid-flight when the host stops, or that `cliqhost
    post` gives up waiting for, is sent exactly once; a post whose token
    was disabled while it waited fails for good; a post too old to send is
    not sent; a 429 asking to wait for ages does not loop."""

    def wait_failed(self, name, timeout=30):
        """The outbox lines for name once its post is failed (or after timeout)."""
        deadline = time.time() + timeout
        while True:
            lines = self.outbox_lines(name)
            if (lines and "failed" in lines[0]) or time.time() > deadline:
                return lines
            time.sleep(0.3)

    def restart(self):
        self.host.stop()
        type(self).host = self.start_host()

    def test_sigterm_with_a_post_in_flight_sends_it_once(self):
        name = unique("graceful")
        self.fake.answer(channel_path(name), [(204, {}, None, 2.0)])
        out, _ = self.call("post_channel", name, "graceful", wait=False)
        self.assertPosted(out)
        # The send is under way once Cliq has it; it answers 2 s later.
        self.assertEqual(len(self.fake.wait_requests(1, channel_path(name), timeout=30)), 1)
        self.restart()
        # Done with once it leaves the outbox; a second send would come
        # before that (the next host's, answered at once).
        t0 = time.monotonic()
        while self.outbox_lines(name) and time.monotonic() - t0 < 30:
            time.sleep(0.2)
        self.assertEqual(self.outbox_lines(name), [])
        time.sleep(1.0)
        self.assertEqual(len(self.fake.requests(channel_path(name))), 1,
                         self.fake.requests(channel_path(name)))

    def test_post_that_gives_up_waiting_is_not_sent_again(self):
        name = unique("cli-wait")
        self.fake.answer(channel_path(name), [(204, {}, None, 2.0)])
        p = self.cli("post", "channel", name, "hello-once", "--wait", "1")
        self.assertIn(p.returncode, (0, 75), p.stdout + p.stderr)
        other = unique("cli-next")
        p = self.cli("post", "channel", other, "next")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        time.sleep(1)
        self.assertEqual(len(self.fake.requests(channel_path(name))), 1)

    def test_disabled_token_while_queued_fails_for_good(self):
        name = unique("disabled-later")
        self.fake.down()
        try:
            out, _ = self.call("post_channel", name, "x", token="alerts", wait=False)
            self.assertPosted(out)
            self.host.stop()
        finally:
            self.fake.up()
        cfg = self.write_config(self.fake.url, self.data_dir, "disabled.lua")
        with open(cfg) as f:
            text = f.read().replace("disabled = false", "disabled = true")
        with open(cfg, "w") as f:
            f.write(text)
        host = Host("--config", cfg, scripts=SCRIPTS, keys=[KEY.spki])
        type(self).hosts.append(host)
        type(self).host = host
        lines = self.wait_failed(name)
        self.assertTrue(lines and "failed" in lines[0] and "disabled" in lines[0], lines)
        self.assertEqual(self.fake.requests(channel_path(name)), [])

    def test_post_older_than_max_age_is_not_sent(self):
        name = unique("too-old")
        self.fake.down()
        try:
            out, _ = self.call("post_channel", name, "stale", wait=False)
            self.assertPosted(out)
            self.host.stop()
            db = sqlite3.connect(os.path.join(self.data_dir, "outbox.db"))
            db.execute("UPDATE posts SET created_ms = created_ms - 3 * 86400000, next_ms = 0")
            db.commit()
            db.close()
        finally:
            self.fake.up()
        type(self).host = self.start_host()
        lines = self.wait_failed(name)
        self.assertTrue(lines and "failed" in lines[0] and "expired" in lines[0], lines)
        self.assertEqual(self.fake.requests(channel_path(name)), [])

    def test_429_with_a_huge_retry_after_does_not_loop(self):
        name = unique("retry-forever")
        self.fake.answer(channel_path(name), [(429, {"Retry-After": "99999999999999"},
                                               {"message": "slow down"})])
        out, _ = self.call("post_channel", name, "x", wait=False)
        self.assertPosted(out)
        self.assertEqual(len(self.fake.wait_requests(1, channel_path(name), timeout=30)), 1)
        time.sleep(2)
        self.assertEqual(len(self.fake.requests(channel_path(name))), 1)
        self.assertEqual(self.host.request("GET", "/healthz").status, 200)
