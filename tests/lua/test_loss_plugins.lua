-- test_loss_plugins.lua — the first-stage loss plugins and taming.losses without the
-- fixtures: PatchGAN (BatchNorm and ActNorm) against PyTorch (tests/data/train,
-- made by tests/data/gen_train.py), LPIPS's lin-layer dropout switch, the
-- one-channel broadcast, the hinge/vanilla discriminator losses, BCELossWithQuant,
-- lossconfig handling and the `loss.*` keys of a training VQModel.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local DATA = T.srcdir() .. "/tests/data/train/"

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function norm(t) return (t * t):sum():sqrt():item() end

-- a plugin whose parameters are copies of R["w." .. name]
local function from_ref(kind, name, cfg, R)
  local p = tt.plugin(kind, name, cfg, {init = false})
  for _, n in ipairs(p:param_names()) do
    T.ok("reference lacks w." .. n, R["w." .. n] ~= nil)
    p:set_param(n, R["w." .. n]:clone(), "reference")
  end
  p:params_ready()
  return p
end

local function check_grads(what, p, R, prefix, tol)
  local worst = 0
  for _, n in ipairs(p:param_names()) do
    local want = R[prefix .. n]
    if want then
      local r = norm(p:param(n):grad() - want) / math.max(norm(want), 1e-12)
      T.ok(("%s %s: gradient ratio %.3g > %g"):format(what, n, r, tol), r <= tol)
      worst = math.max(worst, r)
    end
  end
  return worst
end

test("patchgan_batchnorm_matches_pytorch", function()
  local R = tt.ckpt.open(DATA .. "patchgan_bn.safetensors"):tensors()
  local d = from_ref("discriminator", "patchgan", {input_nc = 3, ndf = 4, n_layers = 3}, R):train(true)
  local x = R.x:clone():requires_grad(true)                -- [2, 3, 40, 36]
  local logits = d:forward(x)                               -- [2, 1, 3, 2]
  T.close("train logits", logits, R["train.logits"], 1e-5)
  ;(logits * R.R):sum():backward()
  local gx = norm(x:grad() - R["train.gx"]) / norm(R["train.gx"])
  T.ok(("input gradient ratio %.3g"):format(gx), gx <= 1e-5)
  local worst = check_grads("bn", d, R, "train.g.", 1e-5)
  -- the running statistics after one training call (unbiased variance, momentum 0.1)
  for _, i in ipairs({3, 6, 9}) do
    T.close("running_mean " .. i, d:param(("main.%d.running_mean"):format(i)), R[("after.main.%d.running_mean"):format(i)], 1e-6)
    T.close("running_var " .. i, d:param(("main.%d.running_var"):format(i)), R[("after.main.%d.running_var"):format(i)], 1e-6)
    T.eq("num_batches_tracked " .. i, d:param(("main.%d.num_batches_tracked"):format(i)):item(), 8)
  end
  d:train(false)
  T.close("eval logits (running statistics)", d:forward(R.x2), R["eval.logits"], 1e-5)
  print(("  patchgan bn: input gradient ratio %.3g, worst parameter gradient ratio %.3g"):format(gx, worst))
end)

test("patchgan_actnorm_matches_pytorch", function()
  local R = tt.ckpt.open(DATA .. "patchgan_an.safetensors"):tensors()
  local d = from_ref("discriminator", "patchgan", {input_nc = 1, ndf = 8, n_layers = 2, use_actnorm = true}, R)
  d:train(true)
  T.close("logits of the initialising batch", d:forward(R.x1), R["init.logits"], 1e-5)
  for _, i in ipairs({3, 6}) do
    T.close("loc " .. i, d:param(("main.%d.loc"):format(i)), R[("init.main.%d.loc"):format(i)], 1e-6)
    local sc = d:param(("main.%d.scale"):format(i))
    local want = R[("init.main.%d.scale"):format(i)]
    T.ok("scale " .. i, T.max_diff(sc, want) <= 1e-6 * want:abs():max():item())
    T.eq("initialized " .. i, d:param(("main.%d.initialized"):format(i)):item(), 1)
  end
  local x = R.x2:clone():requires_grad(true)
  local logits = d:forward(x)
  T.close("train logits", logits, R["train.logits"], 1e-5)
  ;(logits * R.R):sum():backward()
  local gx = norm(x:grad() - R["train.gx"]) / norm(R["train.gx"])
  T.ok(("input gradient ratio %.3g"):format(gx), gx <= 1e-5)
  local worst = check_grads("actnorm", d, R, "train.g.", 1e-5)
  print(("  patchgan actnorm: input gradient ratio %.3g, worst parameter gradient ratio %.3g"):format(gx, worst))
end)

