-- test_vqgan_bf16.lua — the fidelity gates of the VQGAN under precision=bf16
-- (issue 14), against the same model in fp32:
--   * codes: the share of code indices equal to fp32's (gate >= 98 %);
--   * reconstruction PSNR against fp32's (gate >= 35 dB; images in [-1, 1]).
-- Two models. The fixtures' VQGAN (../shared/fixtures/tiny: the official modules
-- with their random initialisation) on its own input and on example images
-- (../shared/data/examples) at 256x256: a random codebook has near-ties that
-- bf16 rounding flips to an unrelated code, so its end-to-end PSNR is printed
-- but the PSNR gate applies to decoding the same codes. The shipped Fashion-MNIST
-- VQGAN (trained, models/fashion_mnist) on held-out Fashion-MNIST images and on
-- the example images at 256x256 in grey: both gates end to end.
-- Also: set_precision's report, int8 staying fp32, training running fp32.
-- Exit 77 without the fixtures or without a bf16 convolution kernel.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local data = require "taming.data"

local F = T.fixtures()
if not F then return T.skip("vqgan_bf16", "fixtures folder ../shared/fixtures is absent") end
local D = F .. "/tiny/"
local CKPT, CFG = D .. "vqgan.ckpt", D .. "vqgan.yaml"
local EX = os.getenv("TAMING_EXAMPLES") or (T.srcdir() .. "/../shared/data/examples")
local SHIPPED = T.srcdir() .. "/models/fashion_mnist/"
local FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

local GATE_AGREE, GATE_PSNR = 0.98, 35.0

local ref = tt.load(CKPT, {config = CFG})
local m = tt.load(CKPT, {config = CFG})
local info = m.encoder:set_precision("bf16")
if info.fallback then return T.skip("vqgan_bf16", "no bf16 convolutions here: " .. info.fallback) end
m:set_precision("bf16")

-- PSNR of a against b, both in [-1, 1] (peak-to-peak 2)
local function psnr(a, b)
  local mse = ((a - b) * (a - b)):mean():item()
  if mse == 0 then return math.huge end
  return 10 * math.log(4 / mse, 10)
end

-- compares model m16 (bf16) with m32 (fp32) on x [B, C, H, W]; adds to acc and
-- returns codes equal, codes, end-to-end PSNR, PSNR of decoding fp32's codes
local function compare(m32, m16, x, acc)
  return tt.no_grad(function()
    local q32, _, i32 = m32.quantize:forward(m32:encode_to_prequant(x))
    local q16, _, i16 = m16.quantize:forward(m16:encode_to_prequant(x))
    local r32 = m32:decode(q32)
    i32, i16 = i32:reshape({-1}), i16:reshape({-1})
    local same, n = 0, i32:numel()
    for i = 0, n - 1 do if i32:get(i) == i16:get(i) then same = same + 1 end end
    local e2e, dec = psnr(m16:decode(q16), r32), psnr(m16:decode(q32), r32)
    acc.same, acc.n = acc.same + same, acc.n + n
    acc.e2e, acc.dec = math.min(acc.e2e, e2e), math.min(acc.dec, dec)
    return same, n, e2e, dec
  end)
end

local function report(what, same, n, e2e, dec)
  print(("%s: codes equal to fp32 %d/%d (%.2f%%), reconstruction PSNR vs fp32 %.1f dB (decoding the same codes %.1f dB)")
    :format(what, same, n, 100 * same / n, e2e, dec))
end

local function new_acc() return {same = 0, n = 0, e2e = math.huge, dec = math.huge} end

