-- bench/cfg.lua — classifier-free guidance measured: for each cfg_scale, n samples of
-- every class of a class-conditional model trained with cond_drop (temperature 1,
-- the same sampler seed at every scale), and the mean conditional log-likelihood
-- log p(z | c) per token of those samples under the model itself, and the same
-- under the null condition, log p(z | null): their difference is the log-likelihood
-- ratio of the class, the quantity guidance pushes up (log p(c | z) - log p(c) of
-- the model's implicit classifier, per token). One JSON line per scale.
--
--   taming run bench/cfg.lua config=M.yaml ckpt=M.safetensors [scales=1,1.5,2,3] [n=20] [seed=0] [threads=N]
local tt = require "taming"

local a = tt.args.parse(..., {
  config = {"string", required = true}, ckpt = {"string", required = true},
  scales = {"list", default = {"1", "1.5", "2", "3"}}, n = {"int", default = 20}, seed = {"int", default = 0},
  threads = {"int"},
})
if a.threads then tt.set_threads(a.threads) end
local model = tt.load(a.ckpt, {config = a.config})
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
  print(('{"cfg_scale":%g,"samples":%d,"loglik_per_token":%.4f,"null_loglik_per_token":%.4f,'
    .. '"class_llr_per_token":%.4f,"sampling_seconds":%.2f}'):format(scale, #labels, cond_ll, null_ll,
    cond_ll - null_ll, secs))
end
