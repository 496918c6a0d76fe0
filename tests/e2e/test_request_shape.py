"""The request object a handler gets, value by value: a body with every
JSON type (nested, empty [] and {}, null, integers past 2^53 and past 64
bits, floats, unicode escapes, keys that look like numbers) goes to a
handler that walks req with pairs() and next() in sorted order and writes
down the Lua type of each value; the test builds the same text from the
JSON itself, by the rules of README/DESIGN (object -> table that encodes as
{}, array -> table that encodes as [], null -> json.null, a number written
without '.', 'e' or 'E' that fits in 64 bits -> integer, else float)."""

import json
import os
import unittest

from cliq_bodies import RESPONSE_URL, now_ms
from hostlib import HERE, Host, Key

KEY = Key("main")
SCRIPTS = os.path.join(HERE, "request_shape_scripts")
INT64 = 2 ** 63


def key_text(k):
    if isinstance(k, str):
        return "s%d:%s" % (len(k.encode()), k)
    return "i%d" % k


def ser(v, out):
    """The handler's serialisation (shape.lua), from the decoded JSON."""
    if isinstance(v, dict):
        out.append("o#0/0(")
        for k in sorted(v, key=lambda s: s.encode()):
            out.append(key_text(k) + "=")
            ser(v[k], out)
            out.append(";")
        out.append(")")
    elif isinstance(v, list):
        out.append("a#%d/%d(" % (len(v), len(v)))
        for i, x in enumerate(v):
            out.append(key_text(i + 1) + "=")
            ser(x, out)
            out.append(";")
        out.append(")")
    elif isinstance(v, str):
        out.append("s%d:%s" % (len(v.encode()), v))
    elif isinstance(v, bool):
        out.append("b" + ("true" if v else "false"))
    elif isinstance(v, int):
        out.append("i%d" % v if -INT64 <= v < INT64 else "f%.17g" % float(v))
    elif isinstance(v, float):
        out.append("f%.17g" % v)
    elif v is None:
        out.append("n")
    else:
        raise TypeError(v)


def cut_at_nul(v):
    """A string with \\u0000 in it reaches Lua cut at the NUL (cJSON's
    strings are C strings); keys too."""
    if isinstance(v, dict):
        return {cut_at_nul(k): cut_at_nul(x) for k, x in v.items()}
    if isinstance(v, list):
        return [cut_at_nul(x) for x in v]
    if isinstance(v, str):
        return v.split("\0")[0]
    return v


def expected(body_text, name="shape"):
    body = cut_at_nul(json.loads(body_text))
    req = {"body": body, "handler": "execution", "id": "<id>", "name": name, "type": "command"}
    params = body.get("params")
    req["params"] = params if isinstance(params, dict) else {}
    if isinstance(body.get("response_url"), str):
        req["response_url"] = body["response_url"]
    if isinstance(body.get("timestamp"), (int, float)) and not isinstance(body["timestamp"], bool):
        req["timestamp"] = body["timestamp"]
    out = []
    ser(req, out)
    return "".join(out)


# Written by hand, not by json.dumps, so that the text keeps the spellings
# that matter: 1.0, -0, -0.0, 1E2, escapes.
RICH_PARAMS = r'''{
  "arguments": "deploy api prod",
  "empty_array": [], "empty_object": {},
  "nothing": null, "yes": true, "no": false,
  "ints": [0, -0, 1, -1, 42, 9007199254740993, 9223372036854775807, -9223372036854775808],
  "past_64_bits": [9223372036854775808, -9223372036854775809, 123456789012345678901234567890],
  "floats": [1.0, -0.0, 0.5, -1.5, 1e3, 1E2, 2.5e-3, 1.7976931348623157e308, 5e-324, 0.1],
  "strings": ["", "plain", "caf\u00e9", "\ud83d\ude00", "tab\tquote\"back\\slash\/",
              "\u0041\u00df\u4e2d", "raw é 中 😀", "line\nbreak", "cut\u0000here"],
  "nested": {"a": {"b": {"c": [[], [[]], [{}], [1, [2, [3, {"d": null}]]]]}},
             "list_of_objects": [{"x": 1}, {"y": [true, false, null]}, {}]},
  "1": "a key that looks like a number", "": "an empty key", "k\u00e9y": "an escaped key",
  "nul\u0000key": "a key cut at its NUL",
  "nulls": [null, null, null],
  "user": {"id": "55", "first_name": "Ada", "email": "ada@example.com", "admin": true,
           "country": "gb", "language": "en", "timezone": "Europe/London"},
  "attachments": [{"name": "a.txt", "url": "https://files.example/a.txt"}, {"name": "no url"}],
  "environment": {"tld": ".com", "data_center": "US"},
  "access": {"user_agent": "test", "chat_id": "CT_1"}
}'''


