-- test_samplers.lua — samplers given as Lua functions and forced tokens, on the
-- shipped Fashion-MNIST model (always in the tree): a Lua function built from
-- the tensor ops draws the same tokens as the equivalent C sampler plugin for
-- the same seed, in one pass and under the sliding window; known/mask keep
-- every unmasked token and feed it to the model exactly as a prefix would (and,
-- with ../shared/fixtures, reproduce the official greedy continuation).
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local M = T.srcdir() .. "/models/fashion_mnist"
if not tt.fs.exists(M .. "/transformer.safetensors") then
  os.exit(T.skip("samplers", M .. "/transformer.safetensors is absent"))
end
local model = tt.load(M .. "/transformer.safetensors", {config = M .. "/transformer.yaml"})
local gpt, V, L = model.transformer, 128, 64
local B = 4
local _, cond = model:encode_to_c(tt.tensor({0, 3, 7, 9}, {dtype = "i64"}))   -- [B, 1]

local function categorical(opts) return tt.plugin("sampler", "categorical", opts) end

-- the Lua twin of the categorical plugin: temperature, then top-k (ties with the
-- k-th value kept), softmax, one multinomial draw per row from the same stream
local function lua_categorical(seed, temperature, top_k)
  local rng = tt.rng(seed)
  return function(logits)                          -- [B, V] -> i64 [B]
    local l = logits * (1 / temperature)
    if top_k then
      local kth = l:topk(top_k):slice(1, top_k - 1, top_k)   -- [B, 1]
      l = l:masked_fill(l:lt(kth), -math.huge)
    end
    return tt.multinomial(l:softmax(-1), 1, rng):flatten()
  end
end

local function lua_greedy(logits) return logits:argmax(-1) end

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("tensor_ops_from_lua", function()
  local x = tt.tensor({{3, 1, 2, 2}, {0, -1, 5, 4}})
  local v, i = x:sort(-1, true)
  T.equal("sort values", v, tt.tensor({{3, 2, 2, 1}, {5, 4, 0, -1}}))
  T.equal("sort indices (stable)", i, tt.tensor({{0, 2, 3, 1}, {2, 3, 0, 1}}, {dtype = "i64"}))
  local tv, ti = x:topk(2, 1, false)
  T.equal("topk smallest", ti, tt.tensor({{1, 2}, {1, 0}}, {dtype = "i64"}))
  T.close("cumsum", x:cumsum(1), tt.tensor({{3, 4, 6, 8}, {0, -1, 4, 8}}), 0)
  T.close("cumsum dim 0", x:cumsum(0), tt.tensor({{3, 1, 2, 2}, {3, 0, 7, 6}}), 0)
  local m = x:ge(2)
  T.eq("mask dtype", m:dtype(), "u8")
  T.close("where", tt.where(m, x, 0), tt.tensor({{3, 0, 2, 2}, {0, 0, 5, 4}}), 0)
  T.close("masked_fill", x:masked_fill(m:eq(0), 9), tt.tensor({{3, 9, 2, 2}, {9, 9, 5, 4}}), 0)
  T.equal("argmax", x:argmax(1), tt.tensor({0, 2}, {dtype = "i64"}))
  -- a seed reproduces a draw; an rng continues its stream
  local p = x:softmax(1)
  T.equal("multinomial seed", tt.multinomial(p, 5, 42), p:multinomial(5, tt.rng(42)))
  local r = tt.rng(42)
  local first = tt.multinomial(p, 5, r)
  T.eq("rng advanced by 2 rows x 5", select(2, r:state()), 10)
  T.ok("the stream moves on", tt.multinomial(p, 5, r):ne(first):float():sum():item() > 0)
  T.raises("fractional scalar on i64", function() return i:lt(1.5) end, "not a value of the tensor's dtype i64")
  T.raises("where on numbers only", function() return tt.where(m, 1, 2) end, "a or b must be a tensor")
  T.raises("multinomial without rng", function() return tt.multinomial(p, 1) end, "pass a tt.rng or an integer seed")
  -- gradients flow through where, masked_fill and cumsum
  local w = tt.tensor({1, 2, 3, 4}):requires_grad(true)
  local y = tt.where(tt.tensor({1, 0, 1, 0}):gt(0), w:cumsum(0), w:masked_fill(tt.tensor({0, 0, 1, 1}):gt(0), 0)):sum()
  y:backward()
  T.close("grad", w:grad(), tt.tensor({2, 2, 1, 0}), 0)
end)

