"""Helpers for the end-to-end tests: run the real cliqhost binary on
loopback, and sign requests with the openssl command-line tool (an
independent signer: the host has no signing code of its own in this path).

Only Python's standard library is used.
"""

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time

BIN = os.environ.get("CLIQHOST_BIN", os.path.join(os.path.dirname(__file__), "../../build/cliqhost"))
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../.."))

_keydir = tempfile.mkdtemp(prefix="cliqhost-e2e-keys-")


class Key:
    """An RSA key pair made by `openssl genpkey`."""

    def __init__(self, name, bits=2048):
        self.pem = os.path.join(_keydir, name + ".pem")
        if not os.path.exists(self.pem):
            subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                            f"rsa_keygen_bits:{bits}", "-out", self.pem],
                           check=True, capture_output=True)
        self.pub_pem = os.path.join(_keydir, name + ".pub.pem")
        subprocess.run(["openssl", "pkey", "-in", self.pem, "-pubout", "-out", self.pub_pem],
                       check=True, capture_output=True)
        der = subprocess.run(["openssl", "pkey", "-in", self.pem, "-pubout", "-outform", "DER"],
                             check=True, capture_output=True).stdout
        # The one-line base64 SubjectPublicKeyInfo, as Cliq's extension page shows it.
        self.spki = base64.b64encode(der).decode()

    def sign(self, body: bytes) -> str:
        """Base64 RSA PKCS#1 v1.5 SHA-256 signature of body, by openssl."""
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.pem],
                             input=body, check=True, capture_output=True).stdout
        return base64.b64encode(sig).decode()


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Reply {self.status} {self.body[:300]!r}>"


class Host:
    """A running `cliqhost serve` on 127.0.0.1 and a free port."""

    def __init__(self, *flags, scripts=None, keys=(), workers=2, listen="127.0.0.1:0",
                 env=None, wait=True, response_url_allow=("127.0.0.1",)):
        """response_url_allow: where replies and attachment downloads may go
        besides Cliq's own hosts; the fakes (fakes.py, invoke's catcher)
        listen on 127.0.0.1. Pass () for the host's default."""
        self.args = [BIN, "serve"]
        if listen:
            self.args += ["--listen", listen]
        if workers:
            self.args += ["--workers", str(workers)]
        if scripts:
            self.args += ["--scripts", scripts]
        for k in keys:
            self.args += ["--key", k]
        for entry in response_url_allow:
            self.args += ["--response-url-allow", entry]
        self.args += list(flags)
        if "--data-dir" not in flags and "--config" not in flags:
            # The host's own state (the outbox) goes to a folder of its own.
            self.data_dir = tempfile.mkdtemp(prefix="cliqhost-e2e-data-")
            self.args += ["--data-dir", self.data_dir]
        self.lines = []
        self._cv = threading.Condition()
        penv = dict(os.environ)
        penv.update(env or {})
        self.proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     env=penv)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = None
        if wait:
            line = self.wait_for(r"listening on \S+:(\d+)", timeout=15)
            if not line:
                self.proc.kill()
                raise RuntimeError("host did not start:\n" + self.log())
            self.port = int(re.search(r"listening on \S+:(\d+)", line).group(1))

    def _read(self):
        for raw in self.proc.stdout:
            with self._cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def wait_for(self, pattern, timeout=10, start=0):
        """Waits for a log line matching pattern; returns it or None."""
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        with self._cv:
            while True:
                for line in self.lines[start:]:
                    if rx.search(line):
                        return line
                left = deadline - time.time()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    return None
                self._cv.wait(min(left, 0.2))

    def log(self):
        with self._cv:
            return "\n".join(self.lines)

    def request(self, method, path, body=b"", headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return Reply(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
        finally:
            conn.close()

    def post(self, body, key=None, signature=None, headers=None):
        """POSTs body to the callback URL, signed by key unless a signature
        (or None for no header) is given."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        if isinstance(body, str):
            body = body.encode()
        h = {"Content-Type": "application/json"}
        if key is not None:
            h["X-Cliq-Signature"] = key.sign(body)
        elif signature is not None:
            h["X-Cliq-Signature"] = signature
        h.update(headers or {})
        return self.request("POST", "/", body, h)

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the host; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self._reader.join(5)
        self.proc.stdout.close()
        return rc

    def sanitizer_reports(self):
        return [l for l in self.lines if "Sanitizer" in l or "runtime error:" in l]


def run_cli(*args, timeout=30, input=None):
    """Runs the cliqhost binary with args; returns CompletedProcess (text)."""
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout,
                          input=input)
