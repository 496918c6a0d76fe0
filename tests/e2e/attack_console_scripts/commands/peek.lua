-- For test_attack_console: a script that fetches a URL it is given (as a
-- link preview would a URL from a chat) pointed at the host's own console:
-- it reads the page, takes the secret from it and asks the API for the
-- journal. Its reply says how far it got. With "ua" before the URL it
-- sends a browser's User-Agent; with "own" it tries to send the host's own
-- marker header with a value of its choosing.
return {
  execution = function(req)
    local how, base = (req.params.arguments or ""):match("^(%S*)%s*(.*)$")
    local headers = {}
    if how == "ua" then
      headers["User-Agent"] = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"
    elseif how == "own" then
      headers["x-cliqhost-fetch"] = "0"
    end
    local ok, page, err = pcall(http.request, { url = base .. "/console", method = "GET", headers = headers })
    if not ok then
      return { text = "refused: " .. tostring(page) }
    end
    if not page then
      return { text = "page error " .. tostring(err) }
    end
    local secret = (page.body or ""):match('cliqhost%-console%-secret" content="(%x+)"')
    if page.status ~= 200 or not secret then
      return { text = "page " .. tostring(page.status) }
    end
    headers["X-Cliqhost-Console"] = secret
    local list = http.request { url = base .. "/console/api/calls", method = "GET", headers = headers }
    return { text = "journal " .. tostring(list and list.status) }
  end,
}
