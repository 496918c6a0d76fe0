"""A real browser for the console's tests: Debian's headless chromium,
driven over the Chrome DevTools Protocol (CDP) with Python's standard
library only.

The protocol runs over --remote-debugging-pipe: chromium reads commands
from its fd 3 and writes replies and events to its fd 4, one JSON message
per NUL-terminated frame. No port is opened (nothing else on a shared
machine can connect to the browser, and no free port has to be found),
and no WebSocket framing is needed. When the pipe closes (this process
died) chromium shuts itself down.

    with Browser() as browser:
        page = browser.new_page()
        status = page.goto("http://127.0.0.1:8080/status")
        page.wait_for("pre")
        page.click("#approve")
        page.screenshot("approve")
        page.assert_no_errors()

Every wait has a deadline and polls; nothing sleeps a fixed time. A
Browser stops in close() (also from `with` and from an atexit hook): it
asks chromium to close, waits, then kills its process group and any
process it started that is still there, and removes its profile folder.
"""

import atexit
import base64
import ctypes
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "../.."))

# Where screenshots go: CTest sets CLIQHOST_BROWSER_OUT to build/browser.
OUT_DIR = os.environ.get("CLIQHOST_BROWSER_OUT", os.path.join(REPO, "build", "browser"))
SCREENSHOT_DIR = os.path.join(OUT_DIR, "screenshots")


class BrowserError(Exception):
    """A CDP command failed, chromium went away, or a wait ran out."""


def find_chromium():
    """The chromium binary: $CHROMIUM, else Debian's /usr/bin/chromium, else None."""
    for path in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if path and os.access(path, os.X_OK):
            return path
    return None


# The flags, and why each is there.
FLAGS = [
    # The new headless mode: the same browser as a windowed one, no display.
    "--headless=new",
    # Chromium refuses to start as root with its sandbox on ("Running as root
    # without --no-sandbox is not supported"), and in containers the sandbox's
    # user namespaces are often unavailable. Only when root: see start().
    # Rendering with no GPU: software only, the same on every machine.
    "--disable-gpu",
    # /dev/shm is tiny in many containers; shared memory goes to /tmp instead.
    "--disable-dev-shm-usage",
    # Nothing talks to Google or elsewhere: no first-run pages, no component
    # updates, no sync, no field trials, no crash uploads.
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--disable-breakpad",
    "--no-service-autorun",
    "--password-store=basic",
    "--use-mock-keychain",
    # Timers and rendering run at full speed in pages nobody looks at.
    "--disable-background-timer-throttling",
    "--disable-backgrounding-occluded-windows",
    "--disable-renderer-backgrounding",
    "--mute-audio",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-pipe",
]


def _set_parent_death_signal():
    """In the child before exec: SIGKILL when the parent dies, so a test
    runner killed outright (a CTest timeout) leaves no browser behind even
    before the pipe's closing is noticed."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _child_setup(to_child_r, from_child_w):
    """In the child before exec: the protocol's pipe on fd 3 and 4 (moved
    out of the way first, in case either end already is 3 or 4), and the
    parent death signal."""
    r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
    w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
    os.dup2(r, 3)
    os.dup2(w, 4)
    _set_parent_death_signal()


def _process_table():
    """Every live process (zombies excluded): {pid: (ppid, pgrp, start time)},
    read from /proc. The start time tells a pid from a later one that
    reused the number."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read().decode("utf-8", "replace")
        except OSError:
            continue
        # The command name (2nd field) is in parentheses and may hold spaces.
        fields = stat[stat.rfind(")") + 2:].split()
        if fields[0] != "Z":
            table[int(name)] = (int(fields[1]), int(fields[2]), int(fields[19]))
    return table


def _family(root, group, known=()):
    """The live processes that descend from pid root, are in process group
    group, or are in known (a set of (pid, start time)): a set of (pid,
    start time)."""
    table = _process_table()
    found = {pid for pid, (_, pgrp, _) in table.items() if pgrp == group}
    found |= {pid for pid, start in known if table.get(pid, (0, 0, None))[2] == start}
    if root in table:
        found.add(root)
    frontier = set(found)
    while frontier:
        frontier = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return {(pid, table[pid][2]) for pid in found}


