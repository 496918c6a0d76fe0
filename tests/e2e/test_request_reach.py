"""Every way a script reaches into a part of req it has not touched before.

test_request_shape.py checks the values and their Lua types by walking the
whole request. This test guards the other side: each probe reaches, by one
way only, into a nested table of req.params (or req.body) that nothing has
looked into yet -- next, rawget, rawset, rawlen, rawequal, #, ipairs,
pairs, the table library, string.gsub, load's environment, tostring,
getmetatable, setmetatable, json.encode, json.array/object, os.time, the
host's bindings that read tables in C (http.request, cliq.post_*,
req:respond, store.*, log), the handler's reply, coroutines, sleep, a table
kept for a later call, attachments, a deep body and a large array -- and
the test compares what it saw with the JSON it sent, computed here from the
body text. Each probe works on its own copy of the test's object
(params[<probe name>]), so no probe fills a table another one reaches into
first. A table that a reader found empty, or that lost a write or a
metatable, shows as a difference. Run it under the ASan build too: a table
kept past its call would read freed memory."""

import json
import math
import os
import re
import shutil
import tempfile
import time
import unittest

from cliq_bodies import now_ms
from fake_cliq import FakeCliq, bot_incoming_path, bot_message_path, channel_path
from fakes import SlowUpstream, Sink
from hostlib import HERE, Host, Key

KEY = Key("main")
SCRIPTS = os.path.join(HERE, "request_reach_scripts")
TOKEN = "1001.e2eReachDefault.71c3a9e5"
ALERTS = "1001.e2eReachAlerts.4b8d2f60"
FILE = "".join("line %d of the attachment\n" % i for i in range(40)).encode()
INT64 = 2 ** 63


def lua_view(v):
    """The decoded JSON as Lua holds it (and encodes it back): integers
    past 64 bits are floats."""
    if isinstance(v, dict):
        return {k: lua_view(x) for k, x in v.items()}
    if isinstance(v, list):
        return [lua_view(x) for x in v]
    if isinstance(v, int) and not isinstance(v, bool) and not -INT64 <= v < INT64:
        return float(v)
    return v


