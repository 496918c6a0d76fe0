-- deploys: what the example scripts know about environments. A module under
-- scripts/lib/ is found by require, like the host's own lualib/ modules.

local M = {}

M.environments = {
  { name = "dev", description = "Developer sandbox, deploys at once" },
  { name = "staging", description = "Pre-release, mirrors production" },
  { name = "prod", description = "Production, needs an approval" },
}

function M.find(name)
  for _, env in ipairs(M.environments) do
    if env.name == name then
      return env
    end
  end
  return nil
end

function M.names()
  local names = {}
  for i, env in ipairs(M.environments) do
    names[i] = env.name
  end
  return table.concat(names, ", ")
end

return M
