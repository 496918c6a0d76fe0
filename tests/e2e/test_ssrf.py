"""End-to-end tests of the SSRF guard (issue 6): a script's http.request
does not connect to loopback, private, link-local and other internal
addresses unless the config's http_allow names them. The address judged is
the one a connection is actually opened to, after name resolution and after
each redirect, so names, odd spellings of an address and redirects lead
nowhere the list does not allow. Replies to response_url and attachment
downloads (whose URL a script can change) go only where response_url_allow
says (test_response_url.py); the hosts here allow 127.0.0.1 there, as
hostlib's do, and http_allow never widens it.

The real binary runs on loopback against local fakes (fakes.py): a Sink
playing Cliq's response_url and SlowUpstreams (no delay) playing the APIs a
script calls, on 127.0.0.1 and 127.0.0.2. The scripts are in ssrf_scripts/
and report exactly what http.request returned: the response, or the nil, err
pair a script author sees.
"""

import itertools
import json
import os
import re
import shutil
import signal
import socket
import tempfile
import time
import unittest

from cliq_bodies import body
from fakes import Sink, SlowUpstream
from hostlib import HERE, Host, Key, run_cli

SCRIPTS = os.path.join(HERE, "ssrf_scripts")
KEY = Key("main")
_tags = itertools.count(1)


def tag():
    return f"s{os.getpid()}-{next(_tags)}"


def refused(addr, what, redirected=False):
    lead = "refused after a redirect" if redirected else "refused"
    return {"failed": True, "err": f"{lead}: {addr} is {what} (allow it with http_allow)"}


def command(name, options, response_url=None, **params):
    p = {"arguments": "", "options": options}
    p.update(params)
    b = body("command", "execution_handler", name, p, response_url=response_url is not None,
             timestamp=int(time.time() * 1000))
    if response_url is not None:
        b["response_url"] = response_url
    return b


def resolves(name):
    try:
        socket.getaddrinfo(name, 80, type=socket.SOCK_STREAM)
        return True
    except OSError:
        return False


def can_bind(address):
    try:
        with socket.socket() as s:
            s.bind((address, 0))
        return True
    except OSError:
        return False


class SsrfTest(unittest.TestCase):
    """One host per class, with the class's --http-allow entries."""

    allow = ()
    second_upstream = False  # also run an upstream on 127.0.0.2

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink().start()
        cls.upstream = SlowUpstream(delay=0).start()
        cls.upstream2 = None
        if cls.second_upstream:
            if not can_bind("127.0.0.2"):
                cls.sink.stop()
                cls.upstream.stop()
                raise unittest.SkipTest("127.0.0.2 is not a loopback address here")
            cls.upstream2 = SlowUpstream(delay=0, address="127.0.0.2").start()
        try:
            cls.host = cls.start_host()
        except Exception:
            cls.stop_fakes()
            raise

    @classmethod
    def start_host(cls):
        flags = [a for entry in cls.allow for a in ("--http-allow", entry)]
        return Host(*flags, scripts=SCRIPTS, keys=[KEY.spki])

    @classmethod
    def stop_fakes(cls):
        cls.sink.stop()
        cls.upstream.stop()
        if cls.upstream2:
            cls.upstream2.stop()

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        cls.stop_fakes()
        reports = cls.host.sanitizer_reports()
        assert rc == 0 and not reports, f"exit {rc}; sanitizer: {reports}\n{cls.host.log()}"

    def run_command(self, name, options, **kw):
        raw = json.dumps(command(name, options, **kw)).encode()
        r = self.host.request("POST", "/", raw, {"Content-Type": "application/json",
                                                 "X-Cliq-Signature": KEY.sign(raw)}, timeout=30)
        self.assertEqual(r.status, 200, f"{r}\n{self.host.log()[-3000:]}")
        return r.json()["output"]

    def fetch(self, *calls):
        """What the script saw for each call: a URL, or (URL, redirects)."""
        calls = [{"url": c} if isinstance(c, str) else {"url": c[0], "redirects": c[1]}
                 for c in calls]
        out = self.run_command("fetch", {"calls": calls})
        self.assertEqual(len(out["results"]), len(calls), out)
        return out["results"]

    def served(self, result, path):
        """The call got the upstream's echo of path."""
        self.assertEqual(result.get("status"), 200, result)
        self.assertEqual(json.loads(result["body"])["path"], path)

    def untouched(self, t, upstream=None):
        """No request for tag t reached the upstream."""
        upstream = upstream or self.upstream
        self.assertEqual([p for p in upstream.paths() if t in p], [])


