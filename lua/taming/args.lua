-- taming.args — key=value arguments of pipelines, checked against a schema.
--
--   local a = tt.args.parse(..., {
--     config = {"string", required = true, help = "official YAML config"},
--     size   = {"int", default = 256, min = 1},
--     temperature = {"number", default = 1.0, min = 0},
--     greedy = {"bool", default = false},
--   }, "taming run pipelines/x.lua config=M.yaml ...")
--
-- Unknown keys, arguments that are not key=value, and bad values are errors
-- that name the argument and what was expected: an integer must be written as
-- one and fit in 64 bits (99999999999999999999 and 1e300 are refused, never
-- replaced by the default), a number must be finite, and both must lie within
-- the schema's min/max when it gives them. --help (or -h) prints the usage and
-- the schema with its help strings, and exits 0.
-- A schema entry ["NAME.*"] = {"settings"} collects every NAME.KEY=VALUE argument
-- into a table {KEY = VALUE} (raw strings) under that same key.
local M = {}

local function fail(key, raw, what)
  error(("argument %s=%s: %s"):format(key, raw, what), 0)
end

local function check_range(key, raw, spec, n)
  if spec.min and n < spec.min then fail(key, raw, ("must be >= %s"):format(spec.min)) end
  if spec.max and n > spec.max then fail(key, raw, ("must be <= %s"):format(spec.max)) end
  return n
end

local function to_int(key, raw, spec)
  local s = raw:match("^%s*(.-)%s*$")
  local n = tonumber(s)
  if not n then fail(key, raw, "expected an integer") end
  -- decimal digits beyond 64 bits arrive as a float; hexadecimal ones wrap around
  local decimal = s:match("^[-+]?%d+$") ~= nil
  local hex_digits = s:match("^[-+]?0[xX]0*(%x+)$")
  if (decimal and math.type(n) ~= "integer") or
     (hex_digits and (#hex_digits > 16 or (#hex_digits == 16 and hex_digits:sub(1, 1) > "7"))) then
    fail(key, raw, "does not fit in a 64-bit integer")
  end
  if math.type(n) == "float" then
    if n ~= n or n == math.huge or n == -math.huge then fail(key, raw, "expected an integer, found a non-finite number") end
    if n ~= math.floor(n) then fail(key, raw, "expected an integer") end
    n = math.tointeger(n)
    if not n then fail(key, raw, "does not fit in a 64-bit integer") end
  end
  return check_range(key, raw, spec, n)
end

local function convert(key, spec, raw)
  local kind = spec[1]
  if kind == "string" then return raw end
  if kind == "int" then return to_int(key, raw, spec) end
  if kind == "number" then
    local n = tonumber(raw)
    if not n then fail(key, raw, "expected a number") end
    if n ~= n or n == math.huge or n == -math.huge then fail(key, raw, "expected a finite number") end
    return check_range(key, raw, spec, n)
  end
  if kind == "bool" then
    local l = raw:lower()
    if l == "1" or l == "true" or l == "yes" or l == "on" then return true end
    if l == "0" or l == "false" or l == "no" or l == "off" then return false end
    fail(key, raw, "expected true or false")
  end
  if kind == "list" then
    local out = {}
    for item in raw:gmatch("[^,]+") do out[#out + 1] = item end
    return out
  end
  if kind == "intlist" then
    local out = {}
    for item in raw:gmatch("[^,]+") do out[#out + 1] = to_int(key, item, spec) end
    return out
  end
  error(("schema for %s: unknown type %s"):format(key, tostring(kind)), 0)
end

local function sorted_keys(schema)
  local keys = {}
  for k in pairs(schema) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

-- The text --help prints: the usage line, then one line per argument.
function M.help(schema, usage)
  local out = {"usage: " .. (usage or "taming run SCRIPT key=value ..."), "arguments:"}
  for _, k in ipairs(sorted_keys(schema)) do
    local spec = schema[k]
    local notes = {}
    if spec.help then notes[#notes + 1] = spec.help end
    if spec.required then notes[#notes + 1] = "required" end
    if spec.default ~= nil then notes[#notes + 1] = "default " .. tostring(spec.default) end
    if spec.choices then notes[#notes + 1] = "one of " .. table.concat(spec.choices, ", ") end
    if spec.min then notes[#notes + 1] = ">= " .. tostring(spec.min) end
    if spec.max then notes[#notes + 1] = "<= " .. tostring(spec.max) end
    local name = ("  %s=%s"):format(k, tostring(spec[1]):upper())
    out[#out + 1] = #notes > 0 and ("%-24s %s"):format(name, table.concat(notes, "; ")) or name
  end
  return table.concat(out, "\n") .. "\n"
end

-- Returns a table of converted values (defaults filled in). `raw` is the table
-- `taming run` passes to the script: key=value pairs as fields, every other
-- argument in its array part.
function M.parse(raw, schema, usage)
  raw = raw or {}
  local see = usage and ("; usage: " .. usage) or ""
  for _, v in ipairs(raw) do
    if v == "--help" or v == "-h" then
      io.stdout:write(M.help(schema, usage))
      io.stdout:flush()
      os.exit(0, true)
    end
  end
  for _, v in ipairs(raw) do
    error(("argument '%s' is not key=value (--help lists the arguments)%s"):format(tostring(v), see), 0)
  end
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
        error(("unknown argument '%s' (known: %s)%s"):format(key, table.concat(sorted_keys(schema), ", "), see), 0)
      end
      out[key] = convert(key, spec, value)
    end
  end
  for key, spec in pairs(schema) do
    if out[key] == nil then
      if spec.required then
        error(("missing argument %s=...%s%s"):format(key, spec.help and (" (" .. spec.help .. ")") or "", see), 0)
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
