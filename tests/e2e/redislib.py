"""A real redis-server for the tests (Debian's package, which ./dev.sh test
installs): on a loopback port of its own, persistence off, in a scratch
folder, killed (and restarted on the same port) at will."""

import atexit
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A running redis-server on 127.0.0.1:port."""

    def __init__(self, port=None, password=None, unixsocket=False):
        """unixsocket: also listen on a unix socket in its folder
        (self.socket)."""
        if not os.path.exists(SERVER):
            raise RuntimeError("redis-server is not installed (apt-get install redis-server; "
                               "./dev.sh test installs it)")
        self.port = port or free_port()
        self.password = password
        self.dir = tempfile.mkdtemp(prefix="cliqhost-redis-")
        self.socket = os.path.join(self.dir, "redis.sock") if unixsocket else None
        self.proc = None
        # Whatever ends the test run, the server goes with it.
        atexit.register(self.stop)
        self.start()

    @property
    def url(self):
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self):
        args = [SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--dir", self.dir, "--daemonize", "no",
                "--loglevel", "warning"]
        if self.password:
            args += ["--requirepass", self.password]
        if self.socket:
            args += ["--unixsocket", self.socket, "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.command("PING") in ("PONG", b"PONG"):
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self):
        """Kills the server at once (SIGKILL): what it held is gone."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def pause(self):
        """Stops the server without closing its socket (SIGSTOP): commands
        get no answer."""
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def command(self, *args, db=0):
        """Runs one command (RESP over a plain socket of its own) in
        database db; returns the reply decoded: str, int, None or a list.
        Raises RuntimeError on an error reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            f = s.makefile("rb")
            if self.password:
                s.sendall(_encode(("AUTH", self.password)))
                _read(f)
            if db:
                s.sendall(_encode(("SELECT", db)))
                _read(f)
            s.sendall(_encode(args))
            return _read(f)


def _encode(args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _read(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode("utf-8", "replace")
    if kind == b"*":
        n = int(rest)
        if n < 0:
            return None
        return [_read(f) for _ in range(n)]
    raise OSError(f"unexpected reply {line!r}")
