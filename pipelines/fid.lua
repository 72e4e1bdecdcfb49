-- fid — the Fréchet Inception Distance between two image sets, and the Inception
-- Score of the second, with the FID Inception network and its standard weights
-- (pt_inception-2015-12-05-6726825d.pth, as pytorch-fid and torch-fidelity use it;
-- never downloaded: give its path). Images are read as pytorch-fid reads them
-- (8-bit RGB / 255, bilinear to 299x299, 2x - 1); the statistics are pytorch-fid's
-- (mean, covariance with n - 1) and its .npz layout (mu, sigma), so either side
-- may be a folder or a statistics file from either tool.
--
--   taming run fid real=DIR|stats.npz fake=DIR weights=pt_inception-2015-12-05-6726825d.pth
--       [save=real_stats.npz] [save_fake=fake_stats.npz] [batch=50] [device=cpu|cuda]
--       [is=true] [splits=10] [is_shuffle=true] [logits=fake_logits.npy]
--   taming run fid real=DIR save=real_stats.npz weights=...   (statistics only)
--
-- The Inception Score (of `fake`) is torch-fidelity's: softmax over the 1008
-- logits without the fc bias, 10 splits of the rows shuffled with numpy's
-- RandomState(2020); is_shuffle=false keeps the file order, as the TensorFlow
-- original does.
local tt = require "taming"
local metrics = require "taming.metrics"

local a = tt.args.parse(..., {
  real = {"string", required = true, help = "a folder of images, or an .npz of statistics (mu, sigma)"},
  fake = {"string", help = "a folder of images (the samples)"},
  weights = {"string", required = true, help = "pt_inception-2015-12-05-6726825d.pth (or safetensors, same keys)"},
  save = {"string", help = "write the real folder's statistics here (.npz, pytorch-fid's layout)"},
  save_fake = {"string", help = "write the fake folder's statistics here"},
  logits = {"string", help = "write the fake images' logits (f32 [N, 1008], no fc bias) here as .npy"},
  batch = {"int", default = 50},
  device = {"string", default = "cpu", choices = {"cpu", "cuda"}},
  threads = {"int"},
  is = {"bool", default = true, help = "also the Inception Score of fake"},
  splits = {"int", default = 10},
  is_shuffle = {"bool", default = true, help = "torch-fidelity's shuffle (false: the TensorFlow original's order)"},
  precision = {"string", default = "fp32", choices = {"fp32", "bf16", "int8"}, help = "fp32 only (see below)"},
}, "taming run fid real=DIR|stats.npz fake=DIR weights=FILE [save=stats.npz]")
-- the statistics are compared with pytorch-fid's, computed in fp32: a lower precision
-- would move the score by more than the differences it is used to tell apart
if a.precision ~= "fp32" then
  error(("precision=%s: the Inception network of the FID runs fp32 only (its statistics are compared with "
    .. "pytorch-fid's fp32 ones)"):format(a.precision), 0)
end
if a.batch < 1 then error(("batch=%d: expected at least 1"):format(a.batch), 0) end
if not a.fake and not a.save then error("nothing to do: give fake=DIR (FID) or save=FILE (statistics)", 0) end
local real_is_stats = a.real:match("%.npz$") ~= nil
if real_is_stats and a.save then error(("save=%s: real=%s is already statistics"):format(a.save, a.real), 0) end
if a.fake and a.fake:match("%.npz$") then error(("fake=%s: expected a folder of images"):format(a.fake), 0) end
if a.threads then tt.set_threads(a.threads) end
-- both folders are checked before the first image goes through the network
for _, dir in ipairs{real_is_stats and "" or a.real, a.fake or ""} do
  if dir ~= "" then
    local n = #metrics.list(dir)
    if n < 2 then error(("%s: %d image%s; the statistics need at least 2"):format(dir, n, n == 1 and "" or "s"), 0) end
    if dir == a.fake and a.is and n < a.splits then
      error(("%s: %d images; the Inception Score's %d splits need at least %d (or is=false)"):format(dir, n,
        a.splits, a.splits), 0)
    end
  end
end
if a.splits < 1 then error(("splits=%d: expected at least 1"):format(a.splits), 0) end

local net = metrics.inception(a.weights, a.device)
local real
if real_is_stats then
  real = metrics.load_stats(a.real)
else
  print(("real: %s"):format(a.real))
  real = metrics.folder_stats(net, a.real, {batch = a.batch})
  print(("real: %d images, %.2f images/s"):format(real.n, real.rate))
  if a.save then
    metrics.save_stats(a.save, real)
    print(("wrote %s (mu [2048], sigma [2048, 2048])"):format(a.save))
  end
end
if not a.fake then return end

print(("fake: %s"):format(a.fake))
local fake = metrics.folder_stats(net, a.fake, {batch = a.batch, logits = a.is or a.logits ~= nil})
print(("fake: %d images, %.2f images/s"):format(fake.n, fake.rate))
if a.save_fake then
  metrics.save_stats(a.save_fake, fake)
  print(("wrote %s"):format(a.save_fake))
end
if a.logits then
  tt.npy.save(a.logits, fake.logits)
  print(("wrote %s"):format(a.logits))
end
print(("FID: %.6f"):format(metrics.fid(real, fake)))
if a.is then
  local m, s = metrics.inception_score(fake.logits, a.splits, a.is_shuffle)
  print(("IS: %.6f +- %.6f (%d splits%s)"):format(m, s, a.splits, a.is_shuffle and "" or ", unshuffled"))
end
