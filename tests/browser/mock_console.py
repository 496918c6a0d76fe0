#!/usr/bin/env python3
"""A stand-in for the host's console API, to work on the page alone.

    python3 tests/browser/mock_console.py [PORT]     (default 8731)
    then open http://127.0.0.1:PORT/console

Serves host/serve/console/ as the host does (the page with its secret put
in for {{CONSOLE_SECRET}}) and answers /console/api/... from
tests/browser/fixtures/render-cases.json: a journal of a few calls, the
events stream (one new call a few seconds after connecting), POST call
(the approval function's buttons and form answer as scripts/ does: Reject
opens the form, submitting it answers the Rejected card) and replay. Every
API request must carry the secret, as the real host requires; the requests
the page made are listed at GET /mock/requests, for tests.

Not the host: the real routes are in host/serve/server.c.
"""
import http.server
import json
import os
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
CONSOLE = os.path.join(HERE, "..", "..", "host", "serve", "console")
SECRET = "mock-secret-0123"
TYPES = {".html": "text/html; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".js": "text/javascript; charset=utf-8"}

with open(os.path.join(HERE, "fixtures", "render-cases.json"), encoding="utf-8") as f:
    CASES = {c["name"]: c["body"] for c in json.load(f)}


def reply(name, ms=4):
    return {"status": 200, "body": json.dumps(CASES[name]), "ms": ms}


def entry(i, kind, dispatch, body_name, params):
    d = dict(zip(("type", "name", "handler"), dispatch))
    return {"id": i, "at": int(time.time() * 1000) - (10 - i) * 60000, "kind": kind,
            "request": {"body": {"type": d["type"], "name": d["name"], "handler": {"type": d["handler"]},
                                 "params": params},
                        "signature": "valid", "key": "cliq-dev.pub"},
            "dispatch": d, "reply": reply(body_name), "interim": None, "late": [],
            "http": [{"method": "GET", "url": "https://ci.example.com/api?token=***", "status": 200, "ms": 31}],
            "posts": [], "log": ["info deploy requested"], "cpu_ms": 1.2, "memory_bytes": 182000}


def flat_entry(i, dispatch, body_name):
    """An entry the way the journal branch answers it: flat, its
    happenings in one list of events."""
    d = dict(zip(("type", "name", "handler"), dispatch))
    at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 30))
    return dict(d, id=i, seq=i, at=at, kind="invoke", request_id="f00d", signature="valid", key=0,
                status=200, reply_ms=3, late=False, events=5, bytes=900, truncated=False,
                cpu_ms=0.8, peak_bytes=150000, dropped_events=0,
                body=json.dumps({"type": d["type"], "name": d["name"], "handler": {"type": d["handler"]},
                                 "params": {"arguments": ""}}),
                reply=json.dumps(CASES[body_name]),
                log=[{"kind": "log", "level": "info", "line": "asset form opened"},
                     {"kind": "http", "method": "GET", "url": "https://assets.example.com/list", "status": 200,
                      "ms": 12.5},
                     {"kind": "post", "method": "POST", "url": "channel sample", "status": 204, "ms": 8.1},
                     {"kind": "late_reply", "outcome": "skipped", "reason": "the handler already used req:respond()"},
                     {"kind": "surprise", "detail": "an event kind this page does not know"}])


LOCK = threading.Lock()
JOURNAL = {
    1: entry(1, "cliq", ("bot", "helper", "message_handler"), "helper-context", {"message": "feedback"}),
    2: entry(2, "invoke", ("command", "deploy", "execution_handler"), "deploy", {"arguments": "api prod"}),
}
JOURNAL[4] = flat_entry(4, ("command", "asset", "execution_handler"), "form-every-input")
REQUESTS = []


def summary(e):
    if "dispatch" not in e:  # a flat entry: its own fields are the summary's
        return {k: e[k] for k in ("id", "seq", "at", "kind", "type", "name", "handler", "status", "reply_ms")}
    d = e["dispatch"]
    return {"id": e["id"], "at": e["at"], "kind": e["kind"], "type": d["type"], "name": d["name"],
            "handler": d["handler"], "status": e["reply"]["status"], "ms": e["reply"]["ms"]}


