#!/usr/bin/env python3
"""floor-check: checks that a server answers signed calls as bench/run.sh's
load expects, before run.sh measures it (a wrong floor would make every ratio
wrong). Works on the floor (bench/floor.c) and on cliqhost alike.

  bench/floor-check.py PORT REQUESTS_FILE [--no-verify]

REQUESTS_FILE is cliqhost-bench-sign's output; its first call must get the
bench handler's reply (the same JSON, its keys in any order). Checks, on
127.0.0.1:PORT: a signed call gets 200 and that reply with a matching
Content-Length; calls keep going on one keep-alive connection, also when a
request arrives in pieces or two arrive in one write; a tampered body, a
missing and a malformed signature get 401 (with --no-verify: 200);
"Connection: close" is answered, then closed.
Prints what failed and exits 1, or prints "ok".
"""
import json
import socket
import sys
import time

REPLY = {"output": {"text": "Deploying *api* to *dev* for User.",
                    "card": {"title": "Deploy started", "theme": "modern-inline"}}}


def decoded(body):
    """The reply as JSON (its keys may come in any order), or the bytes
    when it is not JSON."""
    try:
        return json.loads(body)
    except ValueError:
        return body


def request(body, sig, extra=b""):
    head = b"POST / HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
    if sig is not None:
        head += b"X-Cliq-Signature: " + sig + b"\r\n"
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""

    def _more(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def response(self):
        """Reads one response; returns (status, headers dict, body)."""
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if b"content-length" not in headers:
            raise ValueError("no Content-Length in the reply")
        n = int(headers[b"content-length"])
        while len(self.buf) < n:
            self._more()
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self):
        try:
            return self.s.recv(1) == b""
        except ConnectionResetError:
            return True


def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    verify = "--no-verify" not in sys.argv[3:]
    with open(path, "rb") as f:
        sig, body = f.readline().rstrip(b"\n").split(b"\t", 1)
    tampered = body.replace(b'"api ', b'"apj ', 1)
    assert tampered != body
    unsigned = 200 if not verify else 401
    failures = []

    def expect(what, got, want):
        if got != want:
            failures.append("%s: got %r, want %r" % (what, got, want))

    c = Conn(port)
    for i in range(3):
        c.s.sendall(request(body, sig))
        status, _, reply = c.response()
        expect("signed call %d on one connection" % (i + 1), (status, decoded(reply)),
               (200, REPLY))
    for what, req in [
        ("tampered body", request(tampered, sig)),
        ("no signature", request(body, None)),
        ("signature not base64", request(body, b"not*base64!")),
        ("signature of the wrong length", request(body, sig[:-8])),
    ]:
        c.s.sendall(req)
        expect(what, c.response()[0], unsigned)
    # A call in pieces, each its own segment: the server must wait for the
    # rest of the request line, of a header, of the headers, of the body.
    req = request(body, sig)
    head = req.index(b"\r\n\r\n")
    cuts = [3, req.index(b"X-Cliq") + 20, head + 1, head + 4, head + 4 + len(body) // 2]
    c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for a, b in zip([0] + cuts, cuts + [len(req)]):
        c.s.sendall(req[a:b])
        time.sleep(0.02)
    status, _, reply = c.response()
    expect("a call sent in pieces", (status, decoded(reply)), (200, REPLY))
    c.s.sendall(request(body, sig) + request(tampered, sig))
    expect("two calls in one write", (c.response()[0], c.response()[0]), (200, unsigned))
    c.s.sendall(request(body, sig, b"Connection: close\r\n"))
    expect("Connection: close", c.response()[0], 200)
    expect("closed after Connection: close", c.closed(), True)

    for f in failures:
        print("floor-check:", f, file=sys.stderr)
    if failures:
        sys.exit(1)
    print("ok")


if __name__ == "__main__":
    main()
