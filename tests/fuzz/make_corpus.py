#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora into tests/fuzz/corpus/<target>/.

    python3 tests/fuzz/make_corpus.py

The request and JSON seeds are realistic Cliq bodies (tests/e2e/cliq_bodies.py
and Zoho's sample in tests/e2e/zoho_sample.json) and edge cases; the key seeds
are the fixed key of fuzz_keys.c in every form an operator may pass, and keys
the host must refuse, made here with the openssl command-line tool (so those
come out different on each run; the fixed key's forms do not). Seeds already
there are replaced; others are left alone. The input formats are described at
the top of each fuzz_<target>.c.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
E2E = os.path.join(HERE, "..", "e2e")
sys.path.insert(0, E2E)
import cliq_bodies  # noqa: E402

# The same key as fixed_key in fuzz_keys.c.
FIXED_KEY = (
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt9LAAfyou9ZTWtf8t75qfsalCEYp2t3JRONOgyODvYeZsNPh"
    "lA7QXLNFC3AmwhQJmE4iFIy8YRLu+AxeTQtxb4MVndSNgVKiPPXMacOdRfAKSvcsQpW9uCnDP3CBY4jH7azoAgqySub6"
    "kt+XNV8c/GVWA8BYeZkNmgCcDhZNtTgK5oeu9yGNx/3AMfDOS4SuEToCcOSSGm7z4mydLqkSMQo88w2r8v6EeeNQwMIt"
    "qI/zCPWMOZEskh9JaJsWudEjVZOPLmMRIAef19pWzZNkw/8/MzbIL6dtL0AghGfEpt1DqgHSfHss9RCTgDrRgrGX9o5r"
    "IQYZV6nhJGfa3PlZCQIDAQAB")

with open(os.path.join(E2E, "zoho_sample.json")) as f:
    ZOHO = json.load(f)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---- fuzz_request: mode byte, header line, body --------------------------

SIGN, AS_GIVEN, SKIP, NO_HEADER, MALLOC = 1, 0, 2, 3, 4


def request(name, mode, header, body):
    if isinstance(body, str):
        body = body.encode()
    write("fuzz_request", name, bytes([mode]) + header.encode() + b"\n" + body)


def request_seeds():
    for type_, wire, comp, params, has_url in cliq_bodies.CATALOGUE:
        b = cliq_bodies.body(type_, wire, comp, params, has_url)
        request("%s-%s" % (type_, wire), SIGN, "", compact(b))
    b = cliq_bodies.body("bot", "menu_handler", None, {}, True, unique_name="deploybot",
                         handler_name="Status")
    request("bot-menu-unique-name", SIGN | MALLOC, "", compact(b))
    b = cliq_bodies.body("command", "execution_handler", "deploy", {"arguments": "prod"}, True,
                         legacy=True)
    request("legacy-2019", SIGN, "", json.dumps(b, indent=2))
    b = cliq_bodies.body("bot", "action_handler", "bot", {}, True, legacy=True,
                         handler_name="Help")
    request("legacy-bot-action", SKIP, "", compact(b))
    b = cliq_bodies.body("function", "future_new_handler", "fn", {}, False)
    request("uncatalogued-handler", SIGN, "", compact(b))

    # Zoho's sample, with its own signature (which the sample key refuses).
    request("zoho-sample", AS_GIVEN, ZOHO["signature"], ZOHO["body"])
    request("zoho-sample-quoted", AS_GIVEN, ' "%s" ' % ZOHO["signature"], ZOHO["body"])
    request("zoho-sample-no-header", NO_HEADER, "", ZOHO["body"])
    request("zoho-sample-checks-off", SKIP | MALLOC, "", ZOHO["body"])
    for name, header in [("empty", ""), ("blank", "   \t"), ("quotes", '""'),
                         ("not-base64", "not base64!"), ("short", "c2hvcnQ="),
                         ("unpadded", ZOHO["signature"].rstrip("=")),
                         ("long", "QUFB" * 700)]:
        request("header-" + name, AS_GIVEN, header, ZOHO["body"])

    cmd = {"type": "command", "name": "deploy", "handler": {"type": "execution_handler"},
           "params": {"arguments": "x"}}
    bad = {
        "empty": "",
        "array": "[]",
        "empty-object": "{}",
        "not-json": "type=command",
        "trailing": compact(cmd) + " x",
        "trailing-space": compact(cmd) + " \r\n\t",
        "no-handler": '{"type":"command","name":"deploy"}',
        "handler-number": '{"type":"command","name":"deploy","handler":7}',
        "handler-no-type": '{"type":"command","name":"deploy","handler":{"name":"x"}}',
        "type-empty": '{"type":"","handler":"execution_handler","name":"a"}',
        "type-unknown": '{"type":"applet","handler":"view_handler","name":"a"}',
        "wire-upper": '{"type":"command","name":"a","handler":{"type":"Execution_Handler"}}',
        "wire-suffix-only": '{"type":"command","name":"a","handler":{"type":"_handler"}}',
        "name-dotdot": '{"type":"command","name":"..","handler":{"type":"execution_handler"}}',
        "name-traversal":
            '{"type":"command","name":"../../etc/passwd","handler":{"type":"execution_handler"}}',
        "name-hidden": '{"type":"command","name":".x","handler":{"type":"execution_handler"}}',
        "name-backslash": '{"type":"command","name":"a\\\\b","handler":{"type":"execution_handler"}}',
        "name-nul": '{"type":"command","name":"a\\u0000b","handler":{"type":"execution_handler"}}',
        "name-control": '{"type":"command","name":"a\\u001fb","handler":{"type":"execution_handler"}}',
        "name-unicode":
            '{"type":"command","name":"d\\u00e9ploy \\ud83d\\ude80","handler":{"type":"execution_handler"}}',
        "name-dots-inside": '{"type":"command","name":"a..b","handler":{"type":"execution_handler"}}',
        "name-long": '{"type":"command","name":"%s","handler":{"type":"execution_handler"}}'
                     % ("n" * 129),
        "name-missing": '{"type":"widget","handler":{"type":"view_handler"}}',
        "bot-name-fallback": '{"type":"bot","unique_name":"","name":"b","handler":"message_handler"}',
        "extension-name-ignored":
            '{"type":"extension","name":"../x","handler":{"type":"installation_handler"}}',
        "params-array": '{"type":"command","name":"a","handler":"execution_handler","params":[]}',
        "params-null": '{"type":"command","name":"a","handler":"execution_handler","params":null}',
        "duplicate-type":
            '{"type":"command","type":"bot","unique_name":"b","name":"a","handler":"message_handler"}',
        "invalid-utf8-name": b'{"type":"command","name":"\xff\xfe","handler":"execution_handler"}',
    }
    for name, body in bad.items():
        request("body-" + name, SIGN, "", body)
    request("body-name-dotdot-malloc", SIGN | MALLOC, "", bad["name-traversal"])


# ---- fuzz_json: JSON text ------------------------------------------------

def json_seeds():
    for type_, wire, comp, params, has_url in cliq_bodies.CATALOGUE[:12]:
        b = cliq_bodies.body(type_, wire, comp, params, has_url)
        write("fuzz_json", "body-%s-%s" % (type_, wire), json.dumps(b, indent=1))
    write("fuzz_json", "zoho-sample", ZOHO["body"])
    reply = {"text": "Deploy?", "card": {"title": "Deploy", "theme": "modern-inline"},
             "buttons": [{"label": "Yes", "action": {"type": "invoke.function",
                                                      "data": {"name": "approve"}}}],
             "slides": [{"type": "table", "data": {"headers": ["a", "b"], "rows": []}}]}
    write("fuzz_json", "reply-message", compact(reply))
    cases = {
        "empty-array": "[]",
        "empty-object": "{}",
        "nested-empties": '{"a":[],"b":{},"c":[[],{}],"d":[{}]}',
        "scalars": '[true,false,null,0,-0,1,-1,"",[null]]',
        "integers": "[9007199254740993,9223372036854775807,-9223372036854775808,"
                    "9223372036854775808,-9223372036854775809,123456789012345678901234567890]",
        "floats": "[0.1,1.5,-2.25,1e2,1E-2,1.0,-0.0,5e-324,1.7976931348623157e308,2.5e+3]",
        "infinity": "[1e400,-1e400]",
        "number-keys": '{"1":"a","2":"b","10":[1,2]}',
        "duplicate-keys": '{"a":1,"a":"two","b":{"c":1e400,"c":3}}',
        "escapes": r'"\"\\\/\b\f\n\r\t\u0001\u001f\u007f"',
        "unicode": r'["\u00e9","\u20ac","\ud83d\ude00","é€😀"]',
        "nul-in-string": r'["a\u0000b",{"k\u0000ey":1}]',
        "lone-surrogate": r'"\ud800"',
        "invalid-utf8": b'["\xff","\xc0\x80","\xed\xa0\x80","\xf4\x90\x80\x80"]',
        "invalid-utf8-key": b'{"\xe2\x82":1}',
        "bom": b"\xef\xbb\xbf{\"a\":1}",
        "whitespace": ' \t\r\n{ "a" : [ 1 , 2 ] }\n\n',
        "trailing-garbage": '{"a":1} x',
        "two-values": "[1] [2]",
        "numbers-in-strings": '["1", 2, "3e5", 4.5, "-", -6, "\\"7", 8]',
        "backslash-before-quote": r'["\\", 1, "\\\"", 2, "a\\\\", 3]',
        "leading-zeros": "[0123, -007, 00.5]",
        "bad-numbers": "[1-2]",
        "string": '"just a string"',
        "number": "42",
        "null": "null",
        "false": "false",
        "depth-200": "[" * 200 + "]" * 200,
        "depth-201": "[" * 201 + "]" * 201,
        "depth-objects": '{"a":' * 199 + "1" + "}" * 199,
        "depth-objects-200": '{"a":' * 200 + "1" + "}" * 200,
        "depth-objects-201": '{"a":' * 201 + "1" + "}" * 201,
        "long-number": "[" + "1" * 70 + "]",
        "not-json": "{'a': 1}",
        "truncated": '{"a":[1,2,{"b":',
    }
    for name, text in cases.items():
        write("fuzz_json", name, text)


# ---- fuzz_keys: mode byte, then the key text ------------------------------

INLINE, FILE, ROTATION, SPLIT = 0, 1, 2, 3
RELATIVE, PADDED = 4, 8


def key(name, mode, data):
    if isinstance(data, str):
        data = data.encode()
    write("fuzz_keys", name, bytes([mode]) + data)


def openssl(*args, stdin=None):
    return subprocess.run(["openssl", *args], input=stdin, check=True,
                          capture_output=True).stdout


def pem(der, label):
    b = base64.b64encode(der).decode()
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


def key_seeds():
    der = base64.b64decode(FIXED_KEY)
    pkcs1 = openssl("rsa", "-pubin", "-inform", "DER", "-RSAPublicKey_out", "-outform", "DER",
                    stdin=der)
    key("spki-base64", INLINE, FIXED_KEY)
    key("spki-pem", INLINE, pem(der, "PUBLIC KEY"))
    key("spki-pem-crlf", INLINE, pem(der, "PUBLIC KEY").replace("\n", "\r\n"))
    key("spki-wrapped", INLINE, "\n  " + "\n".join(FIXED_KEY[i:i + 76]
                                                   for i in range(0, len(FIXED_KEY), 76)) + " \n")
    key("pkcs1-pem", INLINE, pem(pkcs1, "RSA PUBLIC KEY"))
    key("pkcs1-base64", INLINE, base64.b64encode(pkcs1).decode())
    key("file-der", FILE, der)
    key("file-pkcs1-der-padded", FILE | PADDED, pkcs1)
    key("file-pem-relative", FILE | RELATIVE, pem(der, "PUBLIC KEY"))
    key("file-base64", FILE, FIXED_KEY + "\n")
    key("file-empty", FILE, b"")
    key("rotation", ROTATION, FIXED_KEY)
    key("split", SPLIT, ZOHO["key"] + "\0" + FIXED_KEY + "\0" + pem(der, "PUBLIC KEY"))
    key("split-missing", SPLIT, ZOHO["key"] + "\0" + FIXED_KEY + "\0" + "keys/next.pub")
    key("zoho-sample", INLINE, ZOHO["key"])
    key("no-such-file", INLINE, "keys/cliq.pub")
    key("empty", INLINE, "")
    key("base64-garbage", INLINE, "A" * 64)
    key("pem-garbage", INLINE, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    key("truncated", INLINE, FIXED_KEY[:200])

    with tempfile.TemporaryDirectory() as tmp:
        def gen(name, *opts):
            path = os.path.join(tmp, name + ".pem")
            openssl("genpkey", *opts, "-out", path)
            return path

        rsa1024 = gen("rsa1024", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024")
        rsa4096 = gen("rsa4096", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096")
        ec = gen("ec", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256")
        ed = gen("ed", "-algorithm", "ED25519")
        for name, path in [("rsa-1024", rsa1024), ("rsa-4096", rsa4096), ("ec-p256", ec),
                           ("ed25519", ed)]:
            pub = openssl("pkey", "-in", path, "-pubout", "-outform", "DER")
            key(name + "-base64", INLINE, base64.b64encode(pub).decode())
        with open(rsa4096) as f:
            key("private-key-pem", INLINE, f.read())
        cert = openssl("req", "-new", "-x509", "-key", rsa4096, "-subj", "/CN=fuzz", "-days", "1")
        key("certificate-pem", INLINE, cert)


if __name__ == "__main__":
    request_seeds()
    json_seeds()
    key_seeds()
    for t in ("fuzz_request", "fuzz_json", "fuzz_keys"):
        print("%s: %d seeds" % (t, len(os.listdir(os.path.join(HERE, "corpus", t)))))