test("lua_function_equals_categorical_plugin", function()
  for _, case in ipairs({{seed = 3, temperature = 1.0}, {seed = 11, temperature = 0.7, top_k = 20}}) do
    local c = tt.sample{gpt = gpt, sampler = categorical(case), prefix = cond, steps = L, vocab_limit = V}
    local calls = 0
    local f = lua_categorical(case.seed, case.temperature, case.top_k)
    local l = tt.sample{gpt = gpt, prefix = cond, steps = L, vocab_limit = V,
                        sampler = function(x) calls = calls + 1; return f(x) end}
    T.eq("calls of the Lua sampler", calls, L)
    T.equal(("tokens, seed %d top_k %s"):format(case.seed, tostring(case.top_k)), l, c)
  end
  -- and a different seed does give different tokens (the comparison can fail)
  local other = tt.sample{gpt = gpt, prefix = cond, steps = L, vocab_limit = V, sampler = lua_categorical(4, 1.0)}
  local ref = tt.sample{gpt = gpt, sampler = categorical{seed = 3}, prefix = cond, steps = L, vocab_limit = V}
  T.ok("seed 4 differs from seed 3", other:ne(ref):float():sum():item() > 0)
end)

test("lua_function_under_sliding_window", function()
  -- a 10x10 latent grid is larger than the 8x8 training window
  local function run(sampler)
    local grid = tt.zeros({B, 10, 10}, {dtype = "i64"})
    tt.sample_window{gpt = gpt, sampler = sampler, grid = grid, cond_tokens = cond, window = {8, 8},
                     anchor = {4, 4}, vocab_limit = V}
    return grid
  end
  T.equal("greedy", run(lua_greedy), run(tt.plugin("sampler", "greedy")))
  T.equal("categorical seed 5", run(lua_categorical(5, 1.0)), run(categorical{seed = 5}))
end)

test("lua_function_errors", function()
  local base = {gpt = gpt, prefix = cond, steps = 3, vocab_limit = V}
  local function with(f) local a = {} for k, v in pairs(base) do a[k] = v end a.sampler = f return a end
  T.raises("error inside", function() tt.sample(with(function() error("no tokens today") end)) end,
    "sampler function:", "no tokens today")
  T.raises("not a tensor", function() tt.sample(with(function() return 5 end)) end,
    "sampler function: returned a number, expected an i64 tensor [B]")
  T.raises("f32 tokens", function() tt.sample(with(function(x) return x:max(1) end)) end,
    "the sampler function must return i64 tokens [4], found f32")
  T.raises("out of the vocabulary", function()
    tt.sample(with(function() return tt.full({B}, V, {dtype = "i64"}) end))
  end, "returned token 128 for row 0, outside the vocabulary [0, 128)")
  T.raises("no sampler", function() tt.sample(base) end, "missing field 'sampler'")
end)

-- codes [B, L] of the test's first draw, used as known tokens
local known = tt.sample{gpt = gpt, sampler = categorical{seed = 21}, prefix = cond, steps = L, vocab_limit = V}

test("known_prefix_equals_prefix_sampling", function()
  -- keeping the first k tokens through mask= samples the rest as a prefix would
  local k = 24
  local mask = tt.ones({B, L}, {dtype = "i64"})
  mask:narrow(1, 0, k):fill_(0)
  for _, cache in ipairs({true, false}) do
    local a = tt.sample{gpt = gpt, sampler = categorical{seed = 8}, prefix = cond, steps = L, vocab_limit = V,
                        known = known, mask = mask, cache = cache}
    local x = known:narrow(1, 0, k):contiguous()
    local b = tt.sample{gpt = gpt, sampler = categorical{seed = 8}, prefix = tt.cat({cond, x}, 1), steps = L - k,
                        vocab_limit = V, cache = cache}
    T.equal("kept prefix", a:narrow(1, 0, k), x)
    T.equal("sampled rest, cache " .. tostring(cache), a:narrow(1, k, L - k), b)
  end
end)

