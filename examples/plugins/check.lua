-- check.lua — `make installcheck` runs this with the installed `taming` and
-- TAMING_PLUGIN_PATH on the example plugins built against the installed SDK:
-- their numbers against the definitions, computed here in Lua.
local tt = require "taming"

local failures = 0
local function check(what, ok, detail)
  print(("%s %s%s"):format(ok and "ok  " or "FAIL", what, ok and "" or (": " .. tostring(detail))))
  if not ok then failures = failures + 1 end
end

local function max_diff(a, b)
  local d = 0
  for i, row in ipairs(a) do
    for j, v in ipairs(row) do d = math.max(d, math.abs(v - b[i][j])) end
  end
  return d
end

-- min_p: softmax(l / T), cut at min_p * max, renormalised
local function ref_min_p(rows, min_p, T)
  local out = {}
  for i, row in ipairs(rows) do
    local mx = -math.huge
    for _, v in ipairs(row) do mx = math.max(mx, v) end
    local z, kept, p = 0, 0, {}
    for _, v in ipairs(row) do z = z + math.exp((v - mx) / T) end
    for j, v in ipairs(row) do
      local rel = math.exp((v - mx) / T)
      p[j] = rel >= min_p and rel / z or 0
      kept = kept + p[j]
    end
    for j = 1, #p do p[j] = p[j] / kept end
    out[i] = p
  end
  return out
end

local logits = tt.randn({3, 50}, 7) * 3
local rows = logits:totable()
for _, case in ipairs({{0.05, 1.0}, {0.3, 0.7}, {0.0, 1.5}}) do
  local s = tt.plugin("sampler", "min_p", {min_p = case[1], temperature = case[2], seed = 1})
  local d = max_diff(s:probs(logits):totable(), ref_min_p(rows, case[1], case[2]))
  check(("min_p=%g temperature=%g probs"):format(case[1], case[2]), d < 1e-6, d)
end
local c = tt.plugin("sampler", "categorical", {temperature = 1.5})
local m0 = tt.plugin("sampler", "min_p", {min_p = 0, temperature = 1.5})
local d0 = max_diff(m0:probs(logits):totable(), c:probs(logits):totable())
check("min_p=0 is plain temperature sampling", d0 < 1e-6, d0)

-- draws: only kept tokens, reproducible from (seed, counter)
local s = tt.plugin("sampler", "min_p", {min_p = 0.2, seed = 3})
local p = s:probs(logits):totable()
local seed, counter = s:state()
local first, outside = {}, 0
for k = 1, 100 do
  local t = s:sample(logits):totable()
  first[k] = table.concat(t, ",")
  for b = 1, 3 do if p[b][t[b] + 1] == 0 then outside = outside + 1 end end
end
check("every draw is a kept token", outside == 0, outside .. " draws outside the kept set")
s:set_state(seed, counter)
local same = true
for k = 1, 100 do same = same and table.concat(s:sample(logits):totable(), ",") == first[k] end
check("set_state replays the draws", same)
local ok, err = pcall(tt.plugin, "sampler", "min_p", {minp = 0.1})
check("a misspelled key lists the known ones", not ok and tostring(err):find("unknown config key 'minp' (known: min_p, "
  .. "temperature, seed)", 1, true), err)
ok, err = pcall(tt.plugin, "sampler", "min_p", {min_p = 2})
check("min_p outside [0, 1]", not ok and tostring(err):find("must lie in [0, 1]", 1, true), err)

-- luma: block-mean luma quantised to n_levels
local n, f = 8, 4
local x = tt.rand({2, 3, 16, 12}, 5) * 2 - 1
local lu = tt.plugin("cond", "luma", {n_levels = n, down_factor = f})
local quant, loss, idx = lu:encode(x)
local xs = x:totable()
local bad = 0
for b = 1, 2 do
  for i = 0, 16 // f - 1 do
    for j = 0, 12 // f - 1 do
      local sum = 0
      for y = i * f + 1, (i + 1) * f do
        for xx = j * f + 1, (j + 1) * f do
          sum = sum + 0.299 * xs[b][1][y][xx] + 0.587 * xs[b][2][y][xx] + 0.114 * xs[b][3][y][xx]
        end
      end
      local level = math.floor((sum / (f * f) + 1) / 2 * (n - 1) + 0.5)
      level = math.max(0, math.min(n - 1, level))
      local k = i * (12 // f) + j
      if idx:get(b - 1, k) ~= level then bad = bad + 1 end
      if math.abs(quant:get(b - 1, 0, i, j) - (level / (n - 1) * 2 - 1)) > 1e-6 then bad = bad + 1 end
    end
  end
end
check("luma tokens and levels", bad == 0 and loss == nil, bad .. " cells differ")
local img = lu:decode(quant)
check("decode: a gray image of the input's size", img:size(0) == 2 and img:size(1) == 3 and img:size(2) == 16 and
  img:size(3) == 12 and img:get(1, 2, 5, 7) == quant:get(1, 0, 1, 1), table.concat(img:shape(), "x"))
ok, err = pcall(function() lu:encode(tt.rand({1, 3, 10, 12}, 1)) end)
check("a size that is not whole blocks", not ok and tostring(err):find("not a multiple of down_factor", 1, true), err)

if failures > 0 then error(("%d example plugin check(s) failed"):format(failures), 0) end
print("example plugins: all checks passed")
