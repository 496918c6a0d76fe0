"""End-to-end tests of the outbox's caps (issue 12, finding 8): a post
larger than outbox_max_post_bytes is refused, and so is a post that would
take a token's queue or the whole outbox past its posts or bytes; a script
sees nil, "outbox full: ...", `cliqhost post` exits 1 saying so, and
/metrics counts what is queued while it is queued. Failed posts kept for
inspection share the total and give way, oldest first, to new posts.

The hosts run against FakeCliq as in test_outbound.py (whose OutboundTest
sets up the fake, the config, the host and the leak checks). To keep posts
queued, Cliq is down (connection refused) until the test brings it up.
"""

import re
import time
import unittest

import test_outbound as ob
from fake_cliq import channel_path


def metric(host, name):
    """The value of the sample `name` (with its labels) on /metrics."""
    r = host.request("GET", "/metrics")
    assert r.status == 200, r
    for line in r.body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} is not on /metrics:\n{r.body.decode()}")


def wait_metric(host, name, value, timeout=90):
    """Waits until the sample reads value; returns what it read last."""
    deadline = time.monotonic() + timeout
    while True:
        got = metric(host, name)
        if got == value or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


QUEUED = 'cliqhost_outbox_posts{state="queued"}'
FAILED = 'cliqhost_outbox_posts{state="failed"}'
QUEUED_BYTES = 'cliqhost_outbox_bytes{state="queued"}'
OK = {"ok": True, "is_true": True}


def text_of_body_bytes(n, tag):
    """A text whose post body ({"text":"..."}) is exactly n bytes."""
    return tag + "x" * (n - len('{"text":""}') - len(tag))


class QueueCaps(ob.OutboundTest):
    """Cliq is down: 5 posts may wait per token, 8 in all."""

    fake_down = True
    extra_config = """
outbox_max_queued_per_token = 5
outbox_max_queued = 8
"""

    def assertFull(self, result, setting, token=None):
        self.assertIs(result.get("ok"), False, result)
        self.assertTrue(result.get("err", "").startswith("outbox full"), result)
        self.assertIn(setting, result["err"])
        if token:
            self.assertIn(f"'{token}'", result["err"])

    def test_posts_past_the_caps_are_refused_until_the_queue_drains(self):
        name = ob.unique("capped")
        msgs = [f"alert {chr(ord('a') + i)}" for i in range(7)]
        out, _ = self.call("post_channel", name, msgs=msgs, token="alerts", wait=False)
        self.assertEqual(out["results"][:5], [OK] * 5, out)
        for r in out["results"][5:]:
            self.assertFull(r, "outbox_max_queued_per_token", "alerts")
        # Counted while they wait, not at the next upkeep.
        self.assertEqual(metric(self.host, QUEUED), 5)

        # Another token has room of its own, until the outbox is full.
        other = ob.unique("capped-other")
        out, _ = self.call("post_channel", other, msgs=["one", "two", "three", "four"],
                           token="opsdesk", wait=False)
        self.assertEqual(out["results"][:3], [OK] * 3, out)
        self.assertFull(out["results"][3], "outbox_max_queued")
        self.assertNotIn("per_token", out["results"][3]["err"])
        # A post that would wait for delivery is refused at once, too.
        out, _ = self.call("post_channel", other, "waiting", token="default")
        self.assertFull(out, "outbox_max_queued")
        self.assertEqual(metric(self.host, QUEUED), 8)

        # `cliqhost post` shares the outbox and its caps.
        p = self.cli("post", "channel", ob.unique("cli-full"), "from cron", "--token", "default",
                     "--wait", "5")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("outbox full", p.stderr)
        self.assertEqual(len(self.outbox_lines(name)), 5)

        # Cliq is back: the queue drains, and only the accepted posts went.
        self.fake.up()
        path = channel_path(name)
        self.assertEqual(len(self.fake.wait_requests(5, path, timeout=90)), 5)
        self.assertEqual(len(self.fake.wait_requests(3, channel_path(other), timeout=90)), 3)
        self.assertEqual(wait_metric(self.host, QUEUED, 0), 0)
        self.assertEqual(sorted(r.json()["text"] for r in self.fake.requests(path)), msgs[:5])
        self.assertEqual(self.fake.count(channel_path(other)), 3)

        # And new posts are taken again.
        out, _ = self.call("post_channel", name, "room again", token="alerts")
        self.assertPosted(out)


