-- test_precision.lua — fidelity gates of the GPT with bf16 and int8 weights
-- against fp32, on a randomly initialised GPT larger than the fixtures' (so it
-- runs without ../shared/fixtures): greedy tokens over 256 cached decoding steps
-- (each step fed the fp32 greedy sequence, so one early flip does not decide the
-- rest) and the maximum logit error, for batch-1 decoding, a 256-token prefill
-- and a batch of 16; set_precision's refusals and fallbacks; a file written by
-- `taming convert --quantize int8` loading directly. Exit 77 on a CPU with
-- neither kernel.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local CONFIG = {vocab_size = 1024, block_size = 320, n_layer = 4, n_head = 8, n_embd = 384}
local STEPS = 256
-- gates: share of greedy tokens equal to fp32, max logit error relative to max |logit|
local GATES = {bf16 = {agree = 0.98, err = 0.01}, int8 = {agree = 0.95, err = 0.03}}

local function new_gpt()
  local gpt = tt.plugin("transformer", "mingpt", CONFIG, {seed = 3})
  -- minGPT's init (N(0, 0.02)) gives near-uniform logits whose top two differ by
  -- noise; scaling the embeddings and head spreads them as a trained model's are
  for _, n in ipairs({"tok_emb.weight", "head.weight"}) do gpt:set_param(n, gpt:param(n) * 20, "test") end
  return gpt
end

