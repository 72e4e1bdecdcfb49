-- taming.optim — Adam and AdamW over named parameters, with parameter groups,
-- gradient accumulation and a state made of named tensors (for checkpoints).
-- The update is one fused kernel over all parameters, tt.adam_step_multi (PyTorch's
-- arithmetic, the fused/foreach path).
--
--   local opt = optim.Adam(model:parameters(), {lr = 4.5e-6, betas = {0.5, 0.9}})
--   local opt = optim.AdamW(optim.gpt_groups(params, 0.01), {lr = lr, betas = {0.9, 0.95}})
--   if opt:backward(loss) then opt:step() end     -- backward of loss / accumulate
--
-- Parameters are {name =, tensor =} entries (what Model:parameters() returns).
-- As in PyTorch, a parameter without a gradient is skipped by step() (its
-- moments and step count stay as they are); each parameter counts its own steps.
local tt = require "taming.core"

local M = {}

local Opt = {}
Opt.__index = Opt

local function group_of(g, defaults, where)
  local params = g.params or g
  if type(params) ~= "table" then error(where .. ": a parameter group needs params = {...}", 0) end
  local out = {params = {}}
  for k, v in pairs(defaults) do out[k] = v end
  for _, k in ipairs({"lr", "betas", "eps", "weight_decay", "name"}) do
    if g.params and g[k] ~= nil then out[k] = g[k] end
  end
  for i, p in ipairs(params) do
    if type(p) ~= "table" or type(p.name) ~= "string" or p.tensor == nil then
      error(("%s: parameter %d is not a {name =, tensor =} entry"):format(where, i), 0)
    end
    out.params[i] = p
  end
  return out
end

