"""Local fakes for the end-to-end tests, on 127.0.0.1 and a free port:

- Sink plays Cliq's response_url: it records every POST and answers with
  the statuses a test asks for.
- SlowUpstream plays any HTTP API a script calls: it answers after a delay
  and counts how many requests it holds at once, and it serves fixed bytes
  for attachment URLs (/files/<name>), counting each fetch.

Each fake runs an asyncio loop on its own thread and speaks plain HTTP/1.1
(keep-alive, Content-Length or chunked bodies, Expect: 100-continue), so a
few thousand connections can wait on it at once. Only Python's standard
library is used.
"""

import asyncio
import json
import resource
import threading
import time
import urllib.parse

MAX_HEAD = 64 * 1024
MAX_BODY = 16 * 1024 * 1024

REASONS = {200: "OK", 201: "Created", 204: "No Content", 302: "Found", 400: "Bad Request",
           401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 410: "Gone",
           500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}


def raise_fd_limit(want=16384):
    """Raises this process's open-file limit (and so a host it starts) to
    want, or to the hard limit if that is lower: a test that holds 500
    connections in and 500 out of one process needs more than 1024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


class Request:
    """One request as the fake received it. Header names are lower case."""

    def __init__(self, method, target, headers, body):
        self.method = method
        self.target = target
        split = urllib.parse.urlsplit(target)
        self.path = split.path
        self.query = dict(urllib.parse.parse_qsl(split.query))
        self.headers = headers
        self.body = body
        self.time = time.monotonic()

    def json(self):
        """The body decoded as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def __repr__(self):
        return f"<{self.method} {self.target} {self.body[:200]!r}>"


class _Server:
    """An HTTP/1.1 server on an asyncio loop in a daemon thread. Subclasses
    implement `async handle(req) -> (status, headers dict, body bytes)`;
    handle runs on the loop thread."""

    def __init__(self, address="127.0.0.1"):
        self.address = address
        self.port = None
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._loop = None
        self._stop = None
        self._thread = None
        self._error = None
        self.connections_opened = 0  # TCP connections accepted so far

    @property
    def url(self):
        return f"http://{self.address}:{self.port}"

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=type(self).__name__)
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise self._error
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} did not start")
        return self

    def stop(self):
        if self._loop and self._stop and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _run(self):
        try:
            asyncio.run(self._main())
        except BaseException as e:  # reported by start() if it happens there
            self._error = e
            self._ready.set()

    async def _main(self):
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        tasks = set()

        async def client(reader, writer):
            task = asyncio.current_task()
            tasks.add(task)
            with self._lock:
                self.connections_opened += 1
            try:
                await self._serve_connection(reader, writer)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                    asyncio.CancelledError, ValueError):
                pass
            finally:
                tasks.discard(task)
                writer.close()

        server = await asyncio.start_server(client, self.address, 0, backlog=4096,
                                            limit=MAX_HEAD)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stop.wait()
        server.close()
        for t in list(tasks):
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve_connection(self, reader, writer):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed between requests
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await writer.drain()
            body = await self._read_body(reader, headers)
            req = Request(method, target, headers, body)
            status, rheaders, rbody = await self.handle(req)
            close = (version == "HTTP/1.0" or headers.get("connection", "").lower() == "close")
            out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}",
                   f"Content-Length: {len(rbody)}"]
            out += [f"{k}: {v}" for k, v in rheaders.items()]
            if close:
                out.append("Connection: close")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + rbody)
            await writer.drain()
            if close:
                return

    @staticmethod
    async def _read_body(reader, headers):
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = b""
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    return body
                if len(body) + size > MAX_BODY:
                    raise ValueError("body too large")
                body += await reader.readexactly(size)
                await reader.readexactly(2)
        n = int(headers.get("content-length", "0") or 0)
        if n > MAX_BODY:
            raise ValueError("body too large")
        return await reader.readexactly(n) if n else b""

    async def handle(self, req):
        raise NotImplementedError


def _json_reply(status, data, extra=None):
    h = {"Content-Type": "application/json"}
    h.update(extra or {})
    return status, h, json.dumps(data).encode()


