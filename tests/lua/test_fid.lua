-- test_fid.lua — FID and Inception Score against the reference tools. The FID
-- Inception network gets the deterministic random weights of seed 15 (written to a
-- safetensors file and read back through the weights loader, as a user's
-- pt_inception .pth is); 20 + 20 Fashion-MNIST test images go through `taming run
-- fid` as PNG folders. tests/data/fid/reference.json and pool_real4.npy were made
-- by tests/fid/make_fixture.py with pytorch-fid (its FIDInceptionA/C/E_1/E_2
-- network, image reading and calculate_frechet_distance) and torch-fidelity
-- (isc_features_to_metric) on the same weights and images.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local metrics = require "taming.metrics"

local SUITE = "fid"
local MNIST = "/usr/share/datasets/fashion-mnist"
if not tt.fs.exists(MNIST .. "/t10k-images-idx3-ubyte.gz") then
  os.exit(T.skip(SUITE, MNIST .. " is absent (Debian package dataset-fashion-mnist)"))
end
local DATA = T.srcdir() .. "/tests/data/fid/"
local ref = tt.json.load(DATA .. "reference.json")
local tmp = T.tmpdir("fid")

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function rel(what, got, want, tol)
  local r = math.abs(got - want) / math.abs(want)
  if not (r <= tol) then
    error(("%s: %.9g, reference %.9g (relative diff %.3g > %.3g)"):format(what, got, want, r, tol), 2)
  end
  return r
end

-- the fixture's weights, written as a user's weights file would be given
local weights = tmp .. "/inception_seed15.safetensors"
do
  local net = tt.plugin("feature", "inception", {}, {seed = ref.seed})
  local sd = {}
  for _, n in ipairs(net:param_names()) do sd[n] = net:param(n) end
  tt.safetensors.save(weights, sd)
end

-- Fashion-MNIST test images [lo, hi) as 8-bit grayscale PNGs 00000.png, ...
local images = tt.datasets.fashion_mnist(MNIST, "test")
local function folder(name, range)
  local dir = tmp .. "/" .. name
  T.sh("rm -rf '" .. dir .. "'")   -- no images of an earlier run with other ranges
  tt.fs.mkdir(dir)
  for i = range[1], range[2] - 1 do
    local img = images:select(0, i):unsqueeze(2):contiguous()   -- [28, 28, 1] u8
    tt.image.save(("%s/%05d.png"):format(dir, i - range[1]), img)
  end
  return dir
end
local real, fake = folder("real", ref.real), folder("fake", ref.fake)

test("pool_features_match_pytorch_fid", function()
  local net = metrics.inception(weights)
  local xs = {}
  for i = 0, 3 do xs[#xs + 1] = metrics.read(("%s/%05d.png"):format(real, i)) end
  local pool = net.net:forward(tt.cat(xs, 0))
  local want = tt.npy.load(DATA .. "pool_real4.npy")
  local m = T.close("pool3 features of 4 real images", pool, want, 1e-4)
  print(("  pool3 max abs diff %.3g (features up to %.3g)"):format(m, ref.pool_real_abs_max))
end)

test("fid_and_is_match_the_reference_tools", function()
  local stats, logits = tmp .. "/real_stats.npz", tmp .. "/fake_logits.npy"
  os.remove(stats)
  os.remove(logits)
  local status, out = T.sh(("%s run fid real=%s fake=%s weights=%s save=%s logits=%s batch=20"):format(T.taming(),
    real, fake, weights, stats, logits))
  if status ~= 0 then error("taming run fid failed:\n" .. out) end
  local fid = tonumber(out:match("FID: ([%d%.%-e]+)"))
  local is_mean, is_std = out:match("IS: ([%d%.%-e]+) %+%- ([%d%.%-e]+)")
  T.ok("no FID line in:\n" .. out, fid)
  T.ok("no IS line in:\n" .. out, is_mean)
  print(("  FID %.6f (reference %.6f), IS %s +- %s (reference %.6f +- %.6f)"):format(fid, ref.fid, is_mean, is_std,
    ref.is_mean, ref.is_std))
  rel("FID", fid, ref.fid, 1e-3)
  rel("IS mean", tonumber(is_mean), ref.is_mean, 1e-3)
  rel("IS std", tonumber(is_std), ref.is_std, 1e-3)
  -- the saved statistics are pytorch-fid's .npz; against themselves the FID is ~0
  local s = metrics.load_stats(stats)
  T.eq("mu dtype", s.mu:dtype(), "f64")
  local self = metrics.fid(s, s)
  T.ok(("FID of the real set against itself: %.3g"):format(self), math.abs(self) < 1e-6)
  -- the logits it saved, in file order: the TensorFlow original's unshuffled splits
  local m, sd = metrics.inception_score(tt.npy.load(logits), 10, false)
  rel("IS mean (unshuffled)", m, ref.is_mean_unshuffled, 1e-3)
  rel("IS std (unshuffled)", sd, ref.is_std_unshuffled, 1e-3)
end)

test("bad_input_is_refused_clearly", function()
  local net = tt.plugin("feature", "inception", {}, {seed = 1})
  T.raises("4 channels", function() net:forward(tt.zeros({2, 4, 32, 32})) end, "expected f32 images [B, 3, H, W]",
    "[2, 4, 32, 32]")
  local raw = tt.plugin("feature", "inception", {resize = false}, {seed = 1})
  T.raises("too small without the resize", function() raw:forward(tt.zeros({1, 3, 64, 64})) end, "at least 75x75")
  T.raises("unbound weights", function()
    tt.plugin("feature", "inception", {}, {init = false}):forward(tt.zeros({1, 3, 80, 80}))
  end, "neither bound nor materialised")
  local st, out = T.sh(("%s run fid real=%s fake=%s weights=%s/nope.pth"):format(T.taming(), real, fake, tmp))
  T.ok("a missing weights file must fail", st ~= 0)
  T.ok("message: " .. out, out:find("nope.pth: no such file", 1, true))
  st, out = T.sh(("%s run fid real=%s/tiny_stats_compressed.npz fake=%s weights=%s"):format(T.taming(), DATA, fake,
    weights))
  T.ok("3-feature statistics must be refused", st ~= 0)
  T.ok("message: " .. out, out:find("statistics of 3 features, expected the 2048", 1, true))
  local few = tmp .. "/few"
  tt.fs.mkdir(few)
  for i = 0, 2 do tt.image.save(("%s/%d.png"):format(few, i), images:select(0, i):unsqueeze(2):contiguous()) end
  st, out = T.sh(("%s run fid real=%s fake=%s weights=%s"):format(T.taming(), real, few, weights))
  T.ok("3 images for 10 splits must fail", st ~= 0)
  T.ok("message: " .. out, out:find("3 images; the Inception Score's 10 splits need at least 10", 1, true))
  local empty = tmp .. "/empty"
  tt.fs.mkdir(empty)
  st, out = T.sh(("%s run fid real=%s fake=%s weights=%s"):format(T.taming(), real, empty, weights))
  T.ok("an empty folder must fail", st ~= 0)
  T.ok("message: " .. out, out:find("0 images; the statistics need at least 2", 1, true))
end)

os.exit(T.run(SUITE, tests))
