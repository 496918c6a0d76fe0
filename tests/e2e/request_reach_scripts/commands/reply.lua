-- Returns a part of req nothing looked into, or a table holding such parts,
-- as the reply (test_request_reach.py); params.mode says which.
return {
  execution = function(req)
    local p = req.params
    if p.mode == "sub" then
      return p.card
    end
    return { wrapped = p.card, list = p.list, empty_o = p.empty_o, empty_a = p.empty_a }
  end,
}
