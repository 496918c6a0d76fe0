"""The bundled example scripts (scripts/), called as Cliq calls them: the
README's tour, checked reply by reply."""

import os
import unittest

from cliq_bodies import CHAT, MESSAGE_OBJ, USER, body
from hostlib import REPO, Host, Key

KEY = Key("main")


class Examples(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.host = Host(scripts=os.path.join(REPO, "scripts"), keys=[KEY.spki])

    @classmethod
    def tearDownClass(cls):
        assert cls.host.stop() == 0
        assert not cls.host.sanitizer_reports(), cls.host.log()

    def call(self, *args, **kw):
        r = self.host.post(body(*args, **kw), key=KEY)
        self.assertEqual(r.status, 200, r)
        return r.json()["output"]

    def command(self, arguments, handler="execution_handler"):
        return self.call("command", handler, "deploy",
                         {"arguments": arguments, "user": USER, "chat": CHAT})

    def test_deploy_to_staging_starts_at_once(self):
        out = self.command("api")
        self.assertEqual(out["text"], "Deploying *api* to *staging*.")
        self.assertEqual(out["card"]["title"], "Deploy started")

    def test_deploy_to_prod_asks_for_approval(self):
        out = self.command("api prod")
        self.assertEqual(out["text"], "*Scott* wants to deploy *api* to production.")
        self.assertEqual([b["label"] for b in out["buttons"]], ["Approve", "Reject"])
        self.assertEqual([b["key"] for b in out["buttons"]], ["approve:api:prod", "reject:api:prod"])
        for b in out["buttons"]:
            self.assertEqual(b["action"], {"type": "invoke.function", "data": {"name": "approval"}})
        self.assertEqual(out["slides"][0]["type"], "label")

    def test_deploy_flags_and_errors(self):
        self.assertEqual(self.command("api prod --force")["text"], "Deploying *api* to *prod*.")
        self.assertIn("Usage", self.command("")["text"])
        self.assertIn("Unknown environment *moon*", self.command("api moon")["text"])
        self.assertIn("unclosed", self.command('api "prod')["text"])

    def test_deploy_suggestions(self):
        out = self.command("api ", handler="suggestion_handler")
        self.assertEqual([s["title"] for s in out], ["dev", "staging", "prod"])
        out = self.command("api st", handler="suggestion_handler")
        self.assertEqual(out, [{"title": "staging", "description": "Pre-release, mirrors production"}])
        self.assertEqual(self.command("api zz", handler="suggestion_handler"), [])

    def test_approve_button(self):
        out = self.call("function", "button_handler", "approval",
                        {"arguments": {"key": "approve:api:prod"}, "user": USER,
                         "target": {"name": "Approve"}, "event": "click"})
        self.assertEqual(out["text"], "Scott approved deploying *api* to *prod*.")

    def test_reject_button_opens_a_form_and_its_submission_answers(self):
        form = self.call("function", "button_handler", "approval",
                         {"arguments": {"key": "reject:api:prod"}, "user": USER})
        self.assertEqual(form["type"], "form")
        self.assertEqual(form["action"], {"type": "invoke.function", "name": "approval"})
        names = [i["name"] for i in form["inputs"]]
        self.assertEqual(names, ["target", "reason", "retry"])
        target = form["inputs"][0]["value"]

        out = self.call("function", "form_handler", "approval", {
            "form": {"name": "reject_reason", "action": "submit",
                     "values": {"target": target, "reason": "Tests are red",
                                "retry": {"label": "Tomorrow", "value": "tomorrow"}}},
            "user": USER})
        self.assertEqual(out["text"], "Deploying *api* to *prod* was rejected.")
        self.assertEqual(out["slides"][0]["data"], [{"Reason": "Tests are red"},
                                                    {"Try again": "Tomorrow"}])
        self.assertEqual(out["buttons"][0]["key"], "approve:api:prod")

    def test_bot_welcome(self):
        out = self.call("bot", "welcome_handler", "helper", {"newuser": True, "user": USER})
        self.assertTrue(out["text"].startswith("Hi Scott!"))
        self.assertEqual([s["text"] for s in out["suggestions"]["list"]], ["help", "feedback"])

    def test_bot_conversation_asks_two_questions_and_uses_the_answers(self):
        out = self.call("bot", "message_handler", "helper", {"message": "feedback", "user": USER})
        ctx = out["context"]
        self.assertEqual(ctx["id"], "feedback")
        self.assertEqual([p["name"] for p in ctx["params"]], ["rating", "wish"])
        out = self.call("bot", "context_handler", "helper", {
            "context_id": "feedback", "user": USER,
            "answers": {"rating": {"text": "Great"}, "wish": {"text": "Live reload"}}})
        self.assertEqual(out["text"],
                         "Thanks, Scott! You said *Great*, and you wish for: Live reload")

    def test_bot_message(self):
        out = self.call("bot", "message_handler", "helper", {"message": "hello", "user": USER})
        self.assertEqual(out["text"], 'You said "hello". I know *help*, *time* and *feedback*.')
        out = self.call("bot", "message_handler", "helper", {"message": "TIME", "user": USER})
        self.assertRegex(out["text"], r"^It is \d\d:\d\d UTC\.$")

    def test_message_action_stats(self):
        out = self.call("messageaction", "execution_handler", "stats",
                        {"message": MESSAGE_OBJ, "user": USER})
        rows = out["slides"][0]["data"]["rows"]
        self.assertEqual(rows[0], {"Measure": "Words", "Value": "5"})
        self.assertEqual(rows[1], {"Measure": "Characters", "Value": "28"})
        self.assertEqual(rows[2], {"Measure": "Sender", "Value": "Scott Fisher"})

    def test_oncall_is_remembered_by_every_worker_and_after_a_restart(self):
        # (issue 14) A module-level table lived in one worker's Lua state:
        # the answer changed with the worker. The store is the host's.
        def oncall(arguments, user=USER):
            return self.call("command", "execution_handler", "oncall",
                             {"arguments": arguments, "user": user})["text"]
        ada = dict(USER, id="100", first_name="Ada")
        self.assertIn(oncall("take", ada), ("*Ada* is on call now.",
                                            "*Ada* is on call now, taking over from *Scott*."))
        answers = {oncall("") for _ in range(20)}
        self.assertEqual(len(answers), 1, answers)
        self.assertRegex(answers.pop(), r"^\*Ada\* has been on call since \d{4}-\d\d-\d\d ")
        self.assertIn("*Ada* took over", oncall("history"))
        # A restart on the same data_dir forgets nothing.
        data = self.host.data_dir
        self.assertEqual(self.host.stop(), 0)
        type(self).host = Host("--data-dir", data, scripts=os.path.join(REPO, "scripts"),
                               keys=[KEY.spki])
        self.assertRegex(oncall(""), r"^\*Ada\* has been on call since ")


if __name__ == "__main__":
    unittest.main()
