-- dist_worker.lua — what each rank runs in tests/lua/test_dist_mpi.lua
-- (`mpirun -np 2 taming run dist_worker.lua mode=...`); not a test by itself.
--   mode=collectives  all-reduce and broadcast values on every rank (2 ranks)
--   mode=train        a few SGD and Adam steps of a small conv net, batch `batch` per
--                     rank, weights saved by rank 0 to `out` (also run as one
--                     process with twice the batch, for the equivalence check)
--   mode=fail         rank 1 fails while rank 0 waits in a barrier
--   mode=nomodule     init must fail (run with TAMING_MPI_MODULE=missing);
--                     prints the message in one write, so that the two
--                     ranks' lines do not interleave
local tt = require "taming"

local mode = arg.mode or "collectives"
if mode == "nomodule" then
  local ok, err = pcall(tt.dist.init)
  io.write(ok and "init succeeded without the module\n" or ("init failed: " .. tostring(err) .. "\n"))
  return ok and 1 or 0
end
local size, rank = tt.dist.init()

local function check(what, cond)
  if not cond then error(("rank %d: %s"):format(rank, what), 2) end
end

local function max_diff(a, b)
  return (a:float() - b:float()):abs():max():item()
end

-- expects fn to raise an error containing every needle
local function raises(what, fn, ...)
  local ok, err = pcall(fn)
  check(what .. ": expected an error", not ok)
  for _, n in ipairs({...}) do
    check(("%s: error lacks '%s': %s"):format(what, n, tostring(err)), tostring(err):find(n, 1, true) ~= nil)
  end
end

local function collectives()
  check("world size 2, found " .. size, size == 2)
  check("rank in {0, 1}", rank == 0 or rank == 1)
  check("one machine: local rank == rank", tt.dist.local_rank() == rank)
  check("is_main only on rank 0", tt.dist.is_main() == (rank == 0))
  check("backend " .. tt.dist.backend(), tt.dist.backend():sub(1, 3) == "mpi")

  -- [2500] crosses two chunk boundaries when TAMING_MPI_CHUNK=1000; integer
  -- values keep the expected sum exact
  local n = 2500
  local base = tt.arange(n):float()
  local x = base * (rank + 1)
  tt.dist.allreduce_(x)
  check("sum: max diff " .. max_diff(x, base * 3), max_diff(x, base * 3) == 0)

  -- the mean of two ranks' random values equals (a0 + a1) / 2 computed here
  local a0, a1 = tt.randn({n}, 100), tt.randn({n}, 101)
  local mine = (rank == 0 and a0 or a1):clone()
  tt.dist.allreduce_(mine, "mean")
  local want = (a0 + a1) / 2
  check("mean: max diff " .. max_diff(mine, want), max_diff(mine, want) == 0)

  -- a strided view is reduced in place, through its base
  local m = tt.randn({50, 40}, 300 + rank)
  local m0, m1 = tt.randn({50, 40}, 300), tt.randn({50, 40}, 301)
  tt.dist.allreduce_(m:transpose(0, 1), "sum")
  check("strided view: max diff " .. max_diff(m, m0 + m1), max_diff(m, m0 + m1) == 0)

  -- every rank ends with the same bits: compare with rank 0's copy
  local y = tt.randn({4099}, 200 + rank)
  tt.dist.allreduce_(y, "mean")
  local y0 = y:clone()
  tt.dist.broadcast_(y0, 0)
  check("ranks disagree after allreduce: max diff " .. max_diff(y, y0), max_diff(y, y0) == 0)

  -- broadcast from rank 1, f32 and i64
  local b = tt.full({3, 7}, rank * 10 + 5)
  tt.dist.broadcast_(b, 1)
  check("broadcast f32", max_diff(b, tt.full({3, 7}, 15)) == 0)
  local idx = tt.arange(rank * 100, rank * 100 + 9)
  tt.dist.broadcast_(idx, 0)
  check("broadcast i64", idx:get(8) == 8 and idx:get(0) == 0)

  -- argument errors are found on every rank before any message is sent
  raises("allreduce of i64", function() tt.dist.allreduce_(idx, "mean") end,
         ("rank %d of 2"):format(rank), "only f32")
  raises("broadcast from rank 2", function() tt.dist.broadcast_(b, 2) end, "root 2 is not a rank", "ranks 0..1")
  raises("unknown reduction", function() tt.dist.allreduce_(b, "max") end, "max")

  tt.dist.barrier()
  print(("rank %d: collectives ok"):format(rank))
