-- test_api_doc.lua — docs/lua-api.md lists every binding: each function and value of
-- the `taming` module table (one level into its sub-tables: tt.image.load, tt.Model:add)
-- and each tensor method appears in a `### ` heading of the page, and every name the
-- headings give exists. A binding added without its entry, or an entry left behind
-- by a removed binding, fails here with the names.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local read = T.read

-- the names the headings document: `tt.a.b(...)`, `tt.Model:add(...)` -> tt.Model.add, `x:m(...)` -> x:m
local function documented(doc)
  local fns, methods = {}, {}
  for line in doc:gmatch("[^\n]+") do
    if line:match("^### ") then
      for span in line:gmatch("`([^`]+)`") do
        local name = span:match("^(tt%.[%w_%.:]+)")
        if name then fns[(name:gsub(":", "."))] = true end
        local m = span:match("^x:([%w_]+)")
        if m then methods[m] = true end
      end
    end
  end
  return fns, methods
end

-- the bindings: tt.k (functions and plain values) and tt.k.f (functions of a sub-table)
local function bindings()
  local fns = {}
  for k, v in pairs(tt) do
    if type(v) == "table" then
      for k2, v2 in pairs(v) do
        if type(v2) == "function" then fns["tt." .. k .. "." .. k2] = true end
      end
    else
      fns["tt." .. k] = true
    end
  end
  local methods = {}
  local index = getmetatable(tt.zeros({1})).__index
  for k, v in pairs(index) do
    if type(v) == "function" and k:sub(1, 2) ~= "__" then methods[k] = true end
  end
  return fns, methods
end

local function diff(a, b)
  local out = {}
  for k in pairs(a) do if not b[k] then out[#out + 1] = k end end
  table.sort(out)
  return out
end

test("every_binding_is_documented_and_every_entry_exists", function()
  local doc = read(T.srcdir() .. "/docs/lua-api.md")
  local dfns, dmethods = documented(doc)
  local bfns, bmethods = bindings()
  local undocumented, stale = diff(bfns, dfns), diff(dfns, bfns)
  local um, sm = diff(bmethods, dmethods), diff(dmethods, bmethods)
  local n, m = 0, 0
  for _ in pairs(bfns) do n = n + 1 end
  for _ in pairs(bmethods) do m = m + 1 end
  print(("  %d module bindings, %d tensor methods"):format(n, m))
  local problems = {}
  if #undocumented > 0 then problems[#problems + 1] = "not in docs/lua-api.md: " .. table.concat(undocumented, ", ") end
  if #stale > 0 then problems[#problems + 1] = "in docs/lua-api.md but not bound: " .. table.concat(stale, ", ") end
  if #um > 0 then problems[#problems + 1] = "tensor methods not in docs/lua-api.md: x:" .. table.concat(um, ", x:") end
  if #sm > 0 then problems[#problems + 1] = "tensor methods documented but not bound: x:" .. table.concat(sm, ", x:") end
  if #problems > 0 then error(table.concat(problems, "; ")) end
  T.ok("the enumeration found the module", n > 100 and m > 60)
end)

test("the_check_itself_can_fail", function()
  local dfns, dmethods = documented("### `tt.zeros(shape)`, `tt.Model:add(n, m)`\n### `x:reshape(s)` → x\nnot `tt.ones`\n")
  T.ok("functions and class methods", dfns["tt.zeros"] and dfns["tt.Model.add"] and not dfns["tt.ones"])
  T.ok("tensor methods", dmethods.reshape)
  T.eq("a binding missing from the page is reported", diff({["tt.zeros"] = true, ["tt.x"] = true}, dfns)[1], "tt.x")
end)

os.exit(T.run("api_doc", tests))
