-- test_cfg.lua — classifier-free guidance for real: cond_drop trains a null
-- condition, the checkpoint keeps it, the sampling pipelines find it for
-- cfg_scale=, cfg_scale=1 is plain sampling bit for bit, and on a small class-
-- conditional model trained here (synthetic codes, a few seconds) the mean
-- conditional log-likelihood of samples rises with cfg_scale.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local optim = require "taming.optim"
local ckpt = require "taming.checkpoint"

local tmp = T.tmpdir("cfg")
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local K, V, L = 3, 16, 16   -- classes, codes (vocabulary), image tokens (a 4x4 latent grid)

-- a class-conditional Net2NetTransformer over 16 codes: 16x16 one-channel images, f = 4
local config = {model = {target = "taming.models.cond_transformer.Net2NetTransformer", base_learning_rate = 1e-4,
  params = {cond_stage_key = "class_label",
    transformer_config = {target = "taming.modules.transformer.mingpt.GPT",
      params = {vocab_size = V, block_size = L + 1, n_layer = 1, n_head = 2, n_embd = 32}},
    first_stage_config = {target = "taming.models.vqgan.VQModel",
      params = {embed_dim = 4, n_embed = V, ddconfig = {double_z = false, z_channels = 4, resolution = 16,
        in_channels = 1, out_ch = 1, ch = 32, ch_mult = {1, 1, 1}, num_res_blocks = 1, attn_resolutions = {},
        dropout = 0.0}, lossconfig = {target = "taming.modules.losses.vqperceptual.DummyLoss"}}},
    cond_stage_config = {target = "taming.modules.util.Labelator", params = {n_classes = K}}}}}

-- Synthetic codes: a token of class k lies in {4k, .., 4k+3} with probability 0.6,
-- else it is uniform over the 16 codes. Returns labels [B] and codes [B, L].
local function synthetic(B, seed)
  local cls = (tt.rand({B}, seed) * K):clamp(0, K - 0.5):long()                 -- [B]
  local own = tt.bernoulli({B, L}, 0.6, seed + 1)                               -- [B, L] 0/1
  local pick = (tt.rand({B, L}, seed + 2) * 4):clamp(0, 3.5):long():float()     -- [B, L] in 0..3
  local uni = (tt.rand({B, L}, seed + 3) * V):clamp(0, V - 0.5):long():float()  -- [B, L] in 0..V-1
  local base = cls:float():unsqueeze(1) * 4 + pick                              -- [B, L]
  return cls, (base * own + uni * (1.0 - own)):long()
end

