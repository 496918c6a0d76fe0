"""A local fake of Cliq's four incoming-webhook endpoints, on 127.0.0.1 and
a free port (docs/cliq-formats.md §5):

    POST /api/v2/channelsbyname/{channel}/message?zapikey=T[&bot_unique_name=B]
    POST /api/v2/bots/{bot}/message?zapikey=T        text + userids "a,b" | broadcast
    POST /api/v2/bots/{bot}/incoming?zapikey=T       any JSON object
    POST /api/v2/applications/{app_id}/incoming?appkey=K&zapikey=T

It checks each request the way Cliq would (method, path, webhook token,
app key, Content-Type, a JSON object body, the fields a message needs) and
answers like Cliq: 204 No Content for channel and bot messages, 200
{"user_ids": [...]} for bot incoming, 200 {} for app incoming, and errors
as {"message": ...}. A test can script the answers of one path (a 500
first, a 429 with Retry-After, a 404), take the whole service down and
bring it back on the same port, and ask how many posts one token made in
any 60 s window.

The fake records every request it receives, including the ones it
rejects, so "nothing reached Cliq" is `count(path) == 0`. It runs an asyncio
loop on its own thread and speaks plain HTTP/1.1 with keep-alive. Only
Python's standard library is used.
"""

import asyncio
import json
import threading
import time
import urllib.parse

from fakes import MAX_HEAD, Request, _Server

CHANNEL = "channel message"
BOT_MESSAGE = "bot message"
BOT_INCOMING = "bot incoming"
APP_INCOMING = "app incoming"

REASONS = {200: "OK", 204: "No Content", 400: "Bad Request", 401: "Unauthorized",
           403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
           406: "Not Acceptable", 429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}

MAX_USERIDS = 100  # Cliq's cap on userids in one bot message


def channel_path(name):
    """The path (names decoded) of the channel message endpoint."""
    return f"/api/v2/channelsbyname/{name}/message"


def bot_message_path(name):
    return f"/api/v2/bots/{name}/message"


def bot_incoming_path(name):
    return f"/api/v2/bots/{name}/incoming"


def app_incoming_path(app_id):
    return f"/api/v2/applications/{app_id}/incoming"


# (first segments, last segment, endpoint) of the paths Cliq serves, split
# at "/" before decoding so that an unencoded "/" in a name does not match.
_ROUTES = [
    (("api", "v2", "channelsbyname"), "message", CHANNEL),
    (("api", "v2", "bots"), "message", BOT_MESSAGE),
    (("api", "v2", "bots"), "incoming", BOT_INCOMING),
    (("api", "v2", "applications"), "incoming", APP_INCOMING),
]


def _route(raw_path):
    """(endpoint, decoded name) for a raw request path, or (None, None)."""
    segs = raw_path.split("/")
    if len(segs) != 6 or segs[0] != "":
        return None, None
    for prefix, last, endpoint in _ROUTES:
        if tuple(segs[1:4]) == prefix and segs[5] == last and segs[4]:
            try:
                return endpoint, urllib.parse.unquote(segs[4], errors="strict")
            except UnicodeDecodeError:
                return None, None  # not UTF-8 once decoded: no such name
    return None, None


_PATHS = {CHANNEL: channel_path, BOT_MESSAGE: bot_message_path, BOT_INCOMING: bot_incoming_path,
          APP_INCOMING: app_incoming_path}


class CliqRequest(Request):
    """One request as the fake received it: Request's method, target, path
    (raw, as sent), query (a dict), headers (lower-case names), body and
    monotonic time, plus what the fake made of it."""

    def __init__(self, method, target, headers, body):
        super().__init__(method, target, headers, body)
        self.wall = time.time()
        # Blank values kept: "bot_unique_name=" is a mistake to catch.
        self.query_list = urllib.parse.parse_qsl(urllib.parse.urlsplit(target).query,
                                                 keep_blank_values=True)
        self.query = dict(self.query_list)
        self.endpoint, self.name = _route(self.path)
        # The path with the name decoded, as channel_path() etc. give it; a
        # path Cliq does not serve keeps its raw form behind a marker, so
        # "/channelsbyname/a/b/message" is never taken for channel "a/b".
        self.decoded_path = (_PATHS[self.endpoint](self.name) if self.endpoint
                             else "(no route) " + self.path)
        self.token = self.query.get("zapikey")
        self.status = None  # what the fake answered

    def __repr__(self):
        return f"<{self.method} {self.target} -> {self.status} {self.body[:200]!r}>"