local gpt = new_gpt()
local available = {}
for _, p in ipairs({"bf16", "int8"}) do
  local info = gpt:set_precision(p)
  if not info.fallback then available[#available + 1] = p end
  print(("precision %s: %s"):format(p, info.fallback and ("unavailable, " .. info.fallback) or info.isa))
end
gpt:set_precision("fp32")
if #available == 0 then return T.skip("precision", "this CPU has neither the bf16 nor the int8 kernels") end

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

-- the fp32 greedy sequence (prefix token 0 + STEPS tokens)
local seq = tt.no_grad(function()
  local prefix = tt.zeros({1, 1}, {dtype = "i64"})
  local new = tt.sample{gpt = gpt, sampler = tt.plugin("sampler", "greedy"), prefix = prefix, steps = STEPS, cache = true}
  return tt.cat({prefix, new}, 1)
end)

-- logits [B, steps, V] of decoding toks [B, >= steps] one position at a time through the KV cache
local function decode(toks, steps)
  return tt.no_grad(function()
    gpt:reset_cache(toks:shape()[1])
    local outs = {}
    for i = 0, (steps or STEPS) - 1 do outs[#outs + 1] = gpt:forward_cached(toks:slice(1, i, i + 1):contiguous()) end
    return tt.cat(outs, 1)
  end)
end

local function agreement(a, b)
  local ia, ib = a:argmax(-1):reshape({-1}), b:argmax(-1):reshape({-1})
  local same = 0
  for i = 0, ia:numel() - 1 do if ia:get(i) == ib:get(i) then same = same + 1 end end
  return same / ia:numel(), same, ia:numel()
end

local ref = decode(seq)
local ref_max = ref:abs():max():item()

local function gate(what, p, y, r)
  local share, same, n = agreement(y, r)
  local err = T.max_diff(y, r)
  local rmax = r:abs():max():item()
  print(("%s %s: greedy tokens equal to fp32 %d/%d (%.1f%%), max logit error %.4g (%.2f%% of max |logit| %.3g)"):format(
    what, p, same, n, 100 * share, err, 100 * err / rmax, rmax))
  T.ok(("%s %s: greedy agreement %.3f < %.3f"):format(what, p, share, GATES[p].agree), share >= GATES[p].agree)
  T.ok(("%s %s: max logit error %.4g > %.4g"):format(what, p, err, GATES[p].err * rmax), err <= GATES[p].err * rmax)
end

for _, p in ipairs(available) do
  test(p .. "_decode_256_steps", function()
    T.eq("precision", gpt:set_precision(p).precision, p)
    gate("decode", p, decode(seq), ref)
    gpt:set_precision("fp32")
  end)

  test(p .. "_prefill_and_batch", function()
    -- one 256-token forward (the GEMM path) and 64 steps of a batch of 16 (AMX tiles where the CPU has them)
    local toks = seq:slice(1, 0, STEPS):contiguous()
    local full = tt.no_grad(function() return gpt:forward(toks) end)
    local other = (tt.rand({15, STEPS}, tt.rng(5)) * (CONFIG.vocab_size - 1)):long()
    local batch = tt.cat({toks, other}, 0)
    local rb = decode(batch, 64)
    gpt:set_precision(p)
    gate("prefill", p, tt.no_grad(function() return gpt:forward(toks) end), full)
    gate("batch-16", p, decode(batch, 64), rb)
    gpt:set_precision("fp32")
  end)
end

test("fp32_again_is_exact", function()
  gpt:set_precision(available[1])
  T.eq("precision", gpt:info().precision, available[1])
  local i = gpt:set_precision("fp32")
  T.eq("precision", i.precision, "fp32")
  T.eq("isa", i.isa, "openblas")
  T.close("fp32 after " .. available[1], decode(seq), ref, 0)
end)

-- the bytes one decoding step streams, counted from the config: every linear
-- weight at its precision (int8 with one f32 scale per output row), biases,
-- layer norms and one row of each embedding in f32
test("weight_bytes_per_token", function()
  local E, L, V = CONFIG.n_embd, CONFIG.n_layer, CONFIG.vocab_size
  local weights, rows = L * 12 * E * E + V * E, L * 9 * E + V   -- qkv + proj, fc, out; head
  local rest = L * (4 * E + 4 * E + 4 * E + E) + 2 * E + 2 * E  -- biases, ln1/ln2, ln_f, embedding rows
  local want = {fp32 = 4 * (weights + rest), bf16 = 2 * weights + 4 * rest, int8 = weights + 4 * rows + 4 * rest}
  T.eq("fp32", gpt:info().weight_bytes_per_token, want.fp32)
  for _, p in ipairs(available) do
    gpt:set_precision(p)
    T.eq(p, gpt:info().weight_bytes_per_token, want[p])
  end
  gpt:set_precision("fp32")
  T.eq("fp32 again", gpt:info().weight_bytes_per_token, want.fp32)
end)

test("training_uses_fp32_weights", function()
  gpt:set_precision(available[1])
  gpt:train(true)
  local toks = seq:slice(1, 0, 64):contiguous()
  local y = gpt:forward(toks)
  gpt:train(false)
  local r = tt.no_grad(function() return gpt:forward(toks) end)
  gpt:set_precision("fp32")
  T.close("training forward", y, tt.no_grad(function() return gpt:forward(toks) end), 0)
  T.ok("the low-precision forward differs from fp32", T.max_diff(r, y) > 0)
end)

test("refusals", function()
  T.raises("fp16", function() gpt:set_precision("fp16") end, "expected fp32, bf16 or int8, found 'fp16'")
  T.raises("number", function() gpt:set_precision(16) end, "expected fp32, bf16 or int8")
  local m = tt.build({model = {target = "taming.modules.transformer.mingpt.GPT", params = CONFIG}})
  T.raises("model", function() m:set_precision("int4") end, "precision: expected fp32, bf16 or int8, found 'int4'")
  T.raises("bind_int8 name", function() gpt:bind_int8("tok_emb.weight", tt.zeros({2, 2}), tt.zeros({2})) end,
           "'tok_emb.weight' is not a linear weight")
  T.raises("bind_int8 dtype", function() gpt:bind_int8("head.weight", tt.zeros({1024, 384}), tt.zeros({1024})) end,
           "expected i8 [1024, 384], found f32 [1024, 384]")
end)

-- a CPU without the instructions: the same run stays fp32 and says so in one line
test("fallback_without_the_isa", function()
  local dir = T.tmpdir("precision")
  local script = dir .. "/fallback.lua"
  local f = assert(io.open(script, "w"))
  f:write(([[
local tt = require "taming"
local m = tt.build({model = {target = "taming.modules.transformer.mingpt.GPT",
  params = {vocab_size = 64, block_size = 16, n_layer = 1, n_head = 2, n_embd = 32}}})
m:init(1)
local x = tt.zeros({1, 8}, {dtype = "i64"})
local r = tt.no_grad(function() return m.gpt:forward(x) end)
local info = m:set_precision("%s")
local y = tt.no_grad(function() return m.gpt:forward(x) end)
print(("precision=%%s diff=%%g"):format(info.precision, (y - r):abs():max():item()))
]]):format(available[1]))
  f:close()
  local status, out = T.sh("TAMING_CPU_ISA=generic " .. T.taming() .. " run " .. script)
  T.eq("exit status (" .. out .. ")", status, 0)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.eq("output lines (" .. out .. ")", #lines, 2)
  T.ok("fallback line: " .. out, out:find(("taming: precision=%s is not available for the model (no kernel (TAMING_CPU_ISA=generic)); running fp32"):format(available[1]), 1, true))
  T.ok("runs fp32: " .. out, out:find("precision=fp32 diff=0", 1, true))
end)

test("quantized_file_loads_directly", function()
  local dir = T.tmpdir("precision")
  local cfg = {model = {target = "taming.modules.transformer.mingpt.GPT", params = CONFIG}}
  local m = tt.build(cfg)
  local sd = {}
  for _, n in ipairs(gpt:param_names()) do sd[n] = gpt:param(n) end
  m:load_state(sd, {source = "random"})
  local f32 = dir .. "/gpt.safetensors"
  tt.safetensors.save(f32, m:state_dict())
  local q8 = dir .. "/gpt_int8.safetensors"
  local status, out = T.sh(T.taming() .. " convert " .. f32 .. " " .. q8 .. " --quantize int8")
  T.eq("convert exit status (" .. out .. ")", status, 0)
  local ck = tt.ckpt.open(q8)
  T.eq("i8 weight", ck:get("blocks.0.mlp.0.weight"):dtype(), "i8")
  T.eq("scale", table.concat(ck:get("blocks.0.mlp.0.weight_scale"):shape(), ","), "1536")
  T.eq("embedding stays f32", ck:get("tok_emb.weight"):dtype(), "f32")
  local q = tt.load(q8, {config = cfg})
  local toks = seq:slice(1, 0, 64):contiguous()
  local a = tt.load(f32, {config = cfg, precision = "int8"})
  if a.precision_info.fallback then
    T.eq("falls back", q.precision_info.precision, "fp32")
  else
    T.eq("precision", q.precision_info.precision, "int8")
    T.close("quantized file vs set_precision(int8)", tt.no_grad(function() return q.gpt:forward(toks) end),
            tt.no_grad(function() return a.gpt:forward(toks) end), 0)
  end
  -- fp32 on request: the dequantized weights, within the rounding of int8 from fp32
  local qf = tt.load(q8, {config = cfg, precision = "fp32"})
  T.eq("fp32 on request", qf.precision_info.precision, "fp32")
  local w, wq = a.gpt:param("blocks.1.attn.value.weight"), qf.gpt:param("blocks.1.attn.value.weight")
  local s = ck:get("blocks.1.attn.value.weight_scale"):max():item()
  T.close("dequantized weight", wq, w, 0.5 * s * 1.0001)
end)

return T.run("precision", tests)