test("mask_keeps_every_unmasked_token", function()
  -- a per-row mask with holes: kept tokens stay, masked ones are sampled
  local u = tt.rand({B, L}, 77)
  local mask = u:lt(0.4)                               -- u8, 1 = sample
  local out = tt.sample{gpt = gpt, sampler = categorical{seed = 1}, prefix = cond, steps = L, vocab_limit = V,
                        known = known, mask = mask}
  local keep = mask:eq(0)
  local kept_diff = out:ne(known):long():masked_fill(mask, 0):float():sum():item()
  T.eq("unmasked tokens changed", kept_diff, 0)
  T.ok("some masked tokens were resampled", out:ne(known):float():sum():item() > 0)
  T.ok("kept count", keep:float():sum():item() > 0)
  -- greedy, cached and uncached agree with holes too (kept tokens are fed in runs)
  local g1 = tt.sample{gpt = gpt, sampler = tt.plugin("sampler", "greedy"), prefix = cond, steps = L,
                       vocab_limit = V, known = known, mask = mask}
  local g2 = tt.sample{gpt = gpt, sampler = tt.plugin("sampler", "greedy"), prefix = cond, steps = L,
                       vocab_limit = V, known = known, mask = mask, cache = false}
  T.equal("greedy cached vs uncached", g1, g2)
  T.raises("mask without known", function()
    tt.sample{gpt = gpt, sampler = categorical{}, prefix = cond, steps = L, mask = mask}
  end, "known= and mask= go together")
  T.raises("mask of the wrong shape", function()
    tt.sample{gpt = gpt, sampler = categorical{}, prefix = cond, steps = L, known = known, mask = mask:narrow(1, 0, 5)}
  end, "the mask must be u8 or i64 [4, 64]")
end)

test("window_mask_keeps_cells_and_matches_start", function()
  local H, W = 10, 10
  local base = tt.zeros({B, H, W}, {dtype = "i64"})
  tt.sample_window{gpt = gpt, sampler = categorical{seed = 2}, grid = base, cond_tokens = cond,
                   window = {8, 8}, anchor = {4, 4}, vocab_limit = V}
  -- mask = 0 before cell 37 is start=37
  local function run(args)
    local g = base:clone()
    args.gpt, args.grid, args.cond_tokens, args.window, args.anchor, args.vocab_limit = gpt, g, cond, {8, 8}, {4, 4}, V
    tt.sample_window(args)
    return g
  end
  local m = tt.ones({B, H * W}, {dtype = "i64"})
  m:narrow(1, 0, 37):fill_(0)
  T.equal("mask prefix vs start",
    run{sampler = categorical{seed = 6}, mask = m:reshape(B, H, W)},
    run{sampler = categorical{seed = 6}, start = 37})
  -- a box of cells to resample: everything outside it is kept, with or without the cache
  local box = tt.zeros({B, H, W}, {dtype = "u8"})
  box:narrow(1, 3, 4):narrow(2, 2, 5):fill_(1)
  local g1 = run{sampler = tt.plugin("sampler", "greedy"), mask = box}
  local g2 = run{sampler = tt.plugin("sampler", "greedy"), mask = box, cache = false}
  T.equal("box: cached vs uncached", g1, g2)
  T.eq("cells outside the box changed", g1:ne(base):long():masked_fill(box, 0):float():sum():item(), 0)
  T.ok("cells inside the box were resampled", g1:ne(base):float():sum():item() > 0)
end)

