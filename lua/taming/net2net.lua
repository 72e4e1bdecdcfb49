-- taming.net2net — the official Net2NetTransformer (REFERENCE §4.4), composed from
-- a first-stage VQGAN, a condition stage, an optional permuter and the GPT.
-- Methods follow the official Python: encode_to_z, encode_to_c, decode_to_img,
-- forward (training logits), sample.
--
-- Classifier-free guidance (not in the official code; as LlamaGen does it): with
-- cond_drop = P > 0 training replaces a row's condition tokens by the null
-- condition with probability P. The null condition is Lc copies of one token,
-- null_token: for a class condition (Labelator) the next class id, n_classes,
-- whose embedding row the condition shares with the codes exactly as the class
-- ids 0..n_classes-1 do; for any other condition the GPT's last vocabulary row,
-- vocab_size - 1 (give vocab_size one above the codebooks' n_embed for a row of
-- its own). Training learns that row's embedding as the null condition. The
-- token sequence is saved as `null_cond` (i64 [Lc]) in the checkpoint, where
-- sample finds it for cfg_scale ~= 1.
local tt = require "taming.core"
local Model = require "taming.model"

local M = {}

local N2N = setmetatable({}, {__index = Model})
N2N.__index = N2N

local PERMUTERS = {
  ["taming.modules.transformer.permuter.Identity"] = "identity",
  ["taming.modules.transformer.permuter.Subsample"] = "subsample",
  ["taming.modules.transformer.permuter.ZCurve"] = "zcurve",
  ["taming.modules.transformer.permuter.SpiralOut"] = "spiral_out",
  ["taming.modules.transformer.permuter.SpiralIn"] = "spiral_in",
  ["taming.modules.transformer.permuter.Random"] = "random",
  ["taming.modules.transformer.permuter.AlternateParsing"] = "alternate",
}

local COND_PLUGINS = {
  ["taming.modules.util.Labelator"] = "labelator",
  ["taming.modules.util.SOSProvider"] = "sos",
  ["taming.modules.misc.coord.CoordStage"] = "coord",
  ["taming.models.dummy_cond_stage.DummyCondStage"] = "dummy",
}

-- build(params, where): params = model.params of a Net2NetTransformer config
function M.build(params, where, opts)
  local load = require "taming.load"
  -- the stages honour their own ckpt_path unless the caller loads every weight itself
  local function build_model(cfg) return load.build(cfg, {ckpt_path = (opts or {}).ckpt_path}) end
  local m = setmetatable(Model.new("Net2NetTransformer"), N2N)
  local lazy = {init = false}
  local tc = params.transformer_config
  if type(tc) ~= "table" then error(("%s: missing key 'transformer_config'"):format(where), 0) end
  local ok, err = pcall(function()
    m.first_stage = build_model({model = params.first_stage_config})
  end)
  if not ok then error(("%s.first_stage_config: %s"):format(where, err), 0) end
  m:add("first_stage_model", m.first_stage)

  local cs = params.cond_stage_config
  m.unconditional = params.unconditional or cs == "__is_unconditional__"
  m.sos_token = params.sos_token or 0
  m.first_stage_key = params.first_stage_key or "image"
  m.cond_stage_key = params.cond_stage_key or "depth"
  if m.unconditional then
    m.cond_stage = tt.plugin("cond", "sos", {sos_token = m.sos_token})
    m.cond_stage_key = m.first_stage_key
  elseif cs == "__is_first_stage__" then
    m.cond_stage = m.first_stage
    m:add("cond_stage_model", m.first_stage)
  elseif type(cs) == "table" and COND_PLUGINS[cs.target] then
    m.cond_stage = tt.plugin("cond", COND_PLUGINS[cs.target], cs.params or {})
    if COND_PLUGINS[cs.target] == "labelator" then
      m.n_classes = (cs.params or {}).n_classes
      m.class_names = (cs.params or {}).class_names   -- optional, our own key: labels for sample sheets
    end
  elseif type(cs) == "table" then
    local ok2, err2 = pcall(function() m.cond_stage = build_model({model = cs}) end)
    if not ok2 then error(("%s.cond_stage_config: %s"):format(where, err2), 0) end
    m:add("cond_stage_model", m.cond_stage)
  else
    error(("%s: missing key 'cond_stage_config'"):format(where), 0)
  end

  local tp = tc.params or {}
  local gpt_target = "taming.modules.transformer.mingpt.GPT"
  if tc.target and tc.target ~= gpt_target then
    error(("%s.transformer_config: unsupported target '%s' (expected %s)"):format(where, tc.target, gpt_target), 0)
  end
  local ok3, err3 = pcall(function() m:add("transformer", tt.plugin("transformer", "mingpt", tp, lazy)) end)
  if not ok3 then error(("%s.transformer_config: %s"):format(where, err3), 0) end
  m.gpt_info = m.transformer:info()

  local pc = params.permuter_config
  if pc and pc.target and pc.target ~= "taming.modules.transformer.permuter.Identity" then
    local name = PERMUTERS[pc.target]
    if not name then error(("%s.permuter_config: unknown target '%s'"):format(where, pc.target), 0) end
    m:add("permuter", tt.plugin("permuter", name, pc.params or {}, lazy))
  end
  m.downsample_cond_size = params.downsample_cond_size or -1
  -- channels the condition stage takes (spatial VQ condition stages only)
  m.cond_channels = Model.is_model(m.cond_stage) and m.cond_stage.in_channels or nil
  m.pkeep = params.pkeep or 1.0
  m.null_token = params.null_token   -- our own key: the token of the null condition (see the top)
  return m