-- up to n example images (coco, S-FLCKR), resized and centre-cropped to 256x256
local function examples(n)
  local p = io.popen(("ls '%s'/coco_images/*.jpg '%s'/sflckr_images/*/*.jpg 2>/dev/null | head -n %d"):format(EX, EX, n))
  local list = {}
  for img in p:lines() do list[#list + 1] = img end
  p:close()
  return list
end

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("report", function()
  print("bf16 convolutions: " .. tostring(info.isa))
  T.eq("precision", info.precision, "bf16")
  T.ok("isa names the instruction set: " .. tostring(info.isa), info.isa:find("bf16") ~= nil)
  T.eq("model precision", m.precision_info.precision, "bf16")
  local q = tt.load(CKPT, {config = CFG})
  local i8 = q.decoder:set_precision("int8")
  T.eq("int8 stays fp32", i8.precision, "fp32")
  T.ok("int8 says why", i8.fallback and i8.fallback:find("int8") ~= nil)
  T.raises("bad name", function() q.decoder:set_precision("fp8") end, "expected fp32, bf16 or int8")
end)

test("fallback_without_isa", function()
  -- a CPU without the instructions (TAMING_CPU_ISA=generic hides them): fp32, and one
  -- line for the model naming its encoder and decoder
  local st, out = T.sh(("TAMING_CPU_ISA=generic %s run %s/bench/vqgan.lua size=32 reps=1 threads=1 precision=bf16")
    :format(T.taming(), T.srcdir()))
  T.eq("exit status: " .. out, st, 0)
  local _, lines = out:gsub("is not available", "")
  T.eq("one line saying so: " .. out, lines, 1)
  T.ok("names the encoder and the decoder, and why: " .. out, out:find("precision=bf16 is not available for encoder, "
    .. "decoder (no kernel (TAMING_CPU_ISA=generic)); running fp32", 1, true))
  T.ok("the bench reports fp32: " .. out, out:find('"precision":"fp32","isa":"openblas"', 1, true))
end)

test("bf16_differs_from_fp32", function()
  -- the packed path really runs: bf16 rounding moves the latent, if only a little
  local x = tt.npy.load(D .. "input.npy")
  local h32 = tt.no_grad(function() return ref:encode_to_prequant(x) end)
  local h16 = tt.no_grad(function() return m:encode_to_prequant(x) end)
  local d = T.max_diff(h32, h16)
  print(("fixture input: max |h_bf16 - h_fp32| = %.3g (max |h| %.3g)"):format(d, h32:abs():max():item()))
  T.ok("bf16 latent equals fp32 bit for bit: the pack was not used", d > 0)
  T.ok("bf16 latent far from fp32", d < 0.05 * h32:abs():max():item())
  -- back to fp32: bit for bit the reference again
  m:set_precision("fp32")
  T.eq("fp32 again", T.max_diff(tt.no_grad(function() return m:encode_to_prequant(x) end), h32), 0)
  m:set_precision("bf16")
end)

local fixture = new_acc()

test("fixture_model", function()
  report("fixture VQGAN, input.npy (32x32)", compare(ref, m, tt.npy.load(D .. "input.npy"), fixture))
  for _, img in ipairs(examples(2)) do
    report("fixture VQGAN, " .. img:match("[^/]+/[^/]+$") .. " at 256x256",
      compare(ref, m, require("taming.conditions").image(img, 256, 3), fixture))
  end
  print(("fixture VQGAN, all: codes equal %.2f%%, worst PSNR %.1f dB end to end, %.1f dB decoding the same codes")
    :format(100 * fixture.same / fixture.n, fixture.e2e, fixture.dec))
  T.ok(("code agreement %.2f%% below %.0f%%"):format(100 * fixture.same / fixture.n, 100 * GATE_AGREE),
    fixture.same >= GATE_AGREE * fixture.n)
  T.ok(("decoder PSNR %.1f dB below %.0f"):format(fixture.dec, GATE_PSNR), fixture.dec >= GATE_PSNR)
end)

test("shipped_model", function()
  if not tt.fs.exists(SHIPPED .. "transformer.safetensors") then print("  (skipped: no shipped model)") return end
  local load = function() return tt.load(SHIPPED .. "transformer.safetensors", {config = SHIPPED .. "transformer.yaml"}).first_stage end
  local s32, s16 = load(), load()
  T.eq("shipped VQGAN precision", s16:set_precision("bf16").precision, "bf16")
  local acc = new_acc()
  if tt.fs.exists(FMNIST) then
    local ds = data.fashion_mnist{split = "test", channels = 1, limit = 256, labels = false}
    local loader = data.loader(ds, {batch = 64, shuffle = false, drop_last = false})
    local part = new_acc()
    for _ = 1, loader:steps_per_epoch() do compare(s32, s16, loader:next().image, part) end
    report("shipped VQGAN, 256 Fashion-MNIST test images (32x32)", part.same, part.n, part.e2e, part.dec)
    acc.same, acc.n, acc.e2e, acc.dec = part.same, part.n, part.e2e, part.dec
  else
    print("  (no Fashion-MNIST at " .. FMNIST .. ")")
  end
  for _, img in ipairs(examples(1)) do
    local x = require("taming.conditions").image(img, 256, 3):mean(1, true)   -- grey [1, 1, 256, 256]
    report("shipped VQGAN, " .. img:match("[^/]+/[^/]+$") .. " at 256x256 in grey", compare(s32, s16, x, acc))
  end
  T.ok("images were compared", acc.n > 0)
  print(("shipped VQGAN, all: codes equal %.2f%%, worst PSNR %.1f dB end to end"):format(100 * acc.same / acc.n, acc.e2e))
  T.ok(("code agreement %.2f%% below %.0f%%"):format(100 * acc.same / acc.n, 100 * GATE_AGREE),
    acc.same >= GATE_AGREE * acc.n)
  T.ok(("end-to-end PSNR %.1f dB below %.0f"):format(acc.e2e, GATE_PSNR), acc.e2e >= GATE_PSNR)
end)

test("training_runs_fp32", function()
  -- with gradients wanted the packed path is bypassed: the gradient exists and the
  -- output is the fp32 one
  local x = tt.npy.load(D .. "input.npy")
  local h32 = tt.no_grad(function() return ref:encode_to_prequant(x) end)
  local xg = x:clone():requires_grad(true)
  local h = m:encode_to_prequant(xg)
  T.eq("output with gradients is fp32's", T.max_diff(h, h32), 0)
  h:sum():backward()
  T.ok("input gradient", xg:grad() ~= nil)
end)

T.run("vqgan_bf16", tests)
