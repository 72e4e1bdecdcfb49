-- test_quantizers.lua — the Gumbel and EMA quantizers (the official GumbelVQ and
-- EMAVQ variants) and classifier-free guidance in the sampling loop.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("gumbel_inference_is_argmax_of_the_logits", function()
  local g = tt.plugin("quantizer", "gumbel", {num_hiddens = 6, embedding_dim = 4, n_embed = 10, kl_weight = 1e-8},
                      {seed = 3})
  local z = tt.randn({2, 6, 3, 5}, 9)
  local zq, loss, idx = tt.no_grad(function() return g:forward(z) end)
  T.eq("indices shape [B, h, w]", table.concat(idx:shape(), "x"), "2x3x5")
  T.eq("zq shape", table.concat(zq:shape(), "x"), "2x4x3x5")
  -- the same as the arg-max of proj(z) over codes
  local logits = tt.conv2d(z, g:param("proj.weight"), g:param("proj.bias"))
  T.equal("argmax", idx, logits:argmax(1))
  -- zq rows are the codebook rows of the indices, and decoding the indices agrees
  T.close("codebook entry", g:get_codebook_entry(idx, {2, 3, 5, 4}), zq, 1e-6)
  T.ok("kl loss is a finite scalar", loss:numel() == 1 and loss:item() == loss:item())
  -- training adds Gumbel noise: stochastic, differentiable
  g:train(true)
  local zt = tt.randn({2, 6, 3, 5}, 9):requires_grad(true)
  local zq2 = g:forward(zt)
  zq2:sum():backward()
  T.ok("gradient reaches z", zt:grad() ~= nil and zt:grad():abs():sum():item() > 0)
end)

test("ema_update_follows_the_reference_formula", function()
  local q = tt.plugin("quantizer", "ema", {n_embed = 4, embedding_dim = 2, decay = 0.5}, {seed = 1})
  local w0 = q:param("embedding.weight"):clone()
  local z = tt.randn({1, 2, 4, 4}, 2)
  local _, _, idx0 = q:forward(z)
  q:train(true)
  local zq, loss, idx = q:forward(z)
  T.equal("same assignment", idx, idx0)
  -- one update from a fresh state (cluster_size 0, embed_avg = weight), decay d, eps 1e-5:
  --   cs = (1-d) counts; ea = d w0 + (1-d) onehot^T z; n = sum cs; w = ea / ((cs + eps) / (n + K eps) * n)
  local d, eps, K = 0.5, 1e-5, 4
  local zf = z:permute(0, 2, 3, 1):reshape(16, 2)
  local oh = tt.one_hot(idx, K)                                  -- [16, K]
  local cs = oh:sum(0) * (1 - d)
  local ea = w0 * d + oh:transpose(0, 1):matmul(zf) * (1 - d)
  local n = cs:sum():item()
  local smoothed = (cs + eps) * (n / (n + K * eps))
  T.close("EMA weight", q:param("embedding.weight"), ea / smoothed:unsqueeze(1), 1e-5)
  T.close("EMA cluster size", q:param("embedding.cluster_size"), cs, 1e-6)
  T.close("EMA embed_avg", q:param("embedding.embed_avg"), ea, 1e-6)
  T.ok("cluster sizes counted", q:param("embedding.cluster_size"):sum():item() > 0)
  T.ok("commitment loss", loss:item() > 0)
  T.eq("zq shape", table.concat(zq:shape(), "x"), "1x2x4x4")
end)

test("classifier_free_guidance", function()
  local gpt = tt.plugin("transformer", "mingpt", {vocab_size = 20, block_size = 12, n_layer = 1, n_head = 2,
    n_embd = 16}, {seed = 4})
  local cond = tt.tensor({{3}, {5}}, {dtype = "i64"})
  local uncond = tt.tensor({{19}, {19}}, {dtype = "i64"})
  local greedy = tt.plugin("sampler", "greedy")
  local plain = tt.sample{gpt = gpt, sampler = greedy, prefix = cond, steps = 6}
  local s1 = tt.sample{gpt = gpt, sampler = greedy, prefix = cond, steps = 6, uncond = uncond, cfg_scale = 1.0}
  T.equal("scale 1 is plain conditional sampling", s1, plain)
  local u = tt.sample{gpt = gpt, sampler = greedy, prefix = uncond, steps = 6}
  local s0 = tt.sample{gpt = gpt, sampler = greedy, prefix = cond, steps = 6, uncond = uncond, cfg_scale = 0.0}
  T.equal("scale 0 is unconditional sampling", s0, u)
  -- guided logits are u + s (c - u) at every step: check the first step directly
  local lc = gpt:forward(cond):select(1, 0)
  local lu = gpt:forward(uncond):select(1, 0)
  local g = lu + (lc - lu) * 3.0
  local s3 = tt.sample{gpt = gpt, sampler = greedy, prefix = cond, steps = 1, uncond = uncond, cfg_scale = 3.0}
  T.equal("scale 3, first token", s3:reshape(2), g:argmax(1))
end)

return T.run("quantizers", tests)
