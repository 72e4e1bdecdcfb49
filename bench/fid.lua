-- bench/fid.lua — FID Inception feature extraction at 299x299 (images/s) and the
-- FID's sanity checks: a set against itself (0 up to round-off) and two halves of
-- the same split (the sampling noise floor for that many images). Fashion-MNIST
-- test images [0, 2n) go straight to the network (no PNG reading); with no
-- weights= the network has the seeded random weights the parity test uses, so the
-- FID values then only show the behaviour of the computation, not a model's score.
--
-- The Inception network runs fp32 only (the FID is compared with pytorch-fid's fp32
-- statistics): precision=bf16 and int8 are refused.
--
--   taming run bench/fid.lua [n=200] [batch=50] [weights=pt_inception.pth] [device=cpu] [threads=N]
--                            [distance=true]
local tt = require "taming"
local metrics = require "taming.metrics"
local bench = require "taming.bench"

local a = bench.args(..., {
  n = {"int", default = 200, min = 2}, batch = {"int", default = 50, min = 1}, weights = {"string"},
  device = {"string", default = "cpu"},
  distance = {"bool", default = true, help = "also the two FIDs (false: the feature extraction alone)"},
}, "taming run bench/fid.lua [n=200] [batch=50] [weights=pt_inception.pth] [device=cpu] [threads=N]",
  {"fp32"}, "the FID's Inception network runs fp32 only (its statistics are compared with pytorch-fid's fp32 ones)")
local net
if a.weights then
  net = metrics.inception(a.weights, a.device).net
else
  net = tt.plugin("feature", "inception", {}, {seed = 15, device = a.device})
end
local images = tt.datasets.fashion_mnist(nil, "test")
local function stats(lo, hi)
  local acc = tt.metrics.gauss_stats(metrics.FEATURES)
  for i = lo, hi - 1, a.batch do
    local b = math.min(a.batch, hi - i)
    local x = images:slice(0, i, i + b):float():reshape(b, 1, 28, 28) / 255
    local pool = tt.no_grad(function() return net:forward(x:to(a.device)) end)
    acc:add(pool)
  end
  local mu, sigma = acc:result()
  return {mu = mu, sigma = sigma}
end
local t0 = tt.time()
local A = stats(0, a.n)
local B = stats(a.n, 2 * a.n)
tt.synchronize(a.device)
local dt = tt.time() - t0
local out = {"bench", "fid", "n", a.n, "batch", a.batch, "device", a.device, "threads", tt.threads(),
  "precision", "fp32", "isa", "openblas", "weights", a.weights or "seeded random (seed 15)",
  "images_per_s", bench.fmt("%.3f", 2 * a.n / dt)}
if a.distance then   -- each FID takes a 2048x2048 matrix square root
  local t1 = tt.time()
  local self = metrics.fid(A, A)
  local halves = metrics.fid(A, B)
  local fid_s = (tt.time() - t1) / 2
  for _, v in ipairs{"fid_s", bench.fmt("%.2f", fid_s), "fid_self", bench.fmt("%.3g", self),
                     "fid_halves", bench.fmt("%.4f", halves)} do out[#out + 1] = v end
end
bench.print_json(out)
