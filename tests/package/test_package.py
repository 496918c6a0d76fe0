"""The installed layout and the Debian package, as a user gets them.

`cmake --install` of the build tree into a temporary DESTDIR with prefix
/usr (and /usr/local): every file where a Debian admin looks for it, the
installed binary finding the installed lualib/ (not the source tree's), and
the installed config, example command and binary answering a signed call.
Then `cpack -G DEB`: the package's control data, conffiles and maintainer
scripts, and `lintian` on it with no errors (skipped when lintian is not
installed; ./dev.sh test installs it). And the README's example configs:
Configuration's starts as written, and the production path's is the
installed one.

CLIQHOST_BUILD_DIR names the configured build tree and CLIQHOST_BIN its
binary (CTest sets both).
"""

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import hostlib  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.abspath(os.environ.get("CLIQHOST_BUILD_DIR", os.path.join(REPO, "build")))


def install(prefix):
    """Installs the build tree with prefix into a new DESTDIR; returns it."""
    dest = tempfile.mkdtemp(prefix="cliqhost-install-")
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix],
                       env=dict(os.environ, DESTDIR=dest), capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("cmake --install failed:\n" + r.stdout + r.stderr)
    return dest


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


class InstallUsr(unittest.TestCase):
    """cmake --install with prefix /usr, as the package has it."""

    @classmethod
    def setUpClass(cls):
        cls.dest = install("/usr")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def path(self, p):
        return os.path.join(self.dest, p.lstrip("/"))

    def read(self, p):
        with open(self.path(p), encoding="utf-8") as f:
            return f.read()

    def test_layout(self):
        for p in ["/usr/bin/cliqhost", "/usr/share/cliqhost/lualib/cliq/message.lua",
                  "/usr/share/cliqhost/lualib/cliq/args.lua", "/etc/cliqhost/cliqhost.lua",
                  "/etc/cliqhost/scripts/commands/hello.lua", "/etc/default/cliqhost",
                  "/lib/systemd/system/cliqhost.service", "/usr/share/doc/cliqhost/README.md",
                  "/usr/share/doc/cliqhost/copyright", "/usr/share/cliqhost/types/host.lua",
                  "/usr/share/cliqhost/editor/luarc.json", "/usr/share/cliqhost/editor/luacheckrc",
                  "/usr/share/doc/cliqhost/changelog.Debian.gz",
                  "/usr/share/man/man1/cliqhost.1.gz"]:
            self.assertTrue(os.path.isfile(self.path(p)), p + " is not installed")
        self.assertTrue(os.path.isdir(self.path("/etc/cliqhost/keys")))
        self.assertTrue(os.access(self.path("/usr/bin/cliqhost"), os.X_OK))
        # The webhook tokens' file is readable by root alone.
        self.assertEqual(mode(self.path("/etc/default/cliqhost")), 0o600)
        # Whatever docs/ the tree has goes with the README.
        docs = os.path.join(REPO, "docs")
        for root, _, files in os.walk(docs):
            for f in files:
                rel = os.path.relpath(os.path.join(root, f), docs)
                self.assertTrue(os.path.isfile(self.path("/usr/share/doc/cliqhost/" + rel)), rel)

    def test_config_and_unit_name_the_installed_paths(self):
        conf = self.read("/etc/cliqhost/cliqhost.lua")
        self.assertRegex(conf, r'(?m)^scripts\s*=\s*"/etc/cliqhost/scripts"')
        self.assertRegex(conf, r'(?m)^data_dir\s*=\s*"/var/lib/cliqhost"')
        self.assertRegex(conf, r'(?m)^keys\s*=\s*\{ "/etc/cliqhost/keys/cliq.pub" \}')
        self.assertRegex(conf, r'(?m)^  default = env "CLIQ_WEBHOOK_TOKEN",')
        unit = self.read("/lib/systemd/system/cliqhost.service")
        self.assertIn("\nExecStart=/usr/bin/cliqhost serve --config /etc/cliqhost/cliqhost.lua\n",
                      unit)
        self.assertIn("\nUser=cliqhost\n", unit)
        self.assertIn("\nEnvironmentFile=-/etc/default/cliqhost\n", unit)
        self.assertIn("\nStateDirectory=cliqhost\n", unit)
        self.assertIn("\nExecReload=/bin/kill -HUP $MAINPID\n", unit)
        # A graceful stop (shutdown_grace_s, 10 s by default) is never cut short.
        grace = int(re.search(r"\nTimeoutStopSec=(\d+)\n", unit).group(1))
        self.assertGreater(grace, 10)

    def test_installed_binary_uses_installed_lualib(self):
        # A module that only the installed lualib/ has: a binary that fell
        # back to the source tree's lualib/ would not find it.
        probe = self.path("/usr/share/cliqhost/lualib/install_probe.lua")
        with open(probe, "w", encoding="utf-8") as f:
            f.write('return { where = "installed" }\n')
        scripts = tempfile.mkdtemp(prefix="cliqhost-install-scripts-")
        os.makedirs(os.path.join(scripts, "commands"))
        with open(os.path.join(scripts, "commands", "probe.lua"), "w", encoding="utf-8") as f:
            f.write('local p = require "install_probe"\n'
                    'return { execution = function() return p.where end }\n')
        try:
            r = subprocess.run([self.path("/usr/bin/cliqhost"), "check", "--scripts", scripts],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            # The build tree's binary (source lualib/) does not see the probe:
            # the check above can fail.
            r = subprocess.run([hostlib.BIN, "check", "--scripts", scripts],
                               capture_output=True, text=True, timeout=60)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("install_probe", r.stdout + r.stderr)
        finally:
            os.unlink(probe)
            shutil.rmtree(scripts, ignore_errors=True)

    def test_installed_config_and_command_answer(self):
        """The installed binary, config and example command answer a signed
        call (the paths under DESTDIR given as flags, which override the
        config's /etc ones; the rest of the config as installed)."""
        keys = tempfile.mkdtemp(prefix="cliqhost-install-keys-")
        data = tempfile.mkdtemp(prefix="cliqhost-install-data-")
        binary = self.path("/usr/bin/cliqhost")
        r = subprocess.run([binary, "keygen", keys], capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        saved, hostlib.BIN = hostlib.BIN, binary
        try:
            host = hostlib.Host("--config", self.path("/etc/cliqhost/cliqhost.lua"),
                                "--data-dir", data,
                                scripts=self.path("/etc/cliqhost/scripts"),
                                keys=[os.path.join(keys, "cliq-dev.pub")])
        finally:
            hostlib.BIN = saved
        try:
            r = subprocess.run([binary, "invoke", "command", "hello", "Ana", "--key",
                                os.path.join(keys, "cliq-dev.pem"), "--url",
                                f"http://127.0.0.1:{host.port}/"],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr + host.log())
            self.assertIn("Hello, *Ana*! cliqhost is answering.", r.stdout)
            # The token whose variable the service's environment lacks is
            # named at start, not dropped.
            self.assertIsNotNone(host.wait_for(r"token 'default' is not configured: "
                                               r"CLIQ_WEBHOOK_TOKEN is unset", timeout=5),
                                 host.log())
        finally:
            self.assertEqual(host.stop(), 0, host.log())
            shutil.rmtree(keys, ignore_errors=True)
            shutil.rmtree(data, ignore_errors=True)


def readme_lua_block(after):
    """The first ```lua block of the README after the line `after`."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    at = text.index("\n" + after + "\n")
    m = re.compile(r"```lua\n(.*?)```", re.S).search(text, at)
    return m.group(1)


def lua_statements(text):
    """Lua text without comments and with its spacing collapsed."""
    text = re.sub(r"--[^\n]*", "", text)
    return re.sub(r"\s+", " ", text).strip()


class ReadmeConfigs(unittest.TestCase):
    """The README's example configs start as written."""

    def test_configuration_example_starts(self):
        """Configuration's example, saved as cliqhost.lua in the repository
        (here: a folder holding the example scripts and the development key
        that ./dev.sh serve makes, build/dev/cliq-dev.pub)."""
        work = tempfile.mkdtemp(prefix="cliqhost-readme-")
        data = tempfile.mkdtemp(prefix="cliqhost-readme-data-")
        cwd = os.getcwd()
        try:
            os.symlink(os.path.join(REPO, "scripts"), os.path.join(work, "scripts"))
            r = subprocess.run([hostlib.BIN, "keygen", os.path.join(work, "build", "dev")],
                               capture_output=True, text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            with open(os.path.join(work, "cliqhost.lua"), "w", encoding="utf-8") as f:
                f.write(readme_lua_block("## Configuration"))
            os.chdir(work)
            try:
                host = hostlib.Host("--config", "cliqhost.lua", "--data-dir", data, wait=False)
            finally:
                os.chdir(cwd)
            line = host.wait_for(r"listening on|cannot start|error", timeout=30)
            rc = host.stop()
            self.assertIsNotNone(line, host.log())
            self.assertIn("listening on", line, host.log())
            self.assertEqual(rc, 0, host.log())
        finally:
            shutil.rmtree(work, ignore_errors=True)
            shutil.rmtree(data, ignore_errors=True)

    def test_production_config_is_the_installed_one(self):
        """The production path's config is the file the install puts in
        /etc/cliqhost (which InstallUsr serves), statement for statement."""
        dest = install("/usr")
        try:
            with open(os.path.join(dest, "etc/cliqhost/cliqhost.lua"), encoding="utf-8") as f:
                installed = f.read()
        finally:
            shutil.rmtree(dest, ignore_errors=True)
        self.assertEqual(lua_statements(readme_lua_block("### 3. The config")),
                         lua_statements(installed))


class InstallLocal(unittest.TestCase):
    """cmake --install with prefix /usr/local (a from-source install beside
    Debian's packages): everything under the prefix, and the unit and config
    name those paths."""

    def test_layout(self):
        dest = install("/usr/local")
        try:
            p = lambda s: os.path.join(dest, s.lstrip("/"))  # noqa: E731
            for f in ["/usr/local/bin/cliqhost", "/usr/local/etc/cliqhost/cliqhost.lua",
                      "/usr/local/etc/cliqhost/scripts/commands/hello.lua",
                      "/usr/local/share/cliqhost/lualib/cliq/message.lua",
                      "/usr/local/lib/systemd/system/cliqhost.service"]:
                self.assertTrue(os.path.isfile(p(f)), f + " is not installed")
            self.assertFalse(os.path.exists(p("/etc")), "wrote outside the prefix")
            with open(p("/usr/local/lib/systemd/system/cliqhost.service"), encoding="utf-8") as f:
                self.assertIn("ExecStart=/usr/local/bin/cliqhost serve --config "
                              "/usr/local/etc/cliqhost/cliqhost.lua\n", f.read())
            with open(p("/usr/local/etc/cliqhost/cliqhost.lua"), encoding="utf-8") as f:
                self.assertIn('scripts  = "/usr/local/etc/cliqhost/scripts"', f.read())
        finally:
            shutil.rmtree(dest, ignore_errors=True)


class DebianPackage(unittest.TestCase):
    """cpack -G DEB from the build tree, then lintian."""

    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="cliqhost-deb-")
        r = subprocess.run(["cpack", "-G", "DEB", "--config",
                            os.path.join(BUILD, "CPackConfig.cmake"), "-B", cls.out],
                           capture_output=True, text=True, cwd=BUILD)
        if r.returncode != 0:
            raise AssertionError("cpack failed:\n" + r.stdout + r.stderr)
        debs = [f for f in os.listdir(cls.out) if re.match(r"cliqhost_.*_[a-z0-9]+\.deb$", f)]
        if len(debs) != 1:
            raise AssertionError(f"expected one cliqhost_*.deb in {cls.out}: {os.listdir(cls.out)}")
        cls.deb = os.path.join(cls.out, debs[0])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.out, ignore_errors=True)

    def control(self, name):
        return subprocess.run(["dpkg-deb", "--info", self.deb, name], capture_output=True,
                              text=True, check=True).stdout

    def test_control(self):
        control = self.control("control")
        self.assertRegex(control, r"(?m)^Package: cliqhost$")
        depends = re.search(r"(?m)^Depends: (.*)$", control).group(1)
        for lib in ["libc6", "liblua5.4-0", "libmicrohttpd12", "libssl3", "libcjson1",
                    "libcurl4", "libsqlite3-0", "libhiredis0.14", "adduser", "tzdata"]:
            self.assertRegex(depends, r"(^|, )" + re.escape(lib) + r"( |,|$)", depends)

    def test_files_and_conffiles(self):
        listing = subprocess.run(["dpkg-deb", "--contents", self.deb], capture_output=True,
                                 text=True, check=True).stdout
        for f in ["./usr/bin/cliqhost", "./usr/share/cliqhost/lualib/cliq/message.lua",
                  "./etc/cliqhost/cliqhost.lua", "./etc/cliqhost/scripts/commands/hello.lua",
                  "./etc/cliqhost/keys/", "./lib/systemd/system/cliqhost.service",
                  "./usr/share/doc/cliqhost/copyright"]:
            self.assertRegex(listing, r"(?m) " + re.escape(f) + "$")
        self.assertNotIn("/usr/local", listing)
        conffiles = self.control("conffiles").split()
        self.assertEqual(sorted(conffiles), ["/etc/cliqhost/cliqhost.lua",
                                             "/etc/cliqhost/scripts/commands/hello.lua",
                                             "/etc/default/cliqhost"])

    def test_maintainer_scripts(self):
        postinst = self.control("postinst")
        self.assertIn("adduser --system --group", postinst)
        self.assertIn("chown cliqhost:cliqhost /var/lib/cliqhost", postinst)
        # The unit is installed, not enabled or started.
        for s in ["postinst", "prerm", "postrm"]:
            text = self.control(s)
            self.assertNotRegex(text, r"(?<!try-)\b(enable|start|restart)\b.*cliqhost", s)
        # An upgrade restarts a service that runs (only one that runs).
        self.assertRegex(postinst, r'if \[ -n "\$2" \]; then\s+deb-systemd-invoke try-restart '
                                   r'cliqhost\.service')
        # Purge takes `systemctl enable`'s links with it.
        self.assertIn("deb-systemd-helper purge cliqhost.service", self.control("postrm"))

    def test_lintian(self):
        if not shutil.which("lintian"):
            self.skipTest("lintian is not installed (./dev.sh test installs it)")
        r = subprocess.run(["lintian", "--fail-on", "error", self.deb], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertNotRegex(r.stdout, r"(?m)^E: ")


if __name__ == "__main__":
    unittest.main()