class Refused(SsrfTest):
    """No allow-list: every internal address is refused, however it is
    written or reached, before anything is sent to it."""

    def test_loopback_with_a_live_server(self):
        t = tag()
        [r] = self.fetch(f"{self.upstream.url}/echo/{t}")
        self.assertEqual(r, refused("127.0.0.1", "a loopback address"))
        self.untouched(t)

    def test_other_spellings_of_127_0_0_1(self):
        t = tag()
        port = self.upstream.port
        results = self.fetch(f"http://2130706433:{port}/{t}/decimal",
                             f"http://0x7f000001:{port}/{t}/hex",
                             f"http://0x7f.1:{port}/{t}/short-hex",
                             f"http://017700000001:{port}/{t}/octal",
                             f"http://127.1:{port}/{t}/short",
                             f"https://127.0.0.1:{port}/{t}/https")
        for r in results:
            self.assertEqual(r, refused("127.0.0.1", "a loopback address"))
        self.untouched(t)

    def test_ipv4_mapped_ipv6(self):
        t = tag()
        [r] = self.fetch(f"http://[::ffff:127.0.0.1]:{self.upstream.port}/{t}")
        self.assertEqual(r, refused("::ffff:127.0.0.1", "a loopback address"))
        [r] = self.fetch("http://[::ffff:169.254.169.254]/latest/meta-data/")
        self.assertEqual(r, refused("::ffff:169.254.169.254", "a link-local address"))
        self.untouched(t)

    def test_names_that_resolve_to_loopback(self):
        t = tag()
        [r] = self.fetch(f"http://localhost:{self.upstream.port}/{t}")
        self.assertIs(r.get("failed"), True, r)
        self.assertRegex(r["err"], r"^refused: localhost resolves to (127\.0\.0\.1|::1), "
                                   r"a loopback address \(allow it with http_allow\)$")
        self.untouched(t)

    def test_ip6_localhost(self):
        if not resolves("ip6-localhost"):
            self.skipTest("ip6-localhost does not resolve on this machine")
        [r] = self.fetch(f"http://ip6-localhost:{self.upstream.port}/")
        self.assertIs(r.get("failed"), True, r)
        self.assertRegex(r["err"], r"^refused: ip6-localhost resolves to \S+, a loopback address")

    def test_ipv6_loopback_and_unspecified(self):
        port = self.upstream.port
        r1, r2, r3 = self.fetch(f"http://[::1]:{port}/", f"http://0.0.0.0:{port}/",
                                f"http://[::]:{port}/")
        self.assertEqual(r1, refused("::1", "a loopback address"))
        self.assertEqual(r2, refused("0.0.0.0", "an unspecified address"))
        self.assertEqual(r3, refused("::", "an unspecified address"))

    def test_metadata_private_and_other_internal_ranges(self):
        cases = [
            ("http://169.254.169.254/latest/meta-data/", "169.254.169.254",
             "a link-local address"),
            ("http://10.0.0.1/", "10.0.0.1", "a private address"),
            ("https://172.16.0.1/", "172.16.0.1", "a private address"),
            ("http://172.31.255.255:8080/", "172.31.255.255", "a private address"),
            ("http://192.168.1.1/", "192.168.1.1", "a private address"),
            ("http://100.64.0.1/", "100.64.0.1", "a carrier-grade NAT address"),
            ("http://224.0.0.1/", "224.0.0.1", "a multicast address"),
            ("http://255.255.255.255/", "255.255.255.255", "a broadcast address"),
            ("http://240.0.0.1/", "240.0.0.1", "a reserved address"),
            ("http://[fe80::1]/", "fe80::1", "a link-local address"),
            ("http://[fd00::1]/", "fd00::1", "a private address"),
            ("http://[64:ff9b::a9fe:a9fe]/", "64:ff9b::a9fe:a9fe", "a link-local address"),
        ]
        results = self.fetch(*[c[0] for c in cases])
        for (url, addr, what), r in zip(cases, results):
            self.assertEqual(r, refused(addr, what), url)

    def test_attachment_url_changed_by_the_script(self):
        t = tag()
        att = {"name": "a.bin", "id": "a1", "contenttype": "application/octet-stream",
               "url": "https://files.zoho.com/a.bin"}
        for url, host in [(f"http://localhost:{self.upstream.port}/files/{t}", "localhost"),
                          ("http://169.254.169.254/latest/meta-data/", "169.254.169.254")]:
            out = self.run_command("attach", {"url": url}, attachments=[att])
            self.assertEqual(out, {"text": "downloaded", "failed": True,
                                   "err": f"refused: {host} is not one of Cliq's hosts (allow it "
                                          "with response_url_allow)"})
        self.untouched(t)

    def test_replies_are_exempt_but_their_connection_is_not_shared(self):
        t = tag()
        out = self.run_command("respond", {}, response_url=self.sink.url_for(t))
        # req:respond reached the sink on 127.0.0.1, which response_url_allow
        # names; the script's own call to the same URL was refused (http_allow
        # is empty), even with the reply's connection still open in the pool.
        self.assertEqual(out, {"text": "done", "sent": True,
                               **refused("127.0.0.1", "a loopback address")})
        self.assertEqual(len(self.sink.posts(t)), 1)

    def test_the_refusals_are_not_failures_of_the_host(self):
        self.assertEqual(self.host.request("GET", "/healthz").status, 200)
        [r] = self.fetch(f"{self.upstream.url}/echo/x")
        self.assertIs(r.get("failed"), True)


