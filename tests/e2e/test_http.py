"""End-to-end tests: the real cliqhost binary on loopback, called the way
Cliq calls it, with bodies signed by the openssl command-line tool."""

import http.client
import json
import os
import re
import signal
import socket
import tempfile
import threading
import unittest

from cliq_bodies import CATALOGUE, body
from hostlib import HERE, Host, Key

SCRIPTS = os.path.join(HERE, "scripts")
SHORT_NAME = {  # wire handler -> key in the script, per DESIGN.md
    "alert_handler": "alert", "installation_validator": "installation_validator",
}

KEY = Key("main")
OTHER = Key("other")
STRANGER = Key("stranger")


def short(wire):
    return SHORT_NAME.get(wire, wire[:-len("_handler")] if wire.endswith("_handler") else wire)


class HostTest(unittest.TestCase):
    """One host for the whole class; every test leaves it serving."""

    host_args = {}

    @classmethod
    def setUpClass(cls):
        cls.host = Host(**cls.host_args)

    @classmethod
    def tearDownClass(cls):
        rc = cls.host.stop()
        reports = cls.host.sanitizer_reports()
        assert rc == 0 and not reports, f"exit {rc}; sanitizer: {reports}\n{cls.host.log()}"

    def assertServing(self):
        """The host still answers health checks and a good signed call."""
        self.assertEqual(self.host.request("GET", "/healthz").status, 200)
        r = self.host.post(body("command", "execution_handler", "cmd", {"arguments": "ok"}),
                           key=KEY)
        self.assertEqual(r.status, 200, r)

    def assertError(self, reply, status, *words):
        """An error answer: the status, and a JSON {"error", "request_id"} body
        whose id matches the X-Request-Id header and that says what was wrong."""
        self.assertEqual(reply.status, status, reply)
        self.assertTrue(reply.headers["content-type"].startswith("application/json"))
        data = reply.json()
        self.assertEqual(set(data), {"error", "request_id"}, data)
        self.assertEqual(data["request_id"], reply.headers["x-request-id"])
        for w in words:
            self.assertIn(w, data["error"])
        line = self.host.wait_for(r"req=%s .*status=%d" % (re.escape(data["request_id"]), status))
        self.assertIsNotNone(line, f"no log line for {data['request_id']}")
        return data


class EveryHandler(HostTest):
    host_args = {"scripts": SCRIPTS, "keys": [KEY.spki]}

    def test_every_handler_in_the_catalogue(self):
        for type_, wire, name, params, has_url in CATALOGUE:
            with self.subTest(type=type_, handler=wire):
                b = body(type_, wire, name, params, response_url=has_url)
                r = self.host.post(b, key=KEY)
                self.assertEqual(r.status, 200, r)
                out = r.json()["output"]
                self.assertEqual(out["text"], f"{type_}|{name or '-'}|{short(wire)}")
                self.assertEqual(out["has_response_url"], has_url)
                # params arrive whole: the handler saw every key Cliq sent.
                self.assertEqual(out["param_keys"], ",".join(sorted(b["params"])))
                # one log line names the request
                rid = r.headers["x-request-id"]
                line = self.host.wait_for(r"req=%s .*status=200" % rid)
                self.assertIsNotNone(line)
                self.assertIn(f"type={type_}", line)
                self.assertIn(f"handler={short(wire)}", line)
                self.assertRegex(line, r"ms=\d+\.\d+")
                if name:
                    self.assertIn(f"name={name}", line)

    def test_menu_action_in_both_formats(self):
        r = self.host.post(body("bot", "action_handler", "Helper Bot", {}, unique_name="bot",
                                handler_name="Status"), key=KEY)
        self.assertEqual(r.json()["output"]["action"], "Status")
        self.assertEqual(r.json()["output"]["text"], "bot|bot|action")
        r = self.host.post(body("bot", "action_handler", "bot", {}, handler_name="status",
                                legacy=True), key=KEY)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["output"]["action"], "status")

    def test_legacy_string_handler(self):
        r = self.host.post(body("command", "execution_handler", "cmd", {"arguments": "x"},
                                legacy=True), key=KEY)
        self.assertEqual(r.json()["output"]["text"], "command|cmd|execution")

    def test_bot_found_by_unique_name_then_name(self):
        r = self.host.post(body("bot", "message_handler", "Display Name", {}, unique_name="bot"),
                           key=KEY)
        self.assertEqual(r.json()["output"]["text"], "bot|bot|message")
        r = self.host.post(body("bot", "message_handler", "bot", {}), key=KEY)
        self.assertEqual(r.json()["output"]["text"], "bot|bot|message")

    def test_concurrent_calls_all_answer(self):
        bodies = [json.dumps(body("command", "execution_handler", "cmd",
                                  {"arguments": f"n{i}"})).encode() for i in range(40)]
        sigs = [KEY.sign(b) for b in bodies]
        results = [None] * len(bodies)

        def call(i):
            results[i] = self.host.post(bodies[i], signature=sigs[i])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(bodies))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, r in enumerate(results):
            self.assertEqual(r.status, 200)
            self.assertEqual(r.json()["output"]["text"], "command|cmd|execution")


