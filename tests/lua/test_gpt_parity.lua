-- test_gpt_parity.lua — the second stage against the official minGPT
-- (../shared/fixtures/tiny): logits, greedy continuation, both-stage end-to-end
-- sample; KV-cached decoding equals full recomputation; seeded sampling gives
-- the same tokens at 1 and 2 threads.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local F = T.fixtures()
if not F then return T.skip("gpt_parity", "fixtures folder ../shared/fixtures is absent") end
local D = F .. "/tiny/"

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local model = tt.load(D .. "gpt.ckpt", {config = D .. "gpt.yaml"})
local gpt = model.gpt
local toks = tt.npy.load(D .. "gpt_tokens.npy")          -- [2, 80]

test("logits_match_reference", function()
  local logits = tt.no_grad(function() return gpt:forward(toks) end)
  T.close("gpt_logits", logits, tt.npy.load(D .. "gpt_logits.npy"), 1e-4)
end)

test("safetensors_weights_equal_ckpt", function()
  local b = tt.load(D .. "gpt.safetensors", {config = D .. "gpt.yaml"})
  local sa, sb = model:state_dict(), b:state_dict()
  for k, t in pairs(sa) do T.close(k, t, sb[k], 0) end
end)

test("greedy_continuation_matches_reference", function()
  local want = tt.npy.load(D .. "gpt_greedy.npy")        -- [1, 80]: 16 given + 64 greedy
  local prefix = toks:slice(0, 0, 1):slice(1, 0, 16):contiguous()
  local greedy = tt.plugin("sampler", "greedy")
  for _, cache in ipairs({true, false}) do
    local new = tt.sample{gpt = gpt, sampler = greedy, prefix = prefix, steps = 64, cache = cache}
    T.equal("gpt_greedy (cache=" .. tostring(cache) .. ")", tt.cat({prefix, new}, 1), want)
  end
end)

test("kv_cache_logits_equal_full_recompute", function()
  tt.no_grad(function()
    local full = gpt:forward(toks)                       -- [2, 80, 96]
    for _, split in ipairs({1, 7, 33, 79}) do
      -- a prefix in one chunk, then the rest one token at a time
      gpt:reset_cache(2)
      local first = gpt:forward_cached(toks:slice(1, 0, split):contiguous())
      T.close(("prefix %d"):format(split), first, full:slice(1, 0, split), 1e-4)
      for t = split, math.min(split + 6, 79) do
        local step = gpt:forward_cached(toks:slice(1, t, t + 1):contiguous())
        T.close(("step %d after %d"):format(t, split), step, full:slice(1, t, t + 1), 1e-4)
      end
      -- only the last logits of the prefix (the last block runs one token past its
      -- keys and values): the same logits, and the cache serves the next steps alike
      gpt:reset_cache(2)
      local last = gpt:forward_cached(toks:slice(1, 0, split):contiguous(), true)
      T.close(("last of prefix %d"):format(split), last, full:slice(1, split - 1, split), 1e-4)
      for t = split, math.min(split + 3, 79) do
        local step = gpt:forward_cached(toks:slice(1, t, t + 1):contiguous(), true)
        T.close(("step %d after last-only %d"):format(t, split), step, full:slice(1, t, t + 1), 1e-4)
      end
    end
    T.raises("past block_size", function()
      gpt:reset_cache(2)
      gpt:forward_cached(toks)
      gpt:forward_cached(toks:slice(1, 0, 1):contiguous())
    end, "exceed block_size")
  end)
end)

test("end_to_end_codes_and_image", function()
  local vq = tt.load(D .. "vqgan.ckpt", {config = D .. "vqgan.yaml"})
  local meta_cond = 67                                   -- meta.json: e2e.cond_token
  local codes = tt.sample{gpt = gpt, sampler = tt.plugin("sampler", "greedy"),
                          prefix = tt.full({1, 1}, meta_cond, {dtype = "i64"}), steps = 64, vocab_limit = 64}
  T.equal("e2e_codes", codes:reshape(1, 8, 8), tt.npy.load(D .. "e2e_codes.npy"))
  local img = tt.no_grad(function() return vq:decode_code(codes:reshape(1, 8, 8)) end)
  T.close("e2e_image", img, tt.npy.load(D .. "e2e_image.npy"), 1e-4)
end)

test("same_seed_same_tokens_at_1_and_2_threads", function()
  local prefix = toks:slice(1, 0, 8):contiguous()
  local runs = {}
  for _, threads in ipairs({1, 2, 1}) do
    tt.set_threads(threads)
    local s = tt.plugin("sampler", "categorical", {temperature = 1.0, top_k = 20, top_p = 0.9, seed = 1234})
    runs[#runs + 1] = tt.sample{gpt = gpt, sampler = s, prefix = prefix, steps = 40}
  end
  tt.set_threads(2)
  T.equal("1 vs 2 threads", runs[1], runs[2])
  T.equal("repeat", runs[1], runs[3])
  local other = tt.sample{gpt = gpt, sampler = tt.plugin("sampler", "categorical", {seed = 99}), prefix = prefix, steps = 40}
  T.ok("another seed gives other tokens", T.max_diff(other, runs[1]) > 0)
end)

return T.run("gpt_parity", tests)
