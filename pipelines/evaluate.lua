-- evaluate — held-out metrics of a trained model, printed as one JSON line.
-- A first stage: reconstruction L1 (on [-1, 1] images), PSNR (on [0, 1], per
-- image, averaged), the share of the codebook the set uses and its perplexity.
-- A Net2NetTransformer: the same for its first stage, and the validation
-- cross-entropy of the transformer over the image codes.
--
--   taming run pipelines/evaluate.lua config=M.yaml ckpt=M.safetensors data=fashion_mnist split=test
--       [data_root=..] [size=N] [channels=C] [batch=64] [limit=N] [device=cpu] [threads=N]
--       [precision=fp32|bf16|int8] (the transformer's linear weights; bf16 VQGAN convolutions)
local tt = require "taming"
local train = require "taming.train"
local data = require "taming.data"

local a = tt.args.parse(..., {
  config = {"string", required = true}, ckpt = {"string", required = true},
  data = {"string", default = "config"}, data_root = {"string"}, data_list = {"string"},
  split = {"string", default = "test", choices = {"train", "test"}},
  size = {"int"}, channels = {"int"}, limit = {"int"}, batch = {"int", default = 64},
  class_folders = {"bool", default = false}, cond_root = {"string"},
  cond = {"string", default = "segmentation", choices = {"segmentation", "depth"}},
  seg_dataset = {"string"}, n_labels = {"int"},
  device = {"string", default = "cpu", choices = {"cpu", "cuda"}}, threads = {"int"}, workers = {"int", default = 2},
  precision = {"string", choices = {"fp32", "bf16", "int8"}},
}, "taming run pipelines/evaluate.lua config=M.yaml ckpt=M.safetensors data=... split=test")
if a.threads then tt.set_threads(a.threads) end

local model = tt.load(a.ckpt, {config = a.config, device = a.device, precision = a.precision})
local n2n = model.kind == "Net2NetTransformer"
local vq = n2n and model.first_stage or model
local ds, batch = train.dataset(a, model.config, vq)
local loader = data.loader(ds, {batch = batch, shuffle = false, drop_last = false, workers = a.workers})
local steps = loader:steps_per_epoch()

local t0 = tt.time()
local n, l1, psnr, ce, ce_tokens = 0, 0.0, 0.0, 0.0, 0
local codes = {}
tt.no_grad(function()
  for _ = 1, steps do
    local b = loader:next()
    local x = b.image:to(a.device)
    local B = x:size(0)
    local quant, _, idx = vq:encode(x)
    local rec = vq:decode(quant)
    l1 = l1 + (x - rec):abs():mean():item() * B
    -- PSNR on [0, 1] images, the reconstruction clipped as the 8-bit export clips it
    local mse = ((x - rec:clamp(-1, 1)) * 0.5):square():mean({1, 2, 3})      -- [B]
    mse = mse:to("cpu")
    for i = 0, B - 1 do psnr = psnr + 10 * math.log(1 / math.max(mse:get(i), 1e-12), 10) end
    codes[#codes + 1] = idx:reshape(-1):to("cpu")
    if n2n then
      -- the codes just computed, in the transformer's order (what encode_to_z gives)
      local z = idx:reshape(B, -1)
      if model.permuter then z = model.permuter:forward(z) end
      local logits, target = model:forward_codes(z, train.cond_input(model, b):to(a.device))
      local L = target:numel()
      ce = ce + tt.losses.gpt_loss(logits, target):item() * L
      ce_tokens = ce_tokens + L
    end
    n = n + B
  end
end)
loader:close()
local used, perplexity, count = tt.codebook_usage(tt.cat(codes, 0), vq.n_embed)
local out = {
  ('"images":%d'):format(n), ('"rec_l1":%.5f'):format(l1 / n), ('"psnr_db":%.3f'):format(psnr / n),
  ('"codebook_used":%d'):format(count), ('"codebook_size":%d'):format(vq.n_embed),
  ('"codebook_usage":%.4f'):format(used), ('"codebook_perplexity":%.2f'):format(perplexity),
}
if n2n then out[#out + 1] = ('"val_loss":%.5f'):format(ce / ce_tokens) end
out[#out + 1] = ('"seconds":%.1f'):format(tt.time() - t0)
print("{" .. table.concat(out, ",") .. "}")
