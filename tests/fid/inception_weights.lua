-- inception_weights.lua — writes the FID InceptionV3's deterministic random
-- initialisation (plugin feature/inception built from scratch with `seed`) as
-- safetensors, keyed like pt_inception-2015-12-05-6726825d.pth. make_fixture.py
-- loads the file into pytorch-fid's network; the parity test rebuilds the same
-- weights in memory from the same seed.
--
--   taming run tests/fid/inception_weights.lua out=W.safetensors [seed=15]
local tt = require "taming"

local a = tt.args.parse(..., {
  out = {"string", required = true, help = "safetensors file to write"},
  seed = {"int", default = 15},
}, "taming run tests/fid/inception_weights.lua out=W.safetensors [seed=15]")
local net = tt.plugin("feature", "inception", {}, {seed = a.seed})
local sd = {}
for _, n in ipairs(net:param_names()) do sd[n] = net:param(n) end
tt.safetensors.save(a.out, sd)
print(("wrote %s (%d tensors, seed %d)"):format(a.out, #net:param_names(), a.seed))