class BadInput(HostTest):
    """Every bad input gets its status and a JSON error; no script runs on a
    bad signature; the host keeps serving."""

    host_args = {"scripts": os.path.join(HERE, "bad_scripts"), "keys": [KEY.spki],
                 "workers": 2}

    @classmethod
    def setUpClass(cls):
        d = os.path.join(HERE, "bad_scripts")
        # The scripts here leave a mark in the log when they run, so the
        # tests can tell that a rejected request ran nothing.
        super().setUpClass()

    def good(self, **kw):
        return body("command", "execution_handler", "cmd", kw or {"arguments": "hi"})

    def test_missing_signature(self):
        self.assertError(self.host.post(self.good()), 401, "missing X-Cliq-Signature")
        self.assertServing()

    def test_empty_signature(self):
        self.assertError(self.host.post(self.good(), signature=""), 401, "empty")
        self.assertServing()

    def test_garbage_signature(self):
        self.assertError(self.host.post(self.good(), signature="not base64 !!!"), 401, "base64")
        self.assertError(self.host.post(self.good(), signature="aGVsbG8="), 401, "wrong length")
        self.assertServing()

    def test_truncated_signature(self):
        b = json.dumps(self.good()).encode()
        sig = KEY.sign(b)
        for cut in (sig[:-4], sig[:-5], sig[: len(sig) // 2]):
            r = self.host.post(b, signature=cut)
            self.assertEqual(r.status, 401, r)
        self.assertServing()

    def test_signature_over_a_different_body(self):
        signed = json.dumps(self.good(arguments="one")).encode()
        sent = json.dumps(self.good(arguments="two")).encode()
        r = self.host.post(sent, signature=KEY.sign(signed))
        self.assertError(r, 401, "does not match")
        # Re-serialising the same JSON differently also breaks the signature:
        # the host checks the raw bytes.
        spaced = json.dumps(self.good(), indent=1).encode()
        r = self.host.post(spaced, signature=KEY.sign(json.dumps(self.good()).encode()))
        self.assertEqual(r.status, 401)
        self.assertServing()

    def test_wrong_key(self):
        r = self.host.post(self.good(), key=STRANGER)
        data = self.assertError(r, 401, "does not match")
        # No script ran for it.
        self.assertIsNone(self.host.wait_for("req=%s .*script=" % data["request_id"], timeout=0.3))
        self.assertServing()

    def test_not_json(self):
        self.assertError(self.host.post(b"type=command&name=cmd", key=KEY), 400, "not valid JSON")
        self.assertError(self.host.post(b"", key=KEY), 400, "not valid JSON")
        self.assertError(self.host.post(b'{"type": "command", ', key=KEY), 400, "not valid JSON")
        self.assertServing()

    def test_json_but_not_an_object(self):
        self.assertError(self.host.post(b"[1, 2, 3]", key=KEY), 400, "must be a JSON object")
        self.assertError(self.host.post(b'"command"', key=KEY), 400, "must be a JSON object")
        self.assertServing()

    def test_missing_fields(self):
        b = self.good()
        del b["type"]
        self.assertError(self.host.post(b, key=KEY), 400, '"type"')
        b = self.good()
        del b["handler"]
        self.assertError(self.host.post(b, key=KEY), 400, '"handler"')
        b = self.good()
        b["handler"] = {"name": "x"}
        self.assertError(self.host.post(b, key=KEY), 400, '"handler"')
        b = self.good()
        del b["name"]
        self.assertError(self.host.post(b, key=KEY), 400, "component name")
        b = self.good()
        b["type"] = "spaceship"
        self.assertError(self.host.post(b, key=KEY), 400, "unknown request type")
        b = self.good()
        b["name"] = "../../etc/passwd"
        self.assertError(self.host.post(b, key=KEY), 400, "script name")
        self.assertServing()

    def raw_exchange(self, head, body_after=b""):
        """Sends head, then (unless the host already answered) body_after;
        returns everything the host sent back before closing."""
        s = socket.create_connection(("127.0.0.1", self.host.port), timeout=10)
        s.sendall(head)
        reply = b""
        # The host closes after these replies; the timeout only ends a wait
        # for one that never comes, so it is long enough for a slow machine.
        s.settimeout(15)
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    break
                reply += d
                if body_after and b"100 Continue" in reply and b"\r\n\r\n" in reply:
                    s.sendall(body_after)
                    body_after = b""
        except (socket.timeout, ConnectionResetError):
            pass
        s.close()
        return reply

    def test_oversized_body(self):
        # Content-Length over the cap: 413 right after the headers, without
        # the host waiting for (or buffering) a byte of the body.
        head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"X-Cliq-Signature: x\r\nContent-Length: %d\r\n\r\n" % (2 * 1024 * 1024))
        reply = self.raw_exchange(head)
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])
        self.assertIn(b"body of 2097152 bytes is over the limit of 262144 bytes", reply)
        # A client that asks first (Expect: 100-continue, as curl does) is
        # told no before it sends anything.
        reply = self.raw_exchange(head.replace(b"\r\n\r\n", b"\r\nExpect: 100-continue\r\n\r\n"))
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])
        # One byte over the cap is over; the cap itself is fine (reaches
        # the signature check).
        limit = 256 * 1024
        reply = self.raw_exchange(head.replace(b"%d" % (2 * limit), b"%d" % (limit + 1)))
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])
        r = self.host.post(b"x" * limit, signature="x")
        self.assertEqual(r.status, 401)
        self.assertServing()

    def test_oversized_chunked_body(self):
        # No Content-Length: the cap is found while reading.
        s = socket.create_connection(("127.0.0.1", self.host.port), timeout=10)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                  b"X-Cliq-Signature: x\r\n\r\n")
        chunk = b"a" * 65536
        for _ in range(6):  # 384 KiB, over the 256 KiB default (and under twice it)
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        s.sendall(b"0\r\n\r\n")
        reply = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            reply += d
        s.close()
        self.assertTrue(reply.startswith(b"HTTP/1.1 413"), reply[:200])
        self.assertIn(b'"error":"body is over the limit', reply)
        self.assertServing()

    def test_endless_chunked_body_is_cut_off(self):
        s = socket.create_connection(("127.0.0.1", self.host.port), timeout=10)
        s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"a" * 65536
        sent = 0
        try:
            for _ in range(1000):  # up to 64 MiB; the host must stop reading long before
                s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except OSError:
            pass
        s.close()
        self.assertLess(sent, 16 * 1024 * 1024)
        self.assertServing()

    def test_unknown_component(self):
        b = body("command", "execution_handler", "nosuch", {})
        self.assertError(self.host.post(b, key=KEY), 404, "nosuch.lua", "looked for")
        b = body("widget", "view_handler", "w", {})
        self.assertError(self.host.post(b, key=KEY), 404, "widgets/w.lua")
        self.assertServing()

    def test_script_without_that_handler(self):
        b = body("command", "suggestion_handler", "cmd", {})
        self.assertError(self.host.post(b, key=KEY), 404, "no 'suggestion' handler",
                         "it has: execution")
        self.assertServing()

    def test_handler_error(self):
        b = body("command", "execution_handler", "fails", {"arguments": "x"})
        r = self.host.post(b, key=KEY)
        self.assertEqual(r.status, 200, r)
        rid = r.headers["x-request-id"]
        # The chat user gets a short message with the request id ...
        self.assertIn(rid, r.json()["output"]["text"])
        self.assertNotIn("traceback", r.body.decode())
        # ... and the operator the error with the file and line, and the traceback.
        line = self.host.wait_for(r"error .*req=%s .*failure=error" % rid)
        self.assertIsNotNone(line, self.host.log())
        self.assertIn("commands/fails.lua:6: the database is down", line)
        self.assertIn("stack traceback", line)
        self.assertServing()

    def test_handler_breaking_the_sandbox(self):
        b = body("command", "execution_handler", "escape", {})
        r = self.host.post(b, key=KEY)
        rid = r.headers["x-request-id"]
        self.assertIn(rid, r.json()["output"]["text"])
        line = self.host.wait_for(r"req=%s .*failure=error" % rid)
        self.assertIn("commands/escape.lua:3:", line)
        self.assertIn("attempt to index a nil value (global 'io')", line)
        self.assertServing()

    def test_reply_json_cannot_carry(self):
        b = body("command", "execution_handler", "unsendable", {})
        r = self.host.post(b, key=KEY)
        rid = r.headers["x-request-id"]
        self.assertIn(rid, r.json()["output"]["text"])
        line = self.host.wait_for(r"req=%s .*failure=reply" % rid)
        self.assertIn("output.buttons[1].action: cannot encode a function", line)
        self.assertServing()

    def test_wrong_method(self):
        for method in ("GET", "PUT", "DELETE", "PATCH"):
            r = self.host.request(method, "/")
            self.assertError(r, 405, "method not allowed")
            self.assertEqual(r.headers.get("allow"), "POST")
        r = self.host.request("POST", "/healthz")
        self.assertError(r, 405)
        self.assertServing()

    def test_wrong_path(self):
        r = self.host.post(b"{}", signature="x", headers={})
        self.assertEqual(r.status, 401)
        r = self.host.request("POST", "/cliq/hooks", b"{}")
        self.assertError(r, 404, "no such path")
        self.assertServing()

    def raw_post(self, headers, b):
        """POSTs b with headers as given (a list of pairs: names in any case,
        repeated names), and returns (status, headers in lowercase)."""
        head = "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        head += f"Content-Length: {len(b)}\r\n\r\n"
        with socket.create_connection(("127.0.0.1", self.host.port), timeout=10) as s:
            s.sendall(head.encode() + b)
            got = b""
            while chunk := s.recv(65536):
                got += chunk
        lines = got.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
        status = int(lines[0].split()[1])
        return status, {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}

    def test_headers_in_any_case_and_the_first_of_two(self):
        # The host reads its headers in one pass: names in any case, and of
        # a repeated header the first, as a lookup by name gives.
        bad = KEY.sign(b"other")
        b = json.dumps(self.good(arguments="1")).encode()  # each call new to the replay check
        status, h = self.raw_post([("x-cliq-SIGNATURE", KEY.sign(b)), ("x-request-id", "lower-7"),
                                   ("X-Request-Id", "second-8"),
                                   ("content-type", "application/json")], b)
        self.assertEqual((status, h["x-request-id"]), (200, "lower-7"))
        b = json.dumps(self.good(arguments="2")).encode()
        status, _ = self.raw_post([("X-Cliq-Signature", bad), ("X-Cliq-Signature", KEY.sign(b))], b)
        self.assertEqual(status, 401)
        b = json.dumps(self.good(arguments="3")).encode()
        status, _ = self.raw_post([("X-Cliq-Signature", KEY.sign(b)), ("X-Cliq-Signature", bad)], b)
        self.assertEqual(status, 200)
        self.assertServing()

    def test_a_nul_in_the_path_is_refused(self):
        # libmicrohttpd decodes %00, and a path that ends there would be
        # taken for the one before it ("/%00x" for "/").
        b = json.dumps(self.good()).encode()
        for path in ("/%00x", "/%00", "/hooks/x%00y"):
            with self.subTest(path=path):
                r = self.host.request("POST", path, b, {"X-Cliq-Signature": KEY.sign(b),
                                                         "Content-Type": "application/json"})
                self.assertError(r, 400, "%00")
        self.assertServing()

    def test_request_id_from_a_proxy(self):
        b = self.good()
        r = self.host.post(b, key=KEY, headers={"X-Request-Id": "edge-42"})
        self.assertEqual(r.headers["x-request-id"], "edge-42")
        r = self.host.post(b, key=KEY, headers={"X-Request-Id": "bad id\twith spaces"})
        self.assertRegex(r.headers["x-request-id"], r"^[0-9a-f]{16}$")

    def test_health(self):
        r = self.host.request("GET", "/healthz")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json(), {"status": "ok"})
        self.assertEqual(self.host.request("HEAD", "/healthz").status, 200)