end

-- The token of the null condition: null_token, else n_classes for a class condition,
-- else the GPT's last vocabulary row. Errors when it lies outside the vocabulary.
function N2N:null_token_id()
  local V = self.gpt_info.vocab_size
  local t = self.null_token
  if t == nil then t = self.n_classes or (V - 1) end
  t = math.tointeger(t)
  if not t or t < 0 or t >= V then
    error(("null_token=%s: the null condition's token must lie in the GPT's vocabulary [0, %d)"):format(
      tostring(self.null_token or self.n_classes), V), 0)
  end
  return t
end

-- Turns condition dropout on for training: the null condition is Lc copies of
-- null_token_id(), Lc the condition's token count (c: a batch of conditions).
function N2N:set_cond_drop(p, c)
  if type(p) ~= "number" or p < 0 or p >= 1 then
    error(("cond_drop=%s: expected a probability in [0, 1)"):format(tostring(p)), 0)
  end
  if self.unconditional then error("cond_drop: the model is unconditional, there is no condition to drop", 0) end
  self.cond_drop = p
  if p > 0 and not self.null_cond then
    local _, ci = tt.no_grad(function() return self:encode_to_c(c) end)
    self.null_cond = tt.full({ci:size(1)}, self:null_token_id(), {dtype = "i64"})
  end
end

-- the null condition for B rows: [B, Lc] on device (nil when the model has none)
function N2N:null_prefix(B, device)
  if not self.null_cond then return nil end
  local n = self.null_cond:reshape(1, -1)
  return n:repeat_({B, 1}):to(device or "cpu")
end

-- The state_dict plus the null condition (a model trained with cond_drop).
function N2N:state_dict()
  local sd = Model.state_dict(self)
  if self.null_cond then sd.null_cond = self.null_cond end
  return sd
end

-- Binds the weights; a `null_cond` in the file becomes the model's null condition.
function N2N:load_state(src, opts)
  opts = opts or {}
  local tensors = type(src) == "userdata" and src:tensors() or src
  local key = (opts.prefix or "") .. "null_cond"
  local nc = tensors[key]
  if nc ~= nil then
    local V = self.gpt_info.vocab_size
    if nc:dtype() ~= "i64" or nc:dim() ~= 1 then
      error(("%s: 'null_cond': expected i64 [Lc], found %s %s"):format(opts.source or "state", nc:dtype(),
        "[" .. table.concat(nc:shape(), ", ") .. "]"), 0)
    end
    nc = nc:to("cpu"):contiguous():clone()
    for i = 0, nc:numel() - 1 do
      local v = nc:get(i)
      if v < 0 or v >= V then
        error(("%s: 'null_cond': token %d at %d lies outside the vocabulary [0, %d)"):format(opts.source or "state",
          v, i, V), 0)
      end
    end
    local rest = {}
    for k, t in pairs(tensors) do if k ~= key then rest[k] = t end end
    tensors = rest
    self.null_cond = nc
  end
  return Model.load_state(self, tensors, opts)
end

-- x [B, C, H, W] -> quant_z, z_indices [B, h*w] (sequence order)
function N2N:encode_to_z(x)
  local quant, _, info = self.first_stage:encode(x)
  local idx = info:reshape(quant:size(0), -1)
  if self.permuter then idx = self.permuter:forward(idx) end
  return quant, idx
end

-- c -> quant_c, c_indices [B, Lc]
function N2N:encode_to_c(c)
  if self.downsample_cond_size > -1 and type(c) ~= "number" and c:dim() == 4 then
    c = tt.interpolate(c, self.downsample_cond_size, self.downsample_cond_size, "nearest")
  end
  local quant, _, info = self.cond_stage:encode(c)
  -- the official VQ returns flat [B*hc*wc] indices: back to [B, hc*wc], raster order
  local idx = info
  if idx:dim() ~= 2 or (type(c) ~= "number" and idx:size(0) ~= c:size(0)) then
    idx = idx:reshape(type(c) == "number" and c or c:size(0), -1)
  end
  return quant, idx
end

-- index [B, L] (sequence order), zshape {B, embed_dim, h, w} -> image
function N2N:decode_to_img(index, zshape)
  if self.permuter then index = self.permuter:reverse(index) end
  local B, C, h, w = zshape[1], zshape[2], zshape[3], zshape[4]
  local quant = self.first_stage.quantize:get_codebook_entry(index:reshape(-1), {B, h, w, C})
  return self.first_stage:decode(quant)
end

