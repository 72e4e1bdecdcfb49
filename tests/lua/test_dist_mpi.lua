-- test_dist_mpi.lua — tt.dist across two processes on this machine
-- (`mpirun -np 2 taming run dist_worker.lua`, shared-memory loopback):
-- collective values on both ranks, data-parallel training equivalent to one
-- process with the whole batch, a failing rank ending the job, and a launch
-- without the MPI module failing with a message. Skips (77) when mpirun is
-- absent or the MPI module was not built.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local suite = "dist_mpi"
if T.sh("command -v mpirun") ~= 0 then return T.skip(suite, "mpirun is not installed") end
if not tt.fs.exists(T.builddir() .. "/host/.libs/libtaming_mpi.so") then
  return T.skip(suite, "the MPI module was not built (no MPI found, or --disable-mpi)")
end

local worker = T.srcdir() .. "/tests/lua/dist_worker.lua"
local tmp = T.tmpdir("dist_mpi")
local have_timeout = T.sh("command -v timeout") == 0

-- Open MPI on a small machine: more ranks than cores is fine, no binding (a
-- parallel `make check` shares the cores), shared memory only, and root is
-- allowed (containers). Other MPIs get the plain command line.
local _, version = T.sh("mpirun --version")
local launcher = "mpirun -np 2"
if version:find("Open MPI", 1, true) or version:find("OpenRTE", 1, true) then
  launcher = launcher .. " --oversubscribe --bind-to none --allow-run-as-root" ..
             " --mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
end

-- One kernel thread per rank: two ranks already fill two cores, and a fixed
-- thread count keeps every run's arithmetic the same.
local function env(extra) return "OMP_NUM_THREADS=1 " .. (extra or "") end

local function mpirun(args, extra_env, limit)
  local cmd = env(extra_env) .. (have_timeout and ("timeout %d "):format(limit or 60) or "") .. launcher .. " " .. T.taming() ..
              " run " .. worker .. " " .. args
  local t0 = tt.time()
  local status, out = T.sh(cmd)
  return status, out, tt.time() - t0
end

local function has(out, s) return out:find(s, 1, true) ~= nil end

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("collectives", function()
  -- small chunks: the [2500] tensors cross chunk boundaries
  local status, out = mpirun("mode=collectives", "TAMING_MPI_CHUNK=1000 ")
  T.ok("mpirun exited with " .. status .. ":\n" .. out, status == 0)
  T.ok("rank 0 did not finish:\n" .. out, has(out, "rank 0: collectives ok"))
  T.ok("rank 1 did not finish:\n" .. out, has(out, "rank 1: collectives ok"))
end)

-- 2 ranks x batch 4 == 1 process x batch 8: the mean over ranks of mean-loss
-- gradients is the gradient of the mean loss over the whole batch
test("train_equivalence", function()
  local single, dp = tmp .. "/single.safetensors", tmp .. "/dp.safetensors"
  local steps = "sgd=3 adam=3"
  local status, out = T.sh(env() .. T.taming() .. " run " .. worker ..
                           (" mode=train batch=8 %s out=%s"):format(steps, single))
  T.ok("one process exited with " .. status .. ":\n" .. out, status == 0)
  status, out = mpirun(("mode=train batch=4 %s out=%s"):format(steps, dp))
  T.ok("mpirun exited with " .. status .. ":\n" .. out, status == 0)
  local a, b = tt.safetensors.load(single), tt.safetensors.load(dp)
  local worst = 0
  for _, k in ipairs({"conv_w", "conv_b", "fc_w", "fc_b"}) do
    local moved = T.max_diff(a:get(k), a:get("init." .. k))
    T.ok(("%s did not train (moved %.3g)"):format(k, moved), moved > 1e-3)
    worst = math.max(worst, T.close(k .. ": 2 ranks x 4 vs 1 x 8", b:get(k), a:get(k), 1e-6))
  end
  local dl = T.close("losses", b:get("losses"), a:get("losses"), 1e-6)
  print(("  max abs weight diff, 2 ranks x batch 4 vs 1 process x batch 8, 3 SGD + 3 Adam steps: %.3g"
         .. " (losses: %.3g)"):format(worst, dl))
end)

-- mpirun hands each rank a terminal even when its own output is a pipe (this
-- one): the progress display must still be plain lines, no carriage returns
test("progress_lines_under_mpirun", function()
  local script = tmp .. "/progress.lua"
  local f = assert(io.open(script, "w"))
  f:write([[
local tt = require "taming"
local bar = require("taming.progress").new{total = 4, every = 2}
if (os.getenv("OMPI_COMM_WORLD_RANK") or os.getenv("PMI_RANK") or "0") ~= "0" then return end
for s = 1, 4 do bar:update(s, {{"loss", 0.5}}) end
bar:finish()
]])
  f:close()
  local status, out = T.sh(env() .. (have_timeout and "timeout 60 " or "") .. launcher .. " " .. T.taming() ..
                           " run " .. script)
  T.ok("mpirun exited with " .. status .. ":\n" .. out, status == 0)
  T.ok("carriage return in the output: " .. out:gsub("\r", "<CR>"), not out:find("\r", 1, true))
  T.ok("plain progress lines: " .. out, has(out, "step 2/4") and has(out, "step 4/4"))
end)

test("failing_rank_ends_job", function()
  local status, out, secs = mpirun("mode=fail", nil, 30)
  T.ok("the job hung (killed by timeout):\n" .. out, status ~= 124)
  T.ok("expected a non-zero exit:\n" .. out, status ~= 0)
  T.ok("rank 1's error is missing:\n" .. out, has(out, "rank 1 fails on purpose"))
  T.ok("rank 0 passed the barrier:\n" .. out, not has(out, "passed a barrier"))
  T.ok(("the job took %.1f s to end"):format(secs), secs < 20)
end)

test("launch_without_module", function()
  local status, out = mpirun("mode=nomodule", "TAMING_MPI_MODULE=" .. tmp .. "/missing.so ")
  T.ok("mpirun exited with " .. status .. ":\n" .. out, status == 0)
  for r = 0, 1 do
    T.ok(("rank %d's message is missing:\n%s"):format(r, out),
         has(out, ("dist.init: rank %d of 2: this process was launched as one of 2 processes, but multi-process "
                   .. "training needs the MPI module"):format(r)))
  end
  T.ok("message lacks the cause:\n" .. out, has(out, "missing.so: no such file"))
end)

local t0 = tt.time()
local rc = T.run(suite, tests)
print(("%s: %.1f s"):format(suite, tt.time() - t0))
return rc
