-- bench/cfg.lua — classifier-free guidance measured: for each cfg_scale, n samples of
-- every class of a class-conditional model trained with cond_drop (temperature 1,
-- the same sampler seed at every scale), and the mean conditional log-likelihood
-- log p(z | c) per token of those samples under the model itself, and the same
-- under the null condition, log p(z | null): their difference is the log-likelihood
-- ratio of the class, the quantity guidance pushes up (log p(c | z) - log p(c) of
-- the model's implicit classifier, per token). One JSON line per scale.
--
-- precision= is the transformer's (and the VQGAN's convolutions'): bf16 or int8 weights
-- change the model the likelihoods are measured under, a little; the JSON names it.
--
--   taming run bench/cfg.lua config=M.yaml ckpt=M.safetensors [scales=1,1.5,2,3] [n=20] [seed=0] [threads=N]
--                            [precision=fp32|bf16|int8]
local tt = require "taming"
local B = require "taming.bench"

local a = B.args(..., {
  config = {"string", required = true}, ckpt = {"string", required = true},
  scales = {"list", default = {"1", "1.5", "2", "3"}}, n = {"int", default = 20, min = 1}, seed = {"int", default = 0},
}, "taming run bench/cfg.lua config=M.yaml ckpt=M.safetensors [scales=1,1.5,2,3] [n=20] [precision=fp32|bf16|int8]")
local model = tt.load(a.ckpt, {config = a.config, precision = a.precision})
local info = B.model_precision(model)
if not model.n_classes then error(("%s: not a class-conditional model"):format(a.config), 0) end
if not model.null_cond then error(("%s: no null condition: train it with cond_drop="):format(a.ckpt), 0) end
local labels = {}
for k = 0, model.n_classes - 1 do for _ = 1, a.n do labels[#labels + 1] = k end end
local cls = tt.tensor(labels, {dtype = "i64"})                           -- [B]
local _, cond = model:encode_to_c(cls)                                    -- [B, 1]
local steps, V = model.gpt_info.block_size - 1, model.first_stage.n_embed
for _, s in ipairs(a.scales) do
  local scale = tonumber(s) or error(("scales: %s is not a number"):format(s), 0)
  local t0 = tt.time()
  local sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, seed = a.seed})
  local z = tt.no_grad(function()
    return model:sample(nil, cond, steps, {sampler = sampler, vocab_limit = V, cfg_scale = scale})
  end)                                                                    -- [B, L]
  local secs = tt.time() - t0
  local cond_ll, null_ll = model:loglik(z, cls), model:loglik(z, model:null_prefix(#labels), true)
  B.print_json{"bench", "cfg", "precision", info.precision, "isa", info.isa, "threads", tt.threads(),
    "cfg_scale", B.fmt("%g", scale), "samples", #labels, "loglik_per_token", B.fmt("%.4f", cond_ll),
    "null_loglik_per_token", B.fmt("%.4f", null_ll), "class_llr_per_token", B.fmt("%.4f", cond_ll - null_ll),
    "sampling_seconds", B.fmt("%.2f", secs)}
end
