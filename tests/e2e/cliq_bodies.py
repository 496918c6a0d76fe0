"""Realistic Cliq request bodies for every handler in
docs/cliq-formats.md §2 (shapes from Zoho's samples)."""

import copy
import time

ENVIRONMENT = {"tld": ".com", "data_center": "US", "base_url": "https://cliq.zoho.com/company/123456456"}
ACCESS = {"user_id": "130720038", "zoho_user_id": "130720038",
          "organization": {"type": "company", "id": "123456456"},
          "user_agent": "Mozilla/5.0", "chat_id": "CT_2243226337559778047_661211447-B2"}
USER = {"id": "123456", "first_name": "Scott", "last_name": "Fisher",
        "email": "scott.fisher@zylcal.com", "admin": True, "organization_id": "123456456",
        "timezone": "Asia/calcutta", "country": "us", "language": "en", "zoho_user_id": "130720038"}
CHAT = {"owner": "123456", "id": "CD_1256246524399772951_1741337", "type": "channel",
        "title": "Catalyst", "channel_unique_name": "sample",
        "members": [{"id": "123456", "first_name": "", "last_name": "", "email": "", "status": "0"}],
        "recent_messages": []}
LOCATION = {"latitude": 12.8282472, "longitude": 80.0511901, "accuracy": 30, "status": "granted"}
MESSAGE_OBJ = {"sender": {"id": "123456", "name": "Scott Fisher"}, "time": 1610351240458,
               "text": "ship the release notes today", "type": "text"}
RESPONSE_URL = "https://cliq.zoho.com/v2/extensions/2980/responses/17202823900615741410013820"