class Keys(unittest.TestCase):
    def test_rotation(self):
        pem_file = OTHER.pub_pem
        host = Host(scripts=SCRIPTS, keys=[KEY.spki, pem_file])
        try:
            # Three calls: the same body twice would be a replay, whichever
            # key signed it.
            b = [body("command", "execution_handler", "cmd", {"arguments": a}) for a in "xyz"]
            r1 = host.post(b[0], key=KEY)
            r2 = host.post(b[1], key=OTHER)
            r3 = host.post(b[2], key=STRANGER)
            self.assertEqual(r1.status, 200)
            self.assertEqual(r2.status, 200)
            self.assertEqual(r3.status, 401)
            # The log says which key verified, so operators see when the
            # old key stops being used.
            self.assertIn("key=1", host.wait_for("req=%s .*status" % r1.headers["x-request-id"]))
            self.assertIn("key=2", host.wait_for("req=%s .*status" % r2.headers["x-request-id"]))
        finally:
            self.assertEqual(host.stop(), 0)

    def test_key_as_pasted_with_line_breaks_in_a_file(self):
        wrapped = "\n".join(KEY.spki[i:i + 64] for i in range(0, len(KEY.spki), 64))
        with tempfile.NamedTemporaryFile("w", suffix=".pub", delete=False) as f:
            f.write("  " + wrapped + "\n\n")
        host = Host(scripts=SCRIPTS, keys=[f.name])
        try:
            r = host.post(body("command", "execution_handler", "cmd", {}), key=KEY)
            self.assertEqual(r.status, 200)
        finally:
            host.stop()
            os.unlink(f.name)

    def test_a_bad_key_stops_the_start_and_says_which(self):
        host = Host(scripts=SCRIPTS, keys=[KEY.spki, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"
                                            "14O1bOavDLetgBr4p4VI91yg5YdDjxxXGZbpoBFtg5OTlY0J"],
                    wait=False)
        rc = host.proc.wait(15)
        host.stop()
        self.assertNotEqual(rc, 0)
        self.assertIn("key 2", host.log())
        self.assertIn("cannot start", host.log())

    def test_a_missing_key_file_is_named(self):
        host = Host(scripts=SCRIPTS, keys=["keys/next.pub"], wait=False)
        self.assertNotEqual(host.proc.wait(15), 0)
        host.stop()
        self.assertIn("key 1 (keys/next.pub): no such file", host.log())
        # And what to do about it.
        self.assertIn("extension's public key from Cliq", host.log())
        self.assertIn("cliqhost keygen", host.log())

    def test_zoho_sample_key_loads_and_its_signature_is_refused(self):
        with open(os.path.join(HERE, "zoho_sample.json")) as f:
            sample = json.load(f)
        host = Host(scripts=SCRIPTS, keys=[sample["key"]])
        try:
            r = host.post(sample["body"].encode(), signature=sample["signature"])
            self.assertEqual(r.status, 401)
            self.assertIn("does not match", r.json()["error"])
        finally:
            self.assertEqual(host.stop(), 0)

    def test_no_key_refuses_to_start(self):
        host = Host(scripts=SCRIPTS, wait=False)
        self.assertEqual(host.proc.wait(15), 2)
        host.stop()
        self.assertIn("no Cliq public key configured", host.log())