class SizeCaps(ob.OutboundTest):
    """A post's size, and the bytes queued per token and in all."""

    fake_down = True
    extra_config = """
outbox_max_post_bytes = 2048
outbox_max_queued_bytes_per_token = 4096
outbox_max_queued_bytes = 5000
"""

    def test_a_post_over_the_size_cap_is_refused(self):
        name = ob.unique("big")
        big = text_of_body_bytes(3000, "big ")
        t0 = time.monotonic()
        out, _ = self.call("post_channel", name, big)  # would wait for delivery
        err = self.assertFailed(out)
        self.assertEqual(err, "outbox: the post is 3000 bytes, over outbox_max_post_bytes (2048)")
        self.assertLess(time.monotonic() - t0, 30, "waited for a post it refused")
        # Far over, as a string or as a table: the host stops encoding at
        # twice the cap.
        for msg in ("y" * 100000, {"text": "card", "card": {"title": "z" * 100000}}):
            out, _ = self.call("post_channel", name, msg)
            self.assertEqual(self.assertFailed(out), "outbox: the post is more than 4160 bytes, "
                             "over outbox_max_post_bytes (2048)")
        out, _ = self.call("post_bot", name, {"text": "y" * 100000}, broadcast=True)
        self.assertIn("over outbox_max_post_bytes (2048)", self.assertFailed(out))
        p = self.cli("post", "channel", name, big, "--wait", "5")
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        self.assertIn("over outbox_max_post_bytes (2048)", p.stderr)
        self.assertEqual(self.outbox_lines(name), [])
        self.assertEqual(metric(self.host, QUEUED), 0)

    def test_queued_bytes_per_token_and_in_all(self):
        name = ob.unique("bytes")
        msgs = [text_of_body_bytes(1500, f"m{i} ") for i in range(3)]
        out, _ = self.call("post_channel", name, msgs=msgs, token="alerts", wait=False)
        self.assertEqual(out["results"][:2], [OK] * 2, out)
        self.assertIs(out["results"][2]["ok"], False, out)
        self.assertRegex(out["results"][2]["err"],
                         r"^outbox full: token 'alerts' has 3000 bytes queued "
                         r"\(outbox_max_queued_bytes_per_token: 4096\)$")
        self.assertEqual(metric(self.host, QUEUED_BYTES), 3000)

        out, _ = self.call("post_channel", name, msgs=msgs[:2], token="opsdesk", wait=False)
        self.assertEqual(out["results"][0], OK, out)
        self.assertRegex(out["results"][1]["err"],
                         r"^outbox full: 4500 bytes queued \(outbox_max_queued_bytes: 5000\)$")
        self.assertEqual(metric(self.host, QUEUED), 3)
        self.assertEqual(metric(self.host, QUEUED_BYTES), 4500)


class FailedPostsGiveWay(ob.OutboundTest):
    """Failed posts are kept within the total, and the oldest give way to
    new posts."""

    extra_config = """
outbox_max_queued = 4
"""

    def test_oldest_failed_posts_make_room(self):
        gone = ob.unique("gone")
        self.fake.answer(channel_path(gone), [404] * 4)
        for i in range(4):
            out, _ = self.call("post_channel", gone, f"lost {i}")
            self.assertIn("404", self.assertFailed(out))
        self.assertEqual(wait_metric(self.host, FAILED, 4), 4)
        lines = self.outbox_lines(gone)
        self.assertEqual(len(lines), 4, lines)
        ids = [ob.post_id(line) for line in lines]

        # The outbox holds 4 posts, all failed: a new one still goes, and
        # the oldest failed one makes room for it.
        out, _ = self.call("post_channel", ob.unique("fresh"), "fresh news")
        self.assertPosted(out)
        lines = self.outbox_lines(gone)
        self.assertEqual([ob.post_id(line) for line in lines], ids[1:], lines)
        self.assertTrue(self.host.wait_for(r"deleted 1 failed post", timeout=10),
                        self.host.log()[-3000:])
        self.assertEqual(metric(self.host, FAILED), 3)
        self.assertTrue(re.search(r"outbox_max_queued\b", self.host.log()))


if __name__ == "__main__":
    unittest.main()
