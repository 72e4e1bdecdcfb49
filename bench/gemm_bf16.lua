-- bench/gemm_bf16.lua — the GEMMs of a transformer training step in f32 and with
-- bf16 operands (tt.set_compute_precision), on the Net2Net harness's shapes:
-- rows = batch x positions (8 x 256 = 2048), widths 512 and 2048. For each shape,
-- the median time of a linear forward (y = x W^T) and of its backward (dx = dy W,
-- dW = dy^T x), interleaved f32 / bf16 so both see the same machine load. One JSON
-- line per shape. TAMING_CPU_ISA=avx512 measures the AVX512-BF16 path on an AMX CPU.
-- precision= is bf16 only (each line has both columns); "precision" in the JSON is
-- what the bf16 columns ran: fp32, said in one line, on a CPU without a bf16 GEMM.
--
--   taming run bench/gemm_bf16.lua [rows=2048] [reps=9] [threads=N]
local tt = require "taming"
local B = require "taming.bench"
local a = B.args(..., {
  rows = {"int", default = 2048, min = 1}, reps = {"int", default = 9, min = 1},
}, "taming run bench/gemm_bf16.lua [rows=2048] [reps=9] [threads=N]",
  {"bf16"}, "this bench times bf16 GEMMs against fp32 ones, both in every line")

local prev, info = B.compute_precision("bf16", "the bf16 columns")
tt.set_compute_precision(prev)

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
  local f32f, f32b, bff, bfb = B.median(t.fp32.fwd), B.median(t.fp32.bwd), B.median(t.bf16.fwd), B.median(t.bf16.bwd)
  local gflop = 2 * a.rows * fin * fout / 1e9
  B.print_json{"bench", "gemm_bf16", "precision", info.precision, "isa", info.isa, "threads", tt.threads(),
    "rows", a.rows, "in", fin, "out", fout,
    "fp32_fwd_ms", B.fmt("%.3f", f32f * 1e3), "bf16_fwd_ms", B.fmt("%.3f", bff * 1e3),
    "fp32_bwd_ms", B.fmt("%.3f", f32b * 1e3), "bf16_bwd_ms", B.fmt("%.3f", bfb * 1e3),
    "fp32_gflops", B.fmt("%.1f", 3 * gflop / (f32f + f32b)), "bf16_gflops", B.fmt("%.1f", 3 * gflop / (bff + bfb)),
    "speedup_fwd", B.fmt("%.2f", f32f / bff), "speedup_bwd", B.fmt("%.2f", f32b / bfb)}
end
