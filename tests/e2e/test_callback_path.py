"""(issue 13, point 10) The callback's path: a host behind a proxy that
forwards https://bots.example.com/cliq (one domain, several services) is
reached at /cliq. callback_path (--callback-path, default "/") is where
the host takes Cliq's POSTs; /status shows it; cliqhost invoke follows it
from the config, or posts to --url's path as given; SIGHUP changes it all
or nothing."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest

import test_reload
from cliq_bodies import body
from hostlib import BIN, HERE, Host, Key, run_cli
from test_invoke import free_port

SCRIPTS = os.path.join(HERE, "invoke_scripts")
KEY = Key("callback-path")


def call_body():
    return json.dumps(body("command", "execution_handler", "show",
                           {"arguments": "text"})).encode()


class CallbackPath(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = Host("--callback-path", "/cliq", scripts=SCRIPTS, keys=[KEY.spki])

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        assert rc == 0 and not cls.host.sanitizer_reports(), cls.host.log()

    def post(self, path):
        data = call_body()
        return self.host.request("POST", path, data, {"Content-Type": "application/json",
                                                      "X-Cliq-Signature": KEY.sign(data)})

    def test_the_callback_answers_at_its_path(self):
        r = self.post("/cliq")
        self.assertEqual(r.status, 200, r.body)
        self.assertEqual(r.json()["output"]["text"], "Plain *bold* text\nover two lines")

    def test_other_paths_are_404_naming_the_callback(self):
        for path in ("/", "/cliq/", "/cliqx", "/other"):
            with self.subTest(path=path):
                r = self.post(path)
                self.assertEqual(r.status, 404, r.body)
                err = r.json()["error"]
                self.assertIn(f"no such path: {path}", err)
                self.assertIn("POST /cliq", err)
                self.assertIn("request_id", r.json())

    def test_other_methods_are_405(self):
        r = self.host.request("GET", "/cliq")
        self.assertEqual(r.status, 405)
        self.assertEqual(r.headers["allow"], "POST")
        self.assertIn("POST /cliq", r.json()["error"])

    def test_admin_endpoints_stay(self):
        self.assertEqual(self.host.request("GET", "/healthz").status, 200)
        self.assertEqual(self.host.request("GET", "/metrics").status, 200)

    def test_status_shows_the_path(self):
        st = self.host.request("GET", "/status").json()
        self.assertEqual(st["callback_path"], "/cliq")

    def test_invoke_posts_to_the_url_path_as_given(self):
        url = f"http://127.0.0.1:{self.host.port}/cliq"
        p = subprocess.run([BIN, "invoke", "--key", KEY.pem, "--url", url, "command",
                            "show", "text"], capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Plain *bold* text\nover two lines\n")
        # The host's root is not the callback: a 404 that says where it is.
        p = subprocess.run([BIN, "invoke", "--key", KEY.pem, "--url",
                            f"http://127.0.0.1:{self.host.port}/", "command", "show", "text"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("HTTP 404: no such path: / (Cliq's callback is POST /cliq)", p.stderr)


class DefaultPath(unittest.TestCase):
    def test_default_is_root_and_status_says_so(self):
        h = Host("--no-verify", scripts=SCRIPTS)
        try:
            self.assertEqual(h.request("GET", "/status").json()["callback_path"], "/")
            r = h.request("POST", "/cliq", call_body(), {"Content-Type": "application/json"})
            self.assertEqual(r.status, 404)
            self.assertIn("POST /", r.json()["error"])
            r = h.request("POST", "/", call_body(), {"Content-Type": "application/json"})
            self.assertEqual(r.status, 200)
        finally:
            self.assertEqual(h.stop(), 0)


class BadValues(unittest.TestCase):
    BAD = [
        ("cliq", "must start with /"),
        ("", "must start with /"),
        ("/cliq?x=1", "no query"),
        ("/cliq#top", "no query"),
        ("/my bots", "no spaces"),
        ("/a\tb", "no spaces"),
        ("/healthz", "/healthz"),
        ("/status", "/status"),
        ("/metrics", "/metrics"),
        ("/hooks/cliq", "/hooks"),
        ("/schedules", "/schedules"),
        ("/a/../cliq", ". or .. segment"),
        ("/my%20bots", "no %-escapes"),
        ("/caf\u00e9", "has '?'"),
        ("/" + "c" * 300, "longer than 256 bytes"),
    ]

    def test_bad_value_stops_the_start(self):
        for value, want in self.BAD:
            with self.subTest(value=value):
                p = run_cli("serve", "--no-verify", "--listen", "127.0.0.1:0", "--scripts",
                            SCRIPTS, "--callback-path", value, timeout=30)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn("callback_path", p.stderr)
                self.assertIn(want, p.stderr)
                self.assertNotIn("listening", p.stdout + p.stderr)

    def test_bad_value_in_the_config_file(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-cbpath-")
        try:
            cfg = os.path.join(d, "host.lua")
            with open(cfg, "w") as f:
                f.write('callback_path = "/cliq?x=1"\n')
            p = run_cli("serve", "--no-verify", "--listen", "127.0.0.1:0", "--config", cfg,
                        timeout=30)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("callback_path '/cliq?x=1'", p.stderr)
        finally:
            shutil.rmtree(d)


class FromTheConfig(unittest.TestCase):
    """invoke --config FILE, without --url: the URL is the config's listen
    (an every-interface address as 127.0.0.1) and callback_path; SIGHUP
    moves the path all or nothing."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-cbpath-")
        self.cfg = os.path.join(self.dir, "cliqhost.lua")
        self.port = free_port()
        self.write_config("/cliq")
        self.host = Host("--config", self.cfg, listen=None, response_url_allow=())

    def tearDown(self):
        rc = self.host.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
        self.assertEqual(rc, 0, self.host.log())

    def write_config(self, path, listen=None):
        with open(self.cfg, "w") as f:
            f.write(f'listen = "{listen or "127.0.0.1:%d" % self.port}"\n'
                    f'scripts = "{SCRIPTS}"\ndata_dir = "{self.dir}/data"\n'
                    f'keys = {{ "{KEY.spki}" }}\ncallback_path = "{path}"\n')

    def invoke(self, *args):
        return subprocess.run([BIN, "invoke", "--key", KEY.pem, *args],
                              capture_output=True, text=True, timeout=60)

    hup = test_reload.Sighup.hup

    def test_invoke_builds_the_url_from_the_config(self):
        p = self.invoke("--config", self.cfg, "command", "show", "text")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, "Plain *bold* text\nover two lines\n")
        # --url wins over the config.
        p = self.invoke("--config", self.cfg, "--url", f"http://127.0.0.1:{self.port}/",
                        "command", "show", "text")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("no such path: /", p.stderr)
        # A listen address on every interface is called on 127.0.0.1.
        other = os.path.join(self.dir, "other.lua")
        with open(other, "w") as f:
            f.write(f'listen = ":{self.port}"\ncallback_path = "/cliq"\n')
        p = self.invoke("--config", other, "--dry-run", "command", "show", "text")
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.invoke("--config", other, "command", "show", "text")
        self.assertEqual(p.returncode, 0, p.stderr)
        # No host there: the way to start one is with that config.
        down = os.path.join(self.dir, "down.lua")
        with open(down, "w") as f:
            f.write(f'listen = "127.0.0.1:{free_port()}"\ncallback_path = "/cliq"\n')
        p = self.invoke("--config", down, "command", "show", "text")
        self.assertEqual(p.returncode, 3, p.stderr)
        self.assertIn(f"start it with `cliqhost serve --config {down}`", p.stderr)
        # A config that does not load is a usage error.
        p = self.invoke("--config", os.path.join(self.dir, "nosuch.lua"), "command", "show")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("nosuch.lua", p.stderr)

    def test_sighup_moves_the_path_all_or_nothing(self):
        self.write_config("/bots")
        self.hup(r"SIGHUP: config reloaded")
        p = self.invoke("--config", self.cfg, "command", "show", "text")
        self.assertEqual(p.returncode, 0, p.stderr)
        for _ in range(4):  # every worker
            p = self.invoke("--url", f"http://127.0.0.1:{self.port}/cliq", "command", "show",
                            "text")
            self.assertEqual(p.returncode, 1, p.stderr)
        self.write_config("bots")
        self.hup(r"SIGHUP: config not reloaded; the running settings stay: .*callback_path")
        p = self.invoke("--url", f"http://127.0.0.1:{self.port}/bots", "command", "show", "text")
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
