"""cliqhost keygen: a development key pair that serve --key trusts."""

import base64
import json
import os
import shutil
import stat
import subprocess
import tempfile
import unittest

import cliq_bodies
from hostlib import HERE, Host, run_cli

SCRIPTS = os.path.join(HERE, "invoke_scripts")


def keygen(directory, *flags):
    return run_cli("keygen", directory, *flags)


class Keygen(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-keygen-")

    def tearDown(self):
        shutil.rmtree(self.dir)

    def test_writes_the_pair_as_cliq_shows_it(self):
        d = os.path.join(self.dir, "nested", "dev")  # made with its parents
        p = keygen(d)
        self.assertEqual(p.returncode, 0, p.stderr)
        pem, pub = os.path.join(d, "cliq-dev.pem"), os.path.join(d, "cliq-dev.pub")
        self.assertIn(pem, p.stdout)
        self.assertIn(f"cliqhost serve --key {pub}", p.stdout)
        self.assertIn(f"cliqhost invoke --key {pem}", p.stdout)
        self.assertRegex(p.stdout, r"RSA-2048 SHA256:[0-9a-f]{16}")
        self.assertEqual(stat.S_IMODE(os.stat(pem).st_mode), 0o600)
        with open(pem) as f:
            text = f.read()
        self.assertTrue(text.startswith("-----BEGIN PRIVATE KEY-----\n"), text[:40])  # PKCS#8
        with open(pub) as f:
            line = f.read()
        # One line of base64, no PEM armour, a trailing newline.
        self.assertRegex(line, r"^[A-Za-z0-9+/]+=*\n$")
        der = base64.b64decode(line)
        # The DER is an X.509 SubjectPublicKeyInfo of the .pem's RSA-2048 key.
        want = subprocess.run(["openssl", "pkey", "-in", pem, "-pubout", "-outform", "DER"],
                              check=True, capture_output=True).stdout
        self.assertEqual(der, want)
        info = subprocess.run(["openssl", "pkey", "-pubin", "-inform", "DER", "-text_pub",
                               "-noout"], input=der, check=True, capture_output=True).stdout
        self.assertIn(b"2048 bit", info)

    def test_keeps_an_existing_pair_unless_forced(self):
        self.assertEqual(keygen(self.dir).returncode, 0)
        pem = os.path.join(self.dir, "cliq-dev.pem")
        with open(pem, "rb") as f:
            before = f.read()
        p = keygen(self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("already exists", p.stderr)
        self.assertIn("--force", p.stderr)
        with open(pem, "rb") as f:
            self.assertEqual(f.read(), before)
        p = keygen(self.dir, "--force")
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(pem, "rb") as f:
            self.assertNotEqual(f.read(), before)
        self.assertEqual(stat.S_IMODE(os.stat(pem).st_mode), 0o600)
        self.assertEqual(sorted(os.listdir(self.dir)), ["cliq-dev.pem", "cliq-dev.pub"])

    def test_serve_trusts_the_pub(self):
        self.assertEqual(keygen(self.dir).returncode, 0)
        pem = os.path.join(self.dir, "cliq-dev.pem")
        host = Host(scripts=SCRIPTS, keys=[os.path.join(self.dir, "cliq-dev.pub")])
        try:
            self.assertTrue(host.wait_for(r"key 1: RSA-2048 SHA256:"))
            body = json.dumps(cliq_bodies.body("command", "execution_handler", "echo",
                                               {"arguments": "hi"})).encode()
            # Signed by openssl with the .pem, as hostlib signs.
            sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", pem], input=body,
                                 check=True, capture_output=True).stdout
            r = host.post(body, signature=base64.b64encode(sig).decode())
            self.assertEqual(r.status, 200, r.body)
            self.assertEqual(r.json()["output"]["text"], "command|echo|execution|-")
        finally:
            self.assertEqual(host.stop(), 0)

    def test_usage(self):
        p = run_cli("keygen")
        self.assertEqual(p.returncode, 2)
        self.assertIn("usage: cliqhost keygen DIR", p.stderr)
        self.assertEqual(run_cli("keygen", self.dir, "--forse").returncode, 2)
        p = run_cli("keygen", "--help")
        self.assertEqual(p.returncode, 0)
        self.assertIn("--force", p.stdout)


if __name__ == "__main__":
    unittest.main()
