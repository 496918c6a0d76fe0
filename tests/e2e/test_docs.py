"""The formats reference ships with the repository and says what the host
does (issue 13, point 6): every citation of it names a file and section
that exist in the repository (the README and cliq.message cited
reference/cliq-platform.md, which users never get), and each example in
docs/cliq-formats.md marked "the host answers" is run through the real host:
its script is served, Cliq's call is made, and the answer must be the JSON
the document shows."""

import json
import os
import re
import tempfile
import unittest

from cliq_bodies import body
from hostlib import REPO, Host, Key

KEY = Key("docs")
DOC = os.path.join(REPO, "docs", "cliq-formats.md")

CALL_RX = re.compile(
    r"<!-- call: (\S+) (\S+) (\S+) (.*?) -->\s*```lua\n(.*?)```.*?```json\n(.*?)```", re.S)


def repo_files():
    """The repository's text files, build trees and data left out."""
    out = []
    for root, dirs, files in os.walk(REPO):
        dirs[:] = [d for d in dirs if not (d.startswith(".") or d.startswith("build")
                                           or d in ("data", "__pycache__"))]
        for name in files:
            if name.endswith((".c", ".h", ".py", ".lua", ".md", ".txt", ".json", ".sh")) \
                    or name in ("CMakeLists.txt", ".luacheckrc", "dev.sh"):
                out.append(os.path.relpath(os.path.join(root, name), REPO))
    return out


def headings(path):
    """The section numbers of a document: "2", "3.2", ..."""
    with open(path, encoding="utf-8") as f:
        return set(re.findall(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", f.read(), re.M))


def examples():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    return CALL_RX.findall(text)


class Citations(unittest.TestCase):
    def test_no_citation_of_a_file_users_do_not_have(self):
        bad = []
        for rel in repo_files():
            path = os.path.join(REPO, rel)
            if rel == "tests/e2e/test_docs.py" or not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    if "cliq-platform.md" in line:
                        bad.append(f"{rel}:{n}: {line.strip()}")
        self.assertEqual(bad, [], "cites reference/cliq-platform.md, which is not shipped")

    def test_citations_of_docs_name_a_file_and_section_that_exist(self):
        rx = re.compile(r"(docs/[\w.-]+\.md)(?:[\s`,)]*§\s?(\d+(?:\.\d+)*))?")
        bad, seen = [], 0
        for rel in repo_files():
            path = os.path.join(REPO, rel)
            if not os.path.isfile(path):
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, 1):
                    for doc, section in rx.findall(line):
                        seen += 1
                        target = os.path.join(REPO, doc)
                        if not os.path.isfile(target):
                            bad.append(f"{rel}:{n}: {doc} does not exist")
                        elif section and section not in headings(target):
                            bad.append(f"{rel}:{n}: {doc} has no section {section}")
        self.assertEqual(bad, [])
        self.assertGreater(seen, 5, "the README, types/ and lualib/ cite docs/cliq-formats.md")


class Examples(unittest.TestCase):
    def test_the_document_has_examples(self):
        self.assertGreaterEqual(len(examples()), 10)

    def test_each_example_is_what_the_host_answers(self):
        for type_, wire, name, params, script, answer in examples():
            first = script.splitlines()[0]
            m = re.match(r"-- scripts/(\S+\.lua)$", first)
            self.assertTrue(m, f"an example's first line names its file: {first}")
            rel = m.group(1)
            with self.subTest(rel, handler=wire):
                scripts = tempfile.mkdtemp(prefix="cliqhost-e2e-docs-")
                os.makedirs(os.path.dirname(os.path.join(scripts, rel)), exist_ok=True)
                with open(os.path.join(scripts, rel), "w", encoding="utf-8") as f:
                    f.write(script)
                host = Host(scripts=scripts, keys=[KEY.spki], workers=1)
                try:
                    name = None if name == "-" else name
                    b = body(type_, wire, name, json.loads(params),
                             unique_name=name if type_ == "bot" else None)
                    r = host.post(b, key=KEY)
                    self.assertEqual(r.status, 200, f"{r}\n{host.log()}")
                    self.assertEqual(r.json(), json.loads(answer), host.log())
                finally:
                    self.assertEqual(host.stop(), 0, host.log())


if __name__ == "__main__":
    unittest.main()
