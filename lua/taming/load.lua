-- taming.load — official configs and checkpoints to models.
--
--   local model = tt.load("last.ckpt", {config = "project.yaml"})
--   local model = tt.build(config)            -- random init
--   local model = tt.build(config, {train = true})   -- with the training loss mounted as `loss`
--
-- Builders are registered by the config's `model.target` (the official Python
-- class path), so new model kinds add a line to the registry, not a branch here.
local tt = require "taming.core"

local M = {builders = {}}

-- fn(params, where, opts) -> model (parameters declared, not yet bound); opts is the
-- caller's table of M.build or M.load (opts.train: also build what training needs)
function M.register(target, fn)
  M.builders[target] = fn
end

local function read_config(cfg)
  if type(cfg) == "table" then return cfg, "config" end
  if type(cfg) ~= "string" then error("load: pass {config = 'file.yaml'} (or a config table)", 0) end
  return tt.yaml.load(cfg), cfg
end

-- Builds the model a config describes. Returns model, config table, config name.
-- opts.train: mount the training loss (lossconfig) too; opts.loss: options for it.
function M.build(cfg, opts)
  local where
  cfg, where = read_config(cfg)
  local model = cfg.model
  if type(model) ~= "table" then error(("%s: missing key 'model'"):format(where), 0) end
  local target = model.target
  if type(target) ~= "string" then error(("%s: missing key 'model.target'"):format(where), 0) end
  local fn = M.builders[target]
  if not fn then
    local known = {}
    for k in pairs(M.builders) do known[#known + 1] = k end
    table.sort(known)
    error(("%s: unknown model.target '%s' (known: %s)"):format(where, target, table.concat(known, ", ")), 0)
  end
  local m = fn(model.params or {}, where .. ": model.params", opts or {})
  m.config, m.target = cfg, target
  m.base_learning_rate = model.base_learning_rate
  return m, cfg, where
end

-- Loads weights by their official names from a .ckpt (Lightning) or .safetensors file.
-- opts.config: YAML path or table; opts.device; opts.strict (default true); opts.train
-- (bind the training loss's weights, loss.*, too); opts.precision: "fp32", "bf16" or
-- "int8" weights for the transformer's linear layers (Model:set_precision).
function M.load(path, opts)
  opts = opts or {}
  if not opts.config then error("load: pass {config = 'model.yaml'} (the official YAML of the model)", 0) end
  local model = M.build(opts.config, opts)
  local ck = tt.ckpt.open(path)
  local prefix = opts.prefix
  if prefix == nil and model.guess_prefix then prefix = model:guess_prefix(ck) end
  local kept = model:load_state(ck, {source = path, ignore = model.ignore_keys or {"loss."}, prefix = prefix,
                                     strict = opts.strict, keep = model.keep_keys})
  for k, v in pairs(kept) do model[k] = v end
  local meta = ck:meta()
  model.global_step = meta.global_step
  model.checkpoint = path
  if opts.device and opts.device ~= "cpu" then model:to(opts.device) end
  model:eval()
  -- a quantized file runs int8 unless asked otherwise
  local precision = opts.precision or (model.quantized and "int8") or nil
  if precision then model:set_precision(precision) end
  return model
end

return M