class Sink(_Server):
    """Plays Cliq's response_url. Records every POST (path, headers, body,
    time) and answers each path with the statuses set by answer(), then 200
    forever. Give each request its own path (url_for) so tests running
    one after another never see each other's posts."""

    def __init__(self):
        super().__init__()
        self._posts = []
        self._statuses = {}
        self._cv = threading.Condition(self._lock)

    def url_for(self, tag):
        """A response_url on this sink for one test."""
        return f"{self.url}/r/{tag}"

    def answer(self, tag_or_path, statuses):
        """The statuses to answer the next POSTs to that path with, in order;
        after them, 200."""
        path = tag_or_path if tag_or_path.startswith("/") else f"/r/{tag_or_path}"
        with self._lock:
            self._statuses[path] = list(statuses)

    def _path(self, tag_or_path):
        if tag_or_path is None or tag_or_path.startswith("/"):
            return tag_or_path
        return f"/r/{tag_or_path}"

    def posts(self, tag_or_path=None):
        """The POSTs received so far, to one path or to all."""
        path = self._path(tag_or_path)
        with self._lock:
            return [p for p in self._posts if path is None or p.path == path]

    def count(self, tag_or_path=None):
        return len(self.posts(tag_or_path))

    def wait_posts(self, n, tag_or_path=None, timeout=10):
        """Waits until at least n POSTs reached the path (or the sink);
        returns the posts so far, which may be fewer on timeout."""
        path = self._path(tag_or_path)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [p for p in self._posts if path is None or p.path == path]
                left = deadline - time.monotonic()
                if len(got) >= n or left <= 0:
                    return got
                self._cv.wait(left)

    async def handle(self, req):
        if req.method != "POST":
            return _json_reply(405, {"error": "POST only"}, {"Allow": "POST"})
        with self._cv:
            self._posts.append(req)
            queue = self._statuses.get(req.path)
            status = queue.pop(0) if queue else 200
            self._cv.notify_all()
        if status == 200:
            return _json_reply(200, {"status": "ok"})
        return _json_reply(status, {"error": f"sink says {status}"})


class SlowUpstream(_Server):
    """Plays any HTTP API. GET or POST to any path answers 200 after `delay`
    seconds (or ?delay=S on the request) with JSON echoing method, path,
    query, body and request headers, and an `X-Upstream: slow` header.

    /files/<name> serves files[name] at once (unless ?delay=), counting the
    fetches of each name; /redirect answers 302 to /echo/redirected (or to
    ?to=URL). It listens on `address` (any loopback address)."""

    def __init__(self, delay=2.0, files=None, address="127.0.0.1"):
        super().__init__(address)
        self.delay = delay
        self.files = dict(files or {})
        self.requests = 0
        self.in_flight = 0
        self.max_concurrency = 0
        self._fetches = {}
        self._seen = []

    def fetches(self, name):
        """How many times /files/<name> was fetched."""
        with self._lock:
            return self._fetches.get(name, 0)

    def paths(self):
        """Every path requested, in order of arrival."""
        with self._lock:
            return list(self._seen)

    def reset_stats(self):
        with self._lock:
            self.requests = 0
            self.max_concurrency = 0
            self._fetches.clear()
            self._seen.clear()

    async def handle(self, req):
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_concurrency = max(self.max_concurrency, self.in_flight)
            self._seen.append(req.path)
        try:
            return await self._answer(req)
        finally:
            with self._lock:
                self.in_flight -= 1

    async def _answer(self, req):
        extra = {"X-Upstream": "slow"}
        if req.path.startswith("/files/"):
            name = req.path[len("/files/"):]
            with self._lock:
                self._fetches[name] = self._fetches.get(name, 0) + 1
            if "delay" in req.query:
                await asyncio.sleep(float(req.query["delay"]))
            if name not in self.files:
                return _json_reply(404, {"error": f"no file {name}"}, extra)
            extra["Content-Type"] = "application/octet-stream"
            return 200, extra, self.files[name]
        if req.path == "/redirect":
            extra["Location"] = req.query.get("to", "/echo/redirected")
            return _json_reply(302, {"redirect": extra["Location"]}, extra)
        await asyncio.sleep(float(req.query.get("delay", self.delay)))
        return _json_reply(200, {
            "method": req.method, "path": req.path, "query": req.query,
            "body": req.body.decode("utf-8", "replace"), "headers": req.headers,
        }, extra)
