"""End-to-end tests of the host owning timing (issue 3): the deadline
hand-off to response_url, req:respond(), non-blocking http.request and
sleep, the limits that contain a bad script, and attachment downloads.

The real binary runs on loopback against local fakes (fakes.py): a Sink
playing Cliq's response_url and a SlowUpstream playing any HTTP API. Scripts
may reach the upstream on 127.0.0.1 only where a class allows it
(--http-allow, test_ssrf.py); the host's deliveries to the sink and
attachment downloads from the upstream go there because hostlib's hosts
name 127.0.0.1 in response_url_allow (test_response_url.py). The
handler scripts are in timing_scripts/; each takes its knobs (how long to
sleep, which URL to call, a tag to recognise its result by) from the
request's params, never from hard-coded addresses.
"""

import concurrent.futures
import itertools
import json
import os
import re
import socket
import threading
import time
import unittest

from cliq_bodies import body
from fakes import Sink, SlowUpstream, raise_fd_limit
from hostlib import HERE, Host, Key

SCRIPTS = os.path.join(HERE, "timing_scripts")
KEY = Key("main")
INTERIM = "Working on it\u2026"  # the default interim_reply
FILE_BYTES = bytes(range(256)) * 4  # every byte value, so binary survives or not

raise_fd_limit()  # 500 connections in and 500 out, here and in the host
_tags = itertools.count(1)


def tag():
    """A token unique to this run, to recognise one request's results by."""
    return f"t{os.getpid()}-{next(_tags)}"


def now_ms():
    return int(time.time() * 1000)


def command(name, options=None, response_url=None, handler="execution_handler", **params):
    """A command body as Cliq sends it, with the test's knobs in
    params.options; response_url is a URL, or None for a body without one."""
    p = {"arguments": "", "options": options or {}}
    p.update(params)
    b = body("command", handler, name, p, response_url=response_url is not None,
             timestamp=now_ms())
    if response_url is not None:
        b["response_url"] = response_url
    return b


def closed_port():
    """A loopback port nobody listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class TimingTest(unittest.TestCase):
    """One host (and its fakes) per class; every test leaves it serving."""

    flags = ()
    allow = ()  # --http-allow entries: what scripts may reach on loopback
    workers = 2
    upstream_delay = 2.0

    @classmethod
    def setUpClass(cls):
        cls.sink = Sink().start()
        cls.upstream = SlowUpstream(delay=cls.upstream_delay).start()
        try:
            allow = [a for entry in cls.allow for a in ("--http-allow", entry)]
            cls.host = Host(*cls.flags, *allow, scripts=SCRIPTS, keys=[KEY.spki],
                            workers=cls.workers)
        except Exception:
            cls.sink.stop()
            cls.upstream.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        cls.sink.stop()
        cls.upstream.stop()
        reports = cls.host.sanitizer_reports()
        assert rc == 0 and not reports, f"exit {rc}; sanitizer: {reports}\n{cls.host.log()}"

    def send(self, b, timeout=10, host=None):
        """Signs b, then POSTs it, timing only the HTTP exchange. Returns
        (reply, seconds it took, monotonic time it was sent)."""
        host = host or self.host
        raw = json.dumps(b).encode()
        sig = KEY.sign(raw)
        t0 = time.monotonic()
        r = host.request("POST", "/", raw,
                         {"Content-Type": "application/json", "X-Cliq-Signature": sig},
                         timeout=timeout)
        return r, time.monotonic() - t0, t0

    def output(self, reply):
        """The reply's output, after checking it is a 200 JSON reply."""
        self.assertEqual(reply.status, 200, reply)
        data = reply.json()
        self.assertEqual(set(data), {"output"}, data)
        return data["output"]

    def log_line(self, rid, pattern, timeout=30, host=None):
        """The first log line for request rid matching pattern (a regex)."""
        host = host or self.host
        line = host.wait_for(r"req=%s .*%s" % (rid, pattern), timeout=timeout)
        self.assertIsNotNone(line, f"no log line req={rid} .*{pattern}\n{host.log()[-4000:]}")
        return line

    def assertServing(self, host=None):
        """The host still answers health checks and a quick handler."""
        host = host or self.host
        self.assertEqual(host.request("GET", "/healthz").status, 200)
        t = tag()
        r, _, _ = self.send(command("fast", {"tag": t}), host=host)
        self.assertEqual(self.output(r), {"text": "fast", "tag": t})

    def assertDeliveredOnce(self, t, output, settle=1.0):
        """The sink got exactly one POST for tag t, carrying {"output": output}
        as JSON, and no second one within settle seconds. Returns the post."""
        posts = self.sink.wait_posts(1, t, timeout=30)
        self.assertEqual(len(posts), 1, f"nothing reached the sink\n{self.host.log()[-4000:]}")
        time.sleep(settle)
        posts = self.sink.posts(t)
        self.assertEqual(len(posts), 1, posts)
        self.assertTrue(posts[0].headers.get("content-type", "").startswith("application/json"),
                        posts[0].headers)
        self.assertEqual(posts[0].json(), {"output": output})
        return posts[0]


