-- taming.load — official configs and checkpoints to models.
--
--   local model = tt.load("last.ckpt", {config = "project.yaml"})
--   local model = tt.build(config)            -- random init (or ckpt_path, as the official code)
--   local model = tt.build(config, {train = true})   -- with the training loss mounted as `loss`
--
-- Builders are registered by the config's `model.target` (the official Python
-- class path), so new model kinds add a line to the registry, not a branch here.
local tt = require "taming.core"

local Model = require "taming.model"

local M = {builders = {}}

-- fn(params, where, opts) -> model (parameters declared, not yet bound); opts is the
-- caller's table of M.build or M.load (opts.train: also build what training needs)
function M.register(target, fn)
  M.builders[target] = fn
end

local function starts(s, p) return s:sub(1, #p) == p end

-- The official init_from_ckpt: the file's tensors, less every key that starts with
-- one of ignore_keys, bound non-strictly (missing and unexpected keys are reported
-- on one line, not refused). A stage's weights inside a whole Net2NetTransformer
-- checkpoint are found under first_stage_model. / cond_stage_model.; a file that
-- holds none of the model's keys is an error.
function M.init_from_ckpt(model, path, ignore_keys, where)
  ignore_keys = ignore_keys or {}
  if type(ignore_keys) ~= "table" then
    error(("%s: ignore_keys must be a list of key prefixes, found %s"):format(where, tostring(ignore_keys)), 0)
  end
  if not tt.fs.exists(path) then error(("%s: ckpt_path %s: no such file"):format(where, path), 0) end
  local tensors = tt.ckpt.open(path):tensors()
  local sd = {}
  for k, t in pairs(tensors) do
    local drop = false
    for _, ik in ipairs(ignore_keys) do if starts(k, ik) then drop = true end end
    if not drop then sd[k] = t end
  end
  local names = {}
  for _, p in ipairs(model:parameters(true)) do names[#names + 1] = p.name end
  local best, hits = "", -1
  for _, prefix in ipairs({"", "first_stage_model.", "cond_stage_model."}) do
    local n = 0
    for _, k in ipairs(names) do if sd[prefix .. k] ~= nil then n = n + 1 end end
    if n > hits then best, hits = prefix, n end
  end
  if hits == 0 and #names > 0 then
    error(("%s: ckpt_path %s holds none of the model's %d keys (e.g. '%s')"):format(where, path, #names, names[1]), 0)
  end
  local sub = {}
  for k, t in pairs(sd) do if starts(k, best) then sub[k:sub(#best + 1)] = t end end
  local missing = {}
  model:load_state(sub, {source = path, strict = false, missing = missing})
  local unexpected = 0
  local known = {}
  for _, k in ipairs(names) do known[k] = true end
  for k in pairs(sub) do if not known[k] and k ~= "null_cond" then unexpected = unexpected + 1 end end
  if #missing > 0 or unexpected > 0 then
    local parts = {}
    if #missing > 0 then
      parts[1] = ("%d missing key%s keep%s the initialisation (e.g. %s)"):format(#missing, #missing == 1 and "" or "s",
        #missing == 1 and "s" or "", missing[1])
    end
    if unexpected > 0 then
      parts[#parts + 1] = ("%d key%s of the file unused"):format(unexpected, unexpected == 1 and "" or "s")
    end
    io.stderr:write(("%s: restored from %s: %s\n"):format(where, path, table.concat(parts, ", ")))
  end
  model.restored_from = path
  return model
end

local function read_config(cfg)
  if type(cfg) == "table" then return cfg, "config" end
  if type(cfg) ~= "string" then error("load: pass {config = 'file.yaml'} (or a config table)", 0) end
  local t = tt.yaml.load(cfg)
  if type(t) ~= "table" then
    error(("%s: expected a mapping of config keys (model: ...), found a %s"):format(cfg, type(t)), 0)
  end
  return t, cfg
end

-- Builds the model a config describes. Returns model, config table, config name.
-- opts.train: mount the training loss (lossconfig) too; opts.loss: options for it.
-- A `ckpt_path` in the model's params (and in its stages' configs) initialises it
-- as the official init_from_ckpt does, with `ignore_keys`; opts.ckpt_path = false
-- skips them, as the official sampling scripts delete them before loading.
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
  opts = opts or {}
  local params = model.params or {}
  local m = fn(params, where .. ": model.params", opts)
  m.config, m.target = cfg, target
  m.base_learning_rate = model.base_learning_rate
  if params.ckpt_path ~= nil and opts.ckpt_path ~= false and Model.is_model(m) then
    M.init_from_ckpt(m, params.ckpt_path, params.ignore_keys, where .. ": model.params")
  end
  return m, cfg, where
end

-- Loads weights by their official names from a .ckpt (Lightning) or .safetensors file.
-- opts.config: YAML path or table; opts.device; opts.strict (default true); opts.train
-- (bind the training loss's weights, loss.*, too); opts.unsafe_globals (read a .ckpt whose
-- pickle references globals that torch.load would call; refused by default, never called).
-- opts.precision: "fp32", "bf16" or "int8" weights for the transformer's linear layers,
-- and bf16 for the VQGAN's convolutions (Model:set_precision).
function M.load(path, opts)
  opts = opts or {}
  if not opts.config then error("load: pass {config = 'model.yaml'} (the official YAML of the model)", 0) end
  -- every weight comes from `path`: the stages' ckpt_path entries are not read
  local bo = setmetatable({ckpt_path = false}, {__index = opts})
  local model = M.build(opts.config, bo)
  local ck = tt.ckpt.open(path, {unsafe_globals = opts.unsafe_globals})
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
