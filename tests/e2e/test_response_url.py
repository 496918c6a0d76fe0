"""End-to-end tests of where the host's replies and attachment downloads may
go (issue 12, finding 10): a call's response_url and its attachments' URLs
are Cliq's, so by default only https to Cliq's own hosts is allowed; the
config's response_url_allow names more (addresses, CIDR blocks, host names,
as http_allow does), which is how the local fakes here and invoke's catcher
are reached. Anything else is refused at once: no connection, no retry, the
script gets nil, err and the log says which setting to change.

The real binary runs on loopback against local fakes (fakes.py): a Sink
playing Cliq's response_url and a SlowUpstream (no delay) serving attachment
files. Nothing here depends on the machine's speed: refusals are asserted
through what the script saw, the log and /metrics, never through timing.
"""

import itertools
import json
import os
import re
import time
import unittest

from cliq_bodies import body
from fakes import Sink, SlowUpstream
from hostlib import HERE, Host, Key, run_cli

SCRIPTS = os.path.join(HERE, "response_url_scripts")
KEY = Key("main")
_tags = itertools.count(1)


def tag():
    return f"u{os.getpid()}-{next(_tags)}"


def not_cliq(host):
    return f"refused: {host} is not one of Cliq's hosts (allow it with response_url_allow)"


def command(name, options=None, response_url=None, **params):
    p = {"arguments": "", "options": options or {}}
    p.update(params)
    b = body("command", "execution_handler", name, p, response_url=response_url is not None,
             timestamp=int(time.time() * 1000))
    if response_url is not None:
        b["response_url"] = response_url
    return b


class ResponseUrlTest(unittest.TestCase):
    """One host per class, with the class's response_url_allow entries; the
    deadline is short so that `late` (sleeping 1 s) always passes it."""

    allow = ()

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink().start()
        cls.upstream = SlowUpstream(delay=0).start()
        try:
            cls.host = Host("--deadline", "200", "--attachment-ttl", "600", scripts=SCRIPTS,
                            keys=[KEY.spki], response_url_allow=cls.allow)
        except Exception:
            cls.sink.stop()
            cls.upstream.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        cls.sink.stop()
        cls.upstream.stop()
        reports = cls.host.sanitizer_reports()
        assert rc == 0 and not reports, f"exit {rc}; sanitizer: {reports}\n{cls.host.log()}"

    def send(self, b):
        raw = json.dumps(b).encode()
        r = self.host.request("POST", "/", raw, {"Content-Type": "application/json",
                                                 "X-Cliq-Signature": KEY.sign(raw)}, timeout=30)
        self.assertEqual(r.status, 200, f"{r}\n{self.host.log()[-3000:]}")
        return r

    def respond(self, url):
        """What req:respond() gave for a call whose response_url is url,
        and the call's request id."""
        r = self.send(command("respond", response_url=url))
        out = r.json()["output"]
        self.assertEqual(out.pop("text"), "responded")
        return out, r.headers["x-request-id"]

    def late(self, url):
        """Runs a handler past the deadline; returns its request id."""
        r = self.send(command("late", {"sleep": 1}, response_url=url))
        self.assertEqual(r.headers.get("x-cliqhost-late"), "response_url", r.headers)
        return r.headers["x-request-id"]

    def log_line(self, rid, pattern):
        line = self.host.wait_for(r"req=%s .*%s" % (rid, pattern), timeout=30)
        self.assertIsNotNone(line, f"no log line req={rid} .*{pattern}\n{self.host.log()[-4000:]}")
        return line

    def deliveries(self, rid):
        """The host's log lines about delivering request rid's replies."""
        return [l for l in self.host.log().splitlines() if f"req={rid} " in l and " respond " in l]

    def late_metric(self, outcome):
        text = self.host.request("GET", "/metrics").body.decode()
        m = re.search(r'^cliqhost_late_replies_total\{outcome="%s"\} (\d+)$' % outcome, text, re.M)
        self.assertIsNotNone(m, text)
        return int(m.group(1))

    def assertRefusedAtOnce(self, rid, kind, err):
        """One log line for the delivery: refused, no attempt, the reason."""
        line = self.log_line(rid, f"respond kind={kind} outcome=refused")
        self.assertIn("attempts=0", line)
        self.assertIn(json.dumps(err), line)
        self.assertEqual(len(self.deliveries(rid)), 1, self.deliveries(rid))

    def download(self, url):
        t = tag()
        self.upstream.files[t] = b"file bytes"
        att = {"name": "a.bin", "id": "a1", "contenttype": "application/octet-stream",
               "url": url.replace("NAME", t)}
        out = self.send(command("attach", attachments=[att])).json()["output"]
        self.assertEqual(out.pop("text"), "downloaded")
        return out, t


