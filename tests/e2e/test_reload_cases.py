"""Live reload's harder cases, each first written as a failing reproduction
in a review: files retried when what broke them changes, a module and its
caller changed in one burst, dependencies through other modules, the scripts
folder replaced or swapped through symlinks, a worker retrying a version a
limit stopped."""
import os, shutil, signal, subprocess, tempfile, time, threading, unittest, sys
from cliq_bodies import body
from hostlib import Host, Key
from test_reload import Folder, script, KEY

def atomic_write(folder, rel, text):
    p = folder.path(rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    tmp = os.path.join(os.path.dirname(p), "." + os.path.basename(p) + ".tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, p)

class B(unittest.TestCase):
    flags = ()
    def start(self, **kw):
        self.host = Host(scripts=self.dir.root, keys=[KEY.spki], *self.flags, **kw)
    def tearDown(self):
        rc = self.host.stop()
        print("\n--- log ---\n" + "\n".join(l for l in self.host.log().splitlines() if "status=200" not in l)) if os.environ.get("SHOWLOG") else None
        self.dir.cleanup()
        self.assertFalse(self.host.sanitizer_reports(), self.host.log())
    def call(self, name):
        return self.host.post(body("command", "execution_handler", name, {"arguments": ""}), key=KEY)
    def out(self, name):
        r = self.call(name)
        if r.status != 200:
            return r.status
        return r.json()["output"].get("text")
    def until(self, name, want, timeout=30):
        t0 = time.time(); last = None
        while time.time() - t0 < timeout:
            last = self.out(name)
            if last == want:
                return True
            time.sleep(0.02)
        return last
    def entry(self, rel):
        s = self.host.request("GET", "/status").json()
        for e in s["scripts"] + s["modules"]:
            if e["file"] == rel:
                return e

class CoordinatedChange(B):
    """git pull changes a module's API and its only caller together."""
    def test_module_and_caller_changed_in_one_burst(self):
        self.dir = Folder()
        self.dir.write("lib/api.lua", 'return { greet = function() return "old" end }\n')
        self.dir.write("commands/caller.lua",
                       'local api = require "api"\nlocal f = assert(api.greet, "no greet")\n' + script("f()"))
        self.start()
        self.assertEqual(self.out("caller"), "old")
        # One burst, as git writes it: new module API + caller using it.
        atomic_write(self.dir, "lib/api.lua", 'return { hello = function() return "new" end }\n')
        atomic_write(self.dir, "commands/caller.lua",
                     'local api = require "api"\nlocal f = assert(api.hello, "no hello")\n' + script("f()"))
        got = self.until("caller", "new")
        print("\ncaller after coordinated change:", got, "| api:", self.entry("lib/api.lua")["error"],
              "| caller:", self.entry("commands/caller.lua")["error"])
        # Touch the caller again (the usual "save again"): still never served.
        time.sleep(0.2)
        atomic_write(self.dir, "commands/caller.lua",
                     'local api = require "api"\nlocal f = assert(api.hello, "no hello")\n' + script("f()") + "\n")
        got2 = self.until("caller", "new")
        print("after re-saving caller:", got2)
        self.assertTrue(got is True, got)

class ScriptBeforeModule(B):
    """Save the script first, then the new module it requires."""
    def test_script_retried_when_its_module_appears(self):
        self.dir = Folder()
        self.dir.write("commands/ver.lua", script('"v"'))
        self.start()
        self.dir.write("commands/uses.lua", 'local h = require "helpers"\n' + script("h.v"))
        t0 = time.time()
        while not (self.entry("commands/uses.lua") or {}).get("error") and time.time() - t0 < 30:
            time.sleep(0.02)
        print("\nbefore module:", self.entry("commands/uses.lua"))
        self.dir.write("lib/helpers.lua", 'return { v = "helped" }\n')
        got = self.until("uses", "helped")
        print("after module:", got, self.entry("commands/uses.lua")["error"])
        self.assertTrue(got is True, got)

class GoodModuleHeldBack(B):
    """A burst changes two modules; one is broken. After fixing it, the good one is never taken."""
    def test_good_module_taken_after_bad_one_fixed(self):
        self.dir = Folder()
        self.dir.write("lib/good.lua", 'return { v = "g1" }\n')
        self.dir.write("lib/bad.lua", 'return { n = 1 }\n')
        self.dir.write("commands/both.lua",
                       'local g = require "good"\nlocal b = require "bad"\nassert(b.n == 1)\n' + script("g.v"))
        self.start()
        self.assertEqual(self.out("both"), "g1")
        atomic_write(self.dir, "lib/good.lua", 'return { v = "g2" }\n')
        atomic_write(self.dir, "lib/bad.lua", 'return { n = 2 }\n')   # breaks both.lua's assert
        t0 = time.time()
        while not (self.entry("lib/bad.lua") or {}).get("error") and time.time() - t0 < 30:
            time.sleep(0.02)
        print("\nafter burst:", self.out("both"), self.entry("lib/good.lua")["error"])
        atomic_write(self.dir, "lib/bad.lua", 'return { n = 1 }\n')   # fixed
        got = self.until("both", "g2")
        print("after fixing bad.lua:", got, "| good.lua error:", self.entry("lib/good.lua")["error"])
        self.assertTrue(got is True, got)

class LateDependency(B):
    """A module chain first required by a script added later: inner edits never reach it."""
    def test_inner_module_change_reaches_late_script(self):
        self.dir = Folder()
        self.dir.write("commands/ver.lua", script('"v"'))
        self.dir.write("lib/inner2.lua", 'return { v = "i1" }\n')
        self.dir.write("lib/outer2.lua", 'local i = require "inner2"\nreturn { v = "o+" .. i.v }\n')
        self.start()
        self.dir.write("commands/late.lua", 'local o = require "outer2"\n' + script("o.v"))
        self.assertTrue(self.until("late", "o+i1") is True)
        self.dir.write("lib/inner2.lua", 'return { v = "i2" }\n')
        got = self.until("late", "o+i2")
        print("\nlate after inner2 change:", got, "| outer2 deps in /status n/a; late version",
              self.entry("commands/late.lua")["version"])
        self.assertTrue(got is True, got)

class FolderReplaced(B):
    """rm -rf scripts && cp -r new scripts (a deploy): every script 404s forever."""
    def test_scripts_folder_recreated(self):
        self.dir = Folder()
        self.dir.write("commands/ver.lua", script('"v1"'))
        self.start()
        self.assertEqual(self.out("ver"), "v1")
        staging = tempfile.mkdtemp(prefix="cliqhost-staging-")
        shutil.copytree(self.dir.root, staging + "/s")
        with open(staging + "/s/commands/ver.lua", "w") as f:
            f.write(script('"v2"'))
        shutil.rmtree(self.dir.root)
        time.sleep(0.2)
        print("\nafter rm -rf:", self.out("ver"))
        shutil.copytree(staging + "/s", self.dir.root)
        got = self.until("ver", "v2")
        print("after the new folder is in place:", got)
        self.host.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        print("after SIGHUP:", self.out("ver"))
        shutil.rmtree(staging)
        self.assertTrue(got is True, got)

class Symlinked(B):
    def test_symlinked_new_script(self):
        self.dir = Folder()
        self.dir.write("commands/ver.lua", script('"v"'))
        self.start()
        target = tempfile.mkdtemp(prefix="cliqhost-target-")
        with open(target + "/linked.lua", "w") as f:
            f.write(script('"linked"'))
        os.symlink(target + "/linked.lua", self.dir.path("commands/linked.lua"))
        os.link(self.dir.path("commands/ver.lua"), self.dir.path("commands/hard.lua"))
        got = self.until("linked", "linked")
        got2 = self.until("hard", "v")
        print("\nsymlink:", got, " hard link:", got2)
        shutil.rmtree(target)
        self.assertTrue(got is True and got2 is True, (got, got2))

class PinnedByLimit(B):
    """A worker whose memory is busy fails to load a new version once and then never retries."""
    flags = ("--max-memory-bytes", str(4 * 1024 * 1024), "--workers", "1")
    def test_worker_retries_after_transient_limit(self):
        self.dir = Folder()
        hold = ('return { execution = function(req)\n'
                '  if req.params.arguments == "hold" then local t = string.rep("x", 1200*1024) log.info("holding") sleep(3) return {text=tostring(#t)} end\n'
                '  return "%s"\nend }\n')
        self.dir.write("commands/mem.lua", hold % "v1")
        self.start(workers=None)
        self.assertEqual(self.out("mem"), "v1")
        t = threading.Thread(target=lambda: self.host.post(
            body("command", "execution_handler", "mem", {"arguments": "hold"}), key=KEY))
        n = len(self.host.lines)
        t.start()
        self.assertIsNotNone(self.host.wait_for(r"holding", timeout=30, start=n), self.host.log()[-3000:])
        self.dir.write("commands/mem.lua", 'local pad = string.rep("y", 1600*1024)\n' + hold % "v2")
        print("\nwhile the big handler runs:", self.out("mem"))
        t.join(30)
        got = self.until("mem", "v2")
        print("after it finished:", got, "| /status says version", self.entry("commands/mem.lua")["version"],
              "error", self.entry("commands/mem.lua")["error"])
        self.assertTrue(got is True, got)

if __name__ == "__main__":
    unittest.main()

class TouchErasesDeps(B):
    """A save with no change wipes a script's module deps; later module edits never reach it
    and a breaking module edit is taken without checking it."""
    flags = ("--workers", "1")
    def test_touch_then_module_change(self):
        self.dir = Folder()
        self.dir.write("lib/shared.lua", 'return { v = "m0" }\n')
        one = 'local m = require "shared"\nlocal label = "one " .. m.v\n' + script("label")
        self.dir.write("commands/one.lua", one)
        self.start(workers=None)
        self.assertEqual(self.out("one"), "one m0")
        self.dir.write("commands/one.lua", one)          # save again, no change
        time.sleep(0.2)
        self.dir.write("lib/shared.lua", 'return { v = "m1" }\n')
        got = self.until("one", "one m1")
        print("\nafter no-change save + module change:", got)
        self.dir.write("lib/shared.lua", 'return { v = {} }\n')   # breaks one.lua's top level
        time.sleep(0.3)
        print("breaking change to shared.lua; its /status error:", self.entry("lib/shared.lua")["error"])
        self.assertTrue(got is True, got)

class SymlinkSwap(B):
    """scripts -> releases/N, swapped with ln -sfn (capistrano-style deploy)."""
    def test_symlink_swap(self):
        self.dir = Folder()
        base = tempfile.mkdtemp(prefix="cliqhost-rel-")
        os.makedirs(base + "/r1/commands"); os.makedirs(base + "/r2/commands")
        open(base + "/r1/commands/ver.lua", "w").write(script('"r1"'))
        open(base + "/r2/commands/ver.lua", "w").write(script('"r2"'))
        os.symlink(base + "/r1", base + "/current")
        shutil.rmtree(self.dir.root); os.symlink(base + "/current", self.dir.root)
        self.start()
        self.assertEqual(self.out("ver"), "r1")
        os.symlink(base + "/r2", base + "/next"); os.replace(base + "/next", base + "/current")
        got = self.until("ver", "r2")
        print("\nafter ln -sfn swap:", got)
        os.unlink(self.dir.root); shutil.rmtree(base); os.makedirs(self.dir.root)
        self.assertTrue(got is True, got)

class CopyOverAll(B):
    """cp -r new/* scripts/: every file rewritten, only lib/shared.lua differs."""
    flags = ("--workers", "1")
    def test_same_burst_rewrite(self):
        self.dir = Folder()
        self.dir.write("lib/shared.lua", 'return { v = "m0" }\n')
        one = 'local m = require "shared"\n' + script('"one " .. m.v')
        self.dir.write("commands/one.lua", one)
        self.start(workers=None)
        self.assertEqual(self.out("one"), "one m0")
        v0 = self.entry("commands/one.lua")["version"]
        self.dir.write("commands/one.lua", one)                   # same text, rewritten
        self.dir.write("lib/shared.lua", 'return { v = "m1" }\n')
        got = self.until("one", "one m1")
        print("\nafter cp-style burst:", got, "one.lua version", v0, "->", self.entry("commands/one.lua")["version"])
        self.assertTrue(got is True, got)
