-- /show WHAT: answers with one of Cliq's reply formats, so the tests can
-- check how `cliqhost invoke` prints each; and the timing cases: a handler
-- that passes the deadline, one that uses req:respond().

local replies = {
  text = "Plain *bold* text\nover two lines",

  card = {
    text = "Release *1.4* is ready.",
    bot = { name = "Deploy Bot", image = "https://example.com/bot.png" },
    card = { title = "Release 1.4", theme = "modern-inline" },
    slides = {
      { type = "table", title = "Services", data = {
        headers = { "Service", "Version", "Owner" },
        rows = {
          { Service = "api", Version = "1.4.0", Owner = "Ada" },
          { Service = "billing-worker", Version = "1.3.12", Owner = "Grace" },
        },
      } },
      { type = "list", title = "Steps", data = { "build", "test", "ship" } },
      { type = "label", title = "Details", data = { { Owner = "Ada" }, { Window = "22:00 UTC" } } },
      { type = "images", title = "", data = { "https://example.com/graph.png" } },
      { type = "text", title = "Note", data = "Roll back with /deploy api 1.3" },
    },
    buttons = {
      { label = "Open", type = "+",
        action = { type = "open.url", data = { web = "https://example.com/release/1.4" } } },
      { label = "Cancel", type = "-", key = "cancel:1.4",
        action = { type = "invoke.function", data = { name = "release" },
                   confirm = { title = "Cancel the release?", description = "", input = "" } } },
    },
    suggestions = { list = { { text = "status" }, { text = "rollback" } } },
  },

  form = {
    type = "form",
    title = "Asset Request",
    name = "asset",
    hint = "Raise your asset request",
    button_label = "Raise Request",
    inputs = {
      { type = "text", name = "username", label = "Name", placeholder = "John Reese",
        mandatory = true, value = "Harold Finch" },
      { type = "text", format = "email", name = "email", label = "Email", mandatory = true },
      { type = "select", name = "asset-type", label = "Asset Type", trigger_on_change = true,
        mandatory = false,
        options = { { label = "Laptop", value = "laptop" }, { label = "Mobile", value = "mobile" } } },
      { type = "toggle", name = "reports", label = "Automated Reports", value = true },
    },
    action = { type = "invoke.function", name = "assets" },
  },

  banner = { type = "banner", status = "success", text = "Saved" },
  ["banner-failure"] = { type = "banner", status = "failure", text = "Could not save" },

  modification = {
    type = "form_modification",
    actions = {
      { type = "remove", name = "mobile-os" },
      { type = "add_after", name = "asset-type",
        input = { type = "select", name = "os", label = "OS",
                  options = { { label = "Android", value = "android" } } } },
    },
  },

  options = { options = { { label = "Google Pixel 3", value = "google_pixel_3" },
                          { label = "iPhone 15", value = "iphone_15" } } },

  widget = {
    type = "applet",
    tabs = { { id = "home", label = "Home" }, { id = "stats", label = "Stats" } },
    active_tab = "home",
    data_type = "sections",
    sections = {
      { id = "1", elements = {
        { type = "title", text = "Datastore",
          buttons = { { label = "Link", type = "open.url", url = "https://example.com/ds" } } },
        { type = "text", text = "Three tables" },
        { type = "divider" },
        { type = "buttons", buttons = {
          { label = "Refresh", type = "invoke.function", name = "board", id = "refresh" } } },
      } },
    },
    footer = { text = "Updated now" },
  },

  status = { status = 200, title = "Success!", message = "Installed.", note = { "Restart Cliq" } },

  link = {
    type = "link", title = "Example", description = "An example page",
    provider_url = "https://example.com",
    fields = { data = { { label = "Stars", value = "42" } } },
    actions = { { type = "button", label = "Star", params = { id = "7" } } },
  },
}

return {
  execution = function(req)
    local what = req.params.arguments
    if what == "sleep" then
      sleep(1)
      return { text = "slept well" }
    elseif what == "slow" then
      sleep(3)
      return { text = "too slow" }
    elseif what == "respond" then
      assert(req:respond({ text = "early reply" }))
      return { text = "final reply" }
    elseif what == "nothing" then
      return nil
    end
    return replies[what] or ("no reply called " .. what)
  end,

  suggestion = function()
    return {
      { title = "prod", description = "Production" },
      { title = "staging", description = "Pre-release" },
    }
  end,
}
