-- test_train_parity.lua — one training step of both stages against the official
-- PyTorch modules (../shared/fixtures/tiny, made by tools/torch-reference/ref.py):
-- the VQGAN generator step (optimizer_idx 0: L1 + LPIPS + adaptive-weighted hinge
-- GAN term + codebook loss) and discriminator step (optimizer_idx 1) reproduce
-- meta.json's losses and the gradients of every first-stage parameter and of the
-- discriminator; the GPT's cross-entropy and gradients match; LPIPS with the
-- fixture's weights matches PyTorch on other image sizes (tests/data/train).
--
-- As in the reference run: global_step 1, disc_start 0, the discriminator's
-- BatchNorm in training mode (batch statistics), LPIPS's lin-layer dropout off.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local F = T.fixtures()
if not F then return T.skip("train_parity", "fixtures folder ../shared/fixtures is absent") end
local D = F .. "/tiny/"
local meta = tt.json.load(D .. "meta.json")

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function rel(got, want) return math.abs(got - want) / math.max(math.abs(want), 1e-12) end

local function norm(t) return (t * t):sum():sqrt():item() end

-- Compares every logged value with the reference's (1e-4 relative).
local function check_log(what, log, want)
  local worst, n = 0, 0
  for k, v in pairs(want) do
    T.ok(("%s: %s not logged"):format(what, k), log[k] ~= nil)
    local r = rel(log[k], v)
    T.ok(("%s: %s = %.9g, reference %.9g (relative %.3g > 1e-4)"):format(what, k, log[k], v, r), r <= 1e-4)
    worst, n = math.max(worst, r), n + 1
  end
  for k in pairs(log) do T.ok(("%s: %s is not in the reference log"):format(what, k), want[k] ~= nil) end
  print(("  %s: %d losses, worst relative difference %.3g"):format(what, n, worst))
end