def _error(status, message, code=None, headers=None):
    data = {"message": message}
    if code:
        data["code"] = code
    return status, dict(headers or {}), data


class FakeCliq(_Server):
    """Cliq's incoming-webhook endpoints.

    tokens: the webhook tokens (zapikey values) Cliq knows; any other gets
    401. apps: {app_id: appkey} to check app keys against, or None to
    accept any app id with a non-empty appkey. user_ids: what bot incoming
    answers (the users the bot's incoming webhook reached)."""

    def __init__(self, tokens, apps=None, user_ids=("55501", "55502")):
        super().__init__()
        self.tokens = set(tokens)
        self.apps = dict(apps) if apps is not None else None
        self.user_ids = list(user_ids)
        self._requests = []
        self._answers = {}
        self._cv = threading.Condition(self._lock)
        self._server = None
        self._conns = set()
        self._bind_port = 0

    # ---- life cycle ---------------------------------------------------

    def start(self):
        """Starts the loop thread and listens on a free port."""
        self._thread = threading.Thread(target=self._loop_main, daemon=True, name="FakeCliq")
        self._thread.start()
        if not self._ready.wait(10) or self._error:
            raise self._error or RuntimeError("FakeCliq did not start")
        self.up()
        return self

    def stop(self):
        if self._loop and self._thread.is_alive():
            self._call(self._close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def down(self):
        """Stops listening and drops every open connection, as if Cliq were
        unreachable: a client now gets "connection refused"."""
        self._call(self._close())

    def up(self):
        """Listens again, on the same port as before."""
        self._call(self._listen())

    @property
    def is_up(self):
        return self._server is not None

    def _loop_main(self):
        try:
            self._loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self._loop)
        except BaseException as e:  # reported by start()
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.close()

    def _call(self, coro, timeout=10):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _listen(self):
        if self._server is not None:
            return
        # reuse_address: the port is free to bind again at once after down().
        self._server = await asyncio.start_server(self._client, "127.0.0.1", self._bind_port,
                                                  backlog=1024, limit=MAX_HEAD,
                                                  reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]
        self._bind_port = self.port

    async def _close(self):
        if self._server is None:
            return
        self._server.close()
        tasks = []
        for task, writer in list(self._conns):
            writer.transport.abort()
            task.cancel()
            tasks.append(task)
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    async def _client(self, reader, writer):
        entry = (asyncio.current_task(), writer)
        self._conns.add(entry)
        with self._lock:
            self.connections_opened += 1
        try:
            await self._serve_connection(reader, writer)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError,
                asyncio.CancelledError, ValueError):
            pass
        finally:
            self._conns.discard(entry)
            writer.close()

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
            req = CliqRequest(method, target, headers, body)
            status, rheaders, rbody, delay = self._answer(req)
            if delay:
                await asyncio.sleep(delay)
            close = (version == "HTTP/1.0" or headers.get("connection", "").lower() == "close")
            out = [f"HTTP/1.1 {status} {REASONS.get(status, 'Status')}"]
            if status != 204:  # a 204 has no body and, like Cliq's, no length
                out.append(f"Content-Length: {len(rbody)}")
            out += [f"{k}: {v}" for k, v in rheaders.items()]
            if close:
                out.append("Connection: close")
            writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + rbody)
            await writer.drain()
            if close:
                return

    # ---- what Cliq says -------------------------------------------------

    def _answer(self, req):
        """Checks req, records it, and returns (status, headers, body bytes,
        delay). Runs on the loop thread."""
        status, headers, data = self._check(req)
        delay = 0
        if status is None:
            with self._lock:
                queue = self._answers.get(req.decoded_path)
                scripted = queue.pop(0) if queue else None
            if scripted is not None:
                status, headers, data, delay = scripted
            if status is None or data is _DEFAULT:
                status, data = self._success(req, status)
        if status == 204 or data is None:
            body = b""
        elif isinstance(data, (bytes, bytearray)):
            body = bytes(data)
        elif isinstance(data, str):
            body = data.encode()
        else:
            body = json.dumps(data).encode()
        headers = dict(headers or {})
        if body and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json;charset=UTF-8"
        with self._cv:
            req.status = status
            self._requests.append(req)
            self._cv.notify_all()
        return status, headers, body, delay

    def _success(self, req, status=None):
        """The endpoint's own answer to a good request."""
        if req.endpoint in (CHANNEL, BOT_MESSAGE):
            return status or 204, None
        if req.endpoint == BOT_INCOMING:
            return status or 200, {"user_ids": list(self.user_ids)}
        return status or 200, {}

    def _check(self, req):
        """(None, None, None) for a request Cliq would take, else the error
        Cliq would answer with as (status, headers, data)."""
        if req.method != "POST":
            return _error(405, f"{req.method} is not allowed here", "method_not_allowed",
                          {"Allow": "POST"})
        endpoint, name = req.endpoint, req.name
        if endpoint is None:
            return _error(404, "The requested URL was not found", "url_not_found")
        token = req.query.get("zapikey")
        if not token:
            return _error(401, "zapikey is missing", "zapikey_missing")
        if token not in self.tokens:
            return _error(401, "Invalid webhook token", "invalid_zapikey")
        if endpoint == APP_INCOMING:
            appkey = req.query.get("appkey")
            if not appkey:
                return _error(400, "appkey is mandatory", "appkey_missing")
            if self.apps is not None:
                if name not in self.apps:
                    return _error(404, "No such application", "application_not_found")
                if self.apps[name] != appkey:
                    return _error(401, "Invalid appkey", "invalid_appkey")
        if endpoint == CHANNEL and "bot_unique_name" in req.query \
                and not req.query["bot_unique_name"]:
            return _error(400, "bot_unique_name is empty", "invalid_bot")
        ctype = req.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return _error(400, "Content-Type must be application/json", "invalid_content_type")
        data = req.json()
        if not isinstance(data, dict):
            return _error(400, "The body must be a JSON object", "invalid_json")
        if endpoint in (CHANNEL, BOT_MESSAGE):
            if "text" in data and not isinstance(data["text"], str):
                return _error(400, "text must be a string", "invalid_message")
            if not (data.get("text") or data.get("card") or data.get("slides")):
                return _error(400, "text is mandatory", "input_missing")
        if endpoint == BOT_MESSAGE:
            why = _check_targets(data)
            if why:
                return _error(400, why, "invalid_recipients")
        return None, None, None

    # ---- for tests --------------------------------------------------------

    def answer(self, path, answers):
        """Scripts the next answers to POSTs on path (names decoded, as
        channel_path() etc. give it) that pass Cliq's checks, in order;
        after them the endpoint answers normally again. Each answer is a
        status (an error gets {"message": "fake says N"}, a 2xx the
        endpoint's normal body), or (status, headers, body[, delay s]) where
        body is a dict or list (sent as JSON), str or bytes (sent as is) or
        None (empty)."""
        queue = []
        for a in answers:
            if isinstance(a, int):
                a = (a, {}, _DEFAULT if a < 300 else {"message": f"fake says {a}"})
            status, headers, data = a[:3]
            delay = a[3] if len(a) > 3 else 0
            queue.append((status, dict(headers or {}), data, delay))
        with self._lock:
            self._answers[path] = queue

    def requests(self, path=None, token=None):
        """The requests received so far (names decoded in path), to one
        path and/or with one zapikey, or all."""
        with self._lock:
            return [r for r in self._requests
                    if (path is None or r.decoded_path == path)
                    and (token is None or r.token == token)]

    def count(self, path=None, token=None):
        return len(self.requests(path, token))

    def wait_requests(self, n, path=None, timeout=10, token=None):
        """Waits until at least n requests reached path (or the fake);
        returns them, which may be fewer on timeout."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                got = [r for r in self._requests
                       if (path is None or r.decoded_path == path)
                       and (token is None or r.token == token)]
                left = deadline - time.monotonic()
                if len(got) >= n or left <= 0:
                    return got
                self._cv.wait(left)

    def max_per_window(self, token, window=60.0):
        """The most requests made with one webhook token in any window of
        `window` seconds: what Cliq's per-minute lock counts."""
        times = sorted(r.time for r in self.requests(token=token))
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while t - times[lo] >= window:
                lo += 1
            best = max(best, hi - lo + 1)
        return best


_DEFAULT = object()  # in a scripted answer: the endpoint's normal body


def _check_targets(data):
    """Why a bot message's recipients are wrong, or None: it needs userids
    (a string of comma-separated ids, at most 100) or broadcast: true."""
    userids = data.get("userids")
    broadcast = data.get("broadcast")
    if broadcast is not None and not isinstance(broadcast, bool):
        return "broadcast must be true or false"
    if userids is None:
        return None if broadcast is True else "userids or broadcast is mandatory"
    if not isinstance(userids, str):
        return "userids must be a string of comma-separated user ids"
    ids = userids.split(",")
    if any(not i.strip() for i in ids):
        return "userids has an empty id"
    if len(ids) > MAX_USERIDS:
        return f"userids has more than {MAX_USERIDS} ids"
    return None