class Browser:
    """A headless chromium, started in the constructor, stopped by close()."""

    _live = set()

    def __init__(self, binary=None, timeout=30):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("chromium was not found: apt-get install chromium (./dev.sh test does)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="cliqhost-chromium-")
        self.log_path = os.path.join(self.profile, "chromium.log")
        self._next_id = 0
        self._cv = threading.Condition()
        self._write_lock = threading.Lock()  # one frame at a time into the pipe
        self._replies = {}
        self._events = []  # (session id or None, method, params), in arrival order
        self._closed = False
        self._known = set()  # (pid, start time) of every process seen in the family
        started = time.monotonic()
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()
        flags = list(FLAGS)
        if os.geteuid() == 0:
            flags.append("--no-sandbox")
        flags += [f"--user-data-dir={self.profile}", "about:blank"]
        log = open(self.log_path, "wb")
        try:
            # fd 3 and 4 are the protocol's pipe; a session and group of its
            # own so close() can kill chromium and all its children at once.
            self.proc = subprocess.Popen(
                [self.binary, *flags], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(3, 4), start_new_session=True,
                preexec_fn=lambda: _child_setup(to_child_r, from_child_w))
        except BaseException:
            os.close(self._to_child)
            os.close(self._from_child)
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        finally:
            log.close()
            os.close(to_child_r)
            os.close(from_child_w)
        Browser._live.add(self)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.version = self.send("Browser.getVersion")["product"]
        except BaseException:
            self.close()
            raise
        # From fork to the first answer over the pipe.
        self.start_seconds = time.monotonic() - started

    # The protocol.

    def _read(self):
        """The reader thread: files each reply by id and each event in
        order, until chromium closes its end (or sends what is not JSON)."""
        buf = b""
        try:
            while True:
                try:
                    chunk = os.read(self._from_child, 1 << 16)
                except OSError:
                    chunk = b""
                if not chunk:
                    break
                buf += chunk
                while b"\0" in buf:
                    frame, buf = buf.split(b"\0", 1)
                    msg = json.loads(frame)
                    with self._cv:
                        if "id" in msg:
                            self._replies[msg["id"]] = msg
                        else:
                            self._events.append((msg.get("sessionId"), msg["method"],
                                                 msg.get("params", {})))
                        self._cv.notify_all()
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()

    def send(self, method, params=None, session=None, timeout=None):
        """Sends one CDP command and waits for its result (a dict); raises
        BrowserError with the protocol's message when it fails."""
        with self._cv:
            if self._closed:
                raise BrowserError(f"{method}: chromium is gone\n{self.log()}")
            self._next_id += 1
            mid = self._next_id
        msg = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        with self._write_lock:
            if self._to_child is None:
                raise BrowserError(f"{method}: chromium is gone (closed)")
            try:
                while data:
                    data = data[os.write(self._to_child, data):]
            except OSError as e:
                raise BrowserError(f"{method}: chromium is gone ({e})\n{self.log()}") from e
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cv:
            while mid not in self._replies:
                left = deadline - time.monotonic()
                if self._closed:
                    raise BrowserError(f"{method}: chromium is gone\n{self.log()}")
                if left <= 0:
                    raise BrowserError(f"{method}: no answer from chromium in time")
                self._cv.wait(left)
            reply = self._replies.pop(mid)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def mark(self):
        """A position in the event stream, for wait_event(since=...)."""
        with self._cv:
            return len(self._events)

    def events(self, session=None, method=None, since=0):
        """The params of the events after mark since, of one session and
        method if given."""
        with self._cv:
            return [p for s, m, p in self._events[since:]
                    if (session is None or s == session) and (method is None or m == method)]

    def wait_event(self, method, session=None, since=0, match=None, timeout=None):
        """Waits for an event (after mark since) whose params satisfy match;
        returns its params."""
        deadline = time.monotonic() + (timeout or self.timeout)
        with self._cv:
            while True:
                for s, m, p in self._events[since:]:
                    if m == method and (session is None or s == session) and \
                            (match is None or match(p)):
                        return p
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise BrowserError(f"no {method} event in time")
                self._cv.wait(left)

    def log(self):
        """chromium's own output (stderr), for failure messages."""
        try:
            with open(self.log_path, "rb") as f:
                return f.read()[-4000:].decode("utf-8", "replace")
        except OSError:
            return ""

    # Pages.

    def new_page(self, width=1280, height=900):
        """A new tab with its own session; its events are collected from now."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        return Page(self, target, session, width, height)

    def pids(self):
        """The browser's process and every process under it or in its
        process group, now."""
        family = _family(self.proc.pid, self.proc.pid, self._known)
        self._known |= family
        return {pid for pid, _ in family}

    def close(self):
        """Stops chromium and everything it started, and waits until they
        are gone; removes the profile. Safe to call more than once. Raises
        BrowserError if a process outlives SIGKILL for 10 s."""
        if self not in Browser._live:
            return
        Browser._live.discard(self)
        self.pids()
        if self.proc.poll() is None:
            try:
                self.send("Browser.close", timeout=5)
            except BrowserError:
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left: the process group, then any process seen in the
        # family that left it (a helper with a group of its own).
        self.pids()
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for pid in self.leftovers():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        # The pipe: chromium's ends died with it, so the reader has seen the
        # end of its input (or will, when the last helper holding it dies).
        with self._write_lock:
            os.close(self._to_child)
            self._to_child = None
        self._reader.join(10)
        if not self._reader.is_alive():
            os.close(self._from_child)
        deadline = time.monotonic() + 10
        while self.leftovers() and time.monotonic() < deadline:
            time.sleep(0.05)
        shutil.rmtree(self.profile, ignore_errors=True)
        if self.leftovers():
            raise BrowserError(f"chromium's processes {sorted(self.leftovers())} outlived SIGKILL")

    def leftovers(self):
        """The browser's processes still alive (none after close())."""
        return {pid for pid, _ in _family(self.proc.pid, self.proc.pid, self._known)}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


@atexit.register
def _close_all():
    for b in list(Browser._live):
        b.close()


# What counts as an error on a page: an uncaught exception, console.error or
# console.assert, and anything chromium logs at level error (a CORS refusal,
# a security or parse error) except a resource that failed to load (a 403, a
# refused fetch): those are in network_errors, since the page's own code
# decides whether one is a bug.


# What CDP answers an evaluate in a page that is between two documents.
_NAVIGATING = re.compile(r"Execution context was destroyed|Cannot find (default )?"
                         r"(execution )?context|Inspected target navigated")


class Page:
    """One tab: navigate, wait, read, click, type, screenshot, errors."""

    def __init__(self, browser, target, session, width, height):
        self.browser = browser
        self.target = target
        self.session = session
        self._since = browser.mark()
        self._taken = 0
        for domain in ("Page", "Runtime", "Network", "Log"):
            self.send(f"{domain}.enable")
        self.send("Page.setLifecycleEventsEnabled", {"enabled": True})
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def send(self, method, params=None, timeout=None):
        return self.browser.send(method, params, session=self.session, timeout=timeout)

    # Navigation.

    def set_headers(self, headers):
        """Extra request headers on every request this page makes from now
        ({} to stop), e.g. {"X-Forwarded-For": "203.0.113.9"}."""
        self.send("Network.setExtraHTTPHeaders", {"headers": dict(headers)})

    def goto(self, url, timeout=None):
        """Navigates and waits for the new document's load event; returns
        the HTTP status of the document (None for a URL without one, like
        about:). A navigation that fails (nothing listens there) raises
        BrowserError with chromium's reason, once its error page is loaded."""
        since = self.browser.mark()
        nav = self.send("Page.navigate", {"url": url}, timeout=timeout)
        loader = nav.get("loaderId")

        def loaded(p):
            return p["name"] == "load" and p["loaderId"] == loader

        try:
            self.browser.wait_event("Page.lifecycleEvent", self.session, since, loaded, timeout)
        except BrowserError:
            if not nav.get("errorText"):
                raise BrowserError(f"{url} did not finish loading in time") from None
        if nav.get("errorText"):
            raise BrowserError(f"navigating to {url}: {nav['errorText']}")
        for p in self.browser.events(self.session, "Network.responseReceived", since):
            if p.get("loaderId") == loader and p.get("type") == "Document":
                return p["response"]["status"]
        return None

    def responses(self, url_pattern=""):
        """The requests this page made whose URL matches url_pattern (a
        regex), in order, each {"method", "url", "status", "blocked"}: the
        HTTP status the server sent (None while none came) and, when the
        browser kept the answer from the page, why (the CORS error, e.g.
        "MissingAllowOriginHeader"). The page's own code sees only "Failed to
        fetch"; this is what happened on the wire."""
        rx = re.compile(url_pattern)
        out, by_id = [], {}
        with self.browser._cv:
            events = [(m, p) for s, m, p in self.browser._events[self._since:]
                      if s == self.session and m.startswith("Network.")]
        # Two passes: the requests first, then what became of them. Chrome
        # sends a response's ExtraInfo (the only status of an answer it
        # refuses to the page) from the network service, and it can arrive
        # before the page's requestWillBeSent for the same id.
        for m, p in events:
            if m == "Network.requestWillBeSent" and rx.search(p["request"]["url"]):
                hops = by_id.setdefault(p.get("requestId"), [])
                if hops and "redirectResponse" in p:
                    # A redirect reuses the id; its answer comes with the next hop.
                    hops[-1]["status"] = p["redirectResponse"].get("status")
                r = {"method": p["request"]["method"], "url": p["request"]["url"],
                     "status": None, "blocked": None}
                hops.append(r)
                out.append(r)
        for m, p in events:
            hops = by_id.get(p.get("requestId"))
            if not hops:
                continue
            if m in ("Network.responseReceivedExtraInfo", "Network.responseReceived"):
                # The answers of one id come in order: the last is the last hop's.
                hops[-1]["status"] = p.get("statusCode") or p.get("response", {}).get("status")
            elif m == "Network.loadingFailed":
                cors = p.get("corsErrorStatus", {}).get("corsError")
                hops[-1]["blocked"] = cors or p.get("errorText")
        return out

    def wait_response(self, url_pattern, method=None, blocked=False, timeout=10):
        """Waits until a request of this page (method, if given, and URL
        matching url_pattern) has its server's status, or with blocked=True
        until the browser has refused it to the page; returns it as
        responses() does. The two are separate events and come in either
        order: wait for the one the test is about."""
        key = "blocked" if blocked else "status"
        deadline = time.monotonic() + timeout
        while True:
            for r in self.responses(url_pattern):
                if (method is None or r["method"] == method) and r[key] is not None:
                    return r
            if time.monotonic() >= deadline:
                what = "a refusal of" if blocked else "an answer to"
                raise BrowserError(f"no {what} {method or 'a request'} {url_pattern!r}"
                                   f" within {timeout} s")
            time.sleep(0.05)

    # Reading.

    def evaluate(self, expression, await_promise=True):
        """The value of a JavaScript expression in the page (JSON values come
        back as Python values); an exception in it raises BrowserError."""
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                           "awaitPromise": await_promise})
        if "exceptionDetails" in r:
            d = r["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text")
            raise BrowserError(f"in the page: {text}")
        return r["result"].get("value")

    def _query(self, selector, body):
        """Runs body (JS using `el`) on the first element matching selector."""
        return self.evaluate(f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
                             f" if (!el) throw new Error('no element matches ' + "
                             f"{json.dumps(json.dumps(selector))}); {body} }})()")

    def wait_for(self, selector, timeout=10, visible=True, text=None):
        """Waits until an element matches selector (visible, unless
        visible=False; containing text, if given); polls, with a deadline."""
        sel, want = json.dumps(selector), json.dumps(text)
        check = (f"(() => {{ const el = document.querySelector({sel}); if (!el) return false;"
                 f" if ({json.dumps(visible)} && !(el.offsetWidth || el.offsetHeight ||"
                 f" el.getClientRects().length)) return false;"
                 f" return {want} === null || el.textContent.includes({want}); }})()")
        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.evaluate(check):
                    return
            except BrowserError as e:
                # The page is navigating (a reload, a form's submit): its
                # old document is gone and the new one not there yet.
                if not _NAVIGATING.search(str(e)):
                    raise
            if time.monotonic() >= deadline:
                what = f"{selector!r}" + (f" with text {text!r}" if text is not None else "")
                raise BrowserError(f"nothing matched {what} within {timeout} s")
            time.sleep(0.05)

    def text(self, selector):
        """The element's text as shown (innerText)."""
        return self._query(selector, "return el.innerText;")

    def attr(self, selector, name):
        """An attribute's value, or None without it."""
        return self._query(selector, f"return el.getAttribute({json.dumps(name)});")

    def value(self, selector):
        return self._query(selector, "return el.value;")

    def count(self, selector):
        return self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")

    # Input: real mouse and keyboard events, as a person would make them.

    def _center(self, selector):
        r = self._query(selector, "el.scrollIntoView({block: 'center', inline: 'center'});"
                                  " const r = el.getBoundingClientRect();"
                                  " return [r.left + r.width / 2, r.top + r.height / 2,"
                                  " r.width, r.height];")
        if r[2] <= 0 or r[3] <= 0:
            raise BrowserError(f"{selector!r} is not visible, it cannot be clicked")
        return r[0], r[1]

    def click(self, selector):
        """Clicks the middle of the element with the mouse."""
        x, y = self._center(selector)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": x, "y": y,
                                                   "button": "left" if kind != "mouseMoved" else "none",
                                                   "clickCount": 1 if kind != "mouseMoved" else 0})

    def type(self, selector, text, clear=True):
        """Clicks into an input and types text key by key (each key fires
        keydown, input and keyup as a keyboard would)."""
        self.click(selector)
        if clear:
            self._query(selector, "el.select && el.select(); return null;")
            self.send("Input.dispatchKeyEvent", {"type": "rawKeyDown", "key": "Backspace",
                                                 "code": "Backspace", "windowsVirtualKeyCode": 8})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": "Backspace",
                                                 "code": "Backspace", "windowsVirtualKeyCode": 8})
        for ch in text:
            self.send("Input.dispatchKeyEvent", {"type": "keyDown", "key": ch, "text": ch})
            self.send("Input.dispatchKeyEvent", {"type": "keyUp", "key": ch})

    def select(self, selector, value):
        """Chooses the option with this value in a <select>, firing input and
        change as a person's choice would (a headless browser opens no
        native drop-down to click in)."""
        ok = self._query(selector, f"if (el.tagName !== 'SELECT') throw new Error("
                                   f"'not a <select>: ' + el.tagName);"
                                   f" const v = {json.dumps(value)};"
                                   f" if (![...el.options].some(o => o.value === v)) return false;"
                                   f" el.focus(); el.value = v;"
                                   f" el.dispatchEvent(new Event('input', {{bubbles: true}}));"
                                   f" el.dispatchEvent(new Event('change', {{bubbles: true}}));"
                                   f" return true;")
        if not ok:
            raise BrowserError(f"{selector!r} has no option with value {value!r}")

    def press(self, key, code=None, key_code=0):
        """One special key, e.g. press("Enter", key_code=13)."""
        base = {"key": key, "code": code or key, "windowsVirtualKeyCode": key_code}
        text = {"Enter": "\r"}.get(key)
        self.send("Input.dispatchKeyEvent", dict(base, type="keyDown", **({"text": text} if text else {})))
        self.send("Input.dispatchKeyEvent", dict(base, type="keyUp"))

    # Screenshots.

    def screenshot(self, name, full_page=False):
        """Saves a PNG of the page to build/browser/screenshots/<name>.png;
        returns its path."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise ValueError(f"screenshot name {name!r}: letters, digits, _ . - only")
        params = {"format": "png"}
        if full_page:
            params["captureBeyondViewport"] = True
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"],
                              "scale": 1}
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        os.makedirs(SCREENSHOT_DIR, exist_ok=True)
        path = os.path.join(SCREENSHOT_DIR, name + ".png")
        with open(path, "wb") as f:
            f.write(data)
        return path

    # Errors on the page.

    def _all_errors(self):
        out = []
        ev = self.browser._events
        with self.browser._cv:
            events = [(m, p) for s, m, p in ev[self._since:] if s == self.session]
        for m, p in events:
            if m == "Runtime.exceptionThrown":
                d = p["exceptionDetails"]
                out.append(("js", d.get("exception", {}).get("description") or d.get("text", "")))
            elif m == "Runtime.consoleAPICalled" and p["type"] in ("error", "assert"):
                out.append(("js", "console." + p["type"] + ": " + " ".join(
                    str(a.get("value", a.get("description", ""))) for a in p["args"])))
            elif m == "Log.entryAdded" and p["entry"]["level"] == "error":
                e = p["entry"]
                kind = "network" if e.get("source") == "network" else "js"
                out.append((kind, f"{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip()))
        return out

    def errors(self):
        """JavaScript errors on this page since it opened or the last take_errors()."""
        return [t for k, t in self._all_errors()[self._taken:] if k == "js"]

    def network_errors(self):
        """What chromium logged as failed loads (a 403, a refused fetch)."""
        return [t for k, t in self._all_errors()[self._taken:] if k == "network"]

    def take_errors(self):
        """Returns every error so far (JavaScript and network) and forgets
        them, for a test that expects some."""
        all_ = self._all_errors()
        taken = [t for _, t in all_[self._taken:]]
        self._taken = len(all_)
        return taken

    def wait_for_error(self, pattern, timeout=10):
        """Waits for an error (JavaScript or network) matching pattern; returns it."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for _, t in self._all_errors()[self._taken:]:
                if rx.search(t):
                    return t
            if time.monotonic() >= deadline:
                raise BrowserError(f"no error matching {pattern!r} within {timeout} s")
            time.sleep(0.05)

    def assert_no_errors(self):
        """Raises AssertionError listing the page's JavaScript errors, if any."""
        errs = self.errors()
        if errs:
            raise AssertionError("JavaScript errors on the page:\n  " + "\n  ".join(errs))

    def close(self):
        try:
            self.browser.send("Target.closeTarget", {"targetId": self.target})
        except BrowserError:
            pass


class BrowserCase(unittest.TestCase):
    """Tests in a real browser: one chromium for the class (self.browser),
    a new tab for each test (self.page). Each test ends with a screenshot,
    build/browser/screenshots/<Class>.<test>.png, and fails on any
    JavaScript error on its page (take_errors() the ones it expects)."""

    browser = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.browser = Browser()
        # Also when a subclass's setUpClass fails after this.
        cls.addClassCleanup(cls.browser.close)

    def setUp(self):
        super().setUp()
        self.page = self.browser.new_page()
        self.addCleanup(self.page.close)

    def tearDown(self):
        self.page.screenshot(f"{type(self).__name__}.{self._testMethodName}")
        self.page.assert_no_errors()
        super().tearDown()


class StaticServer:
    """Serves a folder over HTTP on 127.0.0.1 and a free port, from a
    thread, for pages of the tests' own; stop() ends it."""

    def __init__(self, folder):
        import functools
        import http.server

        class Quiet(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                pass

        handler = functools.partial(Quiet, directory=folder)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.server_address[1]
        self.origin = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
