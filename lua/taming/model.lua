-- taming.model — a model is a tree of plugins under the official state_dict
-- prefixes ("encoder.", "quantize.", "first_stage_model.decoder."). Lua owns the
-- composition (as torch7's nn did); every number is computed inside the plugins.
--
--   local m = Model.new("VQModel")
--   m:add("encoder", tt.plugin("encoder", "vqgan", ddconfig, {init = false}))
--   m:load_state(ckpt, {source = "vqgan.ckpt", ignore = {"loss."}})
local tt = require "taming.core"

local Model = {}
Model.__index = Model

function Model.new(kind)
  return setmetatable({kind = kind, children = {}}, Model)
end

-- True for a Model and for objects of classes derived from it (VQ, Net2Net, losses).
function Model.is_model(x)
  local mt = getmetatable(x)
  while type(mt) == "table" do
    if mt == Model then return true end
    local parent = getmetatable(mt)
    mt = parent and parent.__index
  end
  return false
end

-- Adds a child (a plugin or a model) under `name` (its state_dict prefix).
function Model:add(name, module)
  self.children[#self.children + 1] = {name = name, module = module}
  self[name] = module
  return module
end

-- Calls fn(prefix, plugin) for every plugin in the tree, in order.
function Model:each_plugin(fn, prefix)
  prefix = prefix or ""
  for _, c in ipairs(self.children) do
    local p = c.name == "" and prefix or (prefix .. c.name .. ".")
    if Model.is_model(c.module) then c.module:each_plugin(fn, p) else fn(p, c.module) end
  end
end

-- {full_name = tensor} for every bound parameter and buffer.
function Model:state_dict()
  local sd = {}
  self:each_plugin(function(prefix, p)
    for _, n in ipairs(p:param_names()) do
      local t = p:param(n)
      if t then sd[prefix .. n] = t end
    end
  end)
  return sd
end

-- Ordered list of {name =, tensor =, plugin =, local_name =} (trainable only unless all).
function Model:parameters(all)
  local out = {}
  self:each_plugin(function(prefix, p)
    for _, n in ipairs(p:param_names()) do
      local info = p:param_info(n)
      if all or (info.trainable and not info.frozen) then
        out[#out + 1] = {name = prefix .. n, tensor = p:param(n), plugin = p, local_name = n, info = info}
      end
    end
  end)
  return out
end

local function shape_str(s)
  local parts = {}
  for i, v in ipairs(s) do parts[i] = tostring(v) end
  return "[" .. table.concat(parts, ", ") .. "]"
end

local function starts(s, p) return s:sub(1, #p) == p end

-- A checkpoint tensor of another floating precision (f16, bf16, f64) converts
-- to the parameter's dtype on bind, as PyTorch's load_state_dict does.
local FLOATING = {f32 = true, f16 = true, bf16 = true, f64 = true}

-- Binds tensors by their official names. `src` is a checkpoint (tt.ckpt.open)
-- or a table {name = tensor}. Options:
--   source  = file name for messages
--   prefix  = only keys under this prefix are considered, with it stripped
--   ignore  = list of key prefixes that are skipped (e.g. {"loss."})
--   strict  = false to allow unexpected keys (missing keys are always errors
--             unless the parameter is optional)
--   keep    = list of exact keys that are returned instead of bound (e.g. {"colorize"})
--   missing = a table to collect missing keys in instead of refusing them (they keep
--             their initialisation: the official non-strict load)
-- Returns a table with the kept tensors.
function Model:load_state(src, opts)
  opts = opts or {}
  local source = opts.source or "state"
  local tensors = src
  if type(src) == "userdata" then tensors = src:tensors() end
  local prefix = opts.prefix or ""
  local avail = {}
  for k, t in pairs(tensors) do
    if starts(k, prefix) then avail[k:sub(#prefix + 1)] = t end
  end
  local used, kept = {}, {}
  for _, k in ipairs(opts.keep or {}) do
    if avail[k] then kept[k] = avail[k]; used[k] = true end
  end
  local missing, first_missing = {}, nil
  self:each_plugin(function(pp, p)
    for _, n in ipairs(p:param_names()) do
      local full = pp .. n
      local t = avail[full]
      local qscale = t and avail[full .. "_scale"]
      if t and qscale and t:dtype() == "i8" and p:has_method("bind_int8") then
        -- int8 weights + per-channel scales of a quantized file (taming convert --quantize int8)
        p:bind_int8(n, t, qscale)
        used[full], used[full .. "_scale"] = true, true
        self.quantized = true
      elseif t then
        local info = p:param_info(n)
        local want, have = shape_str(info.shape), shape_str(t:shape())
        if want ~= have then
          error(("%s: '%s': expected shape %s, found %s"):format(source, full, want, have), 0)
        end
        if info.dtype ~= t:dtype() and not (FLOATING[info.dtype] and FLOATING[t:dtype()]) then
          error(("%s: '%s': expected dtype %s, found %s"):format(source, full, info.dtype, t:dtype()), 0)
        end
        p:set_param(n, t, source)
        used[full] = true
      elseif not p:param_info(n).optional then
        missing[#missing + 1] = ("'%s' %s"):format(full, shape_str(p:param_info(n).shape))
        first_missing = first_missing or full
      end
    end
  end)
  if #missing > 0 and opts.missing then
    for _, m in ipairs(missing) do opts.missing[#opts.missing + 1] = m end
  elseif #missing > 0 then
    local more = #missing > 3 and (" and %d more"):format(#missing - 3) or ""
    -- the same name under another prefix: most often a checkpoint of another model
    -- (a Net2NetTransformer's first_stage_model.*) given with the wrong config
    local hint, found = "", nil
    for k in pairs(tensors) do
      if #k > #first_missing and k:sub(-#first_missing - 1) == "." .. first_missing and
         (not found or #k < #found) then found = k end
    end
    if found then
      hint = ("; the file has '%s': a checkpoint of another model kind, or another config?"):format(found)
    end
    error(("%s: missing key%s %s%s%s"):format(source, #missing > 1 and "s" or "",
      table.concat({missing[1], missing[2], missing[3]}, ", "), more, hint), 0)
  end
  if opts.strict ~= false then
    local unexpected = {}
    for k, t in pairs(avail) do
      local skip = used[k]
      for _, ig in ipairs(opts.ignore or {}) do if starts(k, ig) then skip = true end end
      if not skip then unexpected[#unexpected + 1] = ("'%s' %s"):format(k, shape_str(t:shape())) end
    end
    table.sort(unexpected)
    if #unexpected > 0 then
      local more = #unexpected > 3 and (" and %d more"):format(#unexpected - 3) or ""
      error(("%s: unexpected key%s %s%s"):format(source, #unexpected > 1 and "s" or "",
        table.concat({unexpected[1], unexpected[2], unexpected[3]}, ", "), more), 0)
    end
  end
  -- optional parameters absent from the file keep their initialisation
  self:init(opts.seed, opts.device)
  return kept
end

-- Initialises every parameter (training from scratch).
function Model:init(seed, device)
  self:each_plugin(function(_, p)
    p:materialize(seed or 0, device or "cpu")
    p:params_ready()
  end)
  return self
end

-- Weights of the plugins that support it in "fp32", "bf16" or "int8": the
-- transformer's linear layers (bf16 or int8) and the VQGAN encoder's and
-- decoder's convolutions (bf16; int8 keeps them fp32); the rest stays fp32.
-- Where a plugin cannot take it (no instructions, no int8 VQGAN), it stays fp32
-- and says so on stderr: one line per model (the plugins of one sub-model, e.g.
-- a VQGAN's encoder and decoder, share it), naming the plugins and the reason.
-- Returns {precision =, isa =[, fallback =]}: that of the last plugin that took the
-- precision asked for, else of the last plugin that had set_precision.
function Model:set_precision(precision)
  local info
  if precision ~= "fp32" and precision ~= "bf16" and precision ~= "int8" then
    error(("precision: expected fp32, bf16 or int8, found '%s'"):format(tostring(precision)), 0)
  end
  local groups, order = {}, {}   -- the fallbacks by owning model: {names =, reasons =, seen =}
  self:each_plugin(function(prefix, p)
    if p:has_method("set_precision") then
      local r = p:set_precision(precision)
      if r.fallback then
        local owner = prefix:match("^(.*)%.[^.]+%.$") or ""   -- "first_stage_model.encoder." -> "first_stage_model"
        local g = groups[owner]
        if not g then
          g = {names = {}, reasons = {}, seen = {}}
          groups[owner], order[#order + 1] = g, owner
        end
        g.names[#g.names + 1] = prefix ~= "" and prefix:sub(1, -2) or "the model"
        if not g.seen[r.fallback] then g.seen[r.fallback], g.reasons[#g.reasons + 1] = true, r.fallback end
      end
      if not info or not r.fallback or info.fallback then info = r end
    end
  end)
  for _, owner in ipairs(order) do
    local g = groups[owner]
    io.stderr:write(("taming: precision=%s is not available for %s (%s); running fp32\n"):format(precision,
      table.concat(g.names, ", "), table.concat(g.reasons, "; ")))
  end
  info = info or {precision = "fp32", isa = "openblas"}
  self.precision_info = info
  return info
end

function Model:train(on)
  if on == nil then on = true end
  self.training = on
  self:each_plugin(function(_, p) p:train(on) end)
  return self
end

function Model:eval() return self:train(false) end

function Model:to(device)
  self:each_plugin(function(_, p) p:to(device) end)
  self.device = device
  return self
end

function Model:numel(trainable_only)
  local n = 0
  for _, e in ipairs(self:parameters(not trainable_only)) do
    local c = 1
    for _, d in ipairs(e.info.shape) do c = c * d end
    n = n + c
  end
  return n
end

return Model