-- LPIPS with random weights: the dropout switch and the broadcast do not need trained
-- ones. The lin heads are made non-negative, as trained LPIPS heads are, so the five
-- distances add up instead of cancelling.
local function lpips(opts)
  local p = tt.plugin("loss", "lpips", opts, {seed = 5})
  for k = 0, 4 do
    local n = ("lin%d.model.1.weight"):format(k)
    p:set_param(n, p:param(n):abs())
  end
  return p
end
local xa, xb = tt.rand({2, 3, 16, 20}, 1) * 2 - 1, tt.rand({2, 3, 16, 20}, 2) * 2 - 1

test("lpips_lin_dropout_switch", function()
  local off = lpips({lin_dropout = false})
  local ref = off:train(false):forward(xa, xb)
  T.close("lin_dropout=false in training equals eval", off:train(true):forward(xa, xb), ref, 0)
  local on = lpips({seed = 9})
  T.close("eval mode has no dropout", on:train(false):forward(xa, xb), ref, 0)
  on:train(true)
  local a, b = on:forward(xa, xb), on:forward(xa, xb)
  T.ok("two training calls draw two masks", T.max_diff(a, b) > 1e-4 * ref:abs():max():item())
  T.ok("dropout changes the value", T.max_diff(a, ref) > 1e-4 * ref:abs():max():item())
  -- the masks are seeded: a second instance with the same seed repeats the draws
  local again = lpips({seed = 9}):train(true)
  T.close("same seed, same masks", again:forward(xa, xb), a, 0)
  -- inverted dropout before a linear head: the expectation is the eval value
  local sum = tt.zeros({2, 1, 1, 1})
  local n = 32
  for _ = 1, n do sum = sum + on:forward(xa, xb) end
  local mean = sum * (1.0 / n)
  local rel = T.max_diff(mean, ref) / ref:abs():max():item()
  print(("  lpips dropout: mean of %d draws within %.3g of the eval value (relative)"):format(n, rel))
  T.ok(("mean of the dropout draws %.3g away from the eval value"):format(rel), rel < 0.02)
end)

test("lpips_one_channel_broadcasts", function()
  local lp = lpips({}):train(false)
  local g1, g2 = xa:slice(1, 0, 1):contiguous(), xb:slice(1, 0, 1):contiguous()   -- [2, 1, 16, 20]
  local three = lp:forward(g1:repeat_(1, 3, 1, 1), g2:repeat_(1, 3, 1, 1))
  T.close("1-channel input = the channel repeated", lp:forward(g1, g2), three, 1e-6)
  T.close("identical inputs are at distance 0", lp:forward(xa, xa), tt.zeros({2, 1, 1, 1}), 0)
  T.eq("output shape", table.concat(lp:forward(xa, xb):shape(), ","), "2,1,1,1")
end)

