"""Live reload: every way an editor or git saves a file, what happens when
the new version is broken, lib/ modules, deletes, requests in flight, a
reload under load, GET /status and SIGHUP."""

import http.client
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from cliq_bodies import body
from hostlib import Host, Key

KEY = Key("reload")


def script(text):
    return "return {\n  execution = function(req)\n    return %s\n  end,\n}\n" % text


class Folder:
    """A scripts folder the test edits."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="cliqhost-e2e-reload-")
        for d in ("commands", "lib", "bots"):
            os.makedirs(os.path.join(self.root, d))

    def path(self, rel):
        return os.path.join(self.root, rel)

    def write(self, rel, text):
        """Write in place (open, truncate, write, close)."""
        os.makedirs(os.path.dirname(self.path(rel)), exist_ok=True)
        with open(self.path(rel), "w") as f:
            f.write(text)

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Base(unittest.TestCase):
    flags = ()

    @classmethod
    def setUpClass(cls):
        cls.dir = Folder()
        cls.dir.write("commands/ver.lua", script('"v0"'))
        cls.dir.write("commands/two.lua", 'local m = require "shared"\n' + script('"two " .. m.v'))
        cls.dir.write("commands/one.lua", 'local m = require "shared"\n' + script('"one " .. m.v'))
        cls.dir.write("lib/shared.lua", 'return { v = "m0" }\n')
        cls.host = Host(scripts=cls.dir.root, keys=[KEY.spki], *cls.flags)

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        cls.dir.cleanup()
        assert rc == 0, cls.host.log()
        assert not cls.host.sanitizer_reports(), cls.host.log()

    def call(self, name):
        r = self.host.post(body("command", "execution_handler", name, {"arguments": ""}), key=KEY)
        return r

    def text(self, name):
        r = self.call(name)
        self.assertEqual(r.status, 200, r)
        return r.json()["output"]["text"]

    def until(self, name, want, timeout=30):
        """Calls until the reply's text is `want` (or the status is, for an
        int); returns the seconds it took."""
        t0 = time.time()
        last = None
        while time.time() - t0 < timeout:
            r = self.call(name)
            last = r
            if isinstance(want, int):
                if r.status == want:
                    return time.time() - t0
            elif r.status == 200 and r.json()["output"].get("text") == want:
                return time.time() - t0
            time.sleep(0.005)
        self.fail(f"{name} never answered {want!r}; last {last}\n" + self.host.log()[-3000:])

    def status(self):
        r = self.host.request("GET", "/status")
        self.assertEqual(r.status, 200, r)
        return r.json()

    def entry(self, rel):
        for e in self.status()["scripts"] + self.status()["modules"]:
            if e["file"] == rel:
                return e
        return None


class SaveStyles(Base):
    """Each way a file reaches the disk is picked up."""

    def test_write_in_place(self):
        self.dir.write("commands/ver.lua", script('"in place"'))
        self.until("ver", "in place")

    def test_write_then_rename(self):
        tmp = self.dir.path("commands/.ver.lua.tmp")
        with open(tmp, "w") as f:
            f.write(script('"renamed"'))
        os.replace(tmp, self.dir.path("commands/ver.lua"))
        self.until("ver", "renamed")

    def test_delete_and_create(self):
        os.unlink(self.dir.path("commands/ver.lua"))
        self.dir.write("commands/ver.lua", script('"recreated"'))
        self.until("ver", "recreated")

    def test_vim_backup_dance(self):
        # vim with backupcopy=no: rename the file to a backup, write a new
        # file, delete the backup; plus its "4913" probe file.
        p = self.dir.path("commands/ver.lua")
        open(self.dir.path("commands/4913"), "w").close()
        os.unlink(self.dir.path("commands/4913"))
        os.rename(p, p + "~")
        self.dir.write("commands/ver.lua", script('"vim"'))
        os.unlink(p + "~")
        self.until("ver", "vim")

    def test_new_folder_is_watched(self):
        self.dir.write("widgets/board.lua", "return { view = function() return {type='applet'} end }\n")
        def b():  # a new call each time: the host refuses a signature twice
            return body("widget", "view_handler", "board", {})

        t0 = time.time()
        while time.time() - t0 < 30:
            r = self.host.post(b(), key=KEY)
            if r.status == 200:
                break
            time.sleep(0.01)
        self.assertEqual(r.status, 200, r)
        # And edits inside the new folder are picked up too.
        self.dir.write("widgets/board.lua", "return { view = function() return {type='applet', n=2} end }\n")
        t0 = time.time()
        while time.time() - t0 < 30:
            r = self.host.post(b(), key=KEY)
            if r.json()["output"].get("n") == 2:
                break
            time.sleep(0.01)
        self.assertEqual(r.json()["output"].get("n"), 2, r)

    def test_new_script_and_delete(self):
        self.until("fresh", 404)
        self.dir.write("commands/fresh.lua", script('"fresh"'))
        self.until("fresh", "fresh")
        os.unlink(self.dir.path("commands/fresh.lua"))
        self.until("fresh", 404)
        r = self.call("fresh")
        self.assertIn("no script for command fresh", r.json()["error"])
        self.assertIsNone(self.entry("commands/fresh.lua"))

    def test_editor_temp_files_are_ignored(self):
        self.dir.write("commands/.ver.lua.swp", "garbage ((")
        self.dir.write("commands/ver.lua~", "garbage ((")
        self.dir.write("commands/notes.txt", "garbage ((")
        # A real edit after them: once it is served, a rescan has been
        # through the garbage too.
        self.dir.write("commands/ver.lua", script('"after temp files"'))
        self.until("ver", "after temp files")
        self.assertEqual(self.status()["errors"], 0, self.status())


class Checkout(Base):
    """A checkout's burst of writes comes from this process, which a loaded
    machine can pause between two writes for longer than the default settle
    time (10 ms); a settle time of a second cannot be outlasted so."""

    flags = ("--reload-settle", "1000")

    def test_checkout_of_many_files_is_one_reload(self):
        before = self.status()["reloads"]
        for i in range(30):
            self.dir.write(f"commands/many{i}.lua", script(f'"many {i}"'))
        self.dir.write("lib/shared.lua", 'return { v = "checkout" }\n')
        self.until("many29", "many 29")
        self.until("one", "one checkout")
        time.sleep(0.3)
        self.assertEqual(self.text("many0"), "many 0")
        self.assertEqual(self.text("two"), "two checkout")
        # A burst settles into one rescan (two at most when the writes
        # straddle the settle time).
        self.assertLessEqual(self.status()["reloads"] - before, 2)
        for i in range(30):
            os.unlink(self.dir.path(f"commands/many{i}.lua"))
        self.until("many0", 404)


class BrokenVersions(Base):
    """A version that does not load leaves the old one serving and says why."""

    def setUp(self):
        self.dir.write("commands/ver.lua", script('"good"'))
        self.until("ver", "good")

    def broken(self, text, why):
        n = len(self.host.lines)
        self.dir.write("commands/ver.lua", text)
        line = self.host.wait_for(r"commands/ver\.lua did not load; the previous version keeps serving",
                                  timeout=30, start=n)
        self.assertIsNotNone(line, self.host.log()[-2000:])
        self.assertIn(why, line)
        self.assertEqual(self.text("ver"), "good")
        e = self.entry("commands/ver.lua")
        self.assertIn(why, e["error"])
        self.assertTrue(e["serving"])
        self.assertIsNotNone(e["error_at"])
        return e

    def test_syntax_error(self):
        e = self.broken("return {\n  execution = function(req)\n    return 'x' +\n  end,\n}\n",
                        "/commands/ver.lua:4:")
        self.assertRegex(e["error"], r"ver\.lua:4: unexpected symbol near 'end'")

    def test_runtime_error_at_top_level(self):
        self.broken("local x = nil\nlocal y = x.field\n" + script('"never"'),
                    "/commands/ver.lua:2: attempt to index a nil value")

    def test_not_a_table_of_functions(self):
        self.broken('return "hello"\n', "must return a table of handler functions")
        self.broken("return { execution = 42 }\n", "handler 'execution' must be a function")

    def test_endless_top_level_is_stopped(self):
        self.broken("while true do end\n", "CPU")

    def test_truncate_then_write_reports_nothing(self):
        # An editor saving in place: the file is empty for a moment.
        n = len(self.host.lines)
        open(self.dir.path("commands/ver.lua"), "w").close()
        time.sleep(0.3)
        self.dir.write("commands/ver.lua", script('"rewritten"'))
        self.until("ver", "rewritten")
        self.assertFalse([l for l in self.host.lines[n:] if "did not load" in l],
                         self.host.log()[-2000:])

    def test_a_file_left_empty_is_reported(self):
        n = len(self.host.lines)
        open(self.dir.path("commands/ver.lua"), "w").close()
        line = self.host.wait_for(r"commands/ver\.lua did not load; the previous version keeps "
                                  r"serving: .*returned nil", timeout=30, start=n)
        self.assertIsNotNone(line, self.host.log()[-2000:])
        self.assertEqual(self.text("ver"), "good")

    def test_fix_clears_the_error(self):
        self.broken("return {\n", "ver.lua")
        self.dir.write("commands/ver.lua", script('"fixed"'))
        self.until("ver", "fixed")
        self.assertIsNone(self.entry("commands/ver.lua")["error"])

    def test_new_broken_script_reports_and_fails_clearly(self):
        self.dir.write("commands/bad.lua", "return {\n")
        t0 = time.time()
        while time.time() - t0 < 30 and not self.entry("commands/bad.lua"):
            time.sleep(0.01)
        e = self.entry("commands/bad.lua")
        self.assertFalse(e["serving"])
        self.assertIn("bad.lua:2:", e["error"])
        r = self.call("bad")
        self.assertEqual(r.status, 200)  # the chat user gets the error reply
        self.assertIn("went wrong", r.json()["output"]["text"])
        os.unlink(self.dir.path("commands/bad.lua"))
        self.until("bad", 404)


class Modules(Base):
    def test_lib_change_reaches_every_script_that_requires_it(self):
        self.dir.write("lib/shared.lua", 'return { v = "m1" }\n')
        self.until("one", "one m1")
        self.until("two", "two m1")

    def test_module_required_through_another_module(self):
        self.dir.write("lib/inner.lua", 'return { v = "i1" }\n')
        self.dir.write("lib/outer.lua", 'local i = require "inner"\nreturn { v = "o+" .. i.v }\n')
        self.dir.write("commands/nest.lua", 'local o = require "outer"\n' + script("o.v"))
        self.until("nest", "o+i1")
        self.dir.write("lib/inner.lua", 'return { v = "i2" }\n')
        self.until("nest", "o+i2")

    def test_broken_module_keeps_old_version_for_all(self):
        self.dir.write("lib/shared.lua", 'return { v = "ok" }\n')
        self.until("one", "one ok")
        self.until("two", "two ok")
        n = len(self.host.lines)
        self.dir.write("lib/shared.lua", "return { v = \n")
        self.assertIsNotNone(self.host.wait_for(r"lib/shared\.lua: .*previous version keeps serving",
                                                timeout=30, start=n), self.host.log()[-2000:])
        self.assertEqual(self.text("one"), "one ok")
        self.assertEqual(self.text("two"), "two ok")
        self.assertIn("shared.lua:2:", self.entry("lib/shared.lua")["error"])

    def test_module_that_breaks_a_script_is_not_taken(self):
        self.dir.write("lib/shared.lua", 'return { v = "ok2" }\n')
        self.dir.write("commands/strict.lua",
                       'local m = require "shared"\nlocal label = "strict " .. m.v\n' + script("label"))
        self.until("strict", "strict ok2")
        self.until("one", "one ok2")
        # Loads on its own, but strict.lua's top level needs m.v to be a string.
        n = len(self.host.lines)
        self.dir.write("lib/shared.lua", "return { v = {} }\n")
        line = self.host.wait_for(r"lib/shared\.lua: change not taken; commands/strict\.lua does "
                                  r"not load with it: .*strict\.lua:2: attempt to concatenate",
                                  timeout=30, start=n)
        self.assertIsNotNone(line, self.host.log()[-2000:])
        self.assertEqual(self.text("strict"), "strict ok2")
        self.assertEqual(self.text("one"), "one ok2")
        self.assertEqual(self.text("two"), "two ok2")
        self.assertIn("change not taken", self.entry("lib/shared.lua")["error"])
        os.unlink(self.dir.path("commands/strict.lua"))
        self.dir.write("lib/shared.lua", 'return { v = "after" }\n')
        self.until("one", "one after")

    def test_deleted_module_still_required_keeps_serving(self):
        self.dir.write("lib/gone.lua", 'return { v = "here" }\n')
        self.dir.write("commands/usesgone.lua", 'local g = require "gone"\n' + script("g.v"))
        self.until("usesgone", "here")
        os.unlink(self.dir.path("lib/gone.lua"))
        self.assertIsNotNone(self.host.wait_for(r"lib/gone\.lua: deleted but still required",
                                                timeout=30), self.host.log()[-2000:])
        self.assertEqual(self.text("usesgone"), "here")
        os.unlink(self.dir.path("commands/usesgone.lua"))
        self.until("usesgone", 404)


class InFlight(Base):
    # The old version sleeps 4 s in the sync reply: the deadline is far after.
    flags = ("--deadline", "60000")

    def test_running_request_finishes_on_its_version(self):
        self.dir.write("commands/slow.lua",
                       script('(function() if req.params.arguments == "wait" then '
                              'log.info("old version running") sleep(4) end return "old" end)()'))
        self.until("slow", "old")
        result = {}

        def slow():
            r = self.host.post(body("command", "execution_handler", "slow",
                                    {"arguments": "wait"}), key=KEY)
            result["r"] = r

        n = len(self.host.lines)
        t = threading.Thread(target=slow)
        t.start()
        self.assertIsNotNone(self.host.wait_for(r"old version running", timeout=30, start=n),
                             self.host.log()[-2000:])
        self.dir.write("commands/slow.lua", script('"new"'))
        self.until("slow", "new")
        # The new version was served while the old request still ran.
        self.assertNotIn("r", result, "the old request ended before the new version was served")
        t.join(30)
        self.assertEqual(result["r"].json()["output"]["text"], "old")


class UnderLoad(Base):
    # The load re-sends one signed call (signing each would be the bottleneck),
    # so the host must not refuse repeats; timestamps are still checked.
    flags = ("--replay-memory", "0")

    def test_reloads_under_load_fail_no_request(self):
        raw = json.dumps(body("command", "execution_handler", "ver", {"arguments": ""})).encode()
        sig = KEY.sign(raw)
        stop = threading.Event()
        counts = {"ok": 0, "bad": [], "seen": set()}
        lock = threading.Lock()

        def load():
            conn = http.client.HTTPConnection("127.0.0.1", self.host.port, timeout=10)
            while not stop.is_set():
                try:
                    conn.request("POST", "/", raw, {"X-Cliq-Signature": sig,
                                                    "Content-Type": "application/json"})
                    r = conn.getresponse()
                    data = r.read()
                    with lock:
                        if r.status == 200:
                            counts["ok"] += 1
                            counts["seen"].add(json.loads(data)["output"]["text"])
                        else:
                            counts["bad"].append((r.status, data[:200]))
                except Exception as e:  # a dropped connection is a failure too
                    with lock:
                        counts["bad"].append(("exception", repr(e)))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.host.port, timeout=10)
            conn.close()

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        t0 = time.time()
        try:
            for i in range(20):
                self.dir.write("commands/ver.lua", script(f'"load {i}"'))
                self.dir.write("lib/shared.lua", f'return {{ v = "load {i}" }}\n')
                # Each version is served to the load, and more requests go
                # through it, before the next edit: every reload happens
                # under load however fast or slow the machine.
                waited = time.time()
                while time.time() - waited < 30:
                    with lock:
                        if f"load {i}" in counts["seen"]:
                            break
                    time.sleep(0.005)
                with lock:
                    target = counts["ok"] + 5
                while time.time() - waited < 60:
                    with lock:
                        if counts["ok"] >= target or counts["bad"]:
                            break
                    time.sleep(0.005)
        finally:
            stop.set()
            for t in threads:
                t.join(15)
        secs = time.time() - t0
        print(f"\n{counts['ok']} requests in {secs:.1f} s ({counts['ok'] / secs:.0f}/s) "
              f"across 20 reloads; {len(counts['seen'])} versions seen")
        self.assertEqual(counts["bad"], [])
        self.assertGreaterEqual(counts["ok"], 100)
        self.assertEqual({f"load {i}" for i in range(20)} - counts["seen"], set())
        self.assertEqual(self.text("ver"), "load 19")


class Status(Base):
    def test_status_says_what_is_served(self):
        s = self.status()
        self.assertRegex(s["version"], r"^\d+\.\d+\.\d+")
        self.assertGreaterEqual(s["uptime_s"], 0)
        self.assertEqual(s["workers"], 2)
        self.assertTrue(s["live_reload"])
        self.assertEqual(s["scripts_dir"], self.dir.root)
        files = {e["file"]: e for e in s["scripts"]}
        self.assertIn("commands/ver.lua", files)
        self.assertRegex(files["commands/ver.lua"]["loaded_at"], r"^\d{4}-\d\d-\d\dT")
        self.assertIsNone(files["commands/ver.lua"]["error"])
        self.assertEqual([m["file"] for m in s["modules"]], ["lib/shared.lua"])
        before = s["reloads"]
        # Saved by rename: a loaded machine cannot split it into an empty
        # file and its text (two reloads).
        tmp = self.dir.path("commands/.ver.lua.tmp")
        with open(tmp, "w") as f:
            f.write(script('"counted"'))
        os.replace(tmp, self.dir.path("commands/ver.lua"))
        self.until("ver", "counted")
        self.assertEqual(self.status()["reloads"], before + 1)

    def test_forwarded_requests_are_not_local(self):
        # A TLS proxy on this machine connects from loopback for everyone.
        for h in ({"X-Forwarded-For": "203.0.113.9"}, {"Forwarded": "for=203.0.113.9"},
                  {"X-Real-IP": "203.0.113.9"}):
            r = self.host.request("GET", "/status", headers=h)
            self.assertEqual(r.status, 403, h)
            self.assertIn("loopback clients only", r.json()["error"])

    def test_status_answers_get_only(self):
        r = self.host.request("POST", "/status")
        self.assertEqual(r.status, 405)
        self.assertIn("error", r.json())


class StatusOff(unittest.TestCase):
    def test_off_is_403(self):
        h = Host("--status-access", "off", keys=[KEY.spki])
        try:
            r = h.request("GET", "/status")
            self.assertEqual(r.status, 403)
            self.assertIn("turned off", r.json()["error"])
        finally:
            self.assertEqual(h.stop(), 0)


KEY2 = Key("reload-next")


class Sighup(unittest.TestCase):
    """SIGHUP reads the config again, all or nothing."""

    def setUp(self):
        self.dir = Folder()
        self.dir.write("commands/ver.lua", script('"v"'))
        self.dir.write("commands/boom.lua", script('error("boom")'))
        self.cfg = os.path.join(self.dir.root, "host.conf.lua")
        self.write_config(KEY.spki, "first ({id})")
        self.host = Host("--config", self.cfg, "--listen", "127.0.0.1:0", "--workers", "2",
                         listen=None, workers=None)

    def tearDown(self):
        rc = self.host.stop()
        self.dir.cleanup()
        self.assertEqual(rc, 0)
        self.assertFalse(self.host.sanitizer_reports(), self.host.log())

    def write_config(self, key, error_reply, extra=""):
        with open(self.cfg, "w") as f:
            f.write(f'scripts = "{self.dir.root}"\ndata_dir = "{self.dir.root}/data"\n'
                    f'keys = {{ "{key}" }}\nerror_reply = "{error_reply}"\n{extra}')

    def hup(self, expect):
        n = len(self.host.lines)
        self.host.proc.send_signal(signal.SIGHUP)
        line = self.host.wait_for(expect, timeout=30, start=n)
        self.assertIsNotNone(line, self.host.log()[-2000:])
        return line

    def post(self, name, key):
        return self.host.post(body("command", "execution_handler", name, {"arguments": ""}),
                              key=key)

    def test_broken_config_keeps_the_running_one(self):
        with open(self.cfg, "w") as f:
            f.write("keys = { \n")  # a syntax error
        self.hup(r"SIGHUP: config not reloaded; the running settings stay: .*host\.conf\.lua")
        self.assertEqual(self.post("ver", KEY).status, 200)
        self.assertEqual(self.post("ver", KEY2).status, 401)
        self.write_config("not a key at all", "x")
        self.hup(r"SIGHUP: config not reloaded")
        self.assertEqual(self.post("ver", KEY).status, 200)
        self.write_config(KEY.spki, "x", "deadline_ms = 5\n")  # out of range
        self.hup(r"SIGHUP: config not reloaded; .*deadline")
        r = self.post("boom", KEY)
        self.assertIn("first (", r.json()["output"]["text"])

    def test_new_keys_and_replies_apply(self):
        self.assertIn("first (", self.post("boom", KEY).json()["output"]["text"])
        self.write_config(KEY2.spki, "second ({id})")
        self.hup(r"SIGHUP: config reloaded \(1 key")
        # Both workers take it before their next request.
        for _ in range(6):
            self.assertEqual(self.post("ver", KEY).status, 401)
            self.assertEqual(self.post("ver", KEY2).status, 200)
        self.assertIn("second (", self.post("boom", KEY2).json()["output"]["text"])

    def test_settings_that_need_a_restart_are_named(self):
        self.write_config(KEY.spki, "third ({id})", f'data_dir = "{self.dir.root}/elsewhere"\n')
        self.hup(r"SIGHUP: data_dir cannot change while the host runs")
        self.assertIsNotNone(self.host.wait_for(r"SIGHUP: config reloaded"))
        self.assertIn("third (", self.post("boom", KEY).json()["output"]["text"])
        self.assertEqual(self.host.request("GET", "/status").json()["workers"], 2)


class NoWatch(unittest.TestCase):
    def test_reload_settle_zero_turns_watching_off(self):
        d = Folder()
        d.write("commands/ver.lua", script('"first"'))
        h = Host("--reload-settle", "0", scripts=d.root, keys=[KEY.spki])
        try:
            d.write("commands/ver.lua", script('"second"'))
            time.sleep(0.3)
            r = h.post(body("command", "execution_handler", "ver", {"arguments": ""}), key=KEY)
            self.assertEqual(r.json()["output"]["text"], "first")
            self.assertFalse(h.request("GET", "/status").json()["live_reload"])
        finally:
            self.assertEqual(h.stop(), 0)
            d.cleanup()


if __name__ == "__main__":
    unittest.main()
