"""The editors' definitions match the host (issue 13, "For script authors'
editors"): every global a script sees in the real host has a definition in
types/ (or is Lua's own, left to the language server's built-in library),
every global types/ defines is there, a library's fields are the host's,
the request object's fields are declared, and .luacheckrc and .luarc.json
say the same. So the definitions cannot drift from the sandbox silently.

Which globals a script sees is asked of the host itself: a script is handed
every name that could be one (Lua 5.4's globals, every name-like string
literal in the host's C sources, every name types/ and .luacheckrc use)
and answers which of them are there."""

import glob
import json
import os
import re
import shutil
import subprocess
import unittest

from cliq_bodies import body
from hostlib import REPO, Host, Key

KEY = Key("types")
SCRIPTS = os.path.join(REPO, "tests", "e2e", "types_scripts")
TYPES = os.path.join(REPO, "types")

# The globals of Lua 5.4's standard library (the manual, §6).
LUA54_BASIC = {
    "_G", "_VERSION", "assert", "collectgarbage", "dofile", "error", "getmetatable", "ipairs",
    "load", "loadfile", "next", "pairs", "pcall", "print", "rawequal", "rawget", "rawlen",
    "rawset", "require", "select", "setmetatable", "tonumber", "tostring", "type", "warn",
    "xpcall",
}
LUA54_LIBS = {"coroutine", "debug", "io", "math", "os", "package", "string", "table", "utf8"}

DEF_RX = re.compile(r"^(?:function\s+)?([A-Za-z_]\w*)(?:([.:])([A-Za-z_]\w*))?\s*(?:=|\()")


def parse_types():
    """What types/*.lua declare: {global: set of fields} and
    {class: set of fields and methods}."""
    globals_, classes = {}, {}
    for path in sorted(glob.glob(os.path.join(TYPES, "**", "*.lua"), recursive=True)):
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        if not lines or lines[0].strip() != "---@meta":
            raise AssertionError(f"{path}: does not start with ---@meta")
        cls = None
        local_class = {}
        for line in lines:
            m = re.match(r"---@class\s+([\w.]+)", line)
            if m:
                cls = m.group(1)
                classes.setdefault(cls, set())
                continue
            m = re.match(r"---@field\s+(\w+)", line)
            if m and cls:
                classes[cls].add(m.group(1))
                continue
            m = re.match(r"local\s+(\w+)\s*=", line)
            if m:
                if cls:
                    local_class[m.group(1)] = cls
                cls = None
                continue
            if line.startswith("---"):
                cls = None  # a class's fields end at the first other line
                continue
            m = DEF_RX.match(line)
            if m:
                name, sep, field = m.groups()
                if name in local_class:
                    classes[local_class[name]].add(field)
                elif sep == ":":
                    raise AssertionError(f"{path}: method on a global: {line}")
                else:
                    globals_.setdefault(name, set())
                    if field:
                        globals_[name].add(field)
                    elif cls:
                        # ---@class X then X = {}: a global table of that class.
                        globals_[name] |= classes[cls]
                cls = None
    return globals_, classes


def luarc():
    with open(os.path.join(REPO, ".luarc.json"), encoding="utf-8") as f:
        return json.load(f)


def candidate_names(type_globals):
    names = set(LUA54_BASIC) | LUA54_LIBS | set(type_globals)
    for path in glob.glob(os.path.join(REPO, "host", "**", "*.c"), recursive=True):
        with open(path, encoding="utf-8", errors="replace") as f:
            names |= set(re.findall(r'"([A-Za-z_]\w*)"', f.read()))
    with open(os.path.join(REPO, ".luacheckrc"), encoding="utf-8") as f:
        text = f.read()
    names |= set(re.findall(r'"([A-Za-z_]\w*)"', text))
    names |= set(re.findall(r"^\s*([A-Za-z_]\w*)\s*=\s*\{", text, re.M))
    return sorted(names)