# (type, wire handler, component name or None, extra params, has response_url)
CATALOGUE = [
    ("bot", "welcome_handler", "bot", {"newuser": True, "user": USER}, True),
    ("bot", "message_handler", "bot", {
        "message": "Hi", "raw_message": "Hi", "chat": CHAT, "location": LOCATION, "user": USER,
        "message_details": {"message": {"mentions": [], "type": "text", "text": "Hi"},
                            "time": 1610351240458},
        "attachments": [], "mentions": [], "links": [], "options": {}, "selections": [],
        "arguments": ""}, True),
    ("bot", "context_handler", "bot", {
        "context_id": "feedback", "answers": {"name": {"text": "Scott"}}, "user": USER,
        "chat": CHAT, "mentions": [], "options": {}, "selections": [], "arguments": ""}, True),
    ("bot", "mention_handler", "bot", {
        "message": MESSAGE_OBJ, "mentions": [{"name": "bot", "id": "b1", "type": "bot"}],
        "chat": CHAT, "location": LOCATION, "user": USER}, True),
    ("bot", "action_handler", "bot", {"chat": CHAT, "user": USER}, True),
    ("bot", "incomingwebhook_handler", "bot", {
        "headers": {"content-type": "application/json"}, "params": {"q": "1"},
        "body": "{\"alert\":\"disk full\"}", "http_method": "POST", "user": USER}, True),
    ("bot", "participation_handler", "bot", {
        "operation": "added", "data": {"time": 1610351240458}, "chat": CHAT, "user": USER}, True),
    ("bot", "alert_handler", "bot", {
        "operation": "missed", "data": {"call_id": "c1", "time": 1610351240458}, "user": USER},
     False),
    ("command", "execution_handler", "cmd", {
        "arguments": "prod --force", "options": {}, "selections": [], "mentions": [],
        "attachments": [], "chat": CHAT, "location": LOCATION, "user": USER}, True),
    ("command", "suggestion_handler", "cmd", {
        "arguments": "pr", "options": {}, "selections": [], "chat": CHAT, "user": USER}, True),
    ("messageaction", "execution_handler", "ma", {
        "message": MESSAGE_OBJ, "messages": {"count": 1, "list": [MESSAGE_OBJ]},
        "attachments": [], "mentions": [], "chat": CHAT, "location": LOCATION, "user": USER},
     True),
    ("function", "button_handler", "fn", {
        "target": {"name": "Approve", "hint": ""}, "event": "click",
        "arguments": {"key": "approve:api:prod"}, "message": MESSAGE_OBJ, "chat": CHAT,
        "user": USER}, True),
    ("function", "form_handler", "fn", {
        "form": {"name": "ID", "action": "submit",
                 "values": {"username": "Harold Finch",
                            "asset-type": {"label": "Mobile", "value": "mobile"}}},
        "chat": CHAT, "user": USER}, True),
    ("function", "form_change_handler", "fn", {
        "form": {"name": "ID", "action": "change", "values": {"username": "Harold Finch"}},
        "target": {"name": "mobile-os", "value": {"label": "Android", "value": "android"}},
        "chat": CHAT, "user": USER}, False),
    ("function", "form_values_handler", "fn", {
        "form": {"name": "ID", "action": "input", "values": {}},
        "target": {"name": "mobile", "query": "pix"}, "chat": CHAT, "user": USER}, False),
    ("function", "form_view_handler", "fn", {"params": {"id": "42"}, "user": USER}, False),
    ("function", "applet_button_handler", "fn", {
        "target": {"id": "banner", "label": "Banner", "section_id": "1", "tab_id": "t1"},
        "user": USER}, False),
    ("widget", "view_handler", "wd", {"event": "load", "target": {"id": "t1"}, "chat": CHAT,
                                      "user": USER}, False),
    ("extension", "installation_handler", None, {
        "app_info": {"current_version": "1.0", "type": "install"}, "form": {},
        "authtoken": "x", "user": USER}, False),
    ("extension", "installation_validator", None, {
        "app_info": {"current_version": "1.0", "type": "install"}, "user": USER}, False),
    ("extension", "uninstallation_handler", None, {
        "app_info": {"type": "uninstall"}, "user": USER}, False),
    ("link_preview", "unfurl_handler", None, {
        "url": "https://example.com/a", "domain": "example.com", "chat": CHAT}, False),
    ("link_preview", "unfurl_button_action_handler", None, {
        "url": "https://example.com/a", "domain": "example.com",
        "target": {"label": "Open", "params": {}, "hint": ""}, "chat": CHAT}, False),
    ("link_preview", "unfurl_dynamic_action_handler", None, {
        "url": "https://example.com/a", "domain": "example.com", "chat": CHAT}, False),
    ("link_preview", "unfurl_post_message_handler", None, {
        "url": "https://example.com/a", "domain": "example.com", "chat": CHAT}, False),
]


_last_ms = [0]


def now_ms():
    """The current time in epoch ms, as Cliq stamps a call; strictly
    increasing, so two bodies built in one millisecond still differ (the
    host refuses a signature it has accepted before)."""
    ms = time.time_ns() // 1_000_000
    _last_ms[0] = ms = max(ms, _last_ms[0] + 1)
    return ms


def body(type_, wire, name=None, params=None, response_url=True, unique_name=None,
         handler_name=None, legacy=False, timestamp=None):
    """Builds a body the way Cliq does. legacy=True uses the 2019 format
    (handler as a plain string)."""
    b = {}
    if name is not None:
        b["name"] = name
    if unique_name is not None:
        b["unique_name"] = unique_name
    if legacy:
        b["handler"] = wire
        if handler_name:
            b["handler_name"] = handler_name
    else:
        b["handler"] = {"type": wire}
        if handler_name:
            b["handler"]["name"] = handler_name
    if response_url:
        b["response_url"] = RESPONSE_URL
    b["type"] = type_
    b["timestamp"] = now_ms() if timestamp is None else timestamp
    p = {"environment": copy.deepcopy(ENVIRONMENT), "access": copy.deepcopy(ACCESS)}
    p.update(copy.deepcopy(params or {}))
    b["params"] = p
    return b