-- Windows that come back (cells of rows sharing the window's top row) reuse the
-- KV cache of their prefix: the same tokens as one cache and as no cache at all,
-- with fewer tokens through the model.
test("window_cache_slots_reuse_prefixes", function()
  -- 12x12 grid, 8x8 window anchored at 4, 4: rows 0-4 share top row 0 and rows 8-11 top row 4
  local function run(args)
    local g = tt.zeros({B, 12, 12}, {dtype = "i64"})
    args.gpt, args.grid, args.cond_tokens, args.window, args.anchor, args.vocab_limit = gpt, g, cond, {8, 8}, {4, 4}, V
    local fed = tt.sample_window(args)
    return g, fed
  end
  local greedy = tt.plugin("sampler", "greedy")
  local many, fed_many = run{sampler = greedy}
  local one, fed_one = run{sampler = greedy, cache_slots = 1}
  local none, fed_none = run{sampler = greedy, cache = false}
  T.equal("greedy: one cache per window column vs no cache", many, none)
  T.equal("greedy: one cache vs no cache", one, none)
  T.ok(("fewer tokens through the model with reuse: %d < %d < %d"):format(fed_many, fed_one, fed_none),
    fed_many < fed_one and fed_one < fed_none)
  local two = run{sampler = greedy, cache_slots = 2}                  -- windows share slots: some prefixes recomputed
  T.equal("greedy: two caches for five window columns", two, none)
  T.equal("categorical seed 8: slots vs one cache", run{sampler = categorical{seed = 8}},
    run{sampler = categorical{seed = 8}, cache_slots = 1})
  -- the model is left with one cache that still works for plain sampling
  gpt:reset_cache(B)
  T.eq("one cache left", gpt:cache_len(), 0)
  T.raises("slot out of range", function() gpt:select_cache(1) end, "select_cache(1): there are 1 cache slots")
  T.raises("negative cache_slots", function() run{sampler = greedy, cache_slots = -1} end, "cache_slots must be 0")
end)

-- The official greedy continuation (../shared/fixtures, made by the PyTorch
-- reference) is a fixed point of forced greedy sampling: keep any subset of it,
-- greedy-sample the rest, and the official tokens come back.
test("forced_tokens_reproduce_official_greedy", function()
  local F = T.fixtures()
  if not F then print("  (skipped: ../shared/fixtures is absent)") return end
  local D = F .. "/tiny/"
  local g = tt.load(D .. "gpt.safetensors", {config = D .. "gpt.yaml"})
  local want = tt.npy.load(D .. "gpt_greedy.npy")                -- [1, 80]: 16 given + 64 greedy
  local prefix, tail = want:narrow(1, 0, 16):contiguous(), want:narrow(1, 16, 64):contiguous()
  local gpt2 = g.gpt
  for seed, cache in pairs({[5] = true, [6] = false}) do
    local mask = tt.rand({1, 64}, seed):lt(0.5)
    local out = tt.sample{gpt = gpt2, sampler = tt.plugin("sampler", "greedy"), prefix = prefix, steps = 64,
                          known = tail, mask = mask, cache = cache}
    T.equal("official greedy with forced tokens, cache " .. tostring(cache), out, tail)
  end
end)

-- the pipelines: sampler=NAME with sampler.KEY=VALUE settings, or FILE.lua
local tmp = T.tmpdir("samplers")
local run = ("%s run %s/pipelines/sample_class.lua config=%s/transformer.yaml ckpt=%s/transformer.safetensors "
  .. "class=3 n=2 output=%s/s.png"):format(T.taming(), T.srcdir(), M, M, tmp)

local function codes(args, name)
  local path = tmp .. "/" .. name .. ".npy"
  local status, out = T.sh(run .. " " .. args .. " codes=" .. path)
  T.eq(args .. ": exit status (" .. out .. ")", status, 0)
  return tt.npy.load(path)
end

test("pipeline_sampler_option", function()
  local knobs = codes("seed=4 top_k=10 temperature=0.8", "knobs")
  T.equal("sampler=categorical with settings",
    codes("seed=4 sampler=categorical sampler.top_k=10 sampler.temperature=0.8", "plugin"), knobs)
  T.equal("sampler=FILE.lua", codes("seed=4 sampler=" .. T.srcdir() .. "/tests/lua/lua_categorical_sampler.lua"
    .. " sampler.top_k=10 sampler.temperature=0.8", "file"), knobs)
  T.equal("sampler.seed overrides seed=", codes("seed=9 sampler=categorical sampler.seed=4 sampler.top_k=10"
    .. " sampler.temperature=0.8", "seeded"), knobs)
  T.equal("sampler=greedy is greedy=true", codes("sampler=greedy", "g1"), codes("greedy=true", "g2"))
end)

test("pipeline_conflicting_options", function()
  for _, case in ipairs({
    {"greedy=true top_k=5", "greedy=true and top_k=... conflict"},
    {"sampler=greedy temperature=0.5", "sampler=greedy and temperature=... conflict", "sampler.temperature"},
    {"sampler=categorical greedy=false", "sampler=categorical and greedy=false conflict"},
    {"sampler.top_k=5", "sampler.top_k=... needs sampler=NAME"},
    {"sampler=no_such_sampler", "no_such_sampler"},
    {"sampler=" .. tmp .. "/absent.lua", "absent.lua"},
  }) do
    local status, out = T.sh(run .. " " .. case[1])
    T.ok(case[1] .. ": expected a failure, got status 0", status ~= 0)
    for i = 2, #case do
      T.ok(("%s: message lacks '%s': %s"):format(case[1], case[i], out), out:find(case[i], 1, true))
    end
    T.ok(case[1] .. ": one-line error: " .. out, select(2, out:gsub("\n", "")) <= 1)
  end
end)

-- inpainting: every code outside the region is the input's own code
test("inpaint_keeps_every_unmasked_code", function()
  local P, C = require "taming.pipeline", require "taming.conditions"
  local img = tmp .. "/garment.png"
  tt.image.save(img, P.decode(model, known:narrow(0, 0, 1):reshape(1, 8, 8)))       -- a 32x32 garment
  local ref = select(3, tt.no_grad(function() return model.first_stage:encode(C.image(img, 32, 1)) end)):reshape(1, 8, 8)
  local inpaint = ("%s run %s/pipelines/inpaint.lua config=%s/transformer.yaml ckpt=%s/transformer.safetensors "
    .. "input=%s class=3 n=3 output=%s/inpaint.png"):format(T.taming(), T.srcdir(), M, M, img, tmp)
  local function check(args, region, name)
    local path = tmp .. "/" .. name .. ".npy"
    local status, out = T.sh(inpaint .. " " .. args .. " codes=" .. path)
    T.eq(args .. ": exit status (" .. out .. ")", status, 0)
    local got = tt.npy.load(path)                                                  -- [3, 8, 8]
    local keep = region:eq(0):expand(3, 8, 8)
    local changed_kept = got:ne(ref:expand(3, 8, 8)):long():masked_fill(region, 0):float():sum():item()
    T.eq(args .. ": unmasked codes changed", changed_kept, 0)
    T.ok(args .. ": kept cells " .. keep:float():sum():item(), keep:float():sum():item() > 0)
    T.ok(args .. ": some masked code resampled", got:ne(ref:expand(3, 8, 8)):float():sum():item() > 0)
  end
  -- box 9,5,20,16 in pixels covers cells rows 1..3, columns 2..4 (f = 4)
  local box = tt.zeros({1, 8, 8}, {dtype = "u8"})
  box:narrow(1, 1, 3):narrow(2, 2, 3):fill_(1)
  check("box=9,5,20,16 seed=2", box, "box")
  check("box=9,5,20,16 seed=2 cache=false sampler=greedy", box, "box_greedy")
  -- a mask PNG: a bright L shape, marked pixels anywhere in a cell mark the cell
  local m = tt.zeros({32, 32, 1}, {dtype = "u8"})
  m:narrow(0, 20, 12):narrow(1, 0, 4):fill_(255)
  m:narrow(0, 28, 1):narrow(1, 4, 27):fill_(200)
  tt.image.save(tmp .. "/mask.png", m)
  local cells = tt.zeros({1, 8, 8}, {dtype = "u8"})
  cells:narrow(1, 5, 3):narrow(2, 0, 1):fill_(1)
  cells:narrow(1, 7, 1):narrow(2, 0, 8):fill_(1)
  check("mask=" .. tmp .. "/mask.png seed=3", cells, "mask")
  -- bad regions are one-line errors
  tt.image.save(tmp .. "/small_mask.png", tt.zeros({16, 32, 1}, {dtype = "u8"}))
  for _, case in ipairs({
    {"box=0,0,40,8", "box=0,0,40,8: expected x0,y0,x1,y1 with 0 <= x0 < x1 <= 32"},
    {"box=8,8,8,12", "expected x0,y0,x1,y1"},
    {"", "give the region to repaint as box=x0,y0,x1,y1 or as mask=FILE.png"},
    {"box=0,0,8,8 mask=" .. tmp .. "/mask.png", "(one of them)"},
    {"mask=" .. tmp .. "/small_mask.png", "the mask is 32x16, the input", "is 32x32"},
  }) do
    local status, out = T.sh(inpaint .. " " .. case[1])
    T.ok(case[1] .. ": expected a failure", status ~= 0)
    for i = 2, #case do T.ok(("%s: message lacks '%s': %s"):format(case[1], case[i], out), out:find(case[i], 1, true)) end
  end
end)

-- the KV cache slots stay within TAMING_KV_CACHE_MB, and a bad value is a one-line error
test("kv_cache_slots_budget", function()
  local script = tmp .. "/slots.lua"
  local f = assert(io.open(script, "w"))
  f:write(([[
local tt = require "taming"
local m = tt.load("%s/transformer.safetensors", {config = "%s/transformer.yaml"})
m.transformer:reset_cache(2)
print("kept " .. m.transformer:cache_slots(6))
]]):format(M, M))
  f:close()
  local function kept(env)
    local status, out = T.sh(("%s %s run %s"):format(env, T.taming(), script))
    return status, out
  end
  local status, out = kept("")
  T.eq("default budget: exit status (" .. out .. ")", status, 0)
  T.ok("default budget keeps 6: " .. out, out:find("kept 6", 1, true))
  status, out = kept("TAMING_KV_CACHE_MB=0.000001")
  T.ok("tiny budget keeps 1: " .. out, status == 0 and out:find("kept 1", 1, true))
  status, out = kept("TAMING_KV_CACHE_MB=lots")
  T.ok("bad budget fails", status ~= 0)
  T.ok("bad budget message: " .. out, out:find("TAMING_KV_CACHE_MB must be a positive number of MB, found 'lots'", 1, true))
  T.ok("one line: " .. out, select(2, out:gsub("\n", "")) <= 1)
end)

os.exit(T.run("samplers", tests))