class Types(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.type_globals, cls.classes = parse_types()
        cls.host = Host(scripts=SCRIPTS, keys=[KEY.spki])
        try:
            names = candidate_names(cls.type_globals)
            r = cls.host.post(body("command", "execution_handler", "globals",
                                   {"arguments": " ".join(names)}), key=KEY)
            assert r.status == 200, r
            seen = json.loads(r.json()["output"]["text"])
            cls.sandbox = seen["globals"]
            cls.req_fields = set(seen["req"])
            r = cls.host.post(body("bot", "action_handler", "Helper", unique_name="helper",
                                   handler_name="status"), key=KEY)
            assert r.status == 200, r
            cls.req_fields |= set(json.loads(r.json()["output"]["text"]))
        except BaseException:
            cls.host.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        assert cls.host.stop() == 0, cls.host.log()

    def builtin(self):
        """The globals the language server's own library gives: Lua's, less
        the libraries .luarc.json turns off (types/ defines those)."""
        off = {k for k, v in luarc().get("runtime.builtin", {}).items() if v == "disable"}
        return (LUA54_BASIC | LUA54_LIBS) - off

    def test_the_probe_sees_the_host_globals(self):
        # The probe itself works: names every script uses are found.
        for name in ("json", "log", "http", "cliq", "sleep", "string", "pairs"):
            self.assertIn(name, self.sandbox)
        self.assertNotIn("io", self.sandbox)

    def test_every_global_a_script_sees_has_a_definition(self):
        missing = sorted(set(self.sandbox) - set(self.type_globals) - self.builtin())
        self.assertEqual(missing, [], "globals of the sandbox with no definition in types/")

    def test_every_defined_global_exists(self):
        extra = sorted(set(self.type_globals) - set(self.sandbox))
        self.assertEqual(extra, [], "types/ defines globals the sandbox does not have")

    def test_library_fields_are_the_hosts(self):
        for name, declared in sorted(self.type_globals.items()):
            real = self.sandbox.get(name)
            if not real or real["type"] != "table":
                continue
            with self.subTest(name):
                self.assertEqual(sorted(declared), real["fields"],
                                 f"types/ fields of {name} differ from the host's")

    def test_the_request_object_is_declared(self):
        declared = self.classes.get("cliq.Request")
        self.assertIsNotNone(declared, "types/ has no ---@class cliq.Request")
        self.assertIn("action", self.req_fields)  # the bot action call was seen
        self.assertEqual(sorted(self.req_fields - declared), [],
                         "request fields the host sets that cliq.Request does not declare")
        self.assertIn("respond", declared)
        self.assertIn("download", self.classes.get("cliq.Attachment", set()))

    def test_luarc_points_at_types_and_lualib(self):
        rc = luarc()
        self.assertEqual(rc.get("runtime.version"), "Lua 5.4")
        self.assertIn("types", rc.get("workspace.library", []))
        self.assertIn("lualib", rc.get("workspace.library", []))
        for lib, v in rc.get("runtime.builtin", {}).items():
            if v == "disable" and lib in self.sandbox:
                self.assertIn(lib, self.type_globals, f"{lib} is turned off but not defined")

    def test_luacheckrc_globals_are_the_hosts(self):
        lua = shutil.which("lua5.4")
        if not lua:
            self.fail("lua5.4 was not found: install lua5.4 (./dev.sh test does)")
        # .luacheckrc is a Lua chunk that sets globals: run it and list its
        # read_globals as JSON-ish lines "name" or "name field ...".
        prog = r"""
local env = { stds = {}, files = {} }
assert(loadfile(arg[1], "t", env))()
local rg = env.stds.cliqhost.read_globals
for k, v in pairs(rg) do
  if type(k) == "number" then print(v)
  else table.sort(v.fields); print(k .. " " .. table.concat(v.fields, " ")) end
end
"""
        out = subprocess.run([lua, "-", os.path.join(REPO, ".luacheckrc")], input=prog,
                             capture_output=True, text=True, check=True).stdout
        listed = {}
        for line in out.splitlines():
            name, *fields = line.split()
            listed[name] = fields
        self.assertEqual(sorted(listed), sorted(self.sandbox),
                         ".luacheckrc's globals differ from the sandbox's")
        for name, fields in listed.items():
            if fields:
                with self.subTest(name):
                    self.assertEqual(sorted(fields), self.sandbox[name]["fields"])


# The shipped modules a script requires: each public function carries
# lua-language-server annotations whose ---@param names are its parameters.
ANNOTATED = {
    "lualib/cliq/args.lua": "M",
    "lualib/cliq/message.lua": "M",
    "lualib/cliq/test.lua": "kit",
    "lualib/cliq/test/assert.lua": "M",
}


class LualibAnnotations(unittest.TestCase):
    def test_public_functions_are_annotated(self):
        bad, seen = [], 0
        for rel, table in ANNOTATED.items():
            with open(os.path.join(REPO, rel), encoding="utf-8") as f:
                lines = f.read().splitlines()
            rx = re.compile(r"^function " + table + r"\.(\w+)\((.*?)\)")
            for i, line in enumerate(lines):
                m = rx.match(line)
                if not m:
                    continue
                seen += 1
                params = [p.strip() for p in m.group(2).split(",") if p.strip()]
                block = []
                j = i - 1
                while j >= 0 and lines[j].startswith("--"):
                    block.append(lines[j])
                    j -= 1
                annotated = [re.match(r"---@param\s+(\S+?)\??\s", l + " ").group(1)
                             for l in block if l.startswith("---@param")]
                where = f"{rel}:{i + 1}: {table}.{m.group(1)}"
                if not any(l.startswith("---") for l in block):
                    bad.append(f"{where}: no --- annotation above it")
                elif sorted(annotated) != sorted(params):
                    bad.append(f"{where}: ---@param {annotated} but parameters {params}")
        self.assertGreater(seen, 60)
        self.assertEqual(bad, [], "\n".join(bad))


if __name__ == "__main__":
    unittest.main()