def differs(a, b, path="$"):
    """Where a and b differ, strictly (1 is not 1.0, -0.0 is not 0.0, {}
    is not []), or None."""
    if type(a) is not type(b):
        return f"{path}: {a!r} ({type(a).__name__}) vs {b!r} ({type(b).__name__})"
    if isinstance(a, dict):
        if set(a) != set(b):
            return f"{path}: keys {sorted(set(a) ^ set(b))} differ"
        for k in a:
            d = differs(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: length {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = differs(x, y, f"{path}[{i + 1}]")
            if d:
                return d
        return None
    if isinstance(a, float):
        same = (a == b and math.copysign(1, a) == math.copysign(1, b)) or (a != a and b != b)
        return None if same else f"{path}: {a!r} vs {b!r}"
    return None if a == b else f"{path}: {a!r} vs {b!r}"


def rich(i, upstream):
    """The object each probe gets its own copy of: every JSON type, nested,
    empty {} and [], and the tables the bindings read."""
    return {
        "s": f"copy {i} caf\u00e9 \U0001F600", "i": 40 + i, "neg": -7,
        "big": 9007199254740993, "max": INT64 - 1, "huge": 123456789012345678901234567890,
        "f": 1.5, "whole_float": 2.0, "negz": -0.0, "t": True, "fa": False, "n": None,
        "arr": [1, "two", 3.0, None, True, {"k": "v"}, [], {}],
        "strs": ["delta", "alpha", "charlie", "bravo"],
        "nums": [5, 3, 9, 1, 7 + i],
        "more": ["m1"],
        "empty_o": {}, "empty_a": [],
        "obj": {"a": 1, "b": {"c": [1, 2.5, {"d": "deep"}], "e": None}, "z": [i]},
        "1": "a key that looks like a number",
        "headers": {"X-Reach-One": "alpha", "X-Reach-Two": "beta gamma", "X-Reach-Num": 42},
        "http": {"url": upstream + "/echo/options", "method": "POST", "body": "payload %d" % i,
                 "headers": {"X-Reach-Opt": "yes"}, "timeout": 5},
        "redirect": {"url": upstream + "/redirect?to=/echo/after", "redirects": 1},
        "date": {"year": 2024, "month": 2, "day": 29, "hour": 12, "min": 30, "sec": 15 + i % 40},
        "msg": {"text": "reach %d" % i, "card": {"title": "Reach", "theme": "modern-inline"}},
        "cliq_opts": {"token": "alerts"},
        "bot_opts": {"userids": ["111", str(200 + i)]},
        "store_opts": {"only_if_absent": True},
        "list_opts": {"limit": 1},
    }


def deep(levels, leaf, array):
    v = leaf
    for _ in range(levels):
        v = [v] if array else {"d": v}
    return v


def removed(d, k):
    d = dict(d)
    del d[k]
    return d


def plus(d, **kv):
    d = dict(d)
    d.update(kv)
    return d


class RequestReach(unittest.TestCase):
    """One host (one worker, so a later call finds what an earlier one
    kept), a fake upstream, a fake Cliq and a response_url sink."""

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-reach-")
        cls.upstream = SlowUpstream(delay=0, files={"reach.bin": FILE}).start()
        cls.sink = Sink().start()
        cls.fake = FakeCliq(tokens=[TOKEN, ALERTS]).start()
        cls.config = os.path.join(cls.dir, "cliqhost.lua")
        with open(cls.config, "w") as f:
            f.write(f'''-- written by test_request_reach.py
cliq_api = "{cls.fake.url}"
data_dir = "{os.path.join(cls.dir, "data")}"
tokens = {{ default = "{TOKEN}", alerts = "{ALERTS}" }}
http_allow = {{ "127.0.0.1" }}
''')
        cls.host = Host("--config", cls.config, scripts=SCRIPTS, keys=[KEY.spki], workers=1)
        cls.n = 0

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        reports = cls.host.sanitizer_reports()
        for fake in (cls.upstream, cls.sink, cls.fake):
            fake.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)
        assert rc == 0 and not reports, f"exit {rc}; sanitizer: {reports}\n{cls.host.log()}"

    # ---- calling --------------------------------------------------------

    def tag(self):
        type(self).n += 1
        return "reach-p%dn%d" % (os.getpid(), self.n)

    def call(self, name, params, response_url=None):
        """Posts a command call; returns (params as Lua holds them, decoded
        from the body text sent, and the reply's output)."""
        text = json.dumps({
            "name": name, "handler": {"type": "execution_handler"},
            "response_url": response_url or self.sink.url_for(self.tag()),
            "type": "command", "timestamp": now_ms(), "params": params,
        })
        r = self.host.post(text.encode(), key=KEY)
        self.assertEqual(r.status, 200, f"{r}\n{self.host.log()[-3000:]}")
        return lua_view(json.loads(text)), r.json()["output"]

    def probe(self, names, extra=None, response_url=None):
        """Runs the probes (each on its own copy of rich()) in one call of
        reach.lua; returns (the body as Lua holds it, {probe: value})."""
        params = {"probes": list(names)}
        for i, name in enumerate(names):
            params[name] = rich(i, self.upstream.url)
        params.update(extra or {})
        body, out = self.call("reach", params, response_url)
        seen = {}
        for name in names:
            r = out["results"][name]
            self.assertTrue(r["ok"], f"probe {name} raised: {r.get('err')}")
            seen[name] = r.get("v")
        return body, seen

    def assertSame(self, got, want, what=""):
        d = differs(got, want)
        self.assertIsNone(d, f"{what}: {d}\n got  {got!r}\n want {want!r}")

    def check(self, body, seen, expect):
        """expect: {probe: function(copy it got) -> the value it must see}."""
        params = body["params"]
        for name, fn in expect.items():
            with self.subTest(name):
                self.assertSame(seen[name], fn(params[name]), name)

    # ---- the base library ---------------------------------------------------

    def test_base_library(self):
        def next_from_key(c):
            order = seen["next_from_key"]["order"]
            self.assertEqual(sorted(order), sorted(c["obj"]))  # a walk, whatever its order
            at = order.index("a")
            return {"after_a": order[at + 1] if at + 1 < len(order) else None, "order": order}

        def next_first(c):
            key = seen["next_first"]["key"]
            self.assertIn(key, c)
            return {"key": key, "value": c[key]}

        def move(c):
            n = c["nums"]
            return {"nums": n[:2] + n[:5], "copy": c["strs"][:4],
                    "more": c["more"][:1] + ["x", "y"]}

        expect = {
            "next_walk": lambda c: {"n": len(c), "all": c},
            "next_first": next_first,
            "next_for": lambda c: c,
            "next_from_key": next_from_key,
            "next_bad_key": lambda c: {"ok": False, "err": "invalid key to 'next'"},
            "next_empty": lambda c: {"o": not c["empty_o"], "a": not c["empty_a"],
                                     "nums": bool(c["nums"])},
            "rawget_object": lambda c: {
                "s": c["s"], "i": c["i"], "f": c["f"], "whole_float": c["whole_float"],
                "n": c["n"], "t": c["t"], "fa": c["fa"], "obj": c["obj"], "arr": c["arr"],
                "one": c["1"], "missing": "missing" not in c, "int_one": True},
            "rawget_array": lambda c: {"first": c["nums"][0], "third": c["nums"][2],
                                       "past": len(c["nums"]) < 6, "name": True},
            "rawlen": lambda c: {"nums": len(c["nums"]), "empty_a": len(c["empty_a"]), "obj": 0,
                                 "arr": len(c["arr"]), "s": len(c["s"].encode())},
            "rawequal": lambda c: {"self": True, "other_path": True, "empties": False,
                                   "copies": False},
            "rawset_new": lambda c: {"other": c["s"], "all": plus(c, added=5)},
            "rawset_existing": lambda c: {"got": "replaced", "raw": "replaced",
                                          "all": plus(c, s="replaced")},
            "rawset_nil": lambda c: {"all": removed(c, "s"), "n": c["i"]},
            "rawset_array": lambda c: {"nums": c["nums"] + [11], "strs": ["first"] + c["strs"][1:],
                                       "len": len(c["nums"]) + 1},
            "assign_new": lambda c: plus(c, x=1),
            "assign_existing": lambda c: plus(c, i="changed"),
            "assign_nil": lambda c: {"all": removed(c, "t"), "gone": True},
            "assign_array": lambda c: {"nums": [100] + c["nums"][1:], "strs": c["strs"] + ["echo"]},
            "length": lambda c: {"nums": len(c["nums"]), "arr": len(c["arr"]), "empty_a": 0,
                                 "empty_o": 0, "obj": 0},
            "ipairs": lambda c: {"arr": c["arr"], "obj": []},
            "pairs": lambda c: {"all": c},
            "pairs_write": lambda c: {k: "seen" for k in c},
            "as_metamethods": lambda c: {"a": c["obj"]["a"], "b": c["obj"]["b"], "z": c["obj"]["z"],
                                         "headers": plus(c["headers"], added="through a proxy"),
                                         "raw": True},
            "pairs_array": lambda c: {"keys": list(range(1, len(c["arr"]) + 1)), "vals": c["arr"]},
            "unpack": lambda c: {"n": len(c["arr"]), "nums": c["nums"], "part": c["strs"][1:3]},
            "concat": lambda c: {"all": ",".join(c["strs"]),
                                 "nums": "+".join(str(x) for x in c["nums"][1:4])},
            "insert_end": lambda c: c["strs"] + ["echo"],
            "insert_front": lambda c: [0] + c["nums"],
            "remove_end": lambda c: {"r": c["strs"][-1], "rest": c["strs"][:-1]},
            "remove_front": lambda c: {"r": c["nums"][0], "rest": c["nums"][1:]},
            "sort": lambda c: {"nums": sorted(c["nums"]), "strs": sorted(c["strs"], reverse=True)},
            "move": move,
            "gsub": lambda c: {"s": "%s|%d|%r|$missing|%d" % (c["s"], c["i"], c["f"], c["neg"]),
                               "n": 5},
            "load_env": lambda c: {"s": c["s"], "i": c["i"], "a": c["obj"]["a"], "missing": True,
                                   "made": c["s"] + "!", "all": plus(c, made=c["s"] + "!")},
            "tostring": lambda c: {k: "json.object" if isinstance(c[k] if k != "c" else c, dict)
                                   else "json.array"
                                   for k in ("c", "arr", "empty_o", "empty_a", "obj")},
            "getmetatable": lambda c: {"c": False, "arr": False, "empty_o": False,
                                       "empty_a": False},
            "type": lambda c: {"c": "table", "arr": "table", "n": "userdata", "empty_a": "table",
                               "s": "string", "i": "integer", "f": "float"},
        }
        body, seen = self.probe(list(expect), {"rawequal_other": rich(99, "other")})
        self.check(body, seen, expect)

    def test_setmetatable(self):
        # README: a table of json's may be given a metatable of the
        # script's own; what it held stays, and its own __index answers
        # only for keys it does not hold.
        body, seen = self.probe(["setmetatable"])
        c = body["params"]["setmetatable"]
        v = seen["setmetatable"]
        obj = json.loads(v.pop("obj"))
        self.assertSame(v, {"ok": True, "same": True, "mine": True, "s": c["s"],
                            "missing": "default:missing", "raw_i": c["i"], "all": c,
                            "ok_nil": True})
        self.assertSame(obj, c["obj"], "json.encode after setmetatable(t, nil)")

    # ---- json -------------------------------------------------------------------

    def test_json(self):
        expect = {
            "encode_object": lambda c: c,
            "encode_array": lambda c: c["arr"],
            "encode_nested": lambda c: c["obj"],
        }
        body, seen = self.probe(list(expect) + ["encode_empties", "json_marks", "decode_round"])
        self.check(body, {k: json.loads(seen[k]) for k in expect}, expect)
        p = body["params"]
        kind = {dict: "{}", list: "[]"}
        c = p["encode_empties"]
        self.assertEqual(seen["encode_empties"],
                         {"o": kind[type(c["empty_o"])], "a": kind[type(c["empty_a"])]})
        c, m = p["json_marks"], seen["json_marks"]
        self.assertSame(json.loads(m["array"]), c["nums"], "json.array(t)")
        self.assertSame(json.loads(m["object"]), c["obj"], "json.object(t)")
        self.assertSame(json.loads(m["strs_as_object"]),
                        {str(i + 1): s for i, s in enumerate(c["strs"])}, "json.object(array)")
        self.assertEqual((m["empty_o_as_array"], m["empty_a_as_object"]), ("[]", "{}"))
        self.assertEqual((m["same_array"], m["same_object"]), (True, True))
        self.assertSame(seen["decode_round"], p["decode_round"], "json.decode(json.encode(t))")

    # ---- readers in C: bindings, os.time, the reply ---------------------------------

    def test_http_request(self):
        body, seen = self.probe(["http_headers", "http_options", "http_redirect"],
                                {"upstream": self.upstream.url})
        p = body["params"]
        got = seen["http_headers"]["headers"]
        want = {k.lower(): str(v) for k, v in p["http_headers"]["headers"].items()}
        self.assertEqual({k: got.get(k) for k in want}, want, seen["http_headers"])
        o, c = seen["http_options"], p["http_options"]["http"]
        self.assertEqual((o.get("method"), o.get("path"), o.get("body"),
                          o["headers"].get("x-reach-opt")),
                         (c["method"], "/echo/options", c["body"], c["headers"]["X-Reach-Opt"]), o)
        r = seen["http_redirect"]
        self.assertEqual((r.get("status"), r.get("echo", {}).get("path")), (200, "/echo/after"), r)

    def test_cliq_bindings(self):
        names = {"channel": self.tag(), "channel2": self.tag(), "bot": self.tag()}
        body, seen = self.probe(["cliq_channel", "cliq_channel_opts", "cliq_bot", "cliq_incoming"],
                                names)
        p = body["params"]
        for name in seen:
            self.assertEqual(seen[name], {"ok": True}, name)

        def posted(path, token=TOKEN):
            reqs = self.fake.requests(path)
            self.assertEqual([r.token for r in reqs], [token], reqs)
            return json.loads(reqs[0].body)

        self.assertSame(posted(channel_path(names["channel"])), p["cliq_channel"]["msg"])
        self.assertSame(posted(channel_path(names["channel2"]), ALERTS),
                        p["cliq_channel_opts"]["msg"])
        c = p["cliq_bot"]
        self.assertSame(posted(bot_message_path(names["bot"])),
                        plus(c["msg"], userids=",".join(c["bot_opts"]["userids"])))
        self.assertSame(posted(bot_incoming_path(names["bot"])), p["cliq_incoming"]["obj"])

    def test_respond(self):
        tag = self.tag()
        body, seen = self.probe(["respond"], response_url=self.sink.url_for(tag))
        self.assertEqual(seen["respond"], {"ok": True})
        posts = self.sink.wait_posts(1, tag)
        self.assertEqual(len(posts), 1, posts)
        self.assertSame(json.loads(posts[0].body), {"output": body["params"]["respond"]["msg"]})

    def test_store(self):
        prefix = self.tag() + ":"
        body, seen = self.probe(["store_set", "store_options"], {"store_prefix": prefix})
        self.assertEqual(seen["store_set"], {"obj": True, "arr": True, "empty_o": True,
                                             "empty_a": True})
        c = body["params"]["store_options"]
        self.assertSame(seen["store_options"], {
            "again": False, "kept": "first", "items": c["list_opts"]["limit"], "more": True,
            "updated": c["obj"], "stored": c["obj"]})
        # Read back in a later call.
        _, later = self.probe(["store_get"], {"store_prefix": prefix})
        c = body["params"]["store_set"]
        self.assertSame(later["store_get"], {"obj": c, "arr": c["arr"], "empty_o": "{}",
                                             "empty_a": "[]"})

    def test_log(self):
        body, seen = self.probe(["log"])
        c = body["params"]["log"]
        rid = seen["log"]
        for marker, want in (("reach-log-object", [c["obj"]]), ("reach-print-array", [c["arr"]]),
                             ("reach-log-empties", [c["empty_o"], c["empty_a"]])):
            with self.subTest(marker):
                line = self.host.wait_for(re.escape(rid) + ".*" + marker, timeout=5)
                self.assertIsNotNone(line, self.host.log()[-3000:])
                text = self.log_message(line)
                self.assertTrue(text.startswith(marker + " "), text)
                self.assertSame(self.json_values(text[len(marker) + 1:]), want, marker)

    @staticmethod
    def json_values(text):
        """The JSON values in text, one space apart."""
        values, at, dec = [], 0, json.JSONDecoder()
        while at < len(text):
            v, at = dec.raw_decode(text, at)
            values.append(v)
            at += text[at:at + 1] == " "
        return lua_view(values)

    @staticmethod
    def log_message(line):
        """The msg= field of a log line, unescaped."""
        m = re.search(r'\bmsg=("(?:[^"\\]|\\.)*"|\S+)', line)
        v = m.group(1)
        return json.loads(v) if v.startswith('"') else v

    def test_os_time_and_message_check(self):
        body, seen = self.probe(["os_time", "message_check"])
        d = body["params"]["os_time"]["date"]
        want = int(time.mktime((d["year"], d["month"], d["day"], d["hour"], d["min"], d["sec"],
                                0, 0, -1)))
        self.assertEqual(seen["os_time"], {"t": want})
        self.assertEqual(seen["message_check"], {"ok": True})

    def test_reply(self):
        # The whole of req.params, and of req.body, untouched.
        for name in ("whole", "body"):
            with self.subTest(name):
                body, out = self.call(name, rich(1, self.upstream.url))
                self.assertSame(out, body["params"] if name == "whole" else body)
        # A part of req.params, and parts inside a table the handler made.
        params = {"mode": "sub", "card": rich(2, "u")["msg"], "list": [1, [2, {}], []],
                  "empty_o": {}, "empty_a": []}
        body, out = self.call("reply", params)
        self.assertSame(out, body["params"]["card"])
        params["mode"] = "wrapped"
        body, out = self.call("reply", params)
        p = body["params"]
        self.assertSame(out, {"wrapped": p["card"], "list": p["list"], "empty_o": {},
                              "empty_a": []})

    # ---- identity, lifetime, coroutines -------------------------------------------

    def test_params_two_ways(self):
        params = {"user": {"id": "55", "first_name": "Ada", "tags": ["a", "b"]},
                  "w1": rich(1, "u"), "f1": rich(2, "u"), "f2": rich(3, "u")}
        body, out = self.call("first", params)
        p = body["params"]
        self.assertSame(out, {
            "same_params": True, "same_user": True, "equal_user": True,
            "w1": plus(p["w1"], written="through body"),
            "f1_body": p["f1"], "f1_params": p["f1"], "f1_added": 1,
            "nested": True, "f2_obj": p["f2"]["obj"]})

    def test_kept_for_a_later_call(self):
        first = {"mode": "keep", "k1": rich(1, "first"), "k2": rich(2, "first"),
                 "k3": ["first", 1, {"x": [1.5]}, []], "k4": {"path": "body", "v": [1, {}]}}
        body, out = self.call("keep", first)
        self.assertEqual(out, {"text": "kept"})
        # Other calls reuse what the first one's body used.
        for i in range(3):
            self.call("keep", {"mode": "churn", "junk": [rich(10 + j, "x" * i) for j in range(8)]})
        later = {"mode": "read", "k1": rich(7, "second"), "k2": rich(8, "second"),
                 "k3": ["second"], "k4": {"path": "later"}}
        body2, out = self.call("keep", later)
        p, p2 = body["params"], body2["params"]
        self.assertSame(out, {"walked": p["k1"], "encoded": p["k2"], "list": p["k3"],
                              "other_path": p["k4"], "now": p2["k1"]})

    def test_coroutines_and_sleep(self):
        body, seen = self.probe(["coroutine_wrap", "coroutine_resume", "after_sleep"],
                                {"after_sleep_later": rich(99, "later")})
        p = body["params"]
        c = p["coroutine_wrap"]
        self.assertSame(seen["coroutine_wrap"], {"all": c, "len": len(c["nums"])})
        c = p["coroutine_resume"]
        self.assertSame(seen["coroutine_resume"], {"nums": c["nums"], "obj": c["obj"],
                                                   "n": len(c["nums"])})
        c = p["after_sleep"]
        self.assertSame(seen["after_sleep"], {"held": c["obj"], "arr": c["arr"],
                                              "later": p["after_sleep_later"]})

    # ---- attachments, deep and large ---------------------------------------------

    def test_attachments(self):
        url = self.upstream.url + "/files/reach.bin"
        attachments = [{"name": "a.bin", "url": url}, {"name": "no url"},
                       {"name": "number", "url": 5}, {"name": "null", "url": None},
                       {"name": "empty", "url": ""}, {"name": "object", "url": {"x": 1}}]
        body, seen = self.probe(["attachments"], {"attachments": attachments})
        v = seen["attachments"]
        each = [{"download": "function" if isinstance(a.get("url"), str) else "nil",
                 "raw": True, "mt": False,
                 "kind": "cliq.attachment" if isinstance(a.get("url"), str) else "json.object",
                 "all": a} for a in body["params"]["attachments"]]
        self.assertSame(v, {"each": each, "bytes": FILE.decode(), "same": True})
        # Reached first by setmetatable, in another call.
        body, seen = self.probe(["attachments_set"], {"attachments": attachments})
        self.assertSame(seen["attachments_set"], [
            {"set": "cannot change a protected metatable" if isinstance(a.get("url"), str)
             else True, "download": "function" if isinstance(a.get("url"), str) else "nil",
             "name": a["name"]} for a in body["params"]["attachments"]])

    def test_deep_and_large(self):
        levels = 200
        large = [(i * 7919) % 100003 for i in range(5000)]
        extra = {"deep_obj": deep(levels, "bottom", False), "deep_obj2": deep(levels, 7, False),
                 "deep_arr": deep(levels, 42, True), "deep_arr2": deep(levels, 2.5, True),
                 "deep_obj3": deep(150, [json.loads("{}")], False),
                 "large": large, "large2": ["x%d" % i for i in range(5000)],
                 "large_strs": ["s%d" % (i * 3) for i in range(5000)]}
        body, seen = self.probe(["deep", "large"], extra)
        p = body["params"]
        self.assertSame(seen["deep"], {
            "by_field": {"levels": levels, "leaf": "bottom"},
            "by_next": {"levels": levels, "leaf": 7},
            "by_index": {"levels": levels, "leaf": 42},
            "by_ipairs": {"levels": levels, "leaf": 2.5},
            "encoded": seen["deep"]["encoded"]})
        self.assertSame(json.loads(seen["deep"]["encoded"]), p["deep_obj3"], "deep json.encode")
        big = p["large"]
        self.assertSame(seen["large"], {"n": len(big), "sum": sum(big), "last": big[-1],
                                        "first": big[0], "count": len(p["large2"]),
                                        "joined": ",".join(p["large_strs"])})


if __name__ == "__main__":
    unittest.main()
