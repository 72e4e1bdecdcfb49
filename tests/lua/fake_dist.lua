-- fake_dist.lua — a stand-in for tt.dist for the data-parallel test: the
-- processes of a run exchange tensors through .npy files in a shared folder
-- (each collective writes one file per rank, then every rank reads them all in
-- rank order, so all ranks compute the same sums). It runs a pipeline with the
-- remaining arguments:
--   taming run tests/lua/fake_dist.lua fake_rank=R fake_world=W fake_dir=DIR fake_script=P.lua key=value ...
local tt = require "taming"

local args = ...
local rank, world = tonumber(args.fake_rank), tonumber(args.fake_world)
local dir, script = args.fake_dir, args.fake_script
for _, k in ipairs({"fake_rank", "fake_world", "fake_dir", "fake_script"}) do args[k] = nil end
assert(rank and world and dir and script, "fake_dist: need fake_rank, fake_world, fake_dir, fake_script")

local seq = 0
-- every rank's copy of t (a list indexed by rank + 1)
local function exchange(t)
  seq = seq + 1
  tt.npy.save(("%s/%06d.%d.npy"):format(dir, seq, rank), t:to("cpu"):contiguous())
  local all = {}
  local t0 = tt.time()
  for r = 0, world - 1 do
    local p = ("%s/%06d.%d.npy"):format(dir, seq, r)
    while not tt.fs.exists(p) do
      if tt.time() - t0 > 60 then error(("fake_dist: rank %d waited 60 s for %s"):format(rank, p), 0) end
    end
    all[r + 1] = tt.npy.load(p)
  end
  return all
end

tt.dist = {
  size = function() return world end,
  rank = function() return rank end,
  allreduce_mean_ = function(t)
    local all = exchange(t)
    local s = all[1]
    for i = 2, #all do s = s + all[i] end
    t:copy_((s * (1.0 / world)):to(t:device()))
  end,
  broadcast_ = function(t, root)
    local all = exchange(t)
    t:copy_(all[root + 1]:to(t:device()))
  end,
  barrier = function() exchange(tt.zeros({1})) end,
}

local fn = assert(loadfile(script))
return fn(args)
