-- testlib.lua — a small harness for the Lua test scripts run by `make check`
-- (`taming run tests/lua/X.lua`): named tests, numeric comparisons that print
-- the max difference, expected errors, skips (exit 77) when fixtures are absent.
local tt = require "taming"

local T = {}

function T.srcdir() return os.getenv("TT_SRCDIR") or "." end
function T.builddir() return os.getenv("TT_BUILDDIR") or "." end

-- a whole file's bytes; writing replaces the file's bytes
function T.read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end
function T.write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

-- The fixtures folder, or nil (the caller skips) when it is absent.
function T.fixtures()
  local f = os.getenv("TAMING_FIXTURES") or (T.srcdir() .. "/../shared/fixtures")
  if tt.fs.isdir(f) then return f end
  return nil
end

function T.tmpdir(name)
  local d = T.builddir() .. "/tests/tmp/" .. name
  tt.fs.mkdir(d)
  return d
end

local function shape_str(t)
  return "[" .. table.concat(t:shape(), ", ") .. "]"
end

-- max |a - b| over all elements (a, b tensors of the same shape)
function T.max_diff(a, b)
  local d = (a:to("cpu"):float() - b:to("cpu"):float()):abs()
  return d:max():item()
end

function T.close(what, a, b, tol)
  local sa, sb = shape_str(a), shape_str(b)
  if sa ~= sb then error(("%s: shapes differ: %s vs %s"):format(what, sa, sb), 2) end
  local m = T.max_diff(a, b)
  if not (m <= tol) then error(("%s: max abs diff %.3g > %.3g"):format(what, m, tol), 2) end
  return m
end

function T.equal(what, a, b)
  local sa, sb = shape_str(a), shape_str(b)
  if sa ~= sb then error(("%s: shapes differ: %s vs %s"):format(what, sa, sb), 2) end
  local at, bt = a:to("cpu"):long():reshape(-1), b:to("cpu"):long():reshape(-1)
  for i = 0, at:numel() - 1 do
    if at:get(i) ~= bt:get(i) then
      error(("%s: element %d differs: %d vs %d"):format(what, i, at:get(i), bt:get(i)), 2)
    end
  end
end

function T.eq(what, a, b)
  if a ~= b then error(("%s: expected %s, found %s"):format(what, tostring(b), tostring(a)), 2) end
end

function T.ok(what, cond)
  if not cond then error(what, 2) end
end

-- fn must raise an error whose message contains every pattern (plain text)
function T.raises(what, fn, ...)
  local ok, err = pcall(fn)
  if ok then error(what .. ": expected an error, none was raised", 2) end
  err = tostring(err)
  for _, p in ipairs({...}) do
    if not err:find(p, 1, true) then error(("%s: error lacks '%s': %s"):format(what, p, err), 2) end
  end
  return err
end

-- Runs a shell command; returns exit status and the combined output.
function T.sh(cmd)
  local p = io.popen(cmd .. " 2>&1; echo \"__status=$?\"")
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  out = out:gsub("__status=%d+%s*$", "")
  return status, out
end

function T.taming() return T.builddir() .. "/host/taming" end

-- "mpirun -np N ..." for this machine, or nil (with the reason) when MPI runs are
-- impossible: mpirun absent or the MPI module not built. Open MPI on a small
-- machine: more ranks than cores is fine, no binding (a parallel `make check`
-- shares the cores), shared memory only, root allowed (containers).
function T.mpirun(n)
  if T.sh("command -v mpirun") ~= 0 then return nil, "mpirun is not installed" end
  if not tt.fs.exists(T.builddir() .. "/host/.libs/libtaming_mpi.so") then
    return nil, "the MPI module was not built (no MPI found, or --disable-mpi)"
  end
  local _, version = T.sh("mpirun --version")
  local launcher = "mpirun -np " .. n
  if version:find("Open MPI", 1, true) or version:find("OpenRTE", 1, true) then
    launcher = launcher .. " --oversubscribe --bind-to none --allow-run-as-root" ..
               " --mca pml ob1 --mca btl self,vader --mca btl_vader_single_copy_mechanism none"
  end
  if T.sh("command -v timeout") == 0 then launcher = "timeout 120 " .. launcher end
  return launcher
end

