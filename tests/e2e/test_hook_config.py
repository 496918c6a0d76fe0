"""The `hooks` setting (other tools' webhooks, POST /hooks/<name>): its
mistakes are named by `check` and `serve` and refused on SIGHUP, a good one
loads with every scheme, and its secrets never reach the log."""

import os
import shutil
import signal
import tempfile
import unittest

from cliq_bodies import body
from hostlib import REPO, Host, Key, run_cli

KEY = Key("main")
UNSET = "CLIQHOST_E2E_HOOK_UNSET"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

# Every scheme with every field it takes, as an operator writes it.
GOOD_HOOKS = f'''
hooks = {{
  github       = {{ scheme = "github", secret = env "CLIQHOST_E2E_GITHUB_SECRET" }},
  deploys      = {{ scheme = "standard-webhooks", secret = "{SW_SECRET}",
                   secrets = {{ "c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==" }}, tolerance_s = 120 }},
  alertmanager = {{ scheme = "bearer", secret = "am-token-0123456789" }},
  grafana      = {{ scheme = "bearer", header = "X-Grafana-Token", secret = "gf-token-0123456789" }},
  stripe_like  = {{ scheme = "hmac-sha256", header = "X-Signature", encoding = "base64",
                   prefix = "sha256=", secret = "hmac-secret-0123456789" }},
}}
'''


