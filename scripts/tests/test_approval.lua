-- Tests of scripts/functions/approval.lua, the function behind /deploy's
-- Approve and Reject buttons and the rejection form, written with the test
-- kit; the last test walks the whole conversation a chat user has.
--
--   LUA_PATH="$PWD/lualib/?.lua;$PWD/lualib/?/init.lua;;" lua5.4 scripts/tests/test_approval.lua

local kit = require "cliq.test"

-- The reply to pressing a button whose key is `key`.
local function press(key, params)
  return kit.invoke(kit.button("approval", { key = key }, params))
end

-- The reply to submitting the rejection form with `values`.
local function submit(values)
  return kit.invoke(kit.form("approval", values, { form = { name = "reject_reason" } }))
end

local TO_APPROVAL = { type = "invoke.function", data = { name = "approval" } }

kit.test("Approve answers with a card naming who approved", function()
  kit.eq(press("approve:api:prod"), {
    text = "Scott approved deploying *api* to *prod*.",
    card = { title = "Approved", theme = "modern-inline" },
  })
  local out = press("approve:billing:staging", { user = { first_name = "Grace" } })
  kit.eq(out.text, "Grace approved deploying *billing* to *staging*.")
  kit.eq(press("approve:api:prod", { user = kit.absent }).text,
    "Someone approved deploying *api* to *prod*.")
end)

kit.test("Reject opens a form asking why", function()
  kit.eq(press("reject:api:prod"), {
    type = "form",
    title = "Reject the deploy",
    name = "reject_reason",
    hint = "Tell the requester why api should not go to prod.",
    button_label = "Reject",
    inputs = {
      { type = "hidden", name = "target", value = "api:prod" },
      { type = "textarea", name = "reason", label = "Reason", mandatory = true,
        placeholder = "Failing checks on staging" },
      { type = "select", name = "retry", label = "Try again", mandatory = false,
        options = {
          { label = "Tomorrow", value = "tomorrow" },
          { label = "Next week", value = "next_week" },
          { label = "Not planned", value = "never" },
        } },
    },
    action = { type = "invoke.function", name = "approval" },
  })
end)

kit.test("an unknown button answers with a failure banner", function()
  kit.eq(press("bogus"), { type = "banner", status = "failure", text = "Unknown button: bogus" })
  kit.eq(press("merge:api:prod").text, "Unknown button: merge:api:prod")
  local no_key = kit.invoke(kit.button("approval", {}))
  kit.eq(no_key, { type = "banner", status = "failure", text = "Unknown button: nil" })
end)

kit.test("submitting the form answers with the reason and a Reopen button", function()
  local out = submit({
    target = "api:prod", reason = "Tests are red",
    retry = { label = "Tomorrow", value = "tomorrow" },
  })
  kit.eq(out, {
    text = "Deploying *api* to *prod* was rejected.",
    card = { title = "Rejected", theme = "modern-inline" },
    slides = { {
      type = "label", title = "Why",
      data = { { Reason = "Tests are red" }, { ["Try again"] = "Tomorrow" } },
    } },
    buttons = { { label = "Reopen", type = "+", key = "approve:api:prod", action = TO_APPROVAL } },
  })
end)

kit.test("a form without a retry choice says so", function()
  local out = submit({ target = "web:staging", reason = "Freeze" })
  kit.eq(out.slides[1].data, { { Reason = "Freeze" }, { ["Try again"] = "Not said" } })
  kit.eq(out.text, "Deploying *web* to *staging* was rejected.")
end)

kit.test("a form without its hidden target still answers", function()
  local out = submit({ reason = "?" })
  kit.eq(out.text, "Deploying *?* to *?* was rejected.")
  kit.eq(out.buttons[1].key, "approve:")
  kit.eq(submit({}).slides[1].data[1], { Reason = "" })
end)

kit.test("deploy, reject with a reason, reopen, approve: the whole conversation", function()
  local card = kit.invoke(kit.command("deploy", "api prod"))
  local reject = card.buttons[2]
  kit.eq(reject.label, "Reject")
  kit.eq(reject.action.data.name, "approval")

  local form = press(reject.key)
  kit.eq(form.type, "form")
  local values = {}
  for _, input in ipairs(form.inputs) do
    if input.type == "hidden" then
      values[input.name] = input.value
    end
  end
  values.reason = "Staging is red"
  values.retry = form.inputs[3].options[2]

  local rejected = submit(values)
  kit.eq(rejected.text, "Deploying *api* to *prod* was rejected.")
  kit.eq(rejected.slides[1].data[2], { ["Try again"] = "Next week" })

  local approved = press(rejected.buttons[1].key, { user = { first_name = "Grace" } })
  kit.eq(approved.text, "Grace approved deploying *api* to *prod*.")
end)

os.exit(kit.run_tests())
