-- train_vqgan — trains a first-stage VQGAN (VQModel, GumbelVQ, VQSegmentationModel)
-- from an official config: L1 + LPIPS + PatchGAN loss with the adaptive weight,
-- two Adam optimizers (betas 0.5, 0.9), the official learning-rate rule, grids
-- of reconstructions and checkpoints every K steps, exact resume.
--
--   taming run pipelines/train_vqgan.lua config=vqgan.yaml data=folder data_root=imgs size=256 \
--       [steps=1000] [batch=N] [logdir=logs/x] [resume=auto] [accumulate=1] [seed=23] [loss=my_loss.lua]
--       [precision=fp32|bf16] [recompute=norm_act]
--
-- The loss comes from the config's lossconfig (taming.losses), or from loss=FILE.lua,
-- a Lua file returning function(lossconfig, model) -> a loss model with
-- generator(codebook_loss, x, xrec, global_step, last_layer) and
-- discriminator(x, xrec, global_step), each returning loss, logs.
local tt = require "taming"
local train = require "taming.train"

local usage = "taming run pipelines/train_vqgan.lua config=M.yaml data=folder|list|paired|fashion_mnist|config ..."
local a = tt.args.parse(..., train.schema{
  loss = {"string", help = "Lua file returning function(lossconfig, model) -> loss"},
  precision = {"string", default = "fp32", choices = {"fp32", "bf16", "int8"}, help = "bf16: convolutions (forward "
    .. "and backward), linear layers and matmuls in bf16 with f32 accumulation (AMX / AVX512-BF16); weights, "
    .. "gradients and optimizer state stay f32"},
}, usage)
if a.precision == "int8" then
  error("precision=int8: int8 weights are for inference; training computes in fp32 or bf16", 0)
end

local cfg, info = train.start(a, "vqgan")
local dist = train.dist()
local model = tt.build(cfg, {ckpt_path = not info})   -- a resumed run has its weights
if not model.encoder or not model.quantize then
  error(("%s: expected a first-stage config (VQModel and variants), found %s"):format(a.config or "config",
    tostring(model.target)), 0)
end

local function build_loss()
  local lc = model.lossconfig or {}
  if a.loss then
    local fn = dofile(a.loss)
    if type(fn) ~= "function" then error(("%s: must return function(lossconfig, model) -> loss"):format(a.loss), 0) end
    return fn(lc, model)
  end
  local ok, losses = pcall(require, "taming.losses")
  if not ok then error("the VQGAN losses (taming.losses) are not installed; pass loss=FILE.lua", 0) end
  local L = losses.from_config(lc, {seed = a.seed})
  if not L then
    error(("%s: lossconfig '%s' has nothing to train against (DummyLoss)"):format(a.config or "config",
      tostring(lc.target)), 0)
  end
  return L
end
model:add("loss", build_loss())
model:init(a.seed, "cpu")
if a.device ~= "cpu" then model:to(a.device) end

local ds, batch = train.dataset(a, cfg, model)
local loader, lr = train.loader_and_lr(a, ds, batch, cfg.model.base_learning_rate, dist)
local o = train.options(a, cfg, info)
o.model, o.loader, o.lr, o.dist = model, loader, lr, dist
o.precision = a.precision
train.vqgan(o)
loader:close()
