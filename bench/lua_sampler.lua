-- bench/lua_sampler.lua — the cost of a sampler written as a Lua function
-- against the equivalent C plugin (categorical, temperature + top-k), on the
-- shipped Fashion-MNIST model: the sampling loop of `sample_class class=all n=8`
-- (80 rows, 64 steps), and the sampler calls alone on logits [80, 128]. Runs
-- alternate (reps of each) and the median is reported, so that a busy machine
-- affects both sides alike. Both draw the same tokens (checked).
--
--   taming run bench/lua_sampler.lua [n=8] [top_k=20] [reps=5] [threads=N]
local tt = require "taming"

local a = tt.args.parse(..., {
  n = {"int", default = 8}, top_k = {"int", default = 20}, reps = {"int", default = 5}, threads = {"int"},
  model = {"string", default = "models/fashion_mnist"},
})
if a.threads then tt.set_threads(a.threads) end
local model = tt.load(a.model .. "/transformer.safetensors", {config = a.model .. "/transformer.yaml"})
local make = dofile((os.getenv("TT_SRCDIR") or ".") .. "/tests/lua/lua_categorical_sampler.lua")
local labels = {}
for k = 0, model.n_classes - 1 do for _ = 1, a.n do labels[#labels + 1] = k end end
local _, cond = model:encode_to_c(tt.tensor(labels, {dtype = "i64"}))
local B, steps, V = #labels, model.gpt_info.block_size - 1, model.first_stage.n_embed

local function plugin() return tt.plugin("sampler", "categorical", {seed = 1, top_k = a.top_k}) end
local function lua_fn() return make{seed = 1, top_k = a.top_k} end

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

local loop = {c = {}, lua = {}}
local calls = {c = {}, lua = {}}
local tokens = {}
local logits = tt.randn({B, V}, 5) * 3
tt.no_grad(function()
  for _ = 1, a.reps do
    for _, kind in ipairs({"c", "lua"}) do
      local s = kind == "c" and plugin() or lua_fn()
      local t0 = tt.time()
      tokens[kind] = tt.sample{gpt = model.transformer, sampler = s, prefix = cond, steps = steps, vocab_limit = V}
      loop[kind][#loop[kind] + 1] = tt.time() - t0
      local f = kind == "c" and function(x) return s:sample(x) end or s
      t0 = tt.time()
      for _ = 1, steps do f(logits) end
      calls[kind][#calls[kind] + 1] = tt.time() - t0
    end
  end
end)
local same = tokens.c:ne(tokens.lua):float():sum():item() == 0
local lc, ll, cc, cl = median(loop.c), median(loop.lua), median(calls.c), median(calls.lua)
print(('{"bench":"lua_sampler","rows":%d,"steps":%d,"vocab":%d,"top_k":%d,"threads":%d,"reps":%d,'
  .. '"loop_c_s":%.3f,"loop_lua_s":%.3f,"calls_c_ms_per_step":%.3f,"calls_lua_ms_per_step":%.3f,'
  .. '"lua_overhead_ms_per_step":%.3f,"same_tokens":%s}'):format(B, steps, V, a.top_k, tt.threads(), a.reps, lc, ll,
  cc / steps * 1e3, cl / steps * 1e3, (cl - cc) / steps * 1e3, tostring(same)))