def body_text(params, ts=None, extra=""):
    return ('{"name":"shape","handler":{"type":"execution_handler"},"response_url":"%s",'
            '"type":"command","timestamp":%d%s%s}'
            % (RESPONSE_URL, now_ms() if ts is None else ts,
               "" if params is None else ',"params":' + params, extra))


class RequestShape(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = Host(scripts=SCRIPTS, keys=[KEY.spki])

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        reports = cls.host.sanitizer_reports()
        assert rc == 0 and not reports, f"exit {rc}; sanitizer: {reports}\n{cls.host.log()}"

    def seen(self, text):
        r = self.host.post(text.encode(), key=KEY)
        self.assertEqual(r.status, 200, r)
        out = r.json()["output"]
        self.assertIsInstance(out, dict, out)
        return out["text"]

    def assertShape(self, text):
        self.assertEqual(self.seen(text), expected(text))

    def test_the_model_is_not_trivial(self):
        # The expected text tells integers, floats, [] and {} apart.
        self.assertIn("i9223372036854775807;", expected(body_text(RICH_PARAMS)))
        self.assertIn("f1;", expected(body_text(RICH_PARAMS)))
        self.assertIn("=a#0/0();", expected(body_text(RICH_PARAMS)))
        self.assertIn("=o#0/0();", expected(body_text(RICH_PARAMS)))
        self.assertNotEqual(expected(body_text('{"a":[]}', 1)), expected(body_text('{"a":{}}', 1)))
        self.assertNotEqual(expected(body_text('{"a":1}', 1)), expected(body_text('{"a":1.0}', 1)))

    def test_a_rich_body(self):
        self.assertShape(body_text(RICH_PARAMS))

    def test_the_same_body_twice(self):
        # A second call on the same worker state sees the same thing.
        text = body_text(RICH_PARAMS)
        self.assertShape(text)
        self.assertShape(text.replace('"timestamp":', '"timestamp": '))

    def test_bodies_of_other_shapes(self):
        cases = [
            ("no params", body_text(None)),
            ("params null", body_text("null")),
            ("params empty", body_text("{}")),
            ("float timestamp", body_text('{"a":1}').replace(',"params"', '.0,"params"')),
            ("top-level extras", body_text('{"a":[1,{"b":[]}]}',
                                           extra=',"chat":{"id":"CT_1","members":[]},'
                                           '"unique_name":null,"n":[1.25,-7]')),
            ("whitespace everywhere", body_text(' {\n "a" : [ 1 , 2.0 ,\t{ } , [ ] ] ,'
                                                '"b":"\\u00e9" } ')),
            ("deep", body_text("[" * 0 + '{"d":' + "[" * 150 + "1" + "]" * 150 + "}")),
            ("many keys", body_text("{" + ",".join('"k%d":%d' % (i, i) for i in range(300))
                                    + "}")),
            ("long strings", body_text('{"s":"%s","t":"%s\\u00e9"}' % ("x" * 5000, "y" * 70))),
        ]
        for what, text in cases:
            with self.subTest(what):
                self.assertShape(text)


if __name__ == "__main__":
    unittest.main()