class AllowLoopback(SsrfTest):
    """--http-allow 127.0.0.1: that address, however the URL spells it or
    names it, is served; the rest of loopback is still refused."""

    allow = ("127.0.0.1",)

    def test_allowed_address_is_served(self):
        t = tag()
        port = self.upstream.port
        results = self.fetch(f"{self.upstream.url}/echo/{t}/a", f"http://2130706433:{port}/{t}/b",
                             f"http://localhost:{port}/{t}/c",
                             f"http://[::ffff:127.0.0.1]:{port}/{t}/d")
        for r, p in zip(results, "abcd"):
            self.served(r, f"/{t}/{p}" if p != "a" else f"/echo/{t}/a")

    def test_other_loopback_addresses_stay_refused(self):
        port = self.upstream.port
        r1, r2, r3 = self.fetch(f"http://127.0.0.2:{port}/", f"http://[::1]:{port}/",
                                "http://169.254.169.254/")
        self.assertEqual(r1, refused("127.0.0.2", "a loopback address"))
        self.assertEqual(r2, refused("::1", "a loopback address"))
        self.assertEqual(r3, refused("169.254.169.254", "a link-local address"))

    def test_attachment_download(self):
        t = tag()
        self.upstream.files[t] = b"file bytes"
        att = {"name": "a.bin", "id": "a1", "contenttype": "application/octet-stream",
               "url": "https://files.zoho.com/a.bin"}
        out = self.run_command("attach", {"url": f"{self.upstream.url}/files/{t}"},
                               attachments=[att])
        self.assertEqual(out, {"text": "downloaded", "bytes": "file bytes", "failed": False})

    def test_the_allow_list_decides_a_scripts_call_to_the_reply_url(self):
        t = tag()
        out = self.run_command("respond", {}, response_url=self.sink.url_for(t))
        self.assertEqual(out, {"text": "done", "sent": True, "status": 200, "failed": False})
        self.assertEqual(len(self.sink.posts(t)), 2)


class Redirects(SsrfTest):
    """--http-allow 127.0.0.2: an upstream there is served, and its
    redirects are judged where they lead."""

    allow = ("127.0.0.2",)
    second_upstream = True

    def test_allowed_upstream_is_served(self):
        t = tag()
        [r] = self.fetch(f"{self.upstream2.url}/echo/{t}")
        self.served(r, f"/echo/{t}")

    def test_redirect_to_an_address_not_allowed_is_refused(self):
        t = tag()
        to = f"{self.upstream.url}/echo/{t}"
        r1, r2, r3 = self.fetch((f"{self.upstream2.url}/redirect?to={to}", 1),
                                (f"{self.upstream2.url}/redirect?to={to}", 0),
                                (f"{self.upstream2.url}/redirect?to=http://localhost:"
                                 f"{self.upstream.port}/{t}", 3))
        self.assertEqual(r1, refused("127.0.0.1", "a loopback address", redirected=True))
        self.assertEqual(r2.get("status"), 302, r2)  # not followed: nothing to judge
        self.assertIs(r3.get("failed"), True, r3)
        self.assertRegex(r3["err"], r"^refused after a redirect: localhost resolves to ")
        self.untouched(t)
        self.assertEqual(self.upstream.requests, 0)

    def test_redirect_within_the_allowed_upstream_is_followed(self):
        [r] = self.fetch((f"{self.upstream2.url}/redirect", 1))
        self.served(r, "/echo/redirected")


