-- Memory use on demand: `hold N S` keeps N MiB for S seconds, `use N` fills
-- N MiB and lets it go, `dups N` decodes N MiB of JSON whose value is tiny
-- (one key, repeated), `fetch URL` reads a large response.
local function fill(mib)
    local t = {}
    for i = 1, mib * 16 do
        -- 64 KiB strings, each different so none is shared.
        t[i] = string.rep(string.char(65 + i % 26), 65536 - 32) .. string.format("%031d", i)
    end
    return t
end

return {
    execution = function(req)
        local mode, a, b = req.params.arguments:match("^(%S+)%s*(%S*)%s*(%S*)")
        if mode == "hold" then
            local kept = fill(tonumber(a))
            log.info("holding " .. a .. " MiB")
            sleep(tonumber(b))
            return { text = "held " .. #kept // 16 }
        elseif mode == "use" then
            local t = fill(tonumber(a))
            return { text = "used " .. #t // 16 }
        elseif mode == "dups" then
            local text = "{" .. string.rep('"a":1,', tonumber(a) * 1048576 // 6) .. '"a":2}'
            local v, err = json.decode(text)
            text = nil
            return { text = v and ("decoded " .. v.a) or ("refused: " .. tostring(err)) }
        elseif mode == "hoard" then
            local kept = {}
            for _ = 1, tonumber(b) do
                local r, err = http.request({ url = a })
                if not r then
                    return { text = "kept " .. #kept .. ": " .. tostring(err) }
                end
                kept[#kept + 1] = r.body
            end
            return { text = "kept " .. #kept }
        elseif mode == "fetch" then
            local r, err = http.request({ url = a })
            return { text = r and ("fetched " .. #r.body) or ("refused: " .. tostring(err)) }
        end
        return { text = "?" }
    end,
}
