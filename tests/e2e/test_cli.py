"""The command line: the config file, flags over it, check, help."""

import os
import re
import shutil
import tempfile
import unittest

from cliq_bodies import body
from hostlib import HERE, REPO, Host, Key, run_cli

KEY = Key("main")


class ConfigFile(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-cfg-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, text):
        path = os.path.join(self.dir, "cliqhost.lua")
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_config_file_settings_and_flag_override(self):
        os.environ["CLIQHOST_TEST_KEY"] = KEY.spki
        cfg = self.write(f'''
            listen  = "127.0.0.1:0"
            scripts = "{HERE}/scripts"
            keys    = {{ os.getenv("CLIQHOST_TEST_KEY") }}
            workers = 3
            error_reply = "Oops, {{id}}"
            local helper = "locals are fine"
        ''')
        host = Host("--config", cfg, "--data-dir", self.dir, workers=None, listen=None)
        try:
            self.assertIn("(3 workers", host.wait_for("listening on"))
            r = host.post(body("command", "execution_handler", "cmd", {}), key=KEY)
            self.assertEqual(r.status, 200)
        finally:
            self.assertEqual(host.stop(), 0)
        host = Host("--config", cfg, "--data-dir", self.dir, workers=1, listen=None)  # the flag wins
        try:
            self.assertIn("(1 workers", host.wait_for("listening on"))
        finally:
            self.assertEqual(host.stop(), 0)

    def test_config_mistakes_are_named(self):
        cases = [
            ("deadlin_ms = 4000", "unknown setting 'deadlin_ms'"),
            ('workers = "two"', "'workers' must be an integer"),
            ("keys = 7", "'keys' must be a string or a list of strings"),
            ("this is not lua", "cliqhost.lua:1:"),
            ('listen = "localhost"', "needs a port"),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                p = run_cli("serve", "--config", self.write(text), "--key", KEY.spki)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(want, p.stderr)

    def test_design_example_config_loads(self):
        # The config of DESIGN.md, keys aside, loads as written.
        cfg = self.write(f'''
            listen      = "127.0.0.1:0"
            scripts     = "{HERE}/scripts"
            keys        = {{ "{KEY.pub_pem}" }}
            deadline_ms = 4500
            workers     = 2
            data_dir    = "data"
            cliq_api    = nil
            tokens      = {{
              default = os.getenv("CLIQ_WEBHOOK_TOKEN"),
              alerts  = {{ token = os.getenv("CLIQ_ALERTS_TOKEN"), disabled = false }},
            }}
            script_env  = {{ "JENKINS_URL" }}
        ''')
        host = Host("--config", cfg, "--data-dir", self.dir)
        self.assertEqual(host.stop(), 0)


class Check(unittest.TestCase):
    def test_examples_are_clean(self):
        p = run_cli("check", "--scripts", os.path.join(REPO, "scripts"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("7 scripts", p.stderr)

    def test_problems_are_file_line_message(self):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-check-")
        try:
            os.makedirs(os.path.join(d, "commands"))
            os.makedirs(os.path.join(d, "lib"))
            with open(os.path.join(d, "commands", "a.lua"), "w") as f:
                f.write("return {\n  execution = function(req)\n    return req.\n  end,\n}\n")
            with open(os.path.join(d, "commands", "b.lua"), "w") as f:
                f.write("return { execution = function() end }\n")
            with open(os.path.join(d, "lib", "m.lua"), "w") as f:
                f.write("local x = \n")
            p = run_cli("check", "--scripts", d)
            self.assertEqual(p.returncode, 1)
            lines = p.stdout.strip().split("\n")
            self.assertEqual(len(lines), 2, p.stdout)
            self.assertRegex(p.stdout, re.escape(d) + r"/commands/a\.lua:4: .*near 'end'")
            self.assertRegex(p.stdout, re.escape(d) + r"/lib/m\.lua:2: ")
            self.assertIn("2 problems", p.stderr)
        finally:
            shutil.rmtree(d)

    def test_a_redis_store_is_asked(self):
        """check asks the config's Redis as the host will (password, db) and
        says what answered; one that cannot be reached is a problem."""
        from redislib import Redis, free_port
        r = Redis(password="s3cret")
        self.addCleanup(r.stop)
        scripts = os.path.join(REPO, "scripts")
        p = run_cli("check", "--scripts", scripts, "--store",
                    f"redis://:s3cret@127.0.0.1:{r.port}/1")
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stderr, r"store: redis://:\*\*\*@127\.0\.0\.1:\d+/1 answers "
                                   r"\(Redis 7\.")
        self.assertNotIn("s3cret", p.stderr)
        p = run_cli("check", "--scripts", scripts, "--store",
                    f"redis://:wrong@127.0.0.1:{r.port}/1")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertRegex(p.stderr, r"refused the setup: (WRONGPASS|ERR invalid password)")
        self.assertNotIn("wrong", p.stderr.replace("WRONGPASS", ""))
        p = run_cli("check", "--scripts", scripts, "--store",
                    f"redis://127.0.0.1:{free_port()}/0")
        self.assertEqual(p.returncode, 1, p.stderr)
        self.assertIn("redis is unreachable: cannot connect to", p.stderr)

    def check_tree(self, files):
        """Writes files (path: text) to a new scripts folder and checks it;
        returns the folder and the finished `cliqhost check`."""
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-check-")
        self.addCleanup(shutil.rmtree, d)
        for rel, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(d, rel)), exist_ok=True)
            with open(os.path.join(d, rel), "w") as f:
                f.write(text)
        p = run_cli("check", "--scripts", d)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        return d, p

    def test_a_module_error_names_the_script_that_required_it(self):
        d, p = self.check_tree({
            "commands/deploy.lua": 'local u = require "util"\nreturn { execution = function() end }\n',
            "lib/util.lua": '\nreturn require "pl.compat"\n',
            "lib/pl/compat.lua": 'local x = 1\nerror("needs Lua 5.1")\n'})
        # The script, then each require on the way, then the error itself.
        self.assertEqual(
            p.stdout.strip(),
            f'{d}/commands/deploy.lua:1: require "util": {d}/lib/util.lua:2: '
            f'require "pl.compat": {d}/lib/pl/compat.lua:2: needs Lua 5.1')

    def test_a_module_that_does_not_compile_is_not_called_missing(self):
        d, p = self.check_tree({
            "commands/deploy.lua": 'local c = require "pl.compat"\nreturn { execution = function() end }\n',
            "lib/pl/compat.lua": "local x = \n"})
        lines = sorted(p.stdout.strip().split("\n"))
        self.assertEqual(len(lines), 2, p.stdout)
        self.assertRegex(lines[0], re.escape(f'{d}/commands/deploy.lua:1: require "pl.compat": '
                                             f'{d}/lib/pl/compat.lua does not load'))
        self.assertNotIn("none of", p.stdout)
        self.assertRegex(lines[1], re.escape(f"{d}/lib/pl/compat.lua:2: ") + ".*near <eof>")

class Help(unittest.TestCase):
    def test_help_lists_every_flag_with_its_default(self):
        p = run_cli("--help")
        self.assertEqual(p.returncode, 0)
        for flag, default in [("--listen", "127.0.0.1:8080"), ("--scripts", "scripts"),
                              ("--deadline", "4500"), ("--workers", "0"),
                              ("--max-body-bytes", "262144"), ("--key", None),
                              ("--no-verify", None), ("--log-level", "info")]:
            self.assertIn(flag, p.stdout)
            if default:
                self.assertRegex(p.stdout, re.escape(flag) + r"[\s\S]*?default: " + re.escape(default))

    def test_version(self):
        p = run_cli("--version")
        self.assertEqual(p.returncode, 0)
        self.assertRegex(p.stdout, r"^cliqhost \d+\.\d+\.\d+ \(Lua 5\.4")

    def test_unknown_flag(self):
        p = run_cli("serve", "--lisen", "x")
        self.assertEqual(p.returncode, 2)
        self.assertIn("unknown option '--lisen'", p.stderr)


if __name__ == "__main__":
    unittest.main()