class ConfigFile(SsrfTest):
    """http_allow in the config file, changed by SIGHUP; host names allow
    what they resolve to when they are the URL's host."""

    @classmethod
    def start_host(cls):
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-ssrf-")
        cls.cfg = os.path.join(cls.dir, "cliqhost.lua")
        cls.write_config('http_allow = { "127.0.0.1" }')
        return Host("--config", cls.cfg, scripts=SCRIPTS, keys=[KEY.spki])

    @classmethod
    def write_config(cls, extra):
        with open(cls.cfg, "w") as f:
            f.write(f'data_dir = "{cls.dir}/data"\n{extra}\n')

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def hup(self, expect):
        n = len(self.host.lines)
        self.host.proc.send_signal(signal.SIGHUP)
        line = self.host.wait_for(expect, timeout=30, start=n)
        self.assertIsNotNone(line, self.host.log()[-2000:])

    def test_sighup_changes_what_is_allowed(self):
        port = self.upstream.port
        ip_url, name_url = f"http://127.0.0.1:{port}/echo/ip", f"http://localhost:{port}/echo/n"
        r1, r2 = self.fetch(ip_url, name_url)
        self.served(r1, "/echo/ip")
        self.served(r2, "/echo/n")

        # A name allows what it resolves to only when it is the URL's host;
        # the connection left open by the calls above is judged again.
        self.write_config('http_allow = { "LocalHost" }')  # names match in any case
        self.hup(r"SIGHUP: config reloaded")
        for _ in range(4):  # every worker
            r1, r2 = self.fetch(ip_url, name_url)
            self.assertEqual(r1, refused("127.0.0.1", "a loopback address"))
            self.served(r2, "/echo/n")

        # A bad entry keeps the running list, and says which entry.
        self.write_config('http_allow = { "localhost", "10.0.0.1/8" }')
        self.hup(r"SIGHUP: config not reloaded; the running settings stay: .*http_allow entry "
                 r"'10\.0\.0\.1/8': has bits set past the /8 prefix \(did you mean 10\.0\.0\.0/8\?\)")
        [r] = self.fetch(name_url)
        self.served(r, "/echo/n")

        self.write_config("")
        self.hup(r"SIGHUP: config reloaded")
        for _ in range(4):
            [r] = self.fetch(name_url)
            self.assertIs(r.get("failed"), True, r)
            self.assertRegex(r["err"], r"^refused: localhost resolves to ")


class Settings(unittest.TestCase):
    """http_allow is validated when the config is read, naming the entry."""

    def test_bad_flag_entry_stops_the_start(self):
        for entry, why in [("10.0.0.0/33", "the prefix length must be a number from 0 to 32"),
                           ("2130706433", "write IPv4 addresses as four decimal numbers"),
                           ("10.0.0.1:80", "not an IP address, CIDR block or host name")]:
            p = run_cli("serve", "--no-verify", "--listen", "127.0.0.1:0", "--scripts", SCRIPTS,
                        "--http-allow", "127.0.0.1", "--http-allow", entry, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(f"http_allow entry '{entry}': {why}", p.stderr)

    def test_bad_config_entry(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-ssrf-")
        try:
            cfg = os.path.join(d, "c.lua")
            with open(cfg, "w") as f:
                f.write('http_allow = { "::1", "fd00::1/8" }\n')
            p = run_cli("check", "--scripts", SCRIPTS, "--config", cfg)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("http_allow entry 'fd00::1/8': has bits set past the /8 prefix "
                          "(did you mean fd00::/8?)", p.stdout + p.stderr)
            with open(cfg, "w") as f:
                f.write('http_allow = { "::1", "fd00::/8", "jenkins.internal", "10.0.0.0/8" }\n')
            p = run_cli("check", "--scripts", SCRIPTS, "--config", cfg)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def test_help_lists_the_setting(self):
        p = run_cli("--help")
        text = p.stdout + p.stderr
        self.assertTrue(re.search(r"--http-allow VALUE\s+address, CIDR block or host name", text), text)
        self.assertIn("config: http_allow", text)


if __name__ == "__main__":
    unittest.main()
