-- stand_in_loss.lua — a small first-stage loss with the interface of
-- taming.losses.vqlpips, for the training tests: L1 + codebook loss + a hinge
-- GAN term (weight 0.1 from disc_start on) against a two-conv PatchGAN mounted
-- under loss.discriminator. Loaded by `taming run pipelines/train_vqgan.lua
-- loss=tests/lua/stand_in_loss.lua`.
local tt = require "taming"

return function(lossconfig, model)
  local params = lossconfig.params or {}
  local disc_start = params.disc_start or 0
  local C = model.in_channels
  local L = tt.Model.new("StandInLoss")
  local D = tt.Model.new("PatchGAN")
  local lazy = {init = false}
  D:add("main.0", tt.plugin("layer", "conv2d", {in_channels = C, out_channels = 8, kernel_size = 4, stride = 2,
                                                padding = 1}, lazy))
  D:add("main.2", tt.plugin("layer", "conv2d", {in_channels = 8, out_channels = 1, kernel_size = 3, padding = 1}, lazy))
  L:add("discriminator", D)

  local function logits(x)
    return D["main.2"]:forward(D["main.0"]:forward(x):leaky_relu(0.2))
  end

  function L:generator(qloss, x, xrec, global_step, last_layer)
    assert(last_layer ~= nil, "the loop passes decoder.conv_out.weight")
    local rec = (x - xrec):abs():mean()
    local g = -logits(xrec):mean()
    local factor = global_step >= disc_start and 0.1 or 0.0
    local loss = rec + qloss:mean() + g * factor
    return loss, {["train/rec_loss"] = rec, ["train/quant_loss"] = qloss:mean(), ["train/g_loss"] = g,
                  ["train/disc_factor"] = factor}
  end

  function L:discriminator(x, xrec, global_step)
    local real, fake = logits(x:detach()), logits(xrec:detach())
    local d = ((1.0 - real):relu():mean() + (1.0 + fake):relu():mean()) * 0.5
    local factor = global_step >= disc_start and 1.0 or 0.0
    return d * factor, {["train/disc_loss"] = d, ["train/logits_real"] = real:mean(), ["train/logits_fake"] = fake:mean()}
  end

  return L
end
