-- taming.vqgan — the first-stage models of the official code, composed from
-- plugins: VQModel, GumbelVQ, EMAVQ, VQSegmentationModel (REFERENCE §2.8-2.9).
-- Methods follow the official Python: encode, decode, decode_code, forward.
-- Built for training (opts.train), a model also mounts its lossconfig as the child
-- `loss` (taming.losses), whose weights live under the official `loss.*` keys.
local tt = require "taming.core"
local Model = require "taming.model"
local losses = require "taming.losses"

local M = {}

local VQ = setmetatable({}, {__index = Model})
VQ.__index = VQ

local function need(params, key, where)
  local v = params[key]
  if v == nil then error(("%s: missing key '%s'"):format(where, key), 0) end
  return v
end

-- params: the `model.params` map of an official config.
-- kind: "VQModel" | "GumbelVQ" | "EMAVQ" | "VQSegmentationModel"
-- opts.train: mount the loss of params.lossconfig as `loss` (none for DummyLoss);
-- opts.loss: options for it (lin_dropout, seed; see taming.losses).
function M.build(kind, params, where, opts)
  where = where or "model.params"
  opts = opts or {}
  local dd = need(params, "ddconfig", where)
  local n_embed = need(params, "n_embed", where)
  local embed_dim = need(params, "embed_dim", where)
  local z = dd.z_channels
  if z == nil then error(("%s.ddconfig: missing key 'z_channels'"):format(where), 0) end
  if dd.double_z then
    error(("%s.ddconfig: double_z is true, but a VQ model needs double_z: false (quant_conv expects z_channels)"):format(where), 0)
  end
  local m = setmetatable(Model.new(kind), VQ)
  local ok, err = pcall(function()
    local lazy = {init = false}
    m:add("encoder", tt.plugin("encoder", "vqgan", dd, lazy))
    m:add("decoder", tt.plugin("decoder", "vqgan", dd, lazy))
    if kind == "GumbelVQ" then
      m:add("quantize", tt.plugin("quantizer", "gumbel", {num_hiddens = z, embedding_dim = embed_dim,
        n_embed = n_embed, kl_weight = params.kl_weight or 1e-8, temp_init = 1.0, remap = params.remap}, lazy))
    elseif kind == "EMAVQ" then
      m:add("quantize", tt.plugin("quantizer", "ema", {n_embed = n_embed, embedding_dim = embed_dim, beta = 0.25,
        remap = params.remap}, lazy))
    else
      m:add("quantize", tt.plugin("quantizer", "vq", {n_e = n_embed, e_dim = embed_dim, beta = 0.25,
        remap = params.remap, sane_index_shape = params.sane_index_shape or false,
        unknown_index = params.unknown_index}, lazy))
    end
    m:add("quant_conv", tt.plugin("layer", "conv2d", {in_channels = z, out_channels = embed_dim, kernel_size = 1}, lazy))
    m:add("post_quant_conv", tt.plugin("layer", "conv2d", {in_channels = embed_dim, out_channels = z, kernel_size = 1}, lazy))
  end)
  if not ok then error(("%s: %s"):format(where, err), 0) end
  m.ddconfig, m.n_embed, m.embed_dim = dd, n_embed, embed_dim
  m.in_channels = dd.in_channels or 3
  m.n_labels = params.n_labels
  m.image_key = params.image_key or "image"
  if kind == "VQSegmentationModel" and not m.n_labels then
    error(("%s: missing key 'n_labels'"):format(where), 0)
  end
  m.lossconfig = params.lossconfig
  if opts.train then
    local lo = {where = where .. ".lossconfig"}
    for k, v in pairs(opts.loss or {}) do lo[k] = v end
    local loss = losses.from_config(params.lossconfig, lo)
    if loss then m:add("loss", loss) end
  end
  return m
end

-- Checks an input against the model: [B, in_channels, H, W] floats.
function VQ:check_input(x, what)
  local s = x:shape()
  if #s ~= 4 or s[2] ~= self.in_channels then
    local shape = "[" .. table.concat(s, ", ") .. "]"
    error(("%s: the model takes %d-channel input [B, %d, H, W], found %s"):format(what or "input",
      self.in_channels, self.in_channels, shape), 0)
  end
end

-- x [B, C, H, W] -> quant [B, embed_dim, h, w], emb_loss, indices
function VQ:encode(x)
  self:check_input(x)
  local h = self:encode_to_prequant(x)
  return self.quantize:forward(h)
end

-- quant_conv(encoder(x)): the latent before quantisation
function VQ:encode_to_prequant(x)
  return self.quant_conv:forward(self.encoder:forward(x))
end

function VQ:decode(quant)
  return self.decoder:forward(self.post_quant_conv:forward(quant))
end

-- indices (any shape with B*h*w entries), shape {B, h, w} -> image
-- (the official decode_code calls a method that does not exist; this is what it meant)
function VQ:decode_code(indices, shape)
  local s = indices:shape()
  local B, h, w
  if shape then B, h, w = shape[1], shape[2], shape[3]
  elseif #s == 3 then B, h, w = s[1], s[2], s[3]
  else error("decode_code: give indices as [B, h, w] or pass {B, h, w}", 0) end
  local quant = self.quantize:get_codebook_entry(indices, {B, h, w, self.embed_dim})
  return self:decode(quant)
end

-- x -> xrec, qloss
function VQ:forward(x)
  local quant, diff = self:encode(x)
  return self:decode(quant), diff
end

function VQ:get_last_layer() return self.decoder:get_last_layer() end

local AE_CHILDREN = {"encoder", "decoder", "quantize", "quant_conv", "post_quant_conv"}

local function params_of(model, names, prefix)
  local sub = Model.new("params")
  for _, n in ipairs(names) do
    if model[n] then sub:add(n, model[n]) end
  end
  local out = sub:parameters()
  for _, e in ipairs(out) do e.name = prefix .. e.name end
  return out
end

-- The trainable tensors of the official opt_ae (encoder, decoder, quantize, quant_conv,
-- post_quant_conv; the EMA quantizer's tensors are not trainable) and of opt_disc
-- (loss.discriminator), as lists of {name =, tensor =, ...} like Model:parameters().
function VQ:ae_parameters() return params_of(self, AE_CHILDREN, "") end

function VQ:disc_parameters()
  if not (self.loss and self.loss.disc_net) then return {} end
  return params_of({discriminator = self.loss.disc_net}, {"discriminator"}, "loss.")
end

-- VQSegmentationModel.to_rgb: a fixed random projection to 3 channels, scaled to [-1, 1]
function VQ:to_rgb(x)
  if not self.colorize then
    local r = tt.rng(self.colorize_seed or 0)
    self.colorize = tt.randn({3, x:size(1), 1, 1}, r)
  end
  local y = tt.conv2d(x, self.colorize, nil)
  local lo, hi = y:flatten():argmin(0), y:flatten():argmax(0)
  lo = y:flatten():get(lo:item())
  hi = y:flatten():get(hi:item())
  return (y - lo) * (2.0 / (hi - lo)) - 1.0
end

M.VQ = VQ
return M