# How long the deadline tests' handlers sleep: ten times the deadline, so a
# reply at the deadline and one when the handler finished are seconds apart
# however slow the machine is.
SLEEP = 5.0
# How late after the deadline a sync reply may come and still count as "at
# the deadline": generous for a loaded machine or a sanitizer build, and
# still well before the handler finishes (SLEEP).
LATE_OK = 2.0


class Deadline(TimingTest):
    """A handler still running at the deadline: Cliq gets the interim reply
    on time, and the handler's result goes to response_url once."""

    flags = ("--deadline", "500")
    deadline = 0.5

    def assertOnTime(self, elapsed):
        """The sync reply came at the deadline: not before it, and well
        before the handler (sleeping SLEEP s) finished. That it is the
        interim reply, which each test checks, shows the same: the handler
        had not finished."""
        self.assertGreaterEqual(elapsed, self.deadline - 0.05, "sync reply before the deadline")
        self.assertLess(elapsed, self.deadline + LATE_OK,
                        "sync reply nearer the handler's end than the deadline")

    def test_sleeping_past_the_deadline(self):
        t = tag()
        r, elapsed, sent = self.send(command("slow", {"sleep": SLEEP, "tag": t},
                                             response_url=self.sink.url_for(t)))
        self.assertEqual(self.output(r), {"text": INTERIM})
        self.assertOnTime(elapsed)
        rid = r.headers["x-request-id"]
        post = self.assertDeliveredOnce(t, {"text": f"done {t}", "slept": SLEEP})
        # It came when the handler finished, not at the deadline.
        self.assertGreaterEqual(post.time - sent, SLEEP - 0.1)
        line = self.log_line(rid, r"method=POST .*status=200")
        self.assertIn("late=1", line)
        line = self.log_line(rid, "outcome=delivered")
        self.assertIn("attempts=1", line)
        self.assertIn("status=200", line)
        self.assertServing()

    def test_respond_before_the_deadline_then_finish_late(self):
        # The handler already answered through respond(): its late return
        # value must not be sent as well.
        t = tag()
        r, elapsed, sent = self.send(command("respond", {"mode": "then_sleep", "sleep": SLEEP},
                                             response_url=self.sink.url_for(t)))
        self.assertEqual(self.output(r), {"text": INTERIM})
        self.assertOnTime(elapsed)
        rid = r.headers["x-request-id"]
        self.assertDeliveredOnce(t, {"text": "early"}, settle=0)
        # Once the handler has returned (its late result is logged), nothing
        # more reached the sink.
        self.log_line(rid, "respond kind=late outcome=skipped", timeout=SLEEP + 30)
        time.sleep(0.5)
        self.assertEqual(self.sink.count(t), 1, self.sink.posts(t))
        self.assertServing()

    def test_late_result_without_response_url_is_dropped(self):
        before = self.sink.count()
        t = tag()
        r, elapsed, _ = self.send(command("slow", {"sleep": SLEEP, "tag": t}))
        self.assertEqual(self.output(r), {"text": INTERIM})
        self.assertOnTime(elapsed)
        self.log_line(r.headers["x-request-id"], "outcome=dropped", timeout=SLEEP + 30)
        time.sleep(0.3)
        self.assertEqual(self.sink.count(), before)
        self.assertServing()

    def test_button_gets_an_interim_banner(self):
        t = tag()
        b = body("function", "button_handler", "slow",
                 {"arguments": {"sleep": SLEEP, "tag": t}, "target": {"name": "Go"},
                  "event": "click"}, timestamp=now_ms())
        b["response_url"] = self.sink.url_for(t)
        r, elapsed, _ = self.send(b)
        self.assertEqual(self.output(r), {"type": "banner", "status": "success", "text": INTERIM})
        self.assertOnTime(elapsed)
        self.assertDeliveredOnce(t, {"type": "banner", "status": "success", "text": f"done {t}"},
                                 settle=0.5)
        self.assertServing()

    def test_suggestion_interim_is_empty(self):
        # The user never sees a late suggestion, so Cliq gets "" at once.
        t = tag()
        r, elapsed, _ = self.send(command("slow", {"sleep": SLEEP, "tag": t},
                                          handler="suggestion_handler"))
        self.assertEqual(self.output(r), "")
        self.assertOnTime(elapsed)
        # Let it finish: its late result has nowhere to go.
        self.log_line(r.headers["x-request-id"], "outcome=dropped", timeout=SLEEP + 30)
        self.assertServing()

    def test_client_that_hangs_up_still_gets_its_result(self):
        t = tag()
        raw = json.dumps(command("slow", {"sleep": 1.0, "tag": t},
                                 response_url=self.sink.url_for(t))).encode()
        sig = KEY.sign(raw)
        s = socket.create_connection(("127.0.0.1", self.host.port), timeout=10)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"X-Cliq-Signature: %s\r\nContent-Length: %d\r\n\r\n%s"
                  % (sig.encode(), len(raw), raw))
        time.sleep(0.1)
        s.close()
        self.assertDeliveredOnce(t, {"text": f"done {t}", "slept": 1.0}, settle=0.5)
        self.assertServing()


