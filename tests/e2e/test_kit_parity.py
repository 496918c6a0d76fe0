"""The test kit (lualib/cliq/test.lua) against the real host: requests built
by the kit, sent to `cliqhost serve`, must get the reply the kit gave for
them (example scripts), and the kit's fakes must raise and return the
host's strings (parity_scripts/commands/probe.lua). kit_parity.lua makes
the requests and the kit's replies."""

import json
import os
import shutil
import subprocess
import tempfile
import unittest
import urllib.parse

from cliq_bodies import now_ms
from hostlib import BIN, REPO, Host, Key

KEY = Key("main")
HOOK_TOKEN = "parity-hook-token-5e1b"


def kit_cases():
    lua = shutil.which("lua5.4")
    if not lua:
        raise unittest.SkipTest("lua5.4 is not installed")
    lib = os.path.join(REPO, "lualib")
    env = dict(os.environ, LUA_PATH=f"{lib}/?.lua;{lib}/?/init.lua;;", CLIQHOST_REPO=REPO)
    out = subprocess.run([lua, os.path.join(REPO, "tests/e2e/kit_parity.lua")], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError("kit_parity.lua failed:\n" + out.stderr)
    return [json.loads(line) for line in out.stdout.splitlines()]


class KitParity(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        every = kit_cases()
        cls.cases = [c for c in every if "hook" not in c and "schedule" not in c]
        cls.hook_cases = [c for c in every if "hook" in c]
        cls.schedule_cases = [c for c in every if "schedule" in c]
        cls.hosts = {}
        for c in cls.cases:
            d = c["scripts"]
            if d not in cls.hosts:
                cls.hosts[d] = Host(scripts=os.path.join(REPO, d), keys=[KEY.spki])
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-parity-")
        config = os.path.join(cls.dir, "hooks.lua")
        with open(config, "w") as f:
            f.write('hooks = { shapes = { scheme = "bearer", secret = "%s" } }\n' % HOOK_TOKEN)
        cls.hook_host = Host("--config", config, keys=[KEY.spki],
                             scripts=os.path.join(REPO, "tests/e2e/parity_scripts"))

    @classmethod
    def tearDownClass(cls):
        for h in list(cls.hosts.values()) + [cls.hook_host]:
            assert h.stop() == 0
            assert not h.sanitizer_reports(), h.log()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_schedules_are_refused_with_the_kit_s_words(self):
        self.assertGreater(len(self.schedule_cases), 5)
        scripts = os.path.join(self.dir, "scripts")
        os.makedirs(os.path.join(scripts, "schedules"))
        for c in self.schedule_cases:
            with open(os.path.join(scripts, "schedules", c["schedule"] + ".lua"), "w") as f:
                f.write(c["text"])
        out = subprocess.run([BIN, "check", "--scripts", scripts], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 1, out.stdout + out.stderr)
        for c in self.schedule_cases:
            with self.subTest(schedule=c["schedule"]):
                self.assertIn("schedules/%s.lua: %s" % (c["schedule"], c["error"]),
                              out.stdout + out.stderr)

    def test_hooks_reply_as_the_kit_did(self):
        self.assertGreater(len(self.hook_cases), 5)
        for c in self.hook_cases:
            with self.subTest(query=c["query"], text=c["text"]):
                headers = dict(c["headers"], Authorization="Bearer " + HOOK_TOKEN)
                path = "/hooks/%s?%s" % (c["hook"], urllib.parse.urlencode(c["query"]))
                r = self.hook_host.request("POST", path, c["text"].encode(), headers)
                self.assertEqual((r.status, r.json()), (c["status"], c["reply"]), r)

    def test_the_host_replies_as_the_kit_did(self):
        self.assertGreater(len(self.cases), 10)
        for c in self.cases:
            body = c["body"]
            # The kit stamps calls on its fake clock; the host refuses a
            # timestamp more than replay_window_s from its own.
            body["timestamp"] = now_ms()
            with self.subTest(type=body["type"], name=body.get("name"),
                              handler=body["handler"]["type"],
                              params=str(body["params"].get("arguments", ""))):
                r = self.hosts[c["scripts"]].post(json.dumps(body), key=KEY)
                self.assertEqual(r.status, 200, r)
                host, kit = r.json()["output"], c["output"]["output"]
                if isinstance(host, list) and isinstance(kit, list) and len(host) == len(kit):
                    # The probe: name each string that differs.
                    for i, (h, k) in enumerate(zip(host, kit)):
                        self.assertEqual(k, h, f"probe item {i + 1}")
                self.assertEqual(kit, host)


if __name__ == "__main__":
    unittest.main()
