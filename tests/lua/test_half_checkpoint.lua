-- test_half_checkpoint.lua — a checkpoint saved in f16, bf16 or f64 loads into
-- the f32 model (each tensor converted on bind, as PyTorch's load_state_dict
-- converts on copy), and the model computes what the f32 weights compute,
-- within the precision the file kept. The fixture VQGAN (../shared/fixtures/tiny)
-- is saved in each dtype, loaded back and run on input.npy.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local F = T.fixtures()
if not F then return T.skip("half_checkpoint", "fixtures folder ../shared/fixtures is absent") end
local D = F .. "/tiny/"

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function reference()
  local m = tt.load(D .. "vqgan.safetensors", {config = D .. "vqgan.yaml"})
  local x = tt.npy.load(D .. "input.npy")
  local h, zq, rec
  tt.no_grad(function()
    h = m:encode_to_prequant(x)
    zq = m.quantize:forward(h)
    rec = m:decode(zq)
  end)
  return x, h, zq, rec
end

-- tol: the largest max |difference| accepted for h and for rec; f16 keeps 11
-- significant bits, bf16 8, f64 all of f32's.
local cases = {{"f64", 0, 0}, {"f16", 5e-3, 1.5e-2}, {"bf16", 4e-2, 8e-2}}

for _, c in ipairs(cases) do
  local dt, tol_h, tol_rec = c[1], c[2], c[3]
  test(dt .. "_checkpoint_loads_as_f32", function()
    local x, h32, zq32, rec32 = reference()
    local sd = tt.ckpt.open(D .. "vqgan.safetensors"):tensors()
    local half, n = {}, 0
    for k, t in pairs(sd) do
      if t:dtype() == "f32" then half[k] = t:to(dt); n = n + 1 else half[k] = t end
    end
    T.ok("too few f32 tensors: " .. n, n > 100)
    local path = T.tmpdir("half_" .. dt) .. "/vqgan_" .. dt .. ".safetensors"
    tt.safetensors.save(path, half)
    local back = tt.ckpt.open(path):tensors()
    T.eq("saved dtype", back["encoder.conv_in.weight"]:dtype(), dt)
    local m = tt.load(path, {config = D .. "vqgan.yaml"})
    for k, t in pairs(m:state_dict()) do
      T.eq(k .. " dtype after load", t:dtype(), sd[k]:dtype())
    end
    tt.no_grad(function()
      local h = m:encode_to_prequant(x)
      local rec = m:decode(zq32) -- the f32 model's codes: a flipped index would hide the weights' error
      local dh, drec = T.max_diff(h, h32), T.max_diff(rec, rec32)
      print(("%s checkpoint: max |h - h_f32| = %.3g (tol %g), max |rec - rec_f32| = %.3g (tol %g)"):format(
        dt, dh, tol_h, drec, tol_rec))
      T.close(dt .. " h", h, h32, tol_h)
      T.close(dt .. " rec", rec, rec32, tol_rec)
      if dt ~= "f64" then T.ok(dt .. " weights were rounded, so h must differ", dh > 0) end
    end)
  end)
end

test("integer_tensor_for_a_float_parameter_is_refused", function()
  local sd = tt.ckpt.open(D .. "vqgan.safetensors"):tensors()
  local copy = {}
  for k, t in pairs(sd) do copy[k] = t end
  copy["encoder.conv_in.weight"] = sd["encoder.conv_in.weight"]:to("i64")
  local path = T.tmpdir("half_int") .. "/vqgan_int.safetensors"
  tt.safetensors.save(path, copy)
  T.raises("integer weights", function() tt.load(path, {config = D .. "vqgan.yaml"}) end,
           "'encoder.conv_in.weight'", "expected dtype f32, found i64")
end)

return T.run("half_checkpoint", tests)
