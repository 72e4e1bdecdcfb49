-- bench/vqgan.lua — encode/decode time of the official ImageNet f16 VQGAN
-- (ch 128, ch_mult 1,1,2,2,4, 2 res blocks, attention at 16, z 256, 1024 codes),
-- random weights. Prints one JSON line with the medians: wall seconds, and the
-- CPU seconds of all threads (steadier than wall time on a busy machine).
--
--   taming run bench/vqgan.lua [size=256] [batch=1] [reps=5] [device=cpu] [threads=N] [precision=fp32|bf16]
-- precision=bf16 runs the convolutions with bf16 weights where the CPU has AVX512-BF16
-- or AMX (through oneDNN); "isa" in the JSON says which. int8 is not implemented for
-- the VQGAN's convolutions (precision=int8 is refused: int8 weights are the
-- transformer's); bf16 without the instructions runs fp32 and says so in one line.
local tt = require "taming"
local B = require "taming.bench"

local a = B.args(..., {
  size = {"int", default = 256}, batch = {"int", default = 1}, reps = {"int", default = 5, min = 1},
  device = {"string", default = "cpu"}, codes = {"int", default = 1024},
}, "taming run bench/vqgan.lua [size=256] [batch=1] [reps=5] [device=cpu] [threads=N] [precision=fp32|bf16]",
  {"fp32", "bf16"}, "int8 is not implemented for the VQGAN's convolutions (int8 weights are the transformer's)")

local model = tt.vqgan.build("VQModel", {
  embed_dim = 256, n_embed = a.codes,
  ddconfig = {double_z = false, z_channels = 256, resolution = 256, in_channels = 3, out_ch = 3, ch = 128,
              ch_mult = {1, 1, 2, 2, 4}, num_res_blocks = 2, attn_resolutions = {16}, dropout = 0.0},
}, "bench")
model:init(0, a.device):eval()
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
B.print_json{"bench", "vqgan", "size", a.size, "batch", a.batch, "device", a.device, "threads", tt.threads(),
  "precision", info.precision, "isa", info.isa, "encode_s", B.fmt("%.4f", B.median(enc)),
  "decode_s", B.fmt("%.4f", B.median(dec)), "encode_cpu_s", B.fmt("%.4f", B.median(enc_cpu)),
  "decode_cpu_s", B.fmt("%.4f", B.median(dec_cpu))}