def answer(call):
    """What scripts/ would answer, for the calls the page makes."""
    h, args, values = call.get("handler"), call.get("args") or {}, call.get("values") or {}
    if call.get("name") == "approval" and h == "button_handler":
        return "approval-reject-form" if args.get("key", "").startswith("reject") else "approval-approved"
    if h == "form_change_handler":
        return "form-modification-add"
    if h == "form_values_handler":
        return "form-values-options"
    if call.get("name") == "approval" and h == "form_handler":
        return "approval-form-submitted" if values.get("reason") else "banner-failure"
    return "banner-success"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def guarded(self, query):
        got = self.headers.get("X-Cliqhost-Console") or query.get("secret", [""])[0]
        if got != SECRET:
            self.send(401, {"error": "the console's secret is missing or wrong"})
            return False
        return True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        p = url.path
        if p == "/console":
            with open(os.path.join(CONSOLE, "console.html"), "rb") as f:
                page = f.read().replace(b"{{CONSOLE_SECRET}}", SECRET.encode())
            return self.send(200, page, TYPES[".html"])
        if p.startswith("/console/") and "/" not in p[len("/console/"):]:
            name = p[len("/console/"):]
            path = os.path.join(CONSOLE, name)
            if os.path.splitext(name)[1] in TYPES and os.path.isfile(path):
                with open(path, "rb") as f:
                    return self.send(200, f.read(), TYPES[os.path.splitext(name)[1]])
        if p == "/mock/requests":
            with LOCK:
                return self.send(200, REQUESTS)
        if not p.startswith("/console/api/"):
            return self.send(404, {"error": "no such path"})
        if not self.guarded(q):
            return None
        if p == "/console/api/calls":
            with LOCK:
                return self.send(200, [summary(e) for e in sorted(JOURNAL.values(), key=lambda e: -e["id"])])
        if p.startswith("/console/api/calls/"):
            with LOCK:
                e = JOURNAL.get(int(p.rsplit("/", 1)[1]) if p.rsplit("/", 1)[1].isdigit() else -1)
            return self.send(200, e) if e else self.send(404, {"error": "no such call"})
        if p == "/console/api/events":
            return self.events()
        return self.send(404, {"error": "no such path"})

    def events(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(b": hello\n\n")
        self.wfile.flush()
        time.sleep(2)
        with LOCK:
            i = max(JOURNAL) + 1
            JOURNAL[i] = entry(i, "invoke", ("messageaction", "stats", "execution_handler"), "stats-table", {})
            s = summary(JOURNAL[i])
        try:
            self.wfile.write(b"event: call\ndata: " + json.dumps(s).encode() + b"\n\n")
            self.wfile.flush()
            for _ in range(60):
                time.sleep(1)
                self.wfile.write(b": ping\n\n")
                self.wfile.flush()
        except OSError:
            pass
        self.close_connection = True

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if not self.guarded({}):
            return None
        n = int(self.headers.get("Content-Length") or 0)
        try:
            call = json.loads(self.rfile.read(n) or b"{}")
        except ValueError:
            return self.send(400, {"error": "the body is not JSON"})
        with LOCK:
            REQUESTS.append({"path": url.path, "body": call})
            i = max(JOURNAL) + 1
        if url.path == "/console/api/call":
            name = answer(call)
            with LOCK:
                JOURNAL[i] = entry(i, "console", (call.get("type"), call.get("name"), call.get("handler")), name, call)
            return self.send(200, {"id": i, "reply": reply(name)})
        if url.path.startswith("/console/api/calls/") and url.path.endswith("/replay"):
            old = int(url.path.split("/")[4])
            with LOCK:
                if old not in JOURNAL:
                    return self.send(404, {"error": "no such call"})
                JOURNAL[i] = dict(JOURNAL[old], id=i, kind="replay", reply=reply("approval-approved"))
                return self.send(200, {"id": i, "old": JOURNAL[old]["reply"], "new": JOURNAL[i]["reply"]})
        return self.send(404, {"error": "no such path"})


def serve(port=0):
    """Starts the mock on 127.0.0.1:port in a thread; returns the server."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


if __name__ == "__main__":
    s = serve(int(sys.argv[1]) if len(sys.argv) > 1 else 8731)
    print(f"http://127.0.0.1:{s.server_address[1]}/console", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
