"""What surprised a new operator (issue 13, points 4, 5 and 7, and a
data_dir the host's user cannot write): the real binary, the command line
and dev.sh, as a user runs them.

- Two hosts on one data_dir (the development host and the production
  config): a host never fails a post for a token it does not know; it
  keeps the post, says once why, and a host with the token delivers it.
- Tokens read with `env "NAME"` whose variable is unset are listed as not
  configured, named in a warning at start and on SIGHUP, and a post with
  one fails saying which variable is unset.
- Outbox ids are never reused, `outbox list` says what is true after a
  drop, and `outbox retry` keeps the post's creation time.
- A data_dir the host's user cannot write is named with what to do.
- dev.sh serve keeps its state apart and keeps its development key when a
  config names no keys.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import unittest

from fake_cliq import FakeCliq, channel_path
from hostlib import BIN, HERE, REPO, Host, Key, run_cli
from test_outbound import command

SCRIPTS = os.path.join(HERE, "outbound_scripts")
KEY = Key("main")
SECRET = "1001.e2eOperator.8d2f6b1c4e9a7d3f5b60"
OTHER = "1001.e2eOperOther.3a7c9e1b5d2f8a4c6e71"
UNSET = "CLIQHOST_E2E_OPERATOR_UNSET"
os.environ.pop(UNSET, None)


def outbox_list(config=None, data_dir=None):
    args = ["outbox", "list"]
    if config:
        args += ["--config", config]
    if data_dir:
        args += ["--data-dir", data_dir]
    p = run_cli(*args)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout + p.stderr


def lines_for(text, name):
    return [line for line in text.splitlines() if name in line]


def post_id(line):
    return int(re.match(r"\s*(\d+)\b", line).group(1))


class SharedDataDir(unittest.TestCase):
    """The development host (no config, no tokens) and the production
    config on one data_dir: the post waits for the host that has its
    token."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-operator-")
        self.data = os.path.join(self.dir, "data")
        self.fake = FakeCliq(tokens=[SECRET, OTHER]).start()
        self.hosts = []

    def tearDown(self):
        for h in self.hosts:
            h.stop()
        self.fake.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def config(self, filename, tokens):
        path = os.path.join(self.dir, filename)
        with open(path, "w") as f:
            f.write(f'cliq_api = "{self.fake.url}"\ndata_dir = "{self.data}"\n'
                    f"post_rate_per_min = 0\ntokens = {{ {tokens} }}\n")
        return path

    def host(self, *flags):
        h = Host(*flags, scripts=SCRIPTS, keys=[KEY.spki])
        self.hosts.append(h)
        return h

    def queue_while_cliq_is_down(self, config, name, token="default"):
        """`cliqhost post` with Cliq down: it gives up waiting with the post
        queued (one attempt made)."""
        self.fake.down()
        p = run_cli("post", "channel", name, "from cron", "--token", token, "--wait", "1",
                    "--config", config)
        self.assertEqual(p.returncode, 75, p.stdout + p.stderr)
        self.fake.up()
        line = lines_for(outbox_list(config), name)
        self.assertEqual(len(line), 1, line)
        self.assertIn("attempts=1", line[0])
        return post_id(line[0])

    def wait_held(self, host, pid, token):
        """The host's one log line saying why post pid is held."""
        line = host.wait_for(rf"post {pid} waits for token '{token}'", timeout=15)
        self.assertIsNotNone(line, host.log()[-3000:])
        return line

    def assertHeldOnce(self, host, pid, token, name):
        self.wait_held(host, pid, token)
        # Several of the outbox's polls (1 s each) later: still one line,
        # the post still queued, no attempt counted, nothing sent.
        time.sleep(3)
        said = [l for l in host.lines if re.search(rf"post {pid} waits for token", l)]
        self.assertEqual(len(said), 1, said)
        line = lines_for(outbox_list(data_dir=self.data), name)
        self.assertEqual(len(line), 1, line)
        self.assertNotIn("failed", line[0])
        self.assertIn("held", line[0])
        self.assertIn(f"'{token}'", line[0])
        self.assertIn("attempts=1", line[0])
        self.assertEqual(self.fake.count(channel_path(name)), 0)  # Cliq was down for the one try

    def test_a_host_without_the_token_leaves_the_post_to_one_with_it(self):
        prod = self.config("cliqhost.lua", f'default = "{SECRET}"')
        name = "e2e-operator-shared"
        pid = self.queue_while_cliq_is_down(prod, name)
        dev = self.host("--data-dir", self.data)  # no config: no tokens
        self.assertHeldOnce(dev, pid, "default", name)
        self.assertIn("does not name", self.wait_held(dev, pid, "default"))
        # The production host delivers it, the development one still running.
        self.host("--config", prod)
        reqs = self.fake.wait_requests(1, channel_path(name), timeout=20)
        self.assertEqual([r.status for r in reqs], [204], reqs)
        deadline = time.monotonic() + 20
        while lines_for(outbox_list(prod), name) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(lines_for(outbox_list(prod), name), [])

    def test_a_token_removed_by_sighup_holds_its_posts(self):
        both = f'default = "{SECRET}", alerts = "{OTHER}"'
        cfg = self.config("cliqhost.lua", both)
        cron = self.config("cron.lua", both)  # what cron's `cliqhost post` reads
        h = self.host("--config", cfg)
        self.config("cliqhost.lua", f'default = "{SECRET}"')  # alerts removed
        mark = len(h.lines)
        h.proc.send_signal(signal.SIGHUP)
        self.assertIsNotNone(h.wait_for("SIGHUP: config reloaded", start=mark), h.log())
        name = "e2e-operator-sighup"
        pid = self.queue_while_cliq_is_down(cron, name, token="alerts")
        self.assertHeldOnce(h, pid, "alerts", name)
        # The token back: the same host delivers it.
        self.config("cliqhost.lua", both)
        h.proc.send_signal(signal.SIGHUP)
        reqs = self.fake.wait_requests(1, channel_path(name), timeout=20)
        self.assertEqual([r.status for r in reqs], [204], reqs)


