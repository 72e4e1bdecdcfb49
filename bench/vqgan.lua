-- bench/vqgan.lua — encode/decode time of the official ImageNet f16 VQGAN
-- (ch 128, ch_mult 1,1,2,2,4, 2 res blocks, attention at 16, z 256, 1024 codes),
-- random weights. Prints one JSON line with the medians.
--
--   taming run bench/vqgan.lua [size=256] [batch=1] [reps=5] [device=cpu] [threads=N] [precision=fp32] [fidelity=0]
-- precision=bf16 runs the convolutions with bf16 weights where the CPU has AVX512-BF16
-- or AMX (through oneDNN); "isa" in the JSON says which. int8 is not implemented for
-- the VQGAN, and bf16 without the instructions: both run fp32 and say so. With
-- device=cuda, bf16 runs through cuDNN (kernels/cuda/conv_bf16.cu).
-- fidelity=1: the same weights in fp32 on the CPU encode and decode the same input
-- (the reference); the JSON adds the share of code indices equal to the reference's,
-- the PSNR of the reconstruction against the reference's, and the PSNR of decoding
-- the reference's codes (random weights give a codebook with near-ties that any
-- rounding flips, so that last figure is the decoder's fidelity alone).
local tt = require "taming"

local a = tt.args.parse(..., {
  size = {"int", default = 256}, batch = {"int", default = 1}, reps = {"int", default = 5},
  device = {"string", default = "cpu"}, threads = {"int"}, codes = {"int", default = 1024},
  precision = {"string", default = "fp32", choices = {"fp32", "bf16", "int8"}},
  fidelity = {"bool", default = false},
})
if a.threads then tt.set_threads(a.threads) end

local config = {
  embed_dim = 256, n_embed = a.codes,
  ddconfig = {double_z = false, z_channels = 256, resolution = 256, in_channels = 3, out_ch = 3, ch = 128,
              ch_mult = {1, 1, 2, 2, 4}, num_res_blocks = 2, attn_resolutions = {16}, dropout = 0.0},
}
local model = tt.vqgan.build("VQModel", config, "bench")
if a.fidelity then   -- the reference's weights bit for bit: made on the CPU, then moved
  model:init(0, "cpu"):eval()
  if a.device ~= "cpu" then model:to(a.device) end
else
  model:init(0, a.device):eval()
end
local info = model.decoder:set_precision(a.precision)
model:set_precision(a.precision)   -- every plugin that takes it; says so where one falls back

local x = (tt.rand({a.batch, 3, a.size, a.size}, 1, {device = a.device}) * 2.0) - 1.0
local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or 0.5 * (t[n / 2] + t[n / 2 + 1])
end

local enc, dec = {}, {}
tt.no_grad(function()
  local quant = model:encode(x)           -- warm-up (allocator, BLAS threads)
  model:decode(quant)
  tt.synchronize(a.device)
  for r = 1, a.reps do
    local t0 = tt.time()
    quant = model:encode(x)
    tt.synchronize(a.device)
    local t1 = tt.time()
    local rec = model:decode(quant)
    tt.synchronize(a.device)
    local t2 = tt.time()
    enc[r], dec[r] = t1 - t0, t2 - t1
    rec = nil
  end
end)
-- PSNR of a against b, both in [-1, 1] (peak-to-peak 2); "null" when equal
local function psnr(x, y)
  local mse = ((x - y) * (x - y)):mean():item()
  return mse > 0 and ("%.2f"):format(10 * math.log(4 / mse, 10)) or "null"
end

local fidelity = ""
if a.fidelity then
  local ref = tt.vqgan.build("VQModel", config, "bench")
  ref:init(0, "cpu"):eval()
  fidelity = tt.no_grad(function()
    local xc = x:to("cpu")
    local q32, _, i32 = ref.quantize:forward(ref:encode_to_prequant(xc))
    local r32 = ref:decode(q32)
    local q, _, i = model.quantize:forward(model:encode_to_prequant(x))
    local r = model:decode(q):to("cpu")
    local rq = model:decode(q32:to(a.device)):to("cpu")
    i32, i = i32:reshape({-1}), i:to("cpu"):reshape({-1})
    local same, n = 0, i32:numel()
    for k = 0, n - 1 do if i32:get(k) == i:get(k) then same = same + 1 end end
    return (',"reference":"cpu fp32","codes_equal":%.4f,"psnr_db":%s,"psnr_same_codes_db":%s'):format(
      same / n, psnr(r, r32), psnr(rq, r32))
  end)
end
print(('{"bench":"vqgan","size":%d,"batch":%d,"device":"%s","threads":%d,"precision":"%s","isa":"%s","encode_s":%.4f,"decode_s":%.4f%s}'):format(
  a.size, a.batch, a.device, tt.threads(), info.precision, info.isa, median(enc), median(dec), fidelity))