-- Training forward: logits [B, L, V] for the image tokens and the targets [B, L].
-- rng is used for pkeep token corruption.
function N2N:forward(x, c, rng)
  local _, z = self:encode_to_z(x)
  return self:forward_codes(z, c, rng)
end

-- The same from the image codes z [B, L] (sequence order) that encode_to_z gives.
function N2N:forward_codes(z, c, rng)
  local _, ci = self:encode_to_c(c)
  return self:forward_tokens(z, ci, rng)
end

-- The same from the condition's tokens ci [B, Lc] (what encode_to_c gives, or the null
-- condition of null_prefix).
function N2N:forward_tokens(z, ci, rng)
  if self.training and (self.cond_drop or 0) > 0 then
    -- classifier-free guidance: each row's condition becomes the null condition with probability cond_drop
    local B = ci:size(0)
    local drop = tt.bernoulli({B, 1}, self.cond_drop, rng, {device = ci:device()})   -- [B, 1] 0/1
    local null = self:null_prefix(B, ci:device())                                      -- [B, Lc]
    ci = (ci:float() * (1.0 - drop) + null:float() * drop):long()
  end
  local a = z
  if self.training and self.pkeep < 1.0 then
    -- keep each code with probability pkeep, else a uniformly random token
    local B, L = z:size(0), z:size(1)
    local V = self.gpt_info.vocab_size
    local keep = tt.bernoulli({B, L}, self.pkeep, rng, {device = z:device()})
    local r = (tt.rand({B, L}, rng, {device = z:device()}) * V):clamp(0, V - 1)
    a = (z:float() * keep + r * (1.0 - keep)):long()
  end
  local seq = tt.cat({ci, a}, 1)
  local Lc = ci:size(1)
  local logits = self.transformer:forward(seq:slice(1, 0, seq:size(1) - 1))
  logits = logits:slice(1, Lc - 1, logits:size(1))
  return logits, z
end

-- The mean log-likelihood log p(z | c) per token, in nats, of codes z [B, L]
-- (sequence order) under the model in evaluation mode (no pkeep, no cond_drop).
-- With tokens = true, c is the condition's tokens [B, Lc] (e.g. null_prefix(B)).
function N2N:loglik(z, c, tokens)
  local losses = require "taming.losses"
  local was = self.training
  if was then self:train(false) end
  local ll = tt.no_grad(function()
    local ci = tokens and c or select(2, self:encode_to_c(c))
    local logits, target = self:forward_tokens(z, ci)
    return -losses.gpt_loss(logits, target):item()
  end)
  if was then self:train(true) end
  return ll
end

-- A sampler plugin from the official knobs (greedy with a filter it would ignore is an error).
function M.sampler(opts)
  opts = opts or {}
  if opts.sample == false or opts.greedy then
    for _, k in ipairs({"temperature", "top_k", "top_p"}) do
      if opts[k] ~= nil and not (k == "temperature" and opts[k] == 1.0) then
        error(("greedy decoding and %s=%s conflict: greedy takes no temperature, top_k or top_p"):format(k,
          tostring(opts[k])), 0)
      end
    end
    return tt.plugin("sampler", "greedy")
  end
  return tt.plugin("sampler", "categorical", {temperature = opts.temperature or 1.0, top_k = opts.top_k,
    top_p = opts.top_p, seed = opts.seed or 0})
end

-- The official sample(x, c, steps, temperature, sample, top_k): x [B, L0] known image
-- tokens (may have L0 = 0 columns: pass nil), c [B, Lc] cond tokens. Returns the image
-- tokens [B, L0 + steps]. opts: sampler (a plugin or a function f(logits) -> tokens) or
-- temperature/top_k/top_p/sample/seed; cache (default true); vocab_limit; known [B, steps] and
-- mask [B, steps] (forced tokens: kept where mask is 0); cfg_scale (classifier-free
-- guidance against the model's null condition, or against opts.uncond [B, Lc]; 1 is
-- plain sampling, bit for bit).
function N2N:sample(x, c, steps, opts)
  opts = opts or {}
  local sampler = opts.sampler or M.sampler(opts)
  local prefix = x and tt.cat({c, x}, 1) or c
  local uncond, scale = nil, opts.cfg_scale or 1.0
  if scale ~= 1.0 then
    uncond = opts.uncond or self:null_prefix(c:size(0), c:device())
    if not uncond then
      error(("cfg_scale=%s needs a null condition: the model was not trained with cond_drop (no 'null_cond' in its "
        .. "checkpoint)"):format(tostring(scale)), 0)
    end
    if uncond:size(1) ~= c:size(1) then
      error(("cfg_scale: the null condition has %d tokens, the condition %d"):format(uncond:size(1), c:size(1)), 0)
    end
    if x then uncond = tt.cat({uncond, x}, 1) end
  end
  local new = tt.sample{gpt = self.transformer, sampler = sampler, prefix = prefix, steps = steps,
    cache = opts.cache ~= false, vocab_limit = opts.vocab_limit, uncond = uncond, cfg_scale = scale,
    known = opts.known, mask = opts.mask}
  if x then return tt.cat({x, new}, 1) end
  return new
end

M.N2N = N2N
return M
