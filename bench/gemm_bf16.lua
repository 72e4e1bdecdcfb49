-- bench/gemm_bf16.lua — the GEMMs of a transformer training step in f32 and with
-- bf16 operands (tt.set_compute_precision), on the Net2Net harness's shapes:
-- rows = batch x positions (8 x 256 = 2048), widths 512 and 2048. For each shape,
-- the median time of a linear forward (y = x W^T) and of its backward (dx = dy W,
-- dW = dy^T x), interleaved f32 / bf16 so both see the same machine load. One JSON
-- line per shape. TAMING_CPU_ISA=avx512 measures the AVX512-BF16 path on an AMX CPU.
--
--   taming run bench/gemm_bf16.lua [rows=2048] [reps=9] [threads=N]
local tt = require "taming"
local a = tt.args.parse(..., {
  rows = {"int", default = 2048}, reps = {"int", default = 9}, threads = {"int"},
}, "taming run bench/gemm_bf16.lua [rows=2048] [reps=9] [threads=N]")
if a.threads then tt.set_threads(a.threads) end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or 0.5 * (t[n / 2] + t[n / 2 + 1])
end

local info = tt.set_compute_precision("bf16")
if info.fallback then io.stderr:write("taming: " .. info.fallback .. "; bf16 rows run f32\n") end
local isa = info.isa
tt.set_compute_precision("fp32")

for _, s in ipairs{{512, 512}, {512, 2048}, {2048, 512}} do
  local fin, fout = s[1], s[2]
  local x = tt.randn({a.rows, fin}, 1)
  local w = tt.randn({fout, fin}, 2) * 0.02
  local b = tt.zeros({fout})
  local g = tt.randn({a.rows, fout}, 3)
  x:requires_grad(true)
  w:requires_grad(true)
  local t = {fp32 = {fwd = {}, bwd = {}}, bf16 = {fwd = {}, bwd = {}}}
  for r = 0, a.reps do
    for _, p in ipairs{"fp32", "bf16"} do
      tt.set_compute_precision(p)
      local t0 = tt.time()
      local y = tt.linear(x, w, b)
      local t1 = tt.time()
      y:backward(g)
      local t2 = tt.time()
      x:zero_grad()
      w:zero_grad()
      if r > 0 then   -- the first round warms up
        table.insert(t[p].fwd, t1 - t0)
        table.insert(t[p].bwd, t2 - t1)
      end
    end
  end
  tt.set_compute_precision("fp32")
  local f32f, f32b, bff, bfb = median(t.fp32.fwd), median(t.fp32.bwd), median(t.bf16.fwd), median(t.bf16.bwd)
  local gflop = 2 * a.rows * fin * fout / 1e9
  print(('{"bench":"gemm_bf16","isa":"%s","threads":%d,"rows":%d,"in":%d,"out":%d,'
    .. '"fp32_fwd_ms":%.3f,"bf16_fwd_ms":%.3f,"fp32_bwd_ms":%.3f,"bf16_bwd_ms":%.3f,'
    .. '"fp32_gflops":%.1f,"bf16_gflops":%.1f,"speedup_fwd":%.2f,"speedup_bwd":%.2f}')
    :format(isa, tt.threads(), a.rows, fin, fout, f32f * 1e3, bff * 1e3, f32b * 1e3, bfb * 1e3,
      3 * gflop / (f32f + f32b), 3 * gflop / (bff + bfb), f32f / bff, f32b / bfb))
end