class DevelopmentSwitch(unittest.TestCase):
    def test_no_verify_only_on_loopback(self):
        host = Host("--no-verify", scripts=SCRIPTS, listen="0.0.0.0:0", wait=False)
        self.assertEqual(host.proc.wait(15), 2)
        host.stop()
        self.assertIn("only allowed on a loopback address", host.log())

    def test_no_verify_warns_loudly_and_serves(self):
        host = Host("--no-verify", scripts=SCRIPTS)
        try:
            self.assertIsNotNone(host.wait_for("SIGNATURE CHECKS ARE OFF"))
            r = host.post(body("command", "execution_handler", "cmd", {}))
            self.assertEqual(r.status, 200)
        finally:
            self.assertEqual(host.stop(), 0)


class Lifecycle(unittest.TestCase):
    def test_sigterm_and_sigint_stop_cleanly(self):
        for sig in (signal.SIGTERM, signal.SIGINT):
            host = Host(scripts=SCRIPTS, keys=[KEY.spki])
            r = host.post(body("command", "execution_handler", "cmd", {}), key=KEY)
            self.assertEqual(r.status, 200)
            self.assertEqual(host.stop(sig), 0)
            self.assertIn("stopped", host.log())
            self.assertEqual(host.sanitizer_reports(), [])

    def test_keep_alive_connection_serves_many_calls(self):
        host = Host(scripts=SCRIPTS, keys=[KEY.spki])
        try:
            conn = http.client.HTTPConnection("127.0.0.1", host.port, timeout=10)
            for i in range(20):
                b = json.dumps(body("command", "execution_handler", "cmd",
                                    {"arguments": str(i)})).encode()
                conn.request("POST", "/", b, {"X-Cliq-Signature": KEY.sign(b)})
                r = conn.getresponse()
                self.assertEqual(r.status, 200)
                r.read()
            conn.close()
        finally:
            self.assertEqual(host.stop(), 0)


if __name__ == "__main__":
    unittest.main()
