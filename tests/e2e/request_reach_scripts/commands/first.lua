-- The two ways to params (req.params and req.body.params) before either was
-- looked into: the same tables, and what one path writes or fills the other
-- sees (test_request_reach.py).
local walk = require "walk"
local collect = walk.collect

return {
  execution = function(req)
    local out = {}
    -- Identity first, before anything else reads req.params.
    out.same_params = rawequal(req.params, req.body.params)
    out.same_user = rawequal(req.params.user, req.body.params.user)
    out.equal_user = req.body.params.user == req.params.user
    -- A write through one path into a table nothing filled yet.
    req.body.params.w1.written = "through body"
    out.w1 = collect(req.params.w1)
    -- Filled by walking one path, read and written through the other.
    out.f1_body = collect(req.body.params.f1)
    out.f1_params = collect(req.params.f1)
    req.params.f1.added = 1
    out.f1_added = req.body.params.f1.added
    -- A subtable of a subtable, by both paths.
    out.nested = rawequal(req.params.f2.obj, req.body.params.f2.obj)
    out.f2_obj = collect(req.body.params.f2.obj)
    return out
  end,
}
