-- taming.args — key=value arguments of pipelines, checked against a schema.
--
--   local a = tt.args.parse(..., {
--     config = {"string", required = true, help = "official YAML config"},
--     size   = {"int", default = 256},
--     temperature = {"number", default = 1.0},
--     greedy = {"bool", default = false},
--   }, "taming run pipelines/x.lua config=M.yaml ...")
--
-- Unknown keys and bad values are errors that name the key and what was expected.
-- A schema entry ["NAME.*"] = {"settings"} collects every NAME.KEY=VALUE argument
-- into a table {KEY = VALUE} (raw strings) under that same key.
local M = {}

local function convert(key, kind, raw)
  if kind == "string" then return raw end
  if kind == "int" then
    local n = tonumber(raw)
    if not n or n ~= math.floor(n) then error(("argument %s=%s: expected an integer"):format(key, raw), 0) end
    return math.tointeger(n)
  end
  if kind == "number" then
    local n = tonumber(raw)
    if not n then error(("argument %s=%s: expected a number"):format(key, raw), 0) end
    return n
  end
  if kind == "bool" then
    local l = raw:lower()
    if l == "1" or l == "true" or l == "yes" or l == "on" then return true end
    if l == "0" or l == "false" or l == "no" or l == "off" then return false end
    error(("argument %s=%s: expected true or false"):format(key, raw), 0)
  end
  if kind == "list" then
    local out = {}
    for item in raw:gmatch("[^,]+") do out[#out + 1] = item end
    return out
  end
  if kind == "intlist" then
    local out = {}
    for item in raw:gmatch("[^,]+") do out[#out + 1] = convert(key, "int", item) end
    return out
  end
  error(("schema for %s: unknown type %s"):format(key, tostring(kind)), 0)
end

-- Returns a table of converted values (defaults filled in). `raw` is the table
-- `taming run` passes to the script.
function M.parse(raw, schema, usage)
  raw = raw or {}
  local out = {}
  for key, value in pairs(raw) do
    local group = type(key) == "string" and key:match("^([%w_]+)%.[%w_.]+$")
    if group and schema[group .. ".*"] then
      local t = out[group .. ".*"] or {}
      t[key:sub(#group + 2)] = value
      out[group .. ".*"] = t
    elseif type(key) == "string" and key:sub(1, 1) ~= "_" then
      local spec = schema[key]
      if not spec then
        local known = {}
        for k in pairs(schema) do known[#known + 1] = k end
        table.sort(known)
        error(("unknown argument '%s' (known: %s)%s"):format(key, table.concat(known, ", "),
          usage and ("; usage: " .. usage) or ""), 0)
      end
      out[key] = convert(key, spec[1], value)
    end
  end
  for key, spec in pairs(schema) do
    if out[key] == nil then
      if spec.required then
        error(("missing argument %s=...%s%s"):format(key, spec.help and (" (" .. spec.help .. ")") or "",
          usage and ("; usage: " .. usage) or ""), 0)
      end
      out[key] = spec.default
    end
    if spec.choices and out[key] ~= nil then
      local ok = false
      for _, c in ipairs(spec.choices) do if c == out[key] then ok = true end end
      if not ok then
        error(("argument %s=%s: expected one of %s"):format(key, tostring(out[key]), table.concat(spec.choices, ", ")), 0)
      end
    end
  end
  return out
end

return M
