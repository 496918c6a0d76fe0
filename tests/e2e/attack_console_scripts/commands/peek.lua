-- For test_attack_console: a script that fetches a URL it is given (as a
-- link preview would a URL from a chat) pointed at the host's own console:
-- it reads the page, takes the secret from it and asks the API for the
-- journal. Its reply says how far it got.
return {
  execution = function(req)
    local base = req.params.arguments or ""
    local page, err = http.request { url = base .. "/console", method = "GET" }
    if not page then
      return { text = "page error " .. tostring(err) }
    end
    local secret = (page.body or ""):match('cliqhost%-console%-secret" content="(%x+)"')
    if page.status ~= 200 or not secret then
      return { text = "page " .. tostring(page.status) }
    end
    local list = http.request {
      url = base .. "/console/api/calls",
      method = "GET",
      headers = { ["X-Cliqhost-Console"] = secret },
    }
    return { text = "journal " .. tostring(list and list.status) }
  end,
}
