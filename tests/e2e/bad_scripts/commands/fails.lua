-- A handler that raises, as a script does when something it needs is down.
local function connect()
  return nil
end
local function query(db)
  if not db then error("the database is down") end
end
return {
  execution = function(req)
    query(connect())
  end,
}