class HookConfig(unittest.TestCase):
    def setUp(self):
        os.environ.pop(UNSET, None)
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-hookcfg-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def write(self, text, name="cliqhost.lua"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check(self, text, env=None):
        old = dict(os.environ)
        os.environ.update(env or {})
        try:
            return run_cli("check", "--config", self.write(text), "--scripts",
                           os.path.join(REPO, "scripts"))
        finally:
            os.environ.clear()
            os.environ.update(old)

    def test_mistakes_are_named(self):
        cases = [
            ('hooks = { github = { scheme = "gitlab", secret = "x" } }',
             "hooks.github: scheme 'gitlab' is not one of github, standard-webhooks, bearer, "
             "hmac-sha256"),
            (f'hooks = {{ github = {{ scheme = "github", secret = env "{UNSET}" }} }}',
             f"hooks.github: no secret ({UNSET} is unset)"),
            (f'hooks = {{ github = {{ scheme = "github", secret = os.getenv("{UNSET}") }} }}',
             "hooks.github: no secret"),
            ('hooks = { ["../etc"] = { scheme = "github", secret = "x" } }',
             "hooks: '../etc' is not a hook name"),
            ('hooks = { ["my hook"] = { scheme = "github", secret = "x" } }',
             "hooks: 'my hook' is not a hook name"),
            ('hooks = { g = { scheme = "github", secret = "x", tolerance_s = 60 } }',
             "hooks.g: unknown field 'tolerance_s' (a github hook takes scheme, secret, secrets)"),
            ('hooks = { g = { scheme = "hmac-sha256", secret = "x" } }',
             "hooks.g: scheme hmac-sha256 needs 'header'"),
            ('hooks = { g = { scheme = "standard-webhooks", secret = "whsec_***" } }',
             "hooks.g: 'secret' is not a Standard Webhooks secret"),
            ('hooks = { g = { scheme = "bearer", secret = true } }',
             "hooks.g: 'secret' must be a string (got boolean)"),
            ('hooks = "github"', "'hooks' must be a table"),
        ]
        for text, want in cases:
            with self.subTest(text=text):
                p = self.check(text)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("cliqhost.lua: " + want, p.stderr)
                self.assertNotIn("Traceback", p.stderr)
        # serve says the same and does not start.
        p = run_cli("serve", "--config", self.write(cases[1][0]), "--key", KEY.spki,
                    "--listen", "127.0.0.1:0")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn(f"hooks.github: no secret ({UNSET} is unset)", p.stderr)

    def test_every_scheme_loads(self):
        p = self.check(GOOD_HOOKS, env={"CLIQHOST_E2E_GITHUB_SECRET": "gh-secret-0123456789"})
        self.assertEqual(p.returncode, 0, p.stderr)
        p = self.check(GOOD_HOOKS)  # the variable unset
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("hooks.github: no secret (CLIQHOST_E2E_GITHUB_SECRET is unset)", p.stderr)

    def test_sighup_refuses_a_bad_hook_and_keeps_serving(self):
        scripts = os.path.join(self.dir, "scripts")
        shutil.copytree(os.path.join(os.path.dirname(__file__), "scripts"), scripts)
        env = {"CLIQHOST_E2E_GITHUB_SECRET": "gh-secret-0123456789"}
        base = f'keys = {{ "{KEY.spki}" }}\nscripts = "{scripts}"\ndata_dir = "{self.dir}/data"\n'
        cfg = self.write(base + GOOD_HOOKS)
        h = Host("--config", cfg, listen="127.0.0.1:0", env=env)
        try:
            self.write(base + 'hooks = { g = { scheme = "github", secret = "x", prefix = "p" } }')
            mark = len(h.lines)
            h.proc.send_signal(signal.SIGHUP)
            line = h.wait_for("SIGHUP: config not reloaded", start=mark)
            self.assertIsNotNone(line, h.log())
            self.assertIn("hooks.g: unknown field 'prefix'", line)
            r = h.post(body("command", "execution_handler", "cmd", {}), key=KEY)
            self.assertEqual(r.status, 200)
            self.write(base + 'hooks = { g = { scheme = "github", secret = "x" } }')
            mark = len(h.lines)
            h.proc.send_signal(signal.SIGHUP)
            self.assertIsNotNone(h.wait_for("SIGHUP: config reloaded", start=mark), h.log())
        finally:
            self.assertEqual(h.stop(), 0, h.log())

    def test_hook_secrets_never_reach_the_log(self):
        # A script that logs the hook's secrets (read through script_env)
        # finds them masked, the Standard Webhooks one with and without
        # its "whsec_" prefix.
        scripts = os.path.join(self.dir, "scripts")
        os.makedirs(os.path.join(scripts, "commands"))
        with open(os.path.join(scripts, "commands", "leak.lua"), "w") as f:
            f.write('return { execution = function()\n'
                    '  log.info("gh " .. os.getenv("CLIQHOST_E2E_GITHUB_SECRET"))\n'
                    '  log.info("sw " .. os.getenv("CLIQHOST_E2E_SW_SECRET"))\n'
                    '  log.info("sw bare " .. os.getenv("CLIQHOST_E2E_SW_SECRET"):sub(7))\n'
                    '  log.info("bearer am-token-0123456789 done")\n'
                    '  return { text = "logged" }\n'
                    'end }\n')
        env = {"CLIQHOST_E2E_GITHUB_SECRET": "gh-secret-0123456789",
               "CLIQHOST_E2E_SW_SECRET": SW_SECRET}
        cfg = self.write(f'keys = {{ "{KEY.spki}" }}\nscripts = "{scripts}"\n'
                         f'data_dir = "{self.dir}/data"\n'
                         'script_env = { "CLIQHOST_E2E_GITHUB_SECRET", "CLIQHOST_E2E_SW_SECRET" }\n'
                         + GOOD_HOOKS)
        h = Host("--config", cfg, listen="127.0.0.1:0", env=env)
        try:
            r = h.post(body("command", "execution_handler", "leak", {}), key=KEY)
            self.assertEqual(r.status, 200, r)
            self.assertIn("logged", r.body.decode())
            self.assertIsNotNone(h.wait_for("bearer .* done"), h.log())
            log = h.log()
            self.assertIsNotNone(h.wait_for("sw bare "), log)
            for secret in ("gh-secret-0123456789", SW_SECRET, SW_SECRET[6:],
                           "am-token-0123456789"):
                self.assertNotIn(secret, log)
        finally:
            self.assertEqual(h.stop(), 0, h.log())


if __name__ == "__main__":
    unittest.main()
