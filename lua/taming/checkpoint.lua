-- taming.checkpoint — training checkpoints that resume exactly.
--
-- A checkpoint of step N is three files in the checkpoint folder, plus a pointer:
--   step-0000000N.safetensors        the model's state_dict under the official key
--                                    names (loss.* included), loadable by tt.load
--   step-0000000N.optim.safetensors  every optimizer's moments and step counts,
--                                    "<optimizer>.<param>.exp_avg|exp_avg_sq|step"
--   step-0000000N.state.lua          a Lua table literal: global step, epoch, the data
--                                    position, RNG states, optimizer counters, config
--   latest                           "step-0000000N", written last
-- Each file is replaced atomically (temporary file, fsync, rename), and `latest`
-- moves only after the three are complete, so a process killed at any moment
-- leaves the previous checkpoint intact and findable. Older checkpoints beyond
-- `keep` are then removed.
local tt = require "taming.core"
local Model = require "taming.model"

local C = {}

-- ---- Lua literals ----

local function is_identifier(s)
  return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil and not ({
    ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1, ["end"] = 1, ["false"] = 1,
    ["for"] = 1, ["function"] = 1, ["goto"] = 1, ["if"] = 1, ["in"] = 1, ["local"] = 1, ["nil"] = 1,
    ["not"] = 1, ["or"] = 1, ["repeat"] = 1, ["return"] = 1, ["then"] = 1, ["true"] = 1, ["until"] = 1,
    ["while"] = 1})[s]
end

local function number_literal(v)
  if math.type(v) == "integer" then
    if v == math.mininteger then return "(-9223372036854775807 - 1)" end
    return string.format("%d", v)
  end
  if v ~= v then return "(0/0)" end
  if v == math.huge then return "(1/0)" end
  if v == -math.huge then return "(-1/0)" end
  local s = string.format("%.17g", v)
  if not s:find("[%.eEn]") then s = s .. ".0" end   -- stays a float when read back
  return s
end