local function train_model(cond_drop, steps)
  local model = tt.build(config)
  model:init(7, "cpu")
  local params = {}
  for _, p in ipairs(model:parameters()) do
    if p.name:sub(1, 12) == "transformer." then params[#params + 1] = p end
  end
  local opt = optim.AdamW(optim.gpt_groups(params, 0.01, "transformer."), {lr = 3e-3, betas = {0.9, 0.95}, eps = 1e-8})
  local rng = tt.rng(5)
  model:train(true)
  for step = 1, steps do
    local cls, z = synthetic(64, 1000 + 4 * step)
    if cond_drop > 0 and model.cond_drop ~= cond_drop then model:set_cond_drop(cond_drop, cls) end
    local logits, target = model:forward_codes(z, cls, rng)
    if opt:backward(tt.losses.gpt_loss(logits, target)) then opt:step() end
  end
  model:eval()
  return model
end

local model   -- trained once, shared by the tests below

test("cond_drop_replaces_rows_by_the_null_condition", function()
  local m = tt.build(config)
  m:init(3, "cpu")
  local cls, z = synthetic(64, 11)
  T.raises("a probability of 1", function() m:set_cond_drop(1.0, cls) end, "cond_drop=1", "[0, 1)")
  m:set_cond_drop(0.5, cls)
  T.equal("the null condition of a class model is the token n_classes", m.null_cond, tt.tensor({K}, {dtype = "i64"}))
  local null = m:null_prefix(64)
  m:train(true)
  local lt = m:forward_codes(z, cls, tt.rng(9))
  m:train(false)
  local lc = m:forward_codes(z, cls)
  local ln = m:forward_tokens(z, null)     -- the null condition (the class stage refuses its token)
  -- every row is either its own condition's logits or the null condition's, and both occur
  local dropped, kept = 0, 0
  for b = 0, 63 do
    local row = lt:select(0, b)
    local dc, dn = T.max_diff(row, lc:select(0, b)), T.max_diff(row, ln:select(0, b))
    if dc == 0 then kept = kept + 1 elseif dn == 0 then dropped = dropped + 1
    else error(("row %d is neither conditional (diff %.3g) nor null (diff %.3g)"):format(b, dc, dn)) end
  end
  T.ok(("cond_drop=0.5 dropped %d of 64 rows"):format(dropped), dropped >= 16 and kept >= 16)
  m.null_token = V
  m.null_cond = nil
  T.raises("a null token outside the vocabulary", function() m:set_cond_drop(0.1, cls) end, "null_token=16", "[0, 16)")
end)

test("loglik_of_samples_rises_with_cfg_scale", function()
  model = train_model(0.2, 150)
  local cls = tt.arange(K):reshape(K, 1):repeat_({1, 100}):reshape(-1)                        -- [K*100]
  local _, c = model:encode_to_c(cls)
  local out, last = {}, -math.huge
  for _, s in ipairs({1.0, 1.5, 2.0, 3.0}) do
    local sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, seed = 17})
    local z = model:sample(nil, c, L, {sampler = sampler, vocab_limit = V, cfg_scale = s})
    local ll = model:loglik(z, cls)
    -- the class's log-likelihood ratio against the null condition, printed only: here a few tokens
    -- reveal the class, so it stays near its bound log(3) / 16 at every scale (the shipped
    -- model's test below checks that guidance raises it)
    local llr = ll - model:loglik(z, model:null_prefix(cls:size(0)), true)
    out[#out + 1] = ("%.1f: %.4f (ratio %.4f)"):format(s, ll, llr)
    T.ok(("log-likelihood at cfg_scale=%.1f is %.4f, not above %.4f (%s)"):format(s, ll, last, table.concat(out, ", ")),
      ll > last)
    last = ll
  end
  print("mean log p(z | c) per token by cfg_scale: " .. table.concat(out, ", "))
end)

test("cfg_scale_1_is_plain_sampling_bit_for_bit", function()
  local _, c = model:encode_to_c(tt.tensor({0, 1, 2, 1}, {dtype = "i64"}))
  local function draw(opts)
    opts.sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, seed = 4})
    opts.vocab_limit = V
    return model:sample(nil, c, L, opts)
  end
  local plain = draw({})
  T.equal("cfg_scale=1", draw({cfg_scale = 1.0}), plain)
  T.equal("cfg_scale=1 with an explicit uncond", draw({cfg_scale = 1.0, uncond = model:null_prefix(4)}), plain)
  local g = draw({cfg_scale = 3.0})
  T.ok("cfg_scale=3 changes the samples", T.max_diff(g, plain) > 0)
  -- tt.sample itself: with uncond at cfg_scale 1 the sampler sees the conditional logits
  -- exactly (not u + (c - u), which rounds), and the unconditional rows are not run
  local function logits_seen(extra)
    local seen = {}
    local args = {gpt = model.transformer, prefix = c, steps = L, vocab_limit = V,
      sampler = function(logits)
        seen[#seen + 1] = logits:clone()
        T.eq("rows the sampler sees", logits:size(0), 4)
        return logits:argmax(-1)
      end}
    for k, v in pairs(extra) do args[k] = v end
    collectgarbage()
    tt.profile_start()
    tt.sample(args)
    local peak, start = tt.profile_memory()
    tt.profile_stop()
    return seen, peak - start
  end
  logits_seen({})   -- the first call's figure differs (buffers made once); compare the later ones
  local a, pa = logits_seen({})
  local b, pb = logits_seen({uncond = model:null_prefix(4), cfg_scale = 1.0})
  local _, pg = logits_seen({uncond = model:null_prefix(4), cfg_scale = 2.0})
  T.eq("tensor memory with uncond at cfg_scale=1 (the unconditional rows are not run)", pb, pa)
  T.ok(("guidance at 2 holds more (%d vs %d bytes)"):format(pg, pa), pg > pa)
  T.eq("steps", #b, #a)
  for i = 1, #a do T.equal(("tt.sample cfg_scale=1 logits, step %d"):format(i), b[i], a[i]) end
end)

test("pipelines_find_the_null_condition_in_the_checkpoint", function()
  local cfgp, ck = tmp .. "/cfg.yaml", tmp .. "/cfg.safetensors"
  tt.fs.write_atomic(cfgp, ckpt.to_yaml(config))
  tt.safetensors.save(ck, model:state_dict(), {format = "pt"})
  local loaded = tt.load(ck, {config = cfgp})
  T.equal("null_cond survives save and load", loaded.null_cond, model.null_cond)
  local function run(extra, out)
    local st, o = T.sh(("%s run sample_class config=%s ckpt=%s class=2 n=3 seed=5 codes=%s/%s.npy output=%s/%s.png %s")
      :format(T.taming(), cfgp, ck, tmp, out, tmp, out, extra))
    if st ~= 0 then error(o) end
    return tt.npy.load(("%s/%s.npy"):format(tmp, out))
  end
  local plain, one, two = run("", "plain"), run("cfg_scale=1", "one"), run("cfg_scale=2", "two")
  T.equal("sample_class cfg_scale=1", one, plain)
  T.ok("sample_class cfg_scale=2 differs", T.max_diff(two, plain) > 0)
  -- the same model without its null condition refuses guidance, naming the reason
  local sd = model:state_dict()
  sd.null_cond = nil
  tt.safetensors.save(tmp .. "/plain.safetensors", sd, {format = "pt"})
  local st, o = T.sh(("%s run sample_class config=%s ckpt=%s/plain.safetensors class=1 n=1 output=%s/x.png cfg_scale=2")
    :format(T.taming(), cfgp, tmp, tmp))
  T.ok("no null condition: an error, not a crash: " .. o, st == 1 and o:find("not trained with cond_drop", 1, true))
  -- a null_cond outside the vocabulary is refused at load
  sd.null_cond = tt.tensor({V}, {dtype = "i64"})
  tt.safetensors.save(tmp .. "/bad.safetensors", sd, {format = "pt"})
  T.raises("null_cond out of range", function() tt.load(tmp .. "/bad.safetensors", {config = cfgp}) end,
    "'null_cond'", "[0, 16)")
end)

-- the shipped Fashion-MNIST model fine-tuned with cond_drop=0.1 (models/fashion_mnist/README.md)
test("shipped_cfg_model", function()
  local M = T.srcdir() .. "/models/fashion_mnist"
  local m = tt.load(M .. "/transformer_cfg.safetensors", {config = M .. "/transformer.yaml"})
  T.equal("its null condition is the class token 10", m.null_cond, tt.tensor({10}, {dtype = "i64"}))
  local cls = tt.arange(10):reshape(10, 1):repeat_({1, 4}):reshape(-1)                         -- [40]
  local _, c = m:encode_to_c(cls)
  local llr = {}
  for i, s in ipairs({1.0, 2.0}) do
    local z = m:sample(nil, c, 64, {sampler = tt.plugin("sampler", "categorical", {seed = 3}), vocab_limit = 128,
      cfg_scale = s})
    llr[i] = m:loglik(z, cls) - m:loglik(z, m:null_prefix(40), true)
  end
  print(("  shipped cfg model: the class's log-likelihood ratio per token %.4f at cfg_scale=1, %.4f at 2"):format(
    llr[1], llr[2]))
  T.ok("guidance raises the class's log-likelihood ratio", llr[2] > llr[1] + 0.05)
  local function run(extra, out)
    local st, o = T.sh(("%s run sample_class config=%s/transformer.yaml ckpt=%s/transformer_cfg.safetensors class=4 "
      .. "n=2 codes=%s/%s.npy output=%s/%s.png %s"):format(T.taming(), M, M, tmp, out, tmp, out, extra))
    if st ~= 0 then error(o) end
    return tt.npy.load(("%s/%s.npy"):format(tmp, out))
  end
  T.equal("cfg_scale=1 is plain sampling", run("cfg_scale=1", "s1"), run("", "s0"))
end)

os.exit(T.run("cfg", tests))