test("lpips_parameters_are_frozen_and_named", function()
  local lp = tt.plugin("loss", "lpips", {}, {init = false})
  local names = lp:param_names()
  T.eq("parameter count", #names, 2 + 13 * 2 + 5)
  local want = {"scaling_layer.shift", "net.slice1.0.weight", "net.slice2.7.bias", "net.slice3.14.weight",
                "net.slice4.21.weight", "net.slice5.28.bias", "lin4.model.1.weight"}
  local have = {}
  for _, n in ipairs(names) do have[n] = lp:param_info(n) end
  for _, n in ipairs(want) do T.ok("missing " .. n, have[n] ~= nil) end
  for n, info in pairs(have) do T.ok(n .. " must not be trainable", not info.trainable) end
  T.eq("lin4 shape", table.concat(have["lin4.model.1.weight"].shape, ","), "1,512,1,1")
  -- the scaling constants are there before any checkpoint is bound
  T.close("shift", lp:param("scaling_layer.shift"):reshape(3), tt.tensor({-0.030, -0.088, -0.188}), 0)
  T.close("scale", lp:param("scaling_layer.scale"):reshape(3), tt.tensor({0.458, 0.448, 0.450}), 0)
  local mm = tt.Model.new("m")
  mm:add("p", lp)
  T.eq("no LPIPS tensor is offered to an optimizer", #mm:parameters(), 0)
end)

test("discriminator_losses_match_pytorch", function()
  local R = tt.ckpt.open(DATA .. "dloss_ref.safetensors"):tensors()
  local hinge = tt.losses.VQLPIPSWithDiscriminator({disc_start = 0})
  local vanilla = tt.losses.VQLPIPSWithDiscriminator({disc_start = 0, disc_loss = "vanilla"})
  T.close("hinge", hinge.disc_loss(R.real, R.fake), R.hinge, 1e-6)
  T.close("vanilla", vanilla.disc_loss(R.real, R.fake), R.vanilla, 1e-6)
end)

test("lossconfig_is_read_like_the_reference", function()
  local L = tt.losses.from_config({target = "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
    params = {disc_start = 250001, disc_weight = 0.8, codebook_weight = 1.0, disc_num_layers = 2, disc_ndf = 16,
              disc_in_channels = 1, use_actnorm = true, pixelloss_weight = 7.0}})
  T.eq("disc_start", L.disc_start, 250001)
  T.eq("disc_weight", L.disc_weight, 0.8)
  T.eq("perceptual_weight default", L.perceptual_weight, 1.0)
  local d = L.disc_net
  T.eq("first conv [ndf, in, 4, 4]", table.concat(d:param_info("main.0.weight").shape, ","), "16,1,4,4")
  T.eq("stride-1 conv of n_layers 2", table.concat(d:param_info("main.5.weight").shape, ","), "64,32,4,4")
  T.ok("ActNorm", d:param_info("main.3.loc") ~= nil)
  T.ok("the loss method is not shadowed by the child", type(L.discriminator) == "function")
  T.eq("DummyLoss has no loss module", tt.losses.from_config({target = "taming.modules.losses.vqperceptual.DummyLoss"}), nil)
  T.raises("disc_start is required", function()
    tt.losses.from_config({target = "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator", params = {}})
  end, "lossconfig.params", "disc_start")
  T.raises("disc_loss", function() tt.losses.VQLPIPSWithDiscriminator({disc_start = 0, disc_loss = "wgan"}) end,
    "'hinge' or 'vanilla'", "wgan")
  T.raises("unknown target", function() tt.losses.from_config({target = "my.Loss"}) end, "unsupported target", "my.Loss")
end)

test("training_vqmodel_has_the_official_loss_keys", function()
  local cfg = {model = {target = "taming.models.vqgan.VQModel", params = {embed_dim = 4, n_embed = 8,
    ddconfig = {double_z = false, z_channels = 4, resolution = 16, in_channels = 3, out_ch = 3, ch = 32,
                ch_mult = {1, 2}, num_res_blocks = 1, attn_resolutions = {8}, dropout = 0.0},
    lossconfig = {target = "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                  params = {disc_start = 10, disc_num_layers = 2, disc_ndf = 8}}}}}
  local m = tt.build(cfg, {train = true})
  local keys = {}
  m:each_plugin(function(prefix, p) for _, n in ipairs(p:param_names()) do keys[prefix .. n] = true end end)
  for _, k in ipairs({"loss.perceptual_loss.net.slice1.0.weight", "loss.perceptual_loss.lin0.model.1.weight",
                      "loss.perceptual_loss.scaling_layer.scale", "loss.discriminator.main.0.weight",
                      "loss.discriminator.main.3.running_mean", "loss.discriminator.main.8.bias",
                      "encoder.conv_in.weight"}) do
    T.ok("missing key " .. k, keys[k])
  end
  -- optimizers: the autoencoder's tensors and the discriminator's, nothing from LPIPS
  local ae, disc = m:ae_parameters(), m:disc_parameters()
  T.eq("discriminator tensors (n_layers 2: 4 convs, the first and last with bias, 2 BatchNorms)", #disc, 10)
  for _, e in ipairs(ae) do T.ok("ae tensor " .. e.name, e.name:sub(1, 5) ~= "loss.") end
  T.eq("ae + disc = all trainable", #ae + #disc, #m:parameters())
  T.ok("an inference build has no loss", tt.build(cfg).loss == nil)
  -- one generator and one discriminator step from scratch run and give finite numbers
  m:init(3):train()
  local x = tt.rand({2, 3, 16, 16}, 4) * 2 - 1
  local xrec, q = m:forward(x)
  local loss, log = m.loss:generator(q, x, xrec, 0, m:get_last_layer())
  loss:backward()
  T.eq("before disc_start", log["train/disc_factor"], 0.0)
  T.ok("finite total", log["train/total_loss"] == log["train/total_loss"] and log["train/d_weight"] > 0)
  local dl = m.loss:discriminator(x, xrec, 10)
  dl:backward()
  T.ok("discriminator gradient", m.loss.disc_net:param("main.0.weight"):grad() ~= nil)
end)

test("bce_loss_with_quant", function()
  local L = tt.losses.from_config({target = "taming.modules.losses.segmentation.BCELossWithQuant",
                                   params = {codebook_weight = 0.5}})
  local target = tt.bernoulli({2, 5, 8, 8}, 0.3, 7)
  local logits = tt.randn({2, 5, 8, 8}, 8)
  local q = tt.tensor(0.25)
  local loss, log = L:forward(q, target, logits, "val")
  local bce = tt.bce_with_logits(logits, target):item()
  T.ok("loss = bce + 0.5 * q", math.abs(loss:item() - (bce + 0.125)) < 1e-6)
  T.ok("logged", math.abs(log["val/bce_loss"] - bce) < 1e-7 and log["val/quant_loss"] == 0.25 and
    math.abs(log["val/total_loss"] - loss:item()) < 1e-7)
end)

return T.run("loss_plugins", tests)
