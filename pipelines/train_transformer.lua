-- train_transformer — trains the GPT of a Net2NetTransformer from an official
-- config: the first stage (and a VQGAN condition stage) frozen, cross-entropy
-- over the image codes with the condition's tokens prepended, pkeep corruption,
-- AdamW (betas 0.9, 0.95; weight decay 0.01 on Linear weights only), the
-- official learning-rate rule, sample grids and checkpoints every K steps,
-- exact resume. cond_drop=P trains for classifier-free guidance: each condition is
-- replaced by a learned null condition with probability P (see taming.net2net), which
-- the checkpoint keeps for the sampling pipelines' cfg_scale=.
--
--   taming run pipelines/train_transformer.lua config=net2net.yaml first_stage=vqgan.safetensors \
--       data=folder data_root=imgs size=256 [class_folders=true] [steps=1000] [batch=N] [resume=auto] ...
--
-- The first stage's weights come from first_stage= (a .ckpt or .safetensors, e.g. a
-- train_vqgan checkpoint) or from first_stage_config.params.ckpt_path; a VQGAN
-- condition stage's from cond_stage= or cond_stage_config.params.ckpt_path; init= starts
-- the whole model (GPT included) from a Net2NetTransformer checkpoint, to fine-tune it.
local tt = require "taming"
local train = require "taming.train"

local usage = "taming run pipelines/train_transformer.lua config=M.yaml first_stage=vq.safetensors data=... ..."
local a = tt.args.parse(..., train.schema{
  first_stage = {"string", help = "first-stage weights (.ckpt or .safetensors)"},
  cond_stage = {"string", help = "condition-stage VQGAN weights"},
  weight_decay = {"number", default = 0.01},
  pkeep = {"number", help = "probability of keeping an image token (overrides the config)"},
  init = {"string", help = "start from the weights of a whole Net2NetTransformer checkpoint (fine-tuning)"},
  cond_drop = {"number", default = 0.0, help = "probability of training on the null condition (classifier-free "
    .. "guidance)"},
  precision = {"string", default = "fp32", choices = {"fp32", "bf16", "int8"}, help = "bf16: the GEMMs of linear layers "
    .. "and matmuls in bf16 with f32 accumulation (AMX / AVX512-BF16); weights, gradients and optimizer state stay f32"},
  null_token = {"int", help = "the null condition's token (default: n_classes for a class condition, else "
    .. "vocab_size - 1)"},
}, usage)
if a.precision == "int8" then
  error("precision=int8: int8 weights are for inference; training computes in fp32 or bf16", 0)
end

local cfg, info = train.start(a, "transformer")
local dist = train.dist()
-- the config's ckpt_path entries initialise the stages (tt.build, as the official code) unless
-- the weights come from elsewhere: a resumed run, init=, or first_stage= / cond_stage=
local honour = not (info or a.init or a.first_stage or a.cond_stage)
local model = tt.build(cfg, {ckpt_path = honour})
if model.kind ~= "Net2NetTransformer" then
  error(("%s: expected a Net2NetTransformer config, found %s"):format(a.config or "config", tostring(model.target)), 0)
end
if a.pkeep then model.pkeep = a.pkeep end
if a.null_token then model.null_token = a.null_token end
if a.cond_drop < 0 or a.cond_drop >= 1 then error(("argument cond_drop=%s: expected [0, 1)"):format(a.cond_drop), 0) end
if a.cond_drop > 0 then model:null_token_id() end   -- a bad null_token fails before any work

-- weights of a frozen stage from a checkpoint of that model alone or of a whole Net2NetTransformer
local function load_stage(stage, path, prefix, what)
  local ck = tt.ckpt.open(path)
  local p = ""
  if ck:get("encoder.conv_in.weight") == nil and ck:get(prefix .. "encoder.conv_in.weight") ~= nil then p = prefix end
  stage:load_state(ck, {source = path, prefix = p, ignore = {"loss."}})
  print(("%s: weights from %s"):format(what, path))
end

if info then
  if a.init then error("init= and resume= conflict: a resumed run has its weights", 0) end
elseif a.init then
  model:load_state(tt.ckpt.open(a.init), {source = a.init, ignore = {"loss.", "first_stage_model.loss.",
    "cond_stage_model.loss."}})
  print(("model: weights from %s"):format(a.init))
elseif honour then
  local stages = {{model.first_stage, "first stage", "first_stage=FILE or first_stage_config.params.ckpt_path"}}
  if tt.Model.is_model(model.cond_stage) and model.cond_stage ~= model.first_stage then
    stages[2] = {model.cond_stage, "condition stage", "cond_stage=FILE or cond_stage_config.params.ckpt_path"}
  end
  for _, st in ipairs(stages) do
    local from = st[1].restored_from or model.restored_from
    if not from then error(("the %s needs weights: %s"):format(st[2], st[3]), 0) end
    print(("%s: weights from %s"):format(st[2], from))
  end
else
  local mp = cfg.model.params
  if mp.ckpt_path then tt.models.init_from_ckpt(model, mp.ckpt_path, mp.ignore_keys, "model.params") end
  local fs = a.first_stage or (mp.first_stage_config.params or {}).ckpt_path
  if not fs then
    error("the first stage needs weights: first_stage=FILE or first_stage_config.params.ckpt_path", 0)
  end
  load_stage(model.first_stage, fs, "first_stage_model.", "first stage")
  if tt.Model.is_model(model.cond_stage) and model.cond_stage ~= model.first_stage then
    local cs = a.cond_stage or ((mp.cond_stage_config or {}).params or {}).ckpt_path
    if not cs then error("the condition stage needs weights: cond_stage=FILE or cond_stage_config.params.ckpt_path", 0) end
    load_stage(model.cond_stage, cs, "cond_stage_model.", "condition stage")
  end
end
model:init(a.seed, "cpu")
if a.device ~= "cpu" then model:to(a.device) end

local ds, batch = train.dataset(a, cfg, model.first_stage)
local loader, lr = train.loader_and_lr(a, ds, batch, cfg.model.base_learning_rate, dist)
local o = train.options(a, cfg, info)
o.model, o.loader, o.lr, o.dist, o.weight_decay = model, loader, lr, dist, a.weight_decay
o.cond_drop = a.cond_drop
o.precision = a.precision
train.transformer(o)
loader:close()
