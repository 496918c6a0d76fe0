"""The console's Content-Security-Policy in headless chromium against a real
host (test_console's setup): the page, its deploy card and a click-through
run with no violation of their own, and a script that slipped into the page
(as a rendering bug would put it there) is refused.

    cd tests/browser && CLIQHOST_BIN=$PWD/../../build/cliqhost python3 -m unittest -v test_console_csp
"""
import unittest

from test_console import Console


class ConsoleCsp(Console):
    def security(self, errors):
        return [e for e in errors if e.startswith("security:")]

    def test_page_runs_within_its_policy(self):
        self.deploy_on_page("api")
        p = self.page
        p.click("#detail .chat .cq-btn[data-action-type='invoke.function']")
        p.wait_for("#detail .answers .answer-head")
        self.assertEqual(self.security(p.take_errors()), [])

    def test_injected_script_is_refused(self):
        p = self.open_console()
        p.take_errors()
        p.evaluate("document.getElementById('detail').innerHTML = "
                   "'<img src=x onerror=\"window.pwned=1\">'; "
                   "var s = document.createElement('script'); s.textContent = 'window.pwned=2'; "
                   "document.body.appendChild(s); 0")
        p.wait_for_error("Content Security Policy")
        self.assertFalse(p.evaluate("window.pwned !== undefined"))
        errors = self.security(p.take_errors())
        self.assertTrue(any("inline" in e for e in errors), errors)


def load_tests(loader, tests, pattern):
    """This module's own tests, not test_console's that ConsoleCsp inherits."""
    names = [n for n in vars(ConsoleCsp) if n.startswith("test_")]
    return unittest.TestSuite(ConsoleCsp(n) for n in names)