-- tests: ordered list of {name, fn}. Returns the exit status for `taming run`.
-- TAMING_TEST_ONLY=name1,name2 runs those tests of the suite alone (a name it does
-- not have is an error, so a renamed test cannot silently drop out).
function T.run(suite, tests)
  local only = os.getenv("TAMING_TEST_ONLY")
  if only and only ~= "" then
    local byname, picked = {}, {}
    for _, t in ipairs(tests) do byname[t[1]] = t end
    for name in only:gmatch("[^,]+") do
      if not byname[name] then
        print(("FAIL %s: TAMING_TEST_ONLY names '%s', which this suite does not have"):format(suite, name))
        return 1
      end
      picked[#picked + 1] = byname[name]
    end
    tests = picked
  end
  local failed = 0
  for _, t in ipairs(tests) do
    local t0 = tt.time()
    local ok, err = xpcall(t[2], function(e)
      if os.getenv("TAMING_TRACEBACK") then return debug.traceback(tostring(e), 2) end
      return tostring(e)
    end)
    if ok then
      print(("PASS %s.%s (%.2fs)"):format(suite, t[1], tt.time() - t0))
    else
      failed = failed + 1
      print(("FAIL %s.%s: %s"):format(suite, t[1], err))
    end
  end
  print(("%s: %d/%d passed"):format(suite, #tests - failed, #tests))
  return failed == 0 and 0 or 1
end

function T.skip(suite, why)
  print(("%s: SKIP: %s"):format(suite, why))
  return 77
end

-- A stored (uncompressed) zip, as torch.save writes one: entries = {{name, data}, ...};
-- method (default 0) is written into every header.
function T.zip(entries, method)
  local locals, central, off = {}, {}, 0
  for _, e in ipairs(entries) do
    local name, data = e[1], e[2]
    local lh = string.pack("<I4I2I2I2I2I2I4I4I4I2I2", 0x04034b50, 20, 0, method or 0, 0, 0, 0, #data, #data, #name, 0)
    locals[#locals + 1] = lh .. name .. data
    central[#central + 1] = string.pack("<I4I2I2I2I2I2I2I4I4I4I2I2I2I2I2I4I4", 0x02014b50, 20, 20, 0, method or 0,
      0, 0, 0, #data, #data, #name, 0, 0, 0, 0, 0, off) .. name
    off = off + #lh + #name + #data
  end
  local cd = table.concat(central)
  return table.concat(locals) .. cd .. string.pack("<I4I2I2I2I2I4I4I2", 0x06054b50, 0, 0, #entries, #entries, #cd, off, 0)
end

-- Pickle opcodes (protocol 2) for hand-built checkpoints.
T.pk = {}
function T.pk.str(s) return "X" .. string.pack("<I4", #s) .. s end
function T.pk.global(mod, name) return "c" .. mod .. "\n" .. name .. "\n" end
function T.pk.int(n) return "J" .. string.pack("<i4", n) end
function T.pk.long(n) return "\x8a\x08" .. string.pack("<i8", n) end
-- _rebuild_tensor_v2(storage(cls, key, numel), offset, size, stride, False, OrderedDict())
function T.pk.tensor(cls, key, numel, offset, size, stride)
  local P = T.pk
  local function tuple(t)
    local s = "("
    for _, v in ipairs(t) do s = s .. P.long(v) end
    return s .. "t"
  end
  local storage = "(" .. P.str("storage") .. P.global("torch", cls) .. P.str(key) .. P.str("cpu") .. P.long(numel) .. "tQ"
  return P.global("torch._utils", "_rebuild_tensor_v2") .. "(" .. storage .. P.long(offset) .. tuple(size) ..
    tuple(stride) .. "\x89" .. P.global("collections", "OrderedDict") .. ")Rt" .. "R"
end

-- The per-step losses of one quiet training run: fn is train.vqgan or
-- train.transformer, o its options (model, loader, steps, lr, seed, logdir,
-- precision, ...); checkpoints, image grids, logs, progress and TensorBoard off.
-- The logdir is emptied first. Returns {[step] = loss}.
function T.loss_curve(fn, o)
  local losses = {}
  T.sh("rm -rf '" .. o.logdir .. "'")
  local opts = {ckpt_every = 0, checkpoint = false, image_every = 0, log_every = o.steps + 1, progress = "off",
                tensorboard = false}
  for k, v in pairs(o) do opts[k] = v end
  opts.on_step = function(step, loss) losses[step] = loss end
  fn(opts)
  return losses
end

-- The means of consecutive windows of `width` values of v[1..n] (the last may be shorter).
function T.window_means(v, n, width)
  local w = {}
  for i = 1, n, width do
    local s, k = 0, 0
    for j = i, math.min(i + width - 1, n) do s, k = s + v[j], k + 1 end
    w[#w + 1] = s / k
  end
  return w
end

return T