class OutboxCommands(unittest.TestCase):
    """`cliqhost outbox`: ids, what the empty list says, retry."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-operator-")
        self.data = os.path.join(self.dir, "data")
        self.fake = FakeCliq(tokens=[SECRET]).start()
        self.cfg = os.path.join(self.dir, "cliqhost.lua")
        with open(self.cfg, "w") as f:
            f.write(f'cliq_api = "{self.fake.url}"\ndata_dir = "{self.data}"\n'
                    f'tokens = {{ default = "{SECRET}" }}\n')

    def tearDown(self):
        self.fake.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def failed_post(self, name, answers=1):
        """Posts to a channel Cliq does not know; returns the failed post's id."""
        self.fake.answer(channel_path(name), [(404, {}, {"message": "channel not found"})] * answers)
        p = run_cli("post", "channel", name, "hello", "--config", self.cfg)
        self.assertEqual(p.returncode, 1, p.stdout + p.stderr)
        line = lines_for(outbox_list(self.cfg), name)
        self.assertEqual(len(line), 1, line)
        return post_id(line[0])

    def test_ids_are_never_reused(self):
        first = self.failed_post("e2e-ids-a")
        p = run_cli("outbox", "drop", str(first), "--config", self.cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        second = self.failed_post("e2e-ids-b")
        self.assertNotEqual(first, second)
        self.assertGreater(second, first)

    def test_a_database_from_before_keeps_its_posts_and_reuses_no_id(self):
        # The first schema: ids were rowids, reused once the highest was deleted.
        os.makedirs(self.data)
        db = sqlite3.connect(os.path.join(self.data, "outbox.db"))
        db.executescript("""
            CREATE TABLE posts(id INTEGER PRIMARY KEY, created_ms INTEGER NOT NULL,
              token TEXT NOT NULL, kind INTEGER NOT NULL, target TEXT NOT NULL, as_bot TEXT,
              appkey TEXT, base TEXT NOT NULL, body BLOB NOT NULL, req_id TEXT NOT NULL DEFAULT '',
              state TEXT NOT NULL DEFAULT 'queued', attempts INTEGER NOT NULL DEFAULT 0,
              next_ms INTEGER NOT NULL DEFAULT 0, lease_ms INTEGER NOT NULL DEFAULT 0,
              last_status INTEGER NOT NULL DEFAULT 0, last_error TEXT);
            CREATE INDEX posts_due ON posts(state, next_ms);
        """)
        db.execute("INSERT INTO posts(id,created_ms,token,kind,target,base,body,state,attempts,"
                   "last_status,last_error) VALUES(7,1700000000000,'default',0,'e2e-old','x',"
                   "'{\"text\":\"old\"}','failed',1,404,'HTTP 404: channel not found')")
        db.commit()
        db.close()
        line = lines_for(outbox_list(self.cfg), "e2e-old")
        self.assertEqual(len(line), 1, line)
        self.assertEqual(post_id(line[0]), 7)
        self.assertIn("channel not found", line[0])
        p = run_cli("outbox", "drop", "7", "--config", self.cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertGreater(self.failed_post("e2e-after-old"), 7)

    def test_the_empty_list_claims_no_delivery_after_a_drop(self):
        pid = self.failed_post("e2e-dropped")
        p = run_cli("outbox", "drop", str(pid), "--config", self.cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        text = outbox_list(self.cfg)
        self.assertIn("empty", text)
        self.assertNotIn("deliver", text)

    def test_retry_keeps_the_creation_time(self):
        pid = self.failed_post("e2e-retry-created", answers=2)
        db_path = os.path.join(self.data, "outbox.db")

        def created():
            db = sqlite3.connect(db_path)
            try:
                return db.execute("SELECT created_ms FROM posts WHERE id=?", (pid,)).fetchone()[0]
            finally:
                db.close()

        before = created()
        shown = re.search(r"created=\S+", lines_for(outbox_list(self.cfg), "e2e-retry-created")[0])
        time.sleep(1.1)  # the list shows seconds
        p = run_cli("outbox", "retry", str(pid), "--config", self.cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(created(), before)
        # A host sends it again (Cliq still says 404): failed again, same creation time.
        h = Host("--config", self.cfg, scripts=SCRIPTS, keys=[KEY.spki])
        try:
            self.fake.wait_requests(2, channel_path("e2e-retry-created"), timeout=20)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                line = lines_for(outbox_list(self.cfg), "e2e-retry-created")
                if line and "failed" in line[0] and "attempts=1" in line[0]:
                    break
                time.sleep(0.2)
            self.assertIn("failed", line[0], line)
            self.assertEqual(re.search(r"created=\S+", line[0]).group(0), shown.group(0))
            self.assertEqual(created(), before)
        finally:
            h.stop()


class TokensFromTheEnvironment(unittest.TestCase):
    """`env "NAME"` in the config: an unset variable leaves the token listed
    as not configured, warned about at start and on SIGHUP, and a post
    naming it fails saying which variable is unset."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-operator-")
        self.fake = FakeCliq(tokens=[SECRET]).start()
        self.cfg = os.path.join(self.dir, "cliqhost.lua")
        os.environ["CLIQHOST_E2E_OPERATOR_SET"] = SECRET
        with open(self.cfg, "w") as f:
            f.write(f'cliq_api = "{self.fake.url}"\ndata_dir = "{self.dir}/data"\n'
                    f'tokens = {{\n  default = env "{UNSET}",\n'
                    f'  alerts = {{ token = env "{UNSET}_2" }},\n'
                    f'  ok = env "CLIQHOST_E2E_OPERATOR_SET",\n'
                    f'  old = os.getenv("CLIQHOST_E2E_OPERATOR_SET"),\n}}\n')

    def tearDown(self):
        self.fake.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_tokens_lists_each_with_its_variable(self):
        p = run_cli("tokens", "--config", self.cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        out = p.stdout
        self.assertRegex(out, rf"(?m)^default\s+not configured: {UNSET} is unset")
        self.assertRegex(out, rf"(?m)^alerts\s+not configured: {UNSET}_2 is unset")
        self.assertRegex(out, r"(?m)^ok\s+active")
        self.assertRegex(out, r"(?m)^old\s+active")
        self.assertNotIn(SECRET, out)

    def test_post_with_an_unset_token_says_which_variable(self):
        p = run_cli("post", "channel", "e2e-env", "hi", "--config", self.cfg)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"token 'default' is not configured: {UNSET} is unset", p.stderr)
        p = run_cli("post", "channel", "e2e-env", "hi", "--token", "ok", "--config", self.cfg)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)

    def test_the_host_warns_at_start_and_on_sighup_and_scripts_get_the_reason(self):
        h = Host("--config", self.cfg, scripts=SCRIPTS, keys=[KEY.spki])
        try:
            line = h.wait_for(rf"token 'default' is not configured: {UNSET} is unset")
            self.assertIsNotNone(line, h.log())
            # What to do: SIGHUP does not read the environment again.
            self.assertIn("the host restarted", line)
            self.assertNotIn("send SIGHUP", line)
            self.assertIsNotNone(h.wait_for(rf"token 'alerts' is not configured: {UNSET}_2 is "
                                            "unset"), h.log())
            raw = json.dumps(command({"fn": "post_channel", "name": "e2e-env", "msg": "hi",
                                      "opts": {"token": "alerts"}})).encode()
            r = h.request("POST", "/", raw, {"Content-Type": "application/json",
                                             "X-Cliq-Signature": KEY.sign(raw)})
            self.assertEqual(r.status, 200, r)
            out = r.json()["output"]
            self.assertIs(out.get("ok"), False, out)
            self.assertIn(f"token 'alerts' is not configured: {UNSET}_2 is unset", out["err"])
            mark = len(h.lines)
            h.proc.send_signal(signal.SIGHUP)
            self.assertIsNotNone(h.wait_for(rf"token 'default' is not configured: {UNSET} is "
                                            "unset", start=mark), h.log())
        finally:
            self.assertEqual(h.stop(), 0)
        self.assertNotIn(SECRET, h.log())

    def test_env_outside_tokens_names_the_variable(self):
        with open(self.cfg, "a") as f:
            f.write(f'keys = {{ env "{UNSET}" }}\n')
        p = run_cli("serve", "--config", self.cfg)
        self.assertEqual(p.returncode, 2, p.stdout + p.stderr)
        self.assertRegex(p.stderr, rf"'keys'.*{UNSET}.*unset")


@unittest.skipUnless(os.geteuid() == 0, "needs root to run the binary as another user")
class DataDirNotWritable(unittest.TestCase):
    """The host's user cannot write data_dir: every command says so and
    what to do."""

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("needs root, to run the binary as user nobody")
        self.dir = tempfile.mkdtemp(prefix="cliqhost-e2e-operator-")
        os.chmod(self.dir, 0o755)
        # A copy nobody can run wherever the build is (a clone in /root is
        # closed to other users).
        self.bin = os.path.join(self.dir, "cliqhost")
        shutil.copy(BIN, self.bin)
        os.chmod(self.bin, 0o755)
        p = self.as_nobody_in("/", "--version")
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.data = os.path.join(self.dir, "data")
        os.makedirs(self.data)  # root's, 0755: nobody cannot write it

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def as_nobody_in(self, cwd, *args):
        return subprocess.run(["runuser", "-u", "nobody", "--", self.bin, *args],
                              capture_output=True, text=True, timeout=30, cwd=cwd)

    def as_nobody(self, *args):
        return self.as_nobody_in(self.dir, *args)

    def assertSaysWhatToDo(self, p, path):
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn(f"data_dir {path} is not writable by user nobody (uid ", p.stderr)
        self.assertIn("chown", p.stderr)
        self.assertIn("--data-dir", p.stderr)
        self.assertNotIn("unable to open database file", p.stderr)

    def test_serve(self):
        p = self.as_nobody("serve", "--listen", "127.0.0.1:0", "--key", KEY.spki,
                           "--scripts", SCRIPTS, "--data-dir", self.data)
        self.assertSaysWhatToDo(p, self.data)
        self.assertIn("cannot start", p.stderr)

    def test_post_and_outbox(self):
        cfg = os.path.join(self.dir, "cliqhost.lua")
        with open(cfg, "w") as f:
            f.write(f'tokens = {{ default = "{SECRET}" }}\n')
        for args in (("post", "channel", "x", "hi"), ("outbox", "list"), ("tokens",)):
            with self.subTest(args=args):
                p = self.as_nobody(*args, "--config", cfg, "--data-dir", self.data)
                self.assertSaysWhatToDo(p, self.data)

    def test_files_left_by_another_user(self):
        # `cliqhost post` run as root in the service's data_dir left the
        # database and its WAL files root's: the folder is fine, they are not.
        os.chmod(self.data, 0o777)
        for suffix in ("-wal", ""):
            with self.subTest(file="outbox.db" + suffix):
                for name in os.listdir(self.data):
                    os.unlink(os.path.join(self.data, name))
                path = os.path.join(self.data, "outbox.db" + suffix)
                with open(path, "w"):
                    pass
                os.chown(path, 0, 0)
                os.chmod(path, 0o600)
                p = self.as_nobody("outbox", "list", "--data-dir", self.data)
                self.assertNotEqual(p.returncode, 0)
                self.assertIn(f"data_dir file {path} is not writable by user nobody (uid ",
                              p.stderr)
                self.assertIn("chown -R", p.stderr)

    def test_a_data_dir_of_another_user_says_run_as_that_user(self):
        # The service's folder (user daemon's here), an operator's command
        # run as someone else: handing the folder over would break the
        # service, so the way is to run the command as its owner.
        os.chown(self.data, 1, 1)
        os.chmod(self.data, 0o750)
        p = self.as_nobody("outbox", "list", "--data-dir", self.data)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"data_dir {self.data} belongs to user daemon", p.stderr)
        self.assertIn("runuser -u daemon -- cliqhost", p.stderr)
        self.assertNotIn("chown", p.stderr)

    def test_a_read_only_data_dir_says_so(self):
        os.chmod(self.data, 0o777)
        # A mount namespace of its own, whose mounts do not propagate back
        # (in a chroot, where / is no mount point, unshare cannot make them
        # private itself: the mount holding the folder is made so).
        p = subprocess.run(["unshare", "-m", "--propagation", "unchanged", "sh", "-c",
                            'mount --make-rprivate "$(findmnt -n -o TARGET -T "$1")" && '
                            'mount --bind -o ro "$1" "$1" && exec runuser -u nobody -- "$2" '
                            'outbox list --data-dir "$1"', "sh", self.data, self.bin],
                           capture_output=True, text=True, timeout=30, cwd=self.dir)
        if "permission denied" in p.stderr.lower() and "cliqhost" not in p.stderr:
            self.skipTest("no mount namespace here: " + p.stderr)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"data_dir {self.data} is on a read-only file system", p.stderr)
        self.assertIn("ReadWritePaths=", p.stderr)
        self.assertNotIn("chown", p.stderr)

    def test_a_data_dir_that_cannot_be_created(self):
        missing = os.path.join(self.data, "sub")
        p = self.as_nobody("outbox", "list", "--data-dir", missing)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(f"data_dir {missing} does not exist and user nobody (uid ", p.stderr)
        self.assertIn("cannot create it", p.stderr)


class DevServe(unittest.TestCase):
    """`./dev.sh serve`: its state under build/dev/, and its development key
    unless the user chose keys (CLIQHOST_DEV_DRY_RUN prints the command it
    would run instead of building and running it)."""

    def dev(self, *args):
        p = subprocess.run([os.path.join(REPO, "dev.sh"), "serve", *args], capture_output=True,
                           text=True, timeout=30, env=dict(os.environ, CLIQHOST_DEV_DRY_RUN="1"))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        return p.stdout.strip().split()

    def config(self, text):
        d = tempfile.mkdtemp(prefix="cliqhost-e2e-dev-")
        self.addCleanup(shutil.rmtree, d)
        path = os.path.join(d, "cliqhost.lua")
        with open(path, "w") as f:
            f.write(text)
        return path

    def flag_values(self, argv, flag):
        return [argv[i + 1] for i, a in enumerate(argv) if a == flag]

    def test_plain_serve_keeps_its_state_under_build_dev(self):
        argv = self.dev()
        self.assertEqual(self.flag_values(argv, "--data-dir"), ["build/dev/data"])
        self.assertEqual(self.flag_values(argv, "--key"), ["build/dev/cliq-dev.pub"])

    def test_the_users_data_dir_or_config_wins(self):
        self.assertEqual(self.flag_values(self.dev("--data-dir", "/tmp/x"), "--data-dir"),
                         ["/tmp/x"])
        cfg = self.config('listen = "127.0.0.1:8081"\n')
        self.assertEqual(self.flag_values(self.dev("--config", cfg), "--data-dir"), [])

    def test_a_config_without_keys_keeps_the_development_key(self):
        cfg = self.config('listen = "127.0.0.1:8081"\n')
        self.assertEqual(self.flag_values(self.dev("--config", cfg), "--key"),
                         ["build/dev/cliq-dev.pub"])

    def test_a_config_with_keys_uses_them(self):
        cfg = self.config('keys = { "keys/cliq.pub" }\n')
        self.assertEqual(self.flag_values(self.dev("--config", cfg), "--key"), [])
        self.assertEqual(self.flag_values(self.dev("--key", "k.pub"), "--key"), ["k.pub"])


if __name__ == "__main__":
    unittest.main()
