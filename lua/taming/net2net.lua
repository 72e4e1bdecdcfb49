-- taming.net2net — the official Net2NetTransformer (REFERENCE §4.4), composed from
-- a first-stage VQGAN, a condition stage, an optional permuter and the GPT.
-- Methods follow the official Python: encode_to_z, encode_to_c, decode_to_img,
-- forward (training logits), sample.
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
function M.build(params, where)
  local build_model = require("taming.load").build
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
  return m
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
-- mask [B, steps] (forced tokens: kept where mask is 0).
function N2N:sample(x, c, steps, opts)
  opts = opts or {}
  local sampler = opts.sampler or M.sampler(opts)
  local prefix = x and tt.cat({c, x}, 1) or c
  local new = tt.sample{gpt = self.transformer, sampler = sampler, prefix = prefix, steps = steps,
    cache = opts.cache ~= false, vocab_limit = opts.vocab_limit, uncond = opts.uncond, cfg_scale = opts.cfg_scale,
    known = opts.known, mask = opts.mask}
  if x then return tt.cat({x, new}, 1) end
  return new
end

M.N2N = N2N
return M