end

-- [B, 1, 8, 8] -> conv3x3(1->4) -> relu -> avgpool2 [B, 4, 4, 4] -> [B, 64] -> linear -> [B, 3]
local function model_params(seed)
  local r = tt.rng(seed)
  return {
    conv_w = tt.randn({4, 1, 3, 3}, r) * 0.3, conv_b = tt.randn({4}, r) * 0.1,
    fc_w = tt.randn({3, 64}, r) * 0.1, fc_b = tt.zeros({3}),
  }
end
local names = {"conv_w", "conv_b", "fc_w", "fc_b"}

local function forward(p, x)
  local h = tt.conv2d(x, p.conv_w, p.conv_b, {padding = 1}):relu()
  h = tt.avg_pool2d(h, 2):flatten(1)
  return tt.linear(h, p.fc_w, p.fc_b)
end

local function train()
  local B, sgd_steps, adam_steps = tonumber(arg.batch), tonumber(arg.sgd or 3), tonumber(arg.adam or 3)
  local steps = sgd_steps + adam_steps
  local G = B * size                       -- the global batch, the same in every run
  local X = tt.randn({G * steps, 1, 8, 8}, 7)
  -- labels from a fixed random linear teacher, so that the loss can fall
  local Y = tt.linear(X:flatten(1), tt.randn({3, 64}, 8)):argmax(1)

  -- rank 0's initial weights reach every rank by broadcast, as in a real run
  local p = model_params(rank == 0 and 11 or 99 + rank)
  local init, m, v = {}, {}, {}
  for _, k in ipairs(names) do
    tt.dist.broadcast_(p[k], 0)
    p[k]:requires_grad(true)
    init[k], m[k], v[k] = p[k]:clone(), tt.zeros(p[k]:shape()), tt.zeros(p[k]:shape())
  end

  local losses = tt.zeros({steps})
  for s = 1, steps do
    -- this rank's share of the global batch s
    local x = X:narrow(0, (s - 1) * G + rank * B, B)
    local y = Y:narrow(0, (s - 1) * G + rank * B, B)
    for _, k in ipairs(names) do p[k]:zero_grad() end
    local loss = tt.cross_entropy(forward(p, x), y)
    loss:backward()
    -- mean over ranks of mean-over-B gradients == gradient of the mean over G
    for _, k in ipairs(names) do
      local g = p[k]:grad()
      tt.dist.allreduce_(g, "mean")
      -- plain SGD first (its step scales with the gradient, so a sum where a
      -- mean belongs shows), then Adam (the optimiser the pipelines use)
      if s <= sgd_steps then p[k]:add_(g, -0.1)
      else tt.adam_step(p[k], g, m[k], v[k], {lr = 1e-2, step = s - sgd_steps}) end
    end
    local l = loss:detach():clone():reshape({1})
    tt.dist.allreduce_(l, "mean")
    losses:set(l:get(0), s - 1)
  end

  -- the ranks must hold the same bits after training
  for _, k in ipairs(names) do
    local w0 = p[k]:detach():clone()
    tt.dist.broadcast_(w0, 0)
    check(k .. " differs from rank 0's: max diff " .. max_diff(p[k], w0), max_diff(p[k], w0) == 0)
  end
  if tt.dist.is_main() then
    local out = {losses = losses}
    for _, k in ipairs(names) do
      out[k] = p[k]:detach()
      out["init." .. k] = init[k]
    end
    tt.safetensors.save(arg.out, out)
  end
  tt.dist.barrier()
  print(("rank %d: trained %d+%d steps, batch %d of %d, loss %.6f -> %.6f"):format(rank, sgd_steps, adam_steps, B, G,
        losses:get(0), losses:get(steps - 1)))
end

local function fail()
  if rank == 1 then error("rank 1 fails on purpose") end
  tt.dist.barrier()   -- never completes: the launcher ends the job
  print("rank 0 passed a barrier that rank 1 never reached")
end

if mode == "collectives" then collectives()
elseif mode == "train" then train()
elseif mode == "fail" then fail()
else error("unknown mode " .. mode) end
