-- bench/lua_sampler.lua — the cost of a sampler written as a Lua function
-- against the equivalent C plugin (categorical, temperature + top-k), on the
-- shipped Fashion-MNIST model: the sampling loop of `sample_class class=all n=8`
-- (80 rows, 64 steps), and the sampler calls alone on logits [80, 128]. Runs
-- alternate (reps of each) and the median is reported, so that a busy machine
-- affects both sides alike. Both draw the same tokens (checked).
--
-- precision= sets the transformer's weights (the loop's share of model time changes
-- with it; the sampler calls do not).
--
--   taming run bench/lua_sampler.lua [n=8] [top_k=20] [reps=5] [threads=N] [precision=fp32|bf16|int8]
local tt = require "taming"
local B = require "taming.bench"

local a = B.args(..., {
  n = {"int", default = 8, min = 1}, top_k = {"int", default = 20}, reps = {"int", default = 5, min = 1},
  model = {"string", default = "models/fashion_mnist"},
}, "taming run bench/lua_sampler.lua [n=8] [top_k=20] [reps=5] [threads=N] [precision=fp32|bf16|int8]")
local model = tt.load(a.model .. "/transformer.safetensors", {config = a.model .. "/transformer.yaml",
                                                              precision = a.precision})
local info = B.model_precision(model)
local make = dofile((os.getenv("TT_SRCDIR") or ".") .. "/tests/lua/lua_categorical_sampler.lua")
local labels = {}
for k = 0, model.n_classes - 1 do for _ = 1, a.n do labels[#labels + 1] = k end end
local _, cond = model:encode_to_c(tt.tensor(labels, {dtype = "i64"}))
local rows, steps, V = #labels, model.gpt_info.block_size - 1, model.first_stage.n_embed

local function plugin() return tt.plugin("sampler", "categorical", {seed = 1, top_k = a.top_k}) end
local function lua_fn() return make{seed = 1, top_k = a.top_k} end

local loop = {c = {}, lua = {}}
local calls = {c = {}, lua = {}}
local tokens = {}
local logits = tt.randn({rows, V}, 5) * 3
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
local lc, ll, cc, cl = B.median(loop.c), B.median(loop.lua), B.median(calls.c), B.median(calls.lua)
B.print_json{"bench", "lua_sampler", "precision", info.precision, "isa", info.isa, "rows", rows, "steps", steps,
  "vocab", V, "top_k", a.top_k, "threads", tt.threads(), "reps", a.reps, "loop_c_s", B.fmt("%.3f", lc),
  "loop_lua_s", B.fmt("%.3f", ll), "calls_c_ms_per_step", B.fmt("%.3f", cc / steps * 1e3),
  "calls_lua_ms_per_step", B.fmt("%.3f", cl / steps * 1e3), "lua_overhead_ms_per_step",
  B.fmt("%.3f", (cl - cc) / steps * 1e3), "same_tokens", same}
