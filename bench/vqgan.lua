-- bench/vqgan.lua — encode/decode time of the official ImageNet f16 VQGAN
-- (ch 128, ch_mult 1,1,2,2,4, 2 res blocks, attention at 16, z 256, 1024 codes),
-- random weights. Prints one JSON line with the medians: wall seconds, and the
-- CPU seconds of all threads (steadier than wall time on a busy machine).
--
--   taming run bench/vqgan.lua [size=256] [batch=1] [reps=5] [device=cpu] [threads=N] [precision=fp32|bf16] [fidelity=0]
-- precision=bf16 runs the convolutions with bf16 weights where the CPU has AVX512-BF16
-- or AMX (through oneDNN); "isa" in the JSON says which. With device=cuda, bf16 runs
-- through cuDNN (kernels/cuda/conv_bf16.cu). int8 is not implemented for the VQGAN's
-- convolutions (precision=int8 is refused: int8 weights are the transformer's); bf16
-- without the instructions runs fp32 and says so in one line.
-- fidelity=1: the same weights in fp32 on the CPU encode and decode the same input
-- (the reference); the JSON adds the share of code indices equal to the reference's,
-- the PSNR of the reconstruction against the reference's, and the PSNR of decoding
-- the reference's codes (random weights give a codebook with near-ties that any
-- rounding flips, so that last figure is the decoder's fidelity alone).
local tt = require "taming"
local B = require "taming.bench"

local a = B.args(..., {
  size = {"int", default = 256}, batch = {"int", default = 1}, reps = {"int", default = 5, min = 1},
  device = {"string", default = "cpu"}, codes = {"int", default = 1024}, fidelity = {"bool", default = false},
}, "taming run bench/vqgan.lua [size=256] [batch=1] [reps=5] [device=cpu] [threads=N] [precision=fp32|bf16] [fidelity=0]",
  {"fp32", "bf16"}, "int8 is not implemented for the VQGAN's convolutions (int8 weights are the transformer's)")

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
local info = B.set_precision(model, a.precision)   -- every plugin that takes it; one line where it falls back

local x = (tt.rand({a.batch, 3, a.size, a.size}, 1, {device = a.device}) * 2.0) - 1.0
local enc, dec, enc_cpu, dec_cpu = {}, {}, {}, {}
tt.no_grad(function()
  local quant = model:encode(x)           -- warm-up (allocator, BLAS threads)
  model:decode(quant)
  tt.synchronize(a.device)
  for r = 1, a.reps do
    local t0, c0 = tt.time(), os.clock()
    quant = model:encode(x)
    tt.synchronize(a.device)
    local t1, c1 = tt.time(), os.clock()
    local rec = model:decode(quant)
    tt.synchronize(a.device)
    local t2, c2 = tt.time(), os.clock()
    enc[r], dec[r], enc_cpu[r], dec_cpu[r] = t1 - t0, t2 - t1, c1 - c0, c2 - c1
    rec = nil
  end
end)
-- PSNR of a against b, both in [-1, 1] (peak-to-peak 2); inf (null in the JSON) when equal
local function psnr(x, y)
  local mse = ((x - y) * (x - y)):mean():item()
  return mse > 0 and B.fmt("%.2f", 10 * math.log(4 / mse, 10)) or math.huge
end

local fidelity = {}
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
    return {"reference", "cpu fp32", "codes_equal", B.fmt("%.4f", same / n), "psnr_db", psnr(r, r32),
            "psnr_same_codes_db", psnr(rq, r32)}
  end)
end
local kv = {"bench", "vqgan", "size", a.size, "batch", a.batch, "device", a.device, "threads", tt.threads(),
  "precision", info.precision, "isa", info.isa, "encode_s", B.fmt("%.4f", B.median(enc)),
  "decode_s", B.fmt("%.4f", B.median(dec)), "encode_cpu_s", B.fmt("%.4f", B.median(enc_cpu)),
  "decode_cpu_s", B.fmt("%.4f", B.median(dec_cpu))}
for _, v in ipairs(fidelity) do kv[#kv + 1] = v end
B.print_json(kv)
