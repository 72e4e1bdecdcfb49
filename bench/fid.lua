-- bench/fid.lua — FID Inception feature extraction at 299x299 (images/s) and the
-- FID's sanity checks: a set against itself (0 up to round-off) and two halves of
-- the same split (the sampling noise floor for that many images). Fashion-MNIST
-- test images [0, 2n) go straight to the network (no PNG reading); with no
-- weights= the network has the seeded random weights the parity test uses, so the
-- FID values then only show the behaviour of the computation, not a model's score.
--
--   taming run bench/fid.lua [n=200] [batch=50] [weights=pt_inception.pth] [device=cpu] [threads=N]
local tt = require "taming"
local metrics = require "taming.metrics"

local a = tt.args.parse(..., {
  n = {"int", default = 200}, batch = {"int", default = 50}, weights = {"string"},
  device = {"string", default = "cpu"}, threads = {"int"},
})
if a.threads then tt.set_threads(a.threads) end
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
local t1 = tt.time()
local self = metrics.fid(A, A)
local halves = metrics.fid(A, B)
local fid_s = (tt.time() - t1) / 2
print(('{"bench":"fid","n":%d,"batch":%d,"device":"%s","threads":%d,"weights":"%s","images_per_s":%.3f,' ..
  '"fid_s":%.2f,"fid_self":%.3g,"fid_halves":%.4f}'):format(a.n, a.batch, a.device, tt.threads(),
  a.weights or "seeded random (seed 15)", 2 * a.n / dt, fid_s, self, halves))