-- params: a list of {name, tensor} entries, or a list of groups {params = {...},
-- lr =, betas =, eps =, weight_decay =} (unset fields take the optimizer's).
-- opts: lr, betas = {b1, b2}, eps, weight_decay, accumulate (micro-batches per
-- step), name (a prefix for the state's tensor names), dist (an object with
-- allreduce_mean_(tensor): gradients are averaged over processes before a step).
function M.new(params, opts, decoupled)
  opts = opts or {}
  local name = opts.name or (decoupled and "adamw" or "adam")
  local defaults = {
    lr = opts.lr or 1e-3,
    betas = opts.betas or {0.9, 0.999},
    eps = opts.eps or 1e-8,
    -- PyTorch's defaults: AdamW decays by 1e-2, Adam not at all
    weight_decay = opts.weight_decay or (decoupled and 1e-2 or 0.0),
  }
  local self = setmetatable({name = name, decoupled = decoupled, groups = {}, state = {}, by_name = {},
                             accumulate = opts.accumulate or 1, micro = 0, steps = 0, dist = opts.dist}, Opt)
  if math.type(self.accumulate) ~= "integer" or self.accumulate < 1 then
    error(("%s: accumulate must be a positive integer, found %s"):format(name, tostring(opts.accumulate)), 0)
  end
  local grouped = params[1] ~= nil and params[1].params ~= nil
  local list = grouped and params or {params}
  for gi, g in ipairs(list) do
    local grp = group_of(g, defaults, ("%s: group %d"):format(name, gi))
    for _, p in ipairs(grp.params) do
      if self.by_name[p.name] then error(("%s: parameter '%s' appears twice"):format(name, p.name), 0) end
      self.by_name[p.name] = p
    end
    self.groups[#self.groups + 1] = grp
  end
  return self
end

function M.Adam(params, opts) return M.new(params, opts, false) end
function M.AdamW(params, opts) return M.new(params, opts, true) end

-- The official learning-rate rule: accumulate x processes x batch x base_lr.
function M.learning_rate(base_lr, batch, accumulate, world)
  return (accumulate or 1) * (world or 1) * batch * base_lr
end

-- ---- the Net2NetTransformer's parameter groups ----

-- Linear-layer weights of minGPT, by their state_dict names relative to the GPT.
local LINEAR_SUFFIXES = {"attn.key.weight", "attn.query.weight", "attn.value.weight", "attn.proj.weight",
                         "mlp.0.weight", "mlp.2.weight"}
local NO_DECAY_SUFFIXES = {"ln1.weight", "ln2.weight"}

local function ends(s, suffix) return #s >= #suffix and s:sub(-#suffix) == suffix end

-- "decay" for Linear weights, "no_decay" for biases, LayerNorm weights, tok_emb
-- and pos_emb, nil for a name outside minGPT's parameters.
function M.gpt_decay_class(name, prefix)
  prefix = prefix or ""
  if name:sub(1, #prefix) == prefix then name = name:sub(#prefix + 1) end
  if name == "head.weight" then return "decay" end
  if name == "tok_emb.weight" or name == "pos_emb" or name == "ln_f.weight" or ends(name, ".bias") then
    return "no_decay"
  end
  if name:match("^blocks%.%d+%.") then
    for _, s in ipairs(LINEAR_SUFFIXES) do if ends(name, "." .. s) then return "decay" end end
    for _, s in ipairs(NO_DECAY_SUFFIXES) do if ends(name, "." .. s) then return "no_decay" end end
  end
  return nil
end

-- The official configure_optimizers of Net2NetTransformer: weight decay only on
-- Linear weights. Every parameter must fall in one of the two groups.
function M.gpt_groups(params, weight_decay, prefix)
  local decay, no_decay = {}, {}
  for _, p in ipairs(params) do
    local c = M.gpt_decay_class(p.name, prefix)
    if c == "decay" then decay[#decay + 1] = p
    elseif c == "no_decay" then no_decay[#no_decay + 1] = p
    else error(("gpt_groups: parameter '%s' is neither a Linear weight nor a bias, LayerNorm or embedding "
      .. "(not separated into either group)"):format(p.name), 0) end
  end
  return {{params = decay, weight_decay = weight_decay or 0.01, name = "decay"},
          {params = no_decay, weight_decay = 0.0, name = "no_decay"}}
end

-- ---- stepping ----

-- every parameter, in group order
function Opt:params()
  local out = {}
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do out[#out + 1] = p end
  end
  return out
end

function Opt:set_lr(lr)
  for _, g in ipairs(self.groups) do g.lr = lr end
end

function Opt:zero_grad()
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do p.tensor:zero_grad() end
  end
end

-- Back-propagates loss / accumulate; true once `accumulate` micro-batches have
-- been added since the last step (time to step).
function Opt:backward(loss)
  if self.accumulate > 1 then loss = loss * (1.0 / self.accumulate) end
  loss:backward()
  self.micro = self.micro + 1
  return self.micro >= self.accumulate
end

-- Which parameters have gradients, in order (for the dist all-reduce and the update).
local function with_grads(self)
  local out = {}
  for _, g in ipairs(self.groups) do
    for _, p in ipairs(g.params) do
      local grad = p.tensor:grad()
      if grad then out[#out + 1] = {p = p, g = grad, group = g} end
    end
  end
  return out
end

-- One update of every parameter that has a gradient, then zero_grad.
function Opt:step()
  local todo = with_grads(self)
  if self.dist then
    for _, e in ipairs(todo) do self.dist.allreduce_mean_(e.g) end
  end
  -- one fused update of all of them per device (tt.adam_step_multi), hyperparameters per group
  local hps, by_dev = {}, {}
  for _, e in ipairs(todo) do
    local p, grp = e.p, e.group
    local st = self.state[p.name]
    if not st then
      st = {exp_avg = tt.zeros(p.tensor:shape(), {device = p.tensor:device()}),
            exp_avg_sq = tt.zeros(p.tensor:shape(), {device = p.tensor:device()}), step = 0}
      self.state[p.name] = st
    end
    st.step = st.step + 1
    local hp = hps[grp]
    if not hp then
      hp = {lr = grp.lr, beta1 = grp.betas[1], beta2 = grp.betas[2], eps = grp.eps, weight_decay = grp.weight_decay,
            decoupled = self.decoupled}
      hps[grp] = hp
    end
    local dev = p.tensor:device()
    local b = by_dev[dev]
    if not b then b = {{}, {}, {}, {}, {}, {}}; by_dev[dev] = b end
    local k = #b[1] + 1
    b[1][k], b[2][k], b[3][k], b[4][k], b[5][k], b[6][k] = p.tensor, e.g, st.exp_avg, st.exp_avg_sq, st.step, hp
  end
  for _, b in pairs(by_dev) do tt.adam_step_multi(b[1], b[2], b[3], b[4], b[5], b[6]) end
  self.micro = 0
  self.steps = self.steps + 1
  self:zero_grad()
  return #todo
end

-- ---- state ----

-- {"<param>.exp_avg" = m, "<param>.exp_avg_sq" = v, "<param>.step" = i64 []} (prefix prepended)
function Opt:state_dict(prefix)
  prefix = prefix or ""
  local out = {}
  for name, st in pairs(self.state) do
    out[prefix .. name .. ".exp_avg"] = st.exp_avg
    out[prefix .. name .. ".exp_avg_sq"] = st.exp_avg_sq
    out[prefix .. name .. ".step"] = tt.tensor(st.step, {dtype = "i64"})
  end
  return out
end

-- Restores the state from named tensors (a table or an opened checkpoint), under
-- prefix. Every state entry must belong to one of this optimizer's parameters
-- and match its shape; parameters without an entry start fresh (as PyTorch's
-- lazily created state).
function Opt:load_state_dict(src, prefix, source)
  prefix = prefix or ""
  source = source or "optimizer state"
  local tensors = type(src) == "userdata" and src:tensors() or src
  local found = {}
  for key in pairs(tensors) do
    if key:sub(1, #prefix) == prefix then
      local rest = key:sub(#prefix + 1)
      local pname, field = rest:match("^(.+)%.([%a_]+)$")
      if field ~= "exp_avg" and field ~= "exp_avg_sq" and field ~= "step" then
        error(("%s: unexpected key '%s'"):format(source, key), 0)
      end
      if not self.by_name[pname] then
        error(("%s: '%s' is the state of '%s', which %s does not optimise"):format(source, key, pname, self.name), 0)
      end
      found[pname] = true
    end
  end
  local state = {}
  for pname in pairs(found) do
    local p = self.by_name[pname]
    local m, v, s = tensors[prefix .. pname .. ".exp_avg"], tensors[prefix .. pname .. ".exp_avg_sq"],
      tensors[prefix .. pname .. ".step"]
    if not (m and v and s) then
      error(("%s: incomplete state for '%s' (needs exp_avg, exp_avg_sq and step)"):format(source, pname), 0)
    end
    local want = table.concat(p.tensor:shape(), ", ")
    for _, t in ipairs({m, v}) do
      if table.concat(t:shape(), ", ") ~= want then
        error(("%s: state of '%s' has shape [%s], the parameter [%s]"):format(source, pname,
          table.concat(t:shape(), ", "), want), 0)
      end
    end
    -- own copies on the parameter's device: the file's mapping is not kept alive
    local dev = p.tensor:device()
    state[pname] = {exp_avg = m:to(dev):contiguous():clone(), exp_avg_sq = v:to(dev):contiguous():clone(),
                    step = math.tointeger(s:item())}
  end
  self.state = state
end

-- hyperparameters and counters for the checkpoint sidecar
function Opt:describe()
  local groups = {}
  for i, g in ipairs(self.groups) do
    groups[i] = {name = g.name, lr = g.lr, betas = {g.betas[1], g.betas[2]}, eps = g.eps,
                 weight_decay = g.weight_decay, params = #g.params}
  end
  return {kind = self.decoupled and "AdamW" or "Adam", steps = self.steps, accumulate = self.accumulate, groups = groups}
end

M.Optimizer = Opt
return M
