-- test_dist_single.lua — tt.dist in a plain process (no launcher): a world of
-- one in which the collectives change nothing and bad arguments still fail,
-- so that a training script runs unchanged with and without mpirun.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("world_of_one", function()
  local size, rank = tt.dist.init()
  T.eq("init size", size, 1)
  T.eq("init rank", rank, 0)
  T.eq("size", tt.dist.size(), 1)
  T.eq("rank", tt.dist.rank(), 0)
  T.eq("local_rank", tt.dist.local_rank(), 0)
  T.eq("is_main", tt.dist.is_main(), true)
  T.eq("backend", tt.dist.backend(), "none")
  tt.dist.barrier()
end)

test("collectives_change_nothing", function()
  local x = tt.randn({6, 5}, 3)
  local ref = x:clone()
  T.ok("allreduce_ returns its tensor", rawequal(tt.dist.allreduce_(x), x))
  T.close("sum", x, ref, 0)
  tt.dist.allreduce_(x, "mean")
  T.close("mean", x, ref, 0)
  tt.dist.allreduce_(x:transpose(0, 1), "mean")
  T.close("mean of a strided view", x, ref, 0)
  T.ok("broadcast_ returns its tensor", rawequal(tt.dist.broadcast_(x, 0), x))
  T.close("broadcast", x, ref, 0)
  local idx = tt.arange(7)
  tt.dist.broadcast_(idx, 0)
  T.eq("broadcast i64", idx:get(6), 6)
end)

test("bad_arguments", function()
  local x = tt.zeros({3})
  T.raises("unknown reduction", function() tt.dist.allreduce_(x, "max") end, "invalid option 'max'")
  T.raises("i64 reduction", function() tt.dist.allreduce_(tt.arange(3), "sum") end, "rank 0 of 1", "only f32")
  T.raises("root 1 of one", function() tt.dist.broadcast_(x, 1) end, "root 1 is not a rank", "ranks 0..0")
  T.raises("not a tensor", function() tt.dist.allreduce_(3) end, "tensor expected")
end)

return T.run("dist_single", tests)