class Default(ResponseUrlTest):
    """The default: only https to Cliq's hosts."""

    def test_respond_to_loopback_is_refused(self):
        t = tag()
        out, rid = self.respond(self.sink.url_for(t))
        self.assertEqual(out, {"err": not_cliq("127.0.0.1")})
        self.assertRefusedAtOnce(rid, "respond", not_cliq("127.0.0.1"))
        self.assertEqual(self.sink.count(t), 0)

    def test_late_reply_to_loopback_is_refused(self):
        t = tag()
        before = self.late_metric("refused")
        rid = self.late(self.sink.url_for(t))
        self.assertRefusedAtOnce(rid, "late", not_cliq("127.0.0.1"))
        self.assertEqual(self.late_metric("refused"), before + 1)
        self.assertEqual(self.sink.count(t), 0)

    def test_other_schemes_are_refused_at_once(self):
        for url, scheme in [(f"gopher://127.0.0.1:{self.sink.port}/_x", "gopher"),
                            ("file:///etc/passwd", "file"),
                            ("ftp://cliq.zoho.com/x", "ftp"),
                            ("dict://127.0.0.1:11211/stat", "dict")]:
            err = f"refused: only http and https URLs are allowed, not {scheme}"
            out, rid = self.respond(url)
            self.assertEqual(out, {"err": err}, url)
            self.assertRefusedAtOnce(rid, "respond", err)
        rid = self.late(f"gopher://127.0.0.1:{self.sink.port}/_x")
        self.assertRefusedAtOnce(rid, "late",
                                 "refused: only http and https URLs are allowed, not gopher")
        self.assertEqual(self.sink.count(), 0)

    def test_plain_http_to_cliq_is_refused(self):
        out, rid = self.respond("http://cliq.zoho.eu/v2/extensions/1/responses/2")
        err = "refused: Cliq's hosts take https only, not http"
        self.assertEqual(out, {"err": err})
        self.assertRefusedAtOnce(rid, "respond", err)

    def test_lookalike_hosts_are_refused(self):
        for url, host in [("https://cliq.zoho.com.evil.example/r", "cliq.zoho.com.evil.example"),
                          ("https://cliq.zoho.com@127.0.0.1/r", "127.0.0.1"),
                          ("https://evil.example/cliq.zoho.com/r", "evil.example"),
                          ("https://zoho.com/r", "zoho.com")]:
            out, rid = self.respond(url)
            self.assertEqual(out, {"err": not_cliq(host)}, url)
            self.assertRefusedAtOnce(rid, "respond", not_cliq(host))

    def test_attachment_on_loopback_is_refused(self):
        out, t = self.download(f"{self.upstream.url}/files/NAME")
        self.assertEqual(out, {"err": not_cliq("127.0.0.1")})
        self.assertEqual(self.upstream.fetches(t), 0)

    def test_attachment_by_another_scheme_is_refused(self):
        out, _ = self.download("file:///etc/passwd")
        self.assertEqual(out, {"err": "refused: only http and https URLs are allowed, not file"})


class AllowLoopback(ResponseUrlTest):
    """response_url_allow = { "127.0.0.1" }: the fakes are reached, by http
    too; other schemes and other loopback names stay refused."""

    allow = ("127.0.0.1",)

    def test_respond_is_delivered(self):
        t = tag()
        out, _ = self.respond(self.sink.url_for(t))
        self.assertEqual(out, {"ok": True})
        [post] = self.sink.wait_posts(1, t)
        self.assertEqual(post.json(), {"output": {"text": "early"}})

    def test_late_reply_is_delivered(self):
        t = tag()
        rid = self.late(self.sink.url_for(t))
        self.log_line(rid, "respond kind=late outcome=delivered attempts=1")
        [post] = self.sink.posts(t)
        self.assertEqual(post.json(), {"output": {"text": "late result"}})

    def test_other_schemes_stay_refused(self):
        err = "refused: only http and https URLs are allowed, not gopher"
        out, rid = self.respond(f"gopher://127.0.0.1:{self.sink.port}/_r/x")
        self.assertEqual(out, {"err": err})
        self.assertRefusedAtOnce(rid, "respond", err)

    def test_other_names_for_loopback_stay_refused(self):
        t = tag()
        out, _ = self.respond(f"http://localhost:{self.sink.port}/r/{t}")
        self.assertEqual(out, {"err": not_cliq("localhost")})
        self.assertEqual(self.sink.count(t), 0)

    def test_attachment_is_downloaded(self):
        out, t = self.download(f"{self.upstream.url}/files/NAME")
        self.assertEqual(out, {"bytes": "file bytes"})
        self.assertEqual(self.upstream.fetches(t), 1)


class Settings(unittest.TestCase):
    """response_url_allow is validated like http_allow, naming the entry."""

    def test_bad_entry_stops_the_start(self):
        p = run_cli("serve", "--no-verify", "--listen", "127.0.0.1:0", "--scripts", SCRIPTS,
                    "--response-url-allow", "10.0.0.1/8", timeout=10)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("response_url_allow entry '10.0.0.1/8': has bits set past the /8 prefix "
                      "(did you mean 10.0.0.0/8?)", p.stderr)

    def test_help_lists_the_setting(self):
        text = run_cli("--help").stdout
        self.assertRegex(text, r"--response-url-allow VALUE\s+")
        self.assertIn("config: response_url_allow", text)


if __name__ == "__main__":
    unittest.main()
