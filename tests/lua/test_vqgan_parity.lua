-- test_vqgan_parity.lua — the first stage against the official PyTorch modules
-- (../shared/fixtures/tiny): weights from .ckpt equal those from .safetensors;
-- encode/quantize/decode of input.npy match h, zq, indices, rec.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local F = T.fixtures()
if not F then return T.skip("vqgan_parity", "fixtures folder ../shared/fixtures is absent") end
local D = F .. "/tiny/"

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("ckpt_equals_safetensors", function()
  local a = tt.load(D .. "vqgan.ckpt", {config = D .. "vqgan.yaml"})
  local b = tt.load(D .. "vqgan.safetensors", {config = D .. "vqgan.yaml"})
  local sa, sb = a:state_dict(), b:state_dict()
  local n = 0
  for k, t in pairs(sa) do
    T.ok("key " .. k .. " missing from the safetensors model", sb[k] ~= nil)
    T.close(k, t, sb[k], 0)
    n = n + 1
  end
  for k in pairs(sb) do T.ok("extra key " .. k, sa[k] ~= nil) end
  T.ok("too few tensors: " .. n, n > 100)
  T.eq("global_step", a.global_step, 1)
end)

test("encode_decode_matches_reference", function()
  local m = tt.load(D .. "vqgan.ckpt", {config = D .. "vqgan.yaml"})
  local x = tt.npy.load(D .. "input.npy")
  tt.no_grad(function()
    local h = m:encode_to_prequant(x)
    T.close("h", h, tt.npy.load(D .. "h.npy"), 1e-4)
    local zq, loss, idx = m.quantize:forward(h)
    T.equal("indices", idx:reshape(1, 8, 8), tt.npy.load(D .. "indices.npy"))
    T.close("zq", zq, tt.npy.load(D .. "zq.npy"), 1e-4)
    local rec = m:decode(zq)
    T.close("rec", rec, tt.npy.load(D .. "rec.npy"), 1e-4)
    -- decoding from the indices uses the exact codebook rows
    T.close("decode_code", m:decode_code(idx:reshape(1, 8, 8)), tt.npy.load(D .. "rec.npy"), 1e-4)
  end)
end)

test("image_io_matches_reference_png", function()
  -- input.npy is input.png read as floats in [-1, 1]
  T.close("input.png", tt.image.load(D .. "input.png"), tt.npy.load(D .. "input.npy"), 1e-6)
end)

test("missing_unexpected_and_misshaped_keys", function()
  local tmp = T.tmpdir("vqgan_keys")
  local sd = tt.ckpt.open(D .. "vqgan.safetensors"):tensors()
  local function variant(name, edit)
    local copy = {}
    for k, t in pairs(sd) do copy[k] = t end
    edit(copy)
    local p = tmp .. "/" .. name .. ".safetensors"
    tt.safetensors.save(p, copy)
    return p
  end
  local p = variant("missing", function(c) c["decoder.conv_out.bias"] = nil end)
  T.raises("missing key", function() tt.load(p, {config = D .. "vqgan.yaml"}) end, "missing.safetensors",
    "missing key 'decoder.conv_out.bias' [3]")
  p = variant("unexpected", function(c) c["encoder.extra.weight"] = tt.zeros({2, 2}) end)
  T.raises("unexpected key", function() tt.load(p, {config = D .. "vqgan.yaml"}) end,
    "unexpected key 'encoder.extra.weight' [2, 2]")
  p = variant("misshaped", function(c) c["quant_conv.weight"] = tt.zeros({16, 16, 3, 3}) end)
  T.raises("mis-shaped key", function() tt.load(p, {config = D .. "vqgan.yaml"}) end, "misshaped.safetensors",
    "'quant_conv.weight'", "[16, 16, 1, 1]", "[16, 16, 3, 3]")
  -- training-only keys are ignored for inference: vqgan.ckpt carries loss.* and loads
  local m = tt.load(D .. "vqgan.ckpt", {config = D .. "vqgan.yaml"})
  T.ok("no loss.* bound for inference", m:state_dict()["loss.discriminator.main.0.weight"] == nil)
end)

test("reconstruct_pipeline_resizes_and_crops", function()
  -- a real non-square photo, resized (shorter side 32) and centre-cropped by size=
  local EX = T.srcdir() .. "/../shared/data/examples/sflckr_images"
  local p = io.popen("find '" .. EX .. "' -type f -name '*.jpg' | sort | head -1")
  local img = p:read("l")
  p:close()
  if not img then print("  (skipped: no S-FLCKR example image)") return end
  local tmp = T.tmpdir("vqgan_parity_reconstruct")
  tt.fs.mkdir(tmp)
  local status, out = T.sh(("%s run reconstruct config=%svqgan.yaml ckpt=%svqgan.ckpt input='%s' size=32 output=%s/r.png dump=%s")
    :format(T.taming(), D, D, img, tmp, tmp))
  T.eq("reconstruct exit status: " .. out, status, 0)
  local rec = tt.npy.load(tmp .. "/rec.npy")
  T.eq("rec shape", table.concat(rec:shape(), "x"), "1x3x32x32")
  T.eq("png shape", table.concat(tt.image.load(tmp .. "/r.png"):shape(), "x"), "1x3x32x32")
  -- the same as the library path: conditions.image + encode + decode
  local m = tt.load(D .. "vqgan.ckpt", {config = D .. "vqgan.yaml"})
  local x = require("taming.conditions").image(img, 32, 3)
  T.ok("the input is not square", tt.image.load(img):size(2) ~= tt.image.load(img):size(3))
  tt.no_grad(function()
    local zq = m:encode(x)
    T.close("rec.npy", rec, m:decode(zq), 1e-5)
  end)
end)

return T.run("vqgan_parity", tests)
