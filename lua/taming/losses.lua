-- taming.losses — the training losses of both stages, with the official numerics
-- (REFERENCE §3.1-3.6, §4.4). Lua wires; every number is computed by the plugins
-- (loss/lpips, discriminator/patchgan) and the ops.
--
--   local losses = require "taming.losses"            -- also tt.losses
--
-- VQLPIPSWithDiscriminator (the loss of VQModel, GumbelVQ, EMAVQ)
--   local L = losses.VQLPIPSWithDiscriminator(params [, opts])
--       params: the official lossconfig.params: disc_start (required), codebook_weight (1),
--               pixelloss_weight (ignored, as in the reference), disc_num_layers (3),
--               disc_in_channels (3), disc_factor (1), disc_weight (1), perceptual_weight (1),
--               use_actnorm (false), disc_conditional (false), disc_ndf (64),
--               disc_loss ("hinge" | "vanilla")
--       opts:   lin_dropout (true: LPIPS's Dropout(0.5) is active in training mode, as in
--               the official training; false makes training deterministic), seed (0)
--     A Model subtree with the children `perceptual_loss` and `discriminator`; a VQModel
--     built with tt.build(cfg, {train = true}) mounts it as `loss`, so its weights bind
--     from the checkpoint keys loss.perceptual_loss.* and loss.discriminator.*. The
--     plugins are L.perceptual_loss and L.disc_net.
--   L:generator(qloss, x, xrec, global_step, last_layer [, cond, split]) -> loss, log
--       The optimizer_idx = 0 loss. last_layer = model:get_last_layer(); the adaptive
--       weight is 0 when it is nil or gradients are off (validation). The discriminator's
--       parameters get no gradient from this loss (as Lightning's toggle_optimizer).
--   L:discriminator(x, xrec, global_step [, cond, split]) -> loss, log
--       The optimizer_idx = 1 loss, on detached inputs (the autoencoder forward that
--       produced xrec may run under tt.no_grad).
--   log: {[split .. "/total_loss"] = number, ...}: plain numbers, keys as the reference.
--
-- BCELossWithQuant (VQSegmentationModel)
--   local L = losses.BCELossWithQuant(params)          -- codebook_weight (1)
--   L:forward(qloss, x, xrec [, split]) -> loss, log
--
-- losses.from_config(lossconfig [, opts]) -> one of the above, or nil for DummyLoss.
-- losses.gpt_loss(logits [B, L, V], targets [B, L]) -> mean cross-entropy (0-dim), the
--   Net2NetTransformer training loss.
local tt = require "taming.core"
local Model = require "taming.model"

local M = {}

local function num(params, key, def, where)
  local v = params[key]
  if v == nil then return def end
  if type(v) ~= "number" then error(("%s: key '%s': expected a number, found %s"):format(where, key, type(v)), 0) end
  return v
end

local function bool(params, key, def, where)
  local v = params[key]
  if v == nil then return def end
  if type(v) ~= "boolean" then error(("%s: key '%s': expected a boolean, found %s"):format(where, key, type(v)), 0) end
  return v
end

-- the GAN factor: w from step `threshold` on, 0 before (strict)
local function adopt_weight(w, step, threshold)
  if step < threshold then return 0.0 end
  return w
end

local function frobenius(t) return (t * t):sum():sqrt():item() end

-- fn() with the plugin's trainable tensors marked as not requiring gradients
local function with_frozen(plugin, fn)
  local frozen = {}
  for _, n in ipairs(plugin:param_names()) do
    local t = plugin:param(n)
    if t and t:requires_grad() then
      t:requires_grad(false)
      frozen[#frozen + 1] = t
    end
  end
  local ok, a = pcall(fn)
  for _, t in ipairs(frozen) do t:requires_grad(true) end
  if not ok then error(a, 0) end
  return a
end

local function hinge_d_loss(logits_real, logits_fake)
  return ((1.0 - logits_real):relu():mean() + (1.0 + logits_fake):relu():mean()) * 0.5
end

local function vanilla_d_loss(logits_real, logits_fake)
  return ((-logits_real):softplus():mean() + logits_fake:softplus():mean()) * 0.5
end

---------------------------------------------------------------- VQLPIPSWithDiscriminator

local VQL = setmetatable({}, {__index = Model})
VQL.__index = VQL

function M.VQLPIPSWithDiscriminator(params, opts)
  params, opts = params or {}, opts or {}
  local where = opts.where or "lossconfig.params"
  if params.disc_start == nil then error(("%s: missing key 'disc_start'"):format(where), 0) end
  local L = setmetatable(Model.new("VQLPIPSWithDiscriminator"), VQL)
  L.disc_start = num(params, "disc_start", 0, where)
  L.codebook_weight = num(params, "codebook_weight", 1.0, where)
  L.pixel_weight = num(params, "pixelloss_weight", 1.0, where)
  L.disc_factor = num(params, "disc_factor", 1.0, where)
  L.disc_weight = num(params, "disc_weight", 1.0, where)
  L.perceptual_weight = num(params, "perceptual_weight", 1.0, where)
  L.disc_conditional = bool(params, "disc_conditional", false, where)
  local kind = params.disc_loss or "hinge"
  if kind == "hinge" then L.disc_loss = hinge_d_loss
  elseif kind == "vanilla" then L.disc_loss = vanilla_d_loss
  else error(("%s: disc_loss must be 'hinge' or 'vanilla', found '%s'"):format(where, tostring(kind)), 0) end
  L.disc_loss_kind = kind
  local dcfg = {input_nc = num(params, "disc_in_channels", 3, where), ndf = num(params, "disc_ndf", 64, where),
                n_layers = num(params, "disc_num_layers", 3, where),
                use_actnorm = bool(params, "use_actnorm", false, where)}
  local lazy = {init = false}
  local ok, err = pcall(function()
    -- perceptual_weight 0 (no pretrained VGG at hand): LPIPS is not built, and a
    -- checkpoint's loss.perceptual_loss.* keys are ignored like every unused loss.* key
    if L.perceptual_weight > 0 then
      L:add("perceptual_loss", tt.plugin("loss", "lpips", {lin_dropout = opts.lin_dropout ~= false,
                                                          seed = opts.seed or 0}, lazy))
    end
    L.disc_net = L:add("discriminator", tt.plugin("discriminator", "patchgan", dcfg, lazy))
  end)
  if not ok then error(("%s: %s"):format(where, err), 0) end
  -- the child is reached as L.disc_net; `discriminator` names the loss method
  L.discriminator = nil
  return L
end

-- The official calculate_adaptive_weight: ||dnll/dW|| / (||dg/dW|| + 1e-4), clamped to
-- [0, 1e4], times disc_weight, a constant (a Lua number). The graph is kept for backward.
function VQL:adaptive_weight(nll, g_loss, last_layer)
  local gn = tt.autograd_grad({nll}, {last_layer}, true)[1]
  local gg = tt.autograd_grad({g_loss}, {last_layer}, true)[1]
  local d = frobenius(gn) / (frobenius(gg) + 1e-4)
  d = math.min(math.max(d, 0.0), 1e4)
  return d * self.disc_weight
end

local function disc_input(self, x, cond, what)
  if cond == nil then return x end
  if not self.disc_conditional then
    error(what .. ": a condition was given, but disc_conditional is false", 0)
  end
  return tt.cat({x, cond}, 1)
end

-- x, xrec [B, C, H, W]; qloss: the quantizer's loss (any shape, averaged)
function VQL:generator(qloss, x, xrec, global_step, last_layer, cond, split)
  split = split or "train"
  if cond == nil and self.disc_conditional then error("generator: disc_conditional is true, pass cond", 0) end
  local rec_loss = (x - xrec):abs()                          -- [B, C, H, W]
  local p_loss
  if self.perceptual_weight > 0 then
    p_loss = self.perceptual_loss:forward(x, xrec)           -- [B, 1, 1, 1]
    rec_loss = rec_loss + p_loss * self.perceptual_weight    -- broadcast over C, H, W
  end
  local nll_loss = rec_loss:mean()
  local logits_fake = with_frozen(self.disc_net, function()
    return self.disc_net:forward(disc_input(self, xrec, cond, "generator"))
  end)
  local g_loss = -logits_fake:mean()
  local d_weight = 0.0
  if last_layer ~= nil and tt.grad_enabled() and nll_loss:requires_grad() and g_loss:requires_grad() then
    d_weight = self:adaptive_weight(nll_loss, g_loss, last_layer)
  end
  local disc_factor = adopt_weight(self.disc_factor, global_step, self.disc_start)
  local loss = nll_loss + g_loss * (d_weight * disc_factor) + qloss:mean() * self.codebook_weight
  local nll_v = nll_loss:item()
  local log = {
    [split .. "/total_loss"] = loss:item(),
    [split .. "/quant_loss"] = qloss:mean():item(),
    [split .. "/nll_loss"] = nll_v,
    [split .. "/rec_loss"] = nll_v,
    [split .. "/p_loss"] = p_loss and p_loss:mean():item() or 0.0,
    [split .. "/d_weight"] = d_weight,
    [split .. "/disc_factor"] = disc_factor,
    [split .. "/g_loss"] = g_loss:item(),
  }
  return loss, log
end

function VQL:discriminator(x, xrec, global_step, cond, split)
  split = split or "train"
  local logits_real = self.disc_net:forward(disc_input(self, x:detach(), cond, "discriminator"))
  local logits_fake = self.disc_net:forward(disc_input(self, xrec:detach(), cond, "discriminator"))
  local disc_factor = adopt_weight(self.disc_factor, global_step, self.disc_start)
  local d_loss = self.disc_loss(logits_real, logits_fake) * disc_factor
  local log = {
    [split .. "/disc_loss"] = d_loss:item(),
    [split .. "/logits_real"] = logits_real:mean():item(),
    [split .. "/logits_fake"] = logits_fake:mean():item(),
  }
  return d_loss, log
end

-- The official forward(codebook_loss, inputs, reconstructions, optimizer_idx, global_step,
-- last_layer, cond, split).
function VQL:forward(qloss, x, xrec, optimizer_idx, global_step, last_layer, cond, split)
  if optimizer_idx == 0 then return self:generator(qloss, x, xrec, global_step, last_layer, cond, split) end
  if optimizer_idx == 1 then return self:discriminator(x, xrec, global_step, cond, split) end
  error(("loss: optimizer_idx must be 0 or 1, found %s"):format(tostring(optimizer_idx)), 0)
end

---------------------------------------------------------------- BCELossWithQuant

local BCE = setmetatable({}, {__index = Model})
BCE.__index = BCE

function M.BCELossWithQuant(params, opts)
  params, opts = params or {}, opts or {}
  local L = setmetatable(Model.new("BCELossWithQuant"), BCE)
  L.codebook_weight = num(params, "codebook_weight", 1.0, opts.where or "lossconfig.params")
  return L
end

-- xrec: logits [B, C, H, W], x: targets in [0, 1] (one-hot segmentation maps)
function BCE:forward(qloss, x, xrec, split)
  split = split or "train"
  local bce = tt.bce_with_logits(xrec, x)
  local loss = bce + qloss * self.codebook_weight
  return loss, {
    [split .. "/total_loss"] = loss:mean():item(),
    [split .. "/bce_loss"] = bce:item(),
    [split .. "/quant_loss"] = qloss:mean():item(),
  }
end

-- The training loop's generator step (VQSegmentationModel has no discriminator).
function BCE:generator(qloss, x, xrec, _, _, _, split)
  return self:forward(qloss, x, xrec, split)
end

---------------------------------------------------------------- configs, second stage

local TARGETS = {
  ["taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator"] = M.VQLPIPSWithDiscriminator,
  ["taming.modules.losses.VQLPIPSWithDiscriminator"] = M.VQLPIPSWithDiscriminator,
  ["taming.modules.losses.segmentation.BCELossWithQuant"] = M.BCELossWithQuant,
}
-- the official no-op loss of inference-only configs: nothing to build
local DUMMY = {
  ["taming.modules.losses.vqperceptual.DummyLoss"] = true,
  ["taming.modules.losses.DummyLoss"] = true,
}

function M.from_config(lossconfig, opts)
  opts = opts or {}
  local where = opts.where or "lossconfig"
  if type(lossconfig) ~= "table" then error(("%s: missing (a map with 'target' is needed to train)"):format(where), 0) end
  local target = lossconfig.target
  if DUMMY[target] then return nil end
  local make = TARGETS[target]
  if not make then error(("%s: unsupported target '%s'"):format(where, tostring(target)), 0) end
  local o = {}
  for k, v in pairs(opts) do o[k] = v end
  o.where = where .. ".params"
  return make(lossconfig.params or {}, o)
end

-- logits [B, L, V], targets i64 [B, L] -> mean cross-entropy over B*L
function M.gpt_loss(logits, targets)
  local V = logits:size(-1)
  return tt.cross_entropy(logits:reshape(-1, V), targets:reshape(-1))
end

return M
