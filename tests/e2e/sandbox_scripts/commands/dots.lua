-- Names that are path segments of their own: "." and ".." would step out
-- of /channelsbyname/, /bots/ or /applications/ on Cliq's API.
return {
  execution = function(req)
    local out = {}
    for _, f in ipairs({ "post_channel", "post_bot", "bot_incoming" }) do
      for _, name in ipairs({ "..", "." }) do
        local ok, err = pcall(cliq[f], name, "hi", { broadcast = true })
        out[#out + 1] = f .. "(" .. name .. "): " .. tostring(ok) .. " " .. tostring(err)
      end
    end
    return table.concat(out, "\n")
  end,
}