class EmptyInterimReply(TimingTest):
    flags = ("--deadline", "500", "--interim-reply", "")

    def test_empty_interim_reply(self):
        t = tag()
        r, elapsed, _ = self.send(command("slow", {"sleep": SLEEP, "tag": t},
                                          response_url=self.sink.url_for(t)))
        self.assertEqual(self.output(r), "")
        # At the deadline (0.5 s), well before the handler finished.
        self.assertLess(elapsed, 0.5 + LATE_OK)
        self.assertDeliveredOnce(t, {"text": f"done {t}", "slept": SLEEP}, settle=0.5)
        self.assertServing()


class ManyInFlight(TimingTest):
    """500 handlers each waiting 2 s on an outbound call, on 2 workers: a
    worker never blocks on a handler's I/O."""

    # The longest deadline allowed: on a slow machine 500 handlers may
    # queue a while, and none may go the late way for that.
    flags = ("--deadline", "60000")
    allow = ("127.0.0.1",)
    workers = 2
    upstream_delay = 2.0
    N = 500

    def test_500_handlers_waiting_on_http(self):
        t = tag()
        bodies = [json.dumps(command("fetch", {"url": f"{self.upstream.url}/slow/{i}"},
                                     response_url=self.sink.url_for(t))).encode()
                  for i in range(self.N)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            sigs = list(pool.map(KEY.sign, bodies))
        results = [None] * self.N

        def call(i):
            try:
                results[i] = self.host.request(
                    "POST", "/", bodies[i],
                    {"Content-Type": "application/json", "X-Cliq-Signature": sigs[i]},
                    timeout=120)
            except Exception as e:  # reported below, with its index
                results[i] = e

        threads = [threading.Thread(target=call, args=(i,)) for i in range(self.N)]
        t0 = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        wall = time.monotonic() - t0

        failed = [(i, r) for i, r in enumerate(results)
                  if isinstance(r, Exception) or r.status != 200]
        self.assertEqual(failed[:5], [], f"{len(failed)} of {self.N} failed")
        for i, r in enumerate(results):
            out = self.output(r)
            self.assertEqual(out.get("status"), 200, (i, out))
            self.assertEqual(out.get("upstream"), "slow", (i, out))
            self.assertEqual(json.loads(out["body"])["path"], f"/slow/{i}", (i, out))
        stats = (f"wall {wall:.1f} s, upstream held up to {self.upstream.max_concurrency} "
                 f"at once, {self.upstream.requests} requests")
        self.assertEqual(self.upstream.requests, self.N, stats)
        # More calls in flight than workers: the workers did not block.
        self.assertGreater(self.upstream.max_concurrency, 2, stats)
        # Everything answered in time: nothing went the late way.
        self.assertEqual(self.sink.count(t), 0)
        self.assertServing()


class Respond(TimingTest):
    """req:respond(msg): once per request, retried on 5xx, final on 4xx."""

    def respond(self, t, options, with_url=True):
        options.setdefault("mode", "then_return")
        r, _, _ = self.send(command("respond", options,
                                    response_url=self.sink.url_for(t) if with_url else None))
        return self.output(r), r.headers["x-request-id"]

    def test_respond_then_return(self):
        t = tag()
        out, rid = self.respond(t, {})
        self.assertEqual(out, {"text": "returned", "ok": True})
        # respond() waited for the outcome, so the post is already there;
        # the return value went to Cliq in the sync reply, not to the sink.
        self.assertEqual(self.sink.count(t), 1)
        self.assertDeliveredOnce(t, {"text": "from respond"}, settle=0.5)
        line = self.log_line(rid, "outcome=delivered")
        self.assertIn("attempts=1", line)
        self.assertServing()

    def test_respond_with_a_message_table(self):
        t = tag()
        msg = {"text": "Build *42* passed", "card": {"title": "CI", "theme": "modern-inline"}}
        out, _ = self.respond(t, {"message": msg})
        self.assertEqual(out, {"text": "returned", "ok": True})
        self.assertDeliveredOnce(t, msg, settle=0.2)

    def test_respond_twice(self):
        t = tag()
        out, _ = self.respond(t, {"mode": "twice"})
        self.assertEqual(out, {"text": "twice", "first_ok": True, "second_err": "used"})
        self.assertDeliveredOnce(t, {"text": "first"}, settle=0.5)
        self.assertServing()

    def test_respond_without_response_url(self):
        before = self.sink.count()
        out, _ = self.respond(tag(), {}, with_url=False)
        self.assertEqual(out, {"text": "returned", "err": "none"})
        self.assertEqual(self.sink.count(), before)
        self.assertServing()

    def test_server_errors_are_retried_until_delivered(self):
        t = tag()
        self.sink.answer(t, [500, 500, 200])
        out, rid = self.respond(t, {})
        self.assertEqual(out, {"text": "returned", "ok": True})
        posts = self.sink.posts(t)
        self.assertEqual(len(posts), 3, posts)
        for p in posts:
            self.assertEqual(p.json(), {"output": {"text": "from respond"}})
        # With backoff between tries, not all at once.
        for a, b in zip(posts, posts[1:]):
            self.assertGreaterEqual(b.time - a.time, 0.2)
        time.sleep(0.5)
        self.assertEqual(self.sink.count(t), 3, "delivered more than once")
        line = self.log_line(rid, "outcome=delivered")
        self.assertIn("attempts=3", line)
        self.assertIn("status=200", line)
        self.assertServing()

    def test_client_error_is_final(self):
        t = tag()
        self.sink.answer(t, [404])
        out, rid = self.respond(t, {})
        self.assertNotIn("ok", out)
        self.assertTrue(out.get("err", "").startswith("HTTP 404"), out)
        time.sleep(1.0)  # past the first retry's backoff: there must be none
        self.assertEqual(self.sink.count(t), 1)
        line = self.log_line(rid, "outcome=failed")
        self.assertIn("status=404", line)
        self.assertServing()


class RespondExpiry(TimingTest):
    """A response_url valid for 2 s (--response-url-ttl 2)."""

    # respond() waits for its outcome inside the handler: the longest
    # deadline allowed keeps that in the sync reply however slow the machine.
    flags = ("--response-url-ttl", "2", "--deadline", "60000")

    def test_respond_after_the_url_expired(self):
        t = tag()
        r, _, _ = self.send(command("respond", {"mode": "after", "sleep": 2.5},
                                    response_url=self.sink.url_for(t)))
        self.assertEqual(self.output(r), {"text": "after", "err": "expired"})
        self.assertEqual(self.sink.count(t), 0)
        self.log_line(r.headers["x-request-id"], "outcome=expired")
        self.assertServing()

    def test_unreachable_response_url_is_retried_then_given_up(self):
        url = f"http://127.0.0.1:{closed_port()}/r/{tag()}"
        r, _, _ = self.send(command("respond", {"mode": "then_return"}, response_url=url),
                            timeout=90)
        out = self.output(r)
        self.assertNotIn("ok", out)
        self.assertIsInstance(out.get("err"), str, out)
        self.assertTrue(out["err"], out)
        # Retried while the URL was valid, and not beyond: counted in
        # attempts, not seconds. A refused connection fails at once, and the
        # backoff (0.25 s, 0.5 s, 1 s, 2 s, ... with up to a fifth of jitter)
        # fits 2 to 4 attempts into the URL's 2 s; a machine slower than that
        # makes fewer, and the next retry would already be past the expiry.
        line = self.log_line(r.headers["x-request-id"], r"outcome=(failed|expired)")
        self.assertRegex(line, r"attempts=[2-4]\b")
        self.assertIn("expire", line)
        self.assertServing()


class Limits(TimingTest):
    """Scripts that loop or recurse are stopped by the CPU limit with their
    reason; the one worker keeps serving the others.

    Only the CPU limit may stop these scripts first: the sync deadline is
    the longest allowed (so the reply carries the stop, however slow the
    machine), the run-time limit is far beyond the CPU limit, and the
    scripts hold next to no memory. Which limit fired is read from the
    log, not from the clock."""

    flags = ("--max-cpu", "1000", "--deadline", "60000", "--max-run", "30000")
    workers = 1
    max_cpu = 1.0

    def assertStopped(self, name, limit, word, where):
        """Runs command `name`; its user is told it was stopped and why, and
        the log names the limit and where the script was. Returns the
        seconds the exchange took."""
        r, elapsed, _ = self.send(command(name), timeout=90)
        out = self.output(r)
        rid = r.headers["x-request-id"]
        text = out["text"]
        self.assertNotIn("survived", text)
        self.assertIn("stopped", text)
        self.assertIn(word, text.lower())
        self.assertIn(rid, text)
        line = self.log_line(rid, "failure=limit")
        self.assertIn(f"limit={limit}", line)
        self.assertIn(where, line)
        self.assertServing()
        return elapsed

    def test_endless_loop(self):
        elapsed = self.assertStopped("spin", "cpu", "cpu", "commands/spin.lua:")
        # It ran until the limit, not less (the limit counts from its start).
        self.assertGreaterEqual(elapsed, self.max_cpu - 0.05)

    def test_endless_loop_inside_pcall(self):
        elapsed = self.assertStopped("spin_pcall", "cpu", "cpu", "commands/spin_pcall.lua:")
        self.assertGreaterEqual(elapsed, self.max_cpu - 0.05)

    def test_deep_recursion(self):
        # Stopped by a limit, or failed with Lua's "stack overflow": either
        # way the user hears back (the CPU limit bounds how long it takes)
        # and the host lives on.
        r, elapsed, _ = self.send(command("recurse"), timeout=90)
        out = self.output(r)
        rid = r.headers["x-request-id"]
        self.assertIn(rid, out["text"])
        line = self.log_line(rid, "failure=")
        self.assertTrue("failure=limit" in line or
                        ("failure=error" in line and "stack overflow" in line), line)
        self.assertServing()

    def test_fast_request_answers_while_another_spins(self):
        spin = json.dumps(command("spin_announced")).encode()
        spin_sig = KEY.sign(spin)
        fast = command("fast", {"tag": "meanwhile"})
        spun = {}

        def run_spin():
            spun["reply"] = self.host.request(
                "POST", "/", spin, {"Content-Type": "application/json",
                                    "X-Cliq-Signature": spin_sig}, timeout=90)

        n = len(self.host.lines)
        th = threading.Thread(target=run_spin)
        th.start()
        # The spin is running on the only worker once it has said so.
        started = self.host.wait_for(r"req=(\S+) .*spin started", timeout=30, start=n)
        self.assertIsNotNone(started, self.host.log()[-4000:])
        spin_rid = re.search(r"req=(\S+)", started).group(1)
        r, _, _ = self.send(fast, timeout=90)
        th.join(90)
        self.assertEqual(self.output(r), {"text": "fast", "tag": "meanwhile"})
        self.assertIn("stopped", self.output(spun["reply"])["text"])
        # The fast request was served once the CPU limit freed the worker:
        # the spin's stop is logged before the fast request's reply.
        stop = self.log_line(spin_rid, "failure=limit")
        self.assertIn("limit=cpu", stop)
        fast_line = self.log_line(r.headers["x-request-id"], "status=200")
        self.assertLess(self.host.lines.index(stop), self.host.lines.index(fast_line))
        self.assertServing()


class MemoryLimits(TimingTest):
    """Scripts that eat memory are stopped by the memory limit with their
    reason, even inside pcall; the one worker keeps serving the others.

    Filling 32 MiB for the first time is slow under the sanitizers (page
    faults count as the handler's time) and on a loaded machine, so every
    other limit is out of reach: the CPU and run-time limits are the
    largest allowed, and so is the sync deadline (the reply must carry the
    stop, not the interim reply)."""

    flags = ("--max-cpu", "600000", "--max-run", "3600000", "--deadline", "60000",
             "--max-memory-bytes", "33554432")
    workers = 1

    assertStopped = Limits.assertStopped

    def test_table_that_grows_forever(self):
        self.assertStopped("hog", "memory", "memory", "commands/hog.lua:")

    def test_table_that_grows_forever_inside_pcall(self):
        self.assertStopped("hog_pcall", "memory", "memory", "commands/hog_pcall.lua:")


class Tricks(TimingTest):
    """Scripts that try to slip past the limits or the host's waits: each is
    answered, and the one worker keeps serving.

    The tricks that spin are stopped by the CPU limit; the sync deadline is
    the longest allowed so the reply carries that however slow the machine,
    and the run-time limit, far beyond the CPU limit, is only a backstop
    against a trick that gets past it (its reply would then name "time",
    and the log limit=time)."""

    flags = ("--max-cpu", "1000", "--max-memory-bytes", "16777216", "--deadline", "60000",
             "--max-run", "30000")
    workers = 1

    def trick(self, mode):
        r, _, _ = self.send(command("tricks", {"mode": mode}), timeout=90)
        return r, self.output(r)

    def test_wait_inside_a_c_callback_is_refused(self):
        _, out = self.trick("wait_in_gsub")
        self.assertFalse(out["ok"])
        self.assertIn("cannot wait here", out["err"])
        time.sleep(0.4)  # nothing armed by the refused wait may fire later
        self.assertServing()

    def test_endless_close_is_not_run(self):
        r, out = self.trick("endless_close")
        self.assertIn("stopped", out["text"])
        self.assertIn("limit=cpu", self.log_line(r.headers["x-request-id"], "failure=limit"))
        self.assertServing()

    def test_endless_tostring_on_an_error_object(self):
        r, out = self.trick("endless_tostring")
        self.assertIn(r.headers["x-request-id"], out["text"])
        line = self.log_line(r.headers["x-request-id"], "failure=")
        self.assertIn("error object is a table value", line)
        self.assertServing()

    def test_finalizers_are_refused(self):
        _, out = self.trick("finalizer")
        self.assertFalse(out["ok"])
        self.assertIn("__gc", out["err"])

    def test_another_handlers_coroutine_cannot_be_resumed_or_closed(self):
        kept = {}
        body = json.dumps(command("tricks", {"mode": "keep"})).encode()
        sig = KEY.sign(body)

        def keep():
            kept["reply"] = self.host.request("POST", "/", body, {
                "Content-Type": "application/json", "X-Cliq-Signature": sig}, timeout=90)

        n = len(self.host.lines)
        th = threading.Thread(target=keep)
        th.start()
        # The keeper has stored its coroutine and is asleep (for long enough
        # that the steal surely comes while it sleeps).
        self.assertIsNotNone(self.host.wait_for(r"kept my coroutine", timeout=30, start=n),
                             self.host.log()[-4000:])
        _, out = self.trick("steal")
        th.join(90)
        self.assertFalse(out["resumed"])
        self.assertFalse(out["close"])
        self.assertIn("run by the host", out["err"])
        self.assertEqual(self.output(kept["reply"]), {"text": "kept and woke"})



class LimitEdges(TimingTest):
    """The CPU limit's hook is armed on the thread that runs when the slice
    passes the limit (a watchdog's signal), and rests nowhere otherwise.
    Code that spins on another thread than the handler's own coroutine, or
    inside a C function that calls back into Lua, is stopped all the same,
    whatever pcall or xpcall surrounds it; a hook left armed on a kept
    coroutine, or a signal that comes as a slice ends, stops nothing in a
    later call that is within its limit. Only the CPU limit can stop these
    scripts first (the run-time limit is a backstop far beyond it)."""

    flags = ("--max-cpu", "300", "--deadline", "60000", "--max-run", "30000")
    workers = 1

    def edge(self, mode, **options):
        r, _, _ = self.send(command("edges", dict(options, mode=mode)), timeout=90)
        return r, self.output(r)

    def assertStoppedForCpu(self, mode):
        r, out = self.edge(mode)
        self.assertNotIn("survived", out["text"])
        self.assertIn("stopped", out["text"])
        self.assertIn("limit=cpu", self.log_line(r.headers["x-request-id"], "failure=limit"))

    def test_spins_off_the_handlers_own_coroutine_are_stopped(self):
        for mode in ("resumed_in_pcall", "nested_in_pcall", "ping_pong", "gsub_callback",
                     "sort_comparator", "xpcall_handler", "close_spins"):
            with self.subTest(mode=mode):
                self.assertStoppedForCpu(mode)
        self.assertServing()

    def test_a_hook_left_armed_stops_nothing_later(self):
        self.assertStoppedForCpu("keep")
        _, out = self.edge("reuse")
        self.assertEqual(out["text"], "reused true ok")
        self.assertServing()

    def test_calls_after_one_that_ends_near_the_limit_are_not_stopped(self):
        # Each near call ends a little before or after the limit (either
        # outcome is fine); the quick call right after it must be answered.
        for i in range(24):
            ms = 270 + 3 * i
            with self.subTest(ms=ms):
                self.edge("near", ms=ms)
                t = tag()
                r, _, _ = self.send(command("fast", {"tag": t}))
                self.assertEqual(self.output(r), {"text": "fast", "tag": t})


class Garbage(TimingTest):
    """Lots of garbage under a small memory cap is collected, not killed.
    Making it is slow under the sanitizers and on a loaded machine, so
    every limit but the memory one is out of reach."""

    flags = ("--max-cpu", "600000", "--max-run", "3600000", "--deadline", "60000",
             "--max-memory-bytes", "16777216")
    workers = 1

    trick = Tricks.trick

    def test_garbage_is_collected_not_killed(self):
        _, out = self.trick("garbage")
        self.assertEqual(out, {"text": "garbage collected"})
        self.assertServing()


class RunTimeLimit(TimingTest):
    """--max-run 1000: a handler sleeping 60 s is stopped after 1 s. The
    sync deadline is the longest allowed, so the stop is in the sync reply
    however slow the machine; had the limit not fired, the reply would come
    only after the client's timeout (30 s)."""

    flags = ("--max-run", "1000", "--deadline", "60000")

    def test_handler_that_runs_too_long(self):
        r, elapsed, _ = self.send(command("slow", {"sleep": 60, "tag": tag()}), timeout=30)
        out = self.output(r)
        rid = r.headers["x-request-id"]
        self.assertIn("stopped", out["text"])
        self.assertIn("longer than", out["text"])
        self.assertIn(rid, out["text"])
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertIn("limit=time", self.log_line(rid, "failure=limit"))
        self.assertServing()

    def test_stopped_after_the_deadline_is_told_through_response_url(self):
        # The deadline (0.5 s) comes seconds before the limit (5 s), so the
        # interim reply cannot be overtaken by the stop on a slow machine.
        host = Host("--max-run", "5000", "--deadline", "500", scripts=SCRIPTS,
                    keys=[KEY.spki], workers=1)
        try:
            t = tag()
            r, elapsed, _ = self.send(command("slow", {"sleep": 60, "tag": t},
                                              response_url=self.sink.url_for(t)), host=host)
            self.assertEqual(self.output(r), {"text": INTERIM})
            self.assertLess(elapsed, 0.5 + LATE_OK)
            posts = self.sink.wait_posts(1, t, timeout=60)
            self.assertEqual(len(posts), 1, host.log())
            text = posts[0].json()["output"]["text"]
            self.assertIn("stopped", text)
            self.assertIn(r.headers["x-request-id"], text)
            self.assertIn("limit=time",
                          self.log_line(r.headers["x-request-id"], "failure=limit", host=host))
            self.assertServing(host)
        finally:
            rc = host.stop()
        self.assertEqual(rc, 0, host.log())
        self.assertEqual(host.sanitizer_reports(), [])


class Attachments(TimingTest):
    """attachment:download(): fetched once, cached for the request. The
    attachments stay valid for the whole test (--attachment-ttl 600),
    however slow the machine."""

    flags = ("--attachment-ttl", "600")
    upstream_delay = 0

    def attach(self, options):
        name = tag() + ".bin"
        self.upstream.files[name] = FILE_BYTES
        att = {"name": name, "comment": "", "id": name, "contenttype": "application/octet-stream",
               "url": f"{self.upstream.url}/files/{name}"}
        r, _, _ = self.send(command("attach", options, attachments=[att]))
        return self.output(r), name

    def test_downloaded_once_then_cached(self):
        out, name = self.attach({})
        self.assertEqual(out, {"text": "downloaded", "first": FILE_BYTES.hex(),
                               "second": FILE_BYTES.hex(), "same": True})
        self.assertEqual(self.upstream.fetches(name), 1)
        self.assertServing()


class AttachmentsExpire(TimingTest):
    """attachment:download() is refused once expired (--attachment-ttl 1);
    the handler waits past that before trying, and a slow machine only
    makes it later."""

    flags = ("--attachment-ttl", "1", "--deadline", "60000")
    upstream_delay = 0

    attach = Attachments.attach

    def test_expired_is_refused_without_fetching(self):
        out, name = self.attach({"wait": 1.5})
        self.assertEqual(out, {"text": "downloaded", "same": False,
                               "err1": "expired", "err2": "expired"})
        self.assertEqual(self.upstream.fetches(name), 0)
        self.assertServing()


class HttpRequest(TimingTest):
    """http.request: what comes back, and each way it fails.

    The upstream's slow answers take 20 s, far beyond the timeouts tested
    (0.5 s and 1 s), and the sync deadline is longer still (30 s): a call
    that waited for the upstream would come back with its 200, not a
    timeout."""

    flags = ("--http-timeout", "1000", "--max-http-response-bytes", "4096",
             "--deadline", "30000")
    allow = ("127.0.0.1",)
    upstream_delay = 20.0

    def fetch(self, **options):
        r, elapsed, _ = self.send(command("fetch", options), timeout=60)
        return self.output(r), elapsed

    def test_post_with_headers_and_body(self):
        out, _ = self.fetch(url=f"{self.upstream.url}/echo/p?delay=0", method="POST",
                            headers={"X-Test": "yes"}, body="payload")
        self.assertEqual(out["status"], 200, out)
        self.assertEqual(out["upstream"], "slow")  # response headers, lower-case names
        seen = json.loads(out["body"])
        self.assertEqual((seen["method"], seen["path"], seen["body"]),
                         ("POST", "/echo/p", "payload"))
        self.assertEqual(seen["headers"].get("x-test"), "yes")
        self.assertServing()

    def test_body_larger_than_one_read_arrives_whole(self):
        # curl reads 1 KiB at a time (fetch.c): a 3 KB answer takes several
        # reads and must come back byte for byte, in order.
        sent = "".join(f"{i:04d}-" for i in range(600))
        out, _ = self.fetch(url=f"{self.upstream.url}/echo/big?delay=0", method="POST",
                            body=sent)
        self.assertEqual(out["status"], 200, out)
        self.assertGreater(len(out["body"]), 3000)
        self.assertEqual(json.loads(out["body"])["body"], sent)
        self.assertServing()

    def test_timeout(self):
        out, elapsed = self.fetch(url=f"{self.upstream.url}/slow", timeout=0.5)
        self.assertIs(out.get("failed"), True, out)
        self.assertIn("timeout", out["error"].lower())
        self.assertLess(elapsed, self.upstream_delay / 2, "the call waited for the upstream")
        self.assertServing()

    def test_default_timeout_from_settings(self):
        out, elapsed = self.fetch(url=f"{self.upstream.url}/slow")
        self.assertIs(out.get("failed"), True, out)
        self.assertIn("timeout", out["error"].lower())
        self.assertGreaterEqual(elapsed, 0.9)
        self.assertLess(elapsed, self.upstream_delay / 2, "the call waited for the upstream")
        self.assertServing()

    def test_connection_refused(self):
        out, _ = self.fetch(url=f"http://127.0.0.1:{closed_port()}/x", timeout=2)
        self.assertIs(out.get("failed"), True, out)
        self.assertTrue(out.get("error"), out)
        self.assertServing()

    def test_response_over_the_cap(self):
        self.upstream.files["big"] = b"b" * 10000
        out, _ = self.fetch(url=f"{self.upstream.url}/files/big")
        self.assertIs(out.get("failed"), True, out)
        self.assertIn("larger than", out["error"])
        self.assertServing()

    def test_redirects_not_followed_by_default(self):
        out, _ = self.fetch(url=f"{self.upstream.url}/redirect")
        self.assertEqual(out["status"], 302, out)
        self.assertEqual(out["location"], "/echo/redirected")
        self.assertNotIn("/echo/redirected", self.upstream.paths())
        self.assertServing()


class LateReplyPendingAtStop(unittest.TestCase):
    """A late reply still waiting for its response_url when the host stops
    is given up and said so, and what the host held for it is freed (the
    AddressSanitizer build reports a leak otherwise)."""

    def test_stop_with_a_late_reply_pending(self):
        h = Host("--deadline", "300", "--shutdown-grace", "0", scripts=SCRIPTS,
                 keys=[KEY.spki], workers=1)
        try:
            url = f"http://127.0.0.1:{closed_port()}/late"  # refused: retried later
            raw = json.dumps(command("slow", {"sleep": 0.6, "tag": tag()},
                                     response_url=url)).encode()
            r = h.request("POST", "/", raw, {"Content-Type": "application/json",
                                             "X-Cliq-Signature": KEY.sign(raw)})
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.headers.get("x-cliqhost-late"), "response_url")
            time.sleep(1.5)  # the handler is done and its result's first post refused
        finally:
            rc = h.stop()
        self.assertEqual((rc, h.sanitizer_reports()), (0, []), h.log())
        self.assertIn("the host stopped before it was delivered", h.log())


if __name__ == "__main__":
    unittest.main()