-- Gradients per tensor: ||got - want|| <= 1e-3 * max(||want||, floor). The floor
-- (1e-3 of the set's largest norm) covers gradients that are zero in exact
-- arithmetic and float noise in practice: attention key biases (softmax ignores
-- them), conv biases before a one-channel-per-group GroupNorm, the last
-- discriminator bias under the hinge loss.
local function check_grads(what, entries, ref)
  local names, maxn = {}, 0
  for k, t in pairs(ref) do names[#names + 1] = k; maxn = math.max(maxn, norm(t)) end
  table.sort(names)
  local by = {}
  for _, e in ipairs(entries) do by[e.name] = e end
  T.eq(what .. ": tensors with gradients", #entries, #names)
  local worst, wname, wsig, wsname = 0, "", 0, ""
  for _, k in ipairs(names) do
    local e = by[k]
    T.ok(("%s: no parameter %s"):format(what, k), e ~= nil)
    local g = e.tensor:grad()
    T.ok(("%s: %s got no gradient"):format(what, k), g ~= nil)
    local want = ref[k]
    local dn, wn = norm(g - want), norm(want)
    local r = dn / math.max(wn, 1e-3 * maxn)
    if r > worst then worst, wname = r, k end
    if wn >= 1e-3 * maxn and dn / wn > wsig then wsig, wsname = dn / wn, k end
    T.ok(("%s: %s: ||diff|| %.3g vs ||ref|| %.3g (ratio %.3g > 1e-3)"):format(what, k, dn, wn, r), r <= 1e-3)
  end
  print(("  %s: %d tensors, worst ratio %.3g (%s); worst among non-vanishing gradients %.3g (%s)"):format(
    what, #names, worst, wname, wsig, wsname))
end

local function load_train_model(loss_opts)
  local m = tt.build(D .. "vqgan.yaml", {train = true, loss = loss_opts or {lin_dropout = false}})
  m:load_state(tt.ckpt.open(D .. "vqgan.ckpt"), {source = "vqgan.ckpt"})
  return m:train()
end

local x = tt.npy.load(D .. "train_input.npy")              -- [2, 3, 32, 32]

test("vqgan_generator_step_matches_reference", function()
  local m = load_train_model()
  T.eq("global_step of the reference", meta.train_step.global_step, 1)
  local xrec, qloss = m:forward(x)
  local loss, log = m.loss:generator(qloss, x, xrec, 1, m:get_last_layer())
  check_log("generator", log, meta.train_step.ae)
  loss:backward()
  -- the reference's opt_ae: every encoder, decoder, quantize, quant_conv, post_quant_conv tensor
  check_grads("ae gradients", m:ae_parameters(), tt.ckpt.open(D .. "train_grads_ae.safetensors"):tensors())
  for _, e in ipairs(m:disc_parameters()) do
    T.ok("the generator loss must not reach " .. e.name, e.tensor:grad() == nil)
  end
  local lp = m.loss.perceptual_loss
  for _, n in ipairs(lp:param_names()) do
    T.ok("LPIPS parameter " .. n .. " is frozen", not lp:param_info(n).trainable and lp:param(n):grad() == nil)
  end
end)

test("vqgan_discriminator_step_matches_reference", function()
  local m = load_train_model()
  -- a new autoencoder forward, as Lightning runs one per optimizer
  local xrec = tt.no_grad(function() return m:forward(x) end)
  local loss, log = m.loss:discriminator(x, xrec, 1)
  check_log("discriminator", log, meta.train_step.disc)
  loss:backward()
  check_grads("disc gradients", m:disc_parameters(), tt.ckpt.open(D .. "train_grads_disc.safetensors"):tensors())
  -- BatchNorm ran in training mode: two calls, two running-statistics updates
  local nb = m.loss.disc_net:param("main.3.num_batches_tracked"):item()
  T.eq("num_batches_tracked", nb, tt.ckpt.open(D .. "vqgan.ckpt"):get("loss.discriminator.main.3.num_batches_tracked"):item() + 2)
end)

test("gpt_cross_entropy_and_grads_match_reference", function()
  local model = tt.load(D .. "gpt.ckpt", {config = D .. "gpt.yaml"}):train()
  local toks = tt.npy.load(D .. "gpt_tokens.npy")           -- [2, 80]
  local logits = model.gpt:forward(toks:slice(1, 0, -1):contiguous())
  local loss = tt.losses.gpt_loss(logits, toks:slice(1, 1):contiguous())
  local want = meta.gpt["loss_on_tokens[:, :-1]->[:, 1:]"]
  local r = rel(loss:item(), want)
  print(("  gpt: loss %.9g, reference %.9g, relative %.3g"):format(loss:item(), want, r))
  T.ok(("gpt loss relative difference %.3g > 1e-4"):format(r), r <= 1e-4)
  loss:backward()
  check_grads("gpt gradients", model:parameters(), tt.ckpt.open(D .. "gpt_grads.safetensors"):tensors())
end)

test("lpips_with_fixture_weights_matches_pytorch", function()
  local R = tt.ckpt.open(T.srcdir() .. "/tests/data/train/lpips_ref.safetensors"):tensors()
  local m = load_train_model()
  local lp = m.loss.perceptual_loss
  local worst_v, worst_g = 0, 0
  for _, c in ipairs({"a", "b", "c"}) do                    -- [2,3,35,21], [1,1,16,24], [1,3,32,32]
    local xa, ya = R[c .. ".x"]:clone():requires_grad(true), R[c .. ".y"]:clone():requires_grad(true)
    local v = lp:forward(xa, ya)
    worst_v = math.max(worst_v, T.close("lpips " .. c, v, R[c .. ".val"], 1e-5))
    local w = tt.arange(1, xa:size(0) + 1):float():reshape(-1, 1, 1, 1)
    ;(v * w):sum():backward()
    for _, g in ipairs({{xa, "gx"}, {ya, "gy"}}) do
      local want = R[c .. "." .. g[2]]
      local ratio = norm(g[1]:grad() - want) / norm(want)
      T.ok(("lpips %s %s: ratio %.3g > 1e-4"):format(c, g[2], ratio), ratio <= 1e-4)
      worst_g = math.max(worst_g, ratio)
    end
  end
  print(("  lpips: max |value diff| %.3g, worst input-gradient ratio %.3g"):format(worst_v, worst_g))
end)

test("load_for_training_binds_the_loss_weights", function()
  local ck = tt.ckpt.open(D .. "vqgan.ckpt")
  local m = tt.load(D .. "vqgan.ckpt", {config = D .. "vqgan.yaml", train = true})
  local sd = m:state_dict()
  for _, k in ipairs({"loss.perceptual_loss.lin3.model.1.weight", "loss.perceptual_loss.scaling_layer.shift",
                      "loss.discriminator.main.6.running_var", "loss.discriminator.main.8.bias"}) do
    T.ok("state_dict lacks " .. k, sd[k] ~= nil)
    T.close(k, sd[k], ck:get(k), 0)
  end
  local inference = tt.load(D .. "vqgan.ckpt", {config = D .. "vqgan.yaml"})
  T.ok("an inference model has no loss", inference.loss == nil)
  for k in pairs(inference:state_dict()) do T.ok("inference key " .. k, k:sub(1, 5) ~= "loss.") end
end)

test("disc_start_gates_the_gan_terms", function()
  local m = load_train_model()
  local ref = meta.train_step.ae
  m.loss.disc_start = 2                                      -- step 1 < 2: the GAN factor is 0
  local xrec, qloss = m:forward(x)
  local loss, log = m.loss:generator(qloss, x, xrec, 1, m:get_last_layer())
  T.eq("disc_factor", log["train/disc_factor"], 0.0)
  T.ok("d_weight is still computed", rel(log["train/d_weight"], ref["train/d_weight"]) < 1e-4)
  local want = ref["train/nll_loss"] + ref["train/quant_loss"]
  T.ok(("total without the GAN term: %.9g vs %.9g"):format(loss:item(), want), rel(loss:item(), want) < 1e-4)
  local dl, dlog = m.loss:discriminator(x, xrec, 1)
  T.eq("disc_loss before disc_start", dl:item(), 0.0)
  T.ok("logits are still logged", rel(dlog["train/logits_real"], meta.train_step.disc["train/logits_real"]) < 1e-4)
  -- from disc_start on (>=, not >), the factor is back
  local _, log2 = m.loss:generator(qloss, x, xrec, 2, m:get_last_layer())
  T.eq("disc_factor at disc_start", log2["train/disc_factor"], 1.0)
end)

test("validation_without_gradients_has_zero_d_weight", function()
  local m = load_train_model()
  m:eval()
  local loss, log = tt.no_grad(function()
    local xrec, qloss = m:forward(x)
    return m.loss:generator(qloss, x, xrec, 1, m:get_last_layer(), nil, "val")
  end)
  T.eq("val/d_weight", log["val/d_weight"], 0.0)
  local ref = meta.train_step.ae
  T.ok("val/total_loss = nll + quant",
    rel(log["val/total_loss"], ref["train/nll_loss"] + ref["train/quant_loss"]) < 1e-4)
  T.ok("no graph under no_grad", not loss:requires_grad())
end)

return T.run("train_parity", tests)