local function serialize(v, indent, seen, out)
  local t = type(v)
  if t == "nil" then out[#out + 1] = "nil"
  elseif t == "boolean" then out[#out + 1] = tostring(v)
  elseif t == "number" then out[#out + 1] = number_literal(v)
  elseif t == "string" then out[#out + 1] = string.format("%q", v)
  elseif t == "table" then
    if seen[v] then error("checkpoint state: a table refers to itself", 0) end
    seen[v] = true
    local n = #v
    local keys = {}
    for k in pairs(v) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then
        if type(k) ~= "string" and type(k) ~= "number" then
          error("checkpoint state: keys must be strings or numbers, found " .. type(k), 0)
        end
        keys[#keys + 1] = k
      end
    end
    table.sort(keys, function(a, b)
      if type(a) == type(b) then return a < b end
      return type(a) == "number"
    end)
    local pad = string.rep("  ", indent + 1)
    out[#out + 1] = "{\n"
    for i = 1, n do
      out[#out + 1] = pad
      serialize(v[i], indent + 1, seen, out)
      out[#out + 1] = ",\n"
    end
    for _, k in ipairs(keys) do
      out[#out + 1] = pad
      if is_identifier(k) then out[#out + 1] = k
      else
        out[#out + 1] = "["
        serialize(k, indent + 1, seen, out)
        out[#out + 1] = "]"
      end
      out[#out + 1] = " = "
      serialize(v[k], indent + 1, seen, out)
      out[#out + 1] = ",\n"
    end
    out[#out + 1] = string.rep("  ", indent) .. "}"
    seen[v] = nil
  else
    error("checkpoint state: cannot store a " .. t, 0)
  end
end

-- A Lua chunk "return {...}" that rebuilds v (tables of strings, numbers, booleans).
function C.to_lua(v)
  local out = {"return "}
  serialize(v, 0, {}, out)
  out[#out + 1] = "\n"
  return table.concat(out)
end

-- Reads such a chunk without giving it access to anything.
function C.read_lua(path)
  local f, err = io.open(path, "rb")
  if not f then error(("%s: cannot open: %s"):format(path, err), 0) end
  local text = f:read("a")
  f:close()
  local chunk, perr = load(text, "@" .. path, "t", {})
  if not chunk then error(("%s: not a checkpoint state: %s"):format(path, perr), 0) end
  local ok, v = pcall(chunk)
  if not ok or type(v) ~= "table" then error(("%s: not a checkpoint state: %s"):format(path, tostring(v)), 0) end
  return v
end

-- ---- YAML (for the project config written next to the checkpoints) ----

local function yaml_scalar(v)
  if type(v) == "boolean" then return tostring(v) end
  if type(v) == "number" then
    if math.type(v) == "integer" then return string.format("%d", v) end
    if v ~= v then return ".nan" end
    if v == math.huge then return ".inf" end
    if v == -math.huge then return "-.inf" end
    local s = string.format("%.17g", v)
    if not s:find("[%.eEn]") then s = s .. ".0" end
    -- YAML 1.1 (PyYAML) reads an exponent without a dot as a string
    if s:find("[eE]") and not s:find("%.") then s = s:gsub("[eE]", ".0e") end
    return s
  end
  -- strings are always quoted, so "1e-5" or "yes" stay strings
  return '"' .. v:gsub('[\\"]', "\\%0"):gsub("\n", "\\n"):gsub("\t", "\\t") .. '"'
end

local function yaml_emit(v, indent, out)
  local pad = string.rep("  ", indent)
  if type(v) ~= "table" then error("yaml: not a table", 0) end
  local n = #v
  if n > 0 then
    for i = 1, n do
      local x = v[i]
      if type(x) == "table" and next(x) ~= nil then
        out[#out + 1] = pad .. "-\n"
        yaml_emit(x, indent + 1, out)
      elseif type(x) == "table" then
        out[#out + 1] = pad .. "- []\n"
      else
        out[#out + 1] = pad .. "- " .. yaml_scalar(x) .. "\n"
      end
    end
    return
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local x = v[k]
    if x == nil then x = v[tonumber(k)] end
    local key = k:match("^[%a_][%w_%.%-]*$") and k or yaml_scalar(k)
    if type(x) == "table" and next(x) ~= nil then
      out[#out + 1] = pad .. key .. ":\n"
      yaml_emit(x, indent + 1, out)
    elseif type(x) == "table" then
      out[#out + 1] = pad .. key .. ": {}\n"
    else
      out[#out + 1] = pad .. key .. ": " .. yaml_scalar(x) .. "\n"
    end
  end
end

-- A config table as YAML that tt.yaml.load reads back into the same table.
function C.to_yaml(v)
  local out = {}
  yaml_emit(v, 0, out)
  return table.concat(out)
end

-- ---- RNG and plugin states ----

-- {prefix = {values...}} for every plugin in the tree with state()/set_state()
-- methods (samplers, any plugin that keeps its own random stream), and every
-- Model node with get_state()/set_state() functions.
local function collect_states(model)
  local out = {}
  if not Model.is_model(model) and not (type(model) == "table" and model.each_plugin) then return out end
  model:each_plugin(function(prefix, p)
    if p:has_method("state") and p:has_method("set_state") then
      out[prefix == "" and "." or prefix] = table.pack(p:state())
    end
  end)
  return out
end

local function apply_states(model, states, source)
  if not states then return end
  model:each_plugin(function(prefix, p)
    local s = states[prefix == "" and "." or prefix]
    if s and p:has_method("set_state") then p:set_state(table.unpack(s, 1, s.n or #s)) end
  end)
  for k in pairs(states) do
    local found = false
    model:each_plugin(function(prefix) if (prefix == "" and "." or prefix) == k then found = true end end)
    if not found then error(("%s: a plugin state for '%s', which the model does not have"):format(source, k), 0) end
  end
end

-- ---- files ----

local function base_name(step) return ("step-%08d"):format(step) end

function C.paths(dir, base)
  return {weights = dir .. "/" .. base .. ".safetensors", optim = dir .. "/" .. base .. ".optim.safetensors",
          state = dir .. "/" .. base .. ".state.lua"}
end

-- The newest complete checkpoint in dir: its base name ("step-00000100") or nil.
function C.latest(dir)
  local f = io.open(dir .. "/latest", "rb")
  if not f then return nil end
  local base = f:read("a"):match("^%s*(step%-%d+)%s*$")
  f:close()
  return base
end

-- Removes checkpoints beyond the newest `keep` (never the one `latest` names)
-- and temporary files left by a process killed while writing.
function C.prune(dir, keep)
  local current = C.latest(dir)
  local steps, files = {}, {}
  for _, name in ipairs(tt.fs.listdir(dir)) do
    local step = name:match("^step%-(%d+)%.")
    if name:find("%.tmp%.") then
      tt.fs.remove(dir .. "/" .. name)
    elseif step then
      step = tonumber(step)
      if not files[step] then files[step] = {}; steps[#steps + 1] = step end
      table.insert(files[step], name)
    end
  end
  table.sort(steps, function(a, b) return a > b end)
  for i, step in ipairs(steps) do
    if keep and i > keep and base_name(step) ~= current then
      for _, name in ipairs(files[step]) do tt.fs.remove(dir .. "/" .. name) end
    end
  end
end

-- Writes the checkpoint of `step`. parts:
--   model       a Model (its state_dict is saved under the official names)
--   optimizers  {name = optimizer} (taming.optim)
--   rngs        {name = tt.rng}
--   state       a table of plain values stored as is (epoch, data position, config, ...)
--   keep        checkpoints to keep (nil = all)
-- Returns the paths written.
function C.save(dir, step, parts)
  tt.fs.mkdir(dir)
  local base = base_name(step)
  local p = C.paths(dir, base)
  local meta = {format = "pt", global_step = tostring(step), producer = "taming " .. tostring(tt.version)}
  if parts.state and parts.state.epoch then meta.epoch = tostring(parts.state.epoch) end
  tt.safetensors.save(p.weights, parts.model:state_dict(), meta)
  local moments, optimizers = {}, {}
  for name, opt in pairs(parts.optimizers or {}) do
    for k, t in pairs(opt:state_dict(name .. ".")) do moments[k] = t end
    optimizers[name] = opt:describe()
  end
  tt.safetensors.save(p.optim, moments, {global_step = tostring(step)})
  local rngs = {}
  for name, r in pairs(parts.rngs or {}) do rngs[name] = table.pack(r:state()) end
  local sidecar = {format = 1, global_step = step, rngs = rngs, optimizers = optimizers,
                   plugin_states = collect_states(parts.model), saved_at = os.time(),
                   files = {weights = base .. ".safetensors", optim = base .. ".optim.safetensors"}}
  for k, v in pairs(parts.state or {}) do
    if sidecar[k] == nil then sidecar[k] = v end
  end
  tt.fs.write_atomic(p.state, C.to_lua(sidecar))
  tt.fs.write_atomic(dir .. "/latest", base .. "\n")
  C.prune(dir, parts.keep)
  return p
end

-- Finds a checkpoint: `where` is a checkpoint folder (its latest), a log folder
-- (its checkpoints/ latest), or a path to any of a checkpoint's files. Returns
-- {base =, dir =, weights =, optim =, state = (the sidecar table)} or nil when a
-- folder holds no checkpoint yet.
function C.find(where)
  local dir, base
  if tt.fs.isdir(where) then
    dir = where
    if not C.latest(dir) and tt.fs.isdir(where .. "/checkpoints") then dir = where .. "/checkpoints" end
    base = C.latest(dir)
    if not base then return nil end
  else
    dir, base = where:match("^(.*)/(step%-%d+)%.[^/]*$")
    if not dir then
      base = where:match("^(step%-%d+)%.")
      dir = "."
    end
    if not base then error(("%s: not a checkpoint (expected step-N.safetensors, .state.lua or a folder)"):format(where), 0) end
  end
  local p = C.paths(dir, base)
  for _, k in ipairs({"weights", "optim", "state"}) do
    if not tt.fs.exists(p[k]) then error(("%s: the checkpoint is incomplete (%s is missing)"):format(where, p[k]), 0) end
  end
  local info = {base = base, dir = dir, weights = p.weights, optim = p.optim}
  info.state = C.read_lua(p.state)
  if info.state.format ~= 1 then error(("%s: unknown checkpoint format %s"):format(p.state, tostring(info.state.format)), 0) end
  return info
end

-- Loads a checkpoint's weights (found by C.find) into the model: strict (every
-- key of the model, nothing else), into tensors of its own. Binding replaces
-- the parameters' tensors, so build optimizers after this.
function C.load_weights(info, model, device)
  local ck = tt.ckpt.open(info.weights)
  -- own copies: training updates them in place, and the file may be pruned later
  local own = {}
  for k, t in pairs(ck:tensors()) do own[k] = t:clone() end
  ck:close()
  model:load_state(own, {source = info.weights})
  if device and device ~= "cpu" then model:to(device) end
end

-- Restores the rest of a checkpoint into parts (as given to save, the model's
-- weights already loaded): optimizer moments and counters, RNG states, plugin
-- states. Returns the sidecar table.
function C.restore(info, parts)
  local ok = tt.ckpt.open(info.optim)
  local moments = ok:tensors()
  local seen = {}
  local sidecar = info.base .. ".state.lua"
  for name, opt in pairs(parts.optimizers or {}) do
    opt:load_state_dict(moments, name .. ".", info.optim)
    local d = info.state.optimizers and info.state.optimizers[name]
    if not d then error(("%s: no state for the optimizer '%s'"):format(sidecar, name), 0) end
    opt.steps = d.steps or 0
    seen[name] = true
  end
  for k in pairs(moments) do
    local owner = k:match("^([^.]+)%.")
    if not seen[owner] then error(("%s: '%s' belongs to no optimizer of this run"):format(info.optim, k), 0) end
  end
  ok:close()
  for name, r in pairs(parts.rngs or {}) do
    local s = info.state.rngs and info.state.rngs[name]
    if not s then error(("%s: no state for the random stream '%s'"):format(sidecar, name), 0) end
    r:set_state(s[1], s[2])
  end
  if parts.model then apply_states(parts.model, info.state.plugin_states, sidecar) end
  return info.state
end

return C
