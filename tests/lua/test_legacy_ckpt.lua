-- test_legacy_ckpt.lua — checkpoints in torch.save's legacy serialisation (PyTorch
-- < 1.6, the format of the FID Inception weights file) through `taming info`,
-- `taming convert`, tt.ckpt.open and tt.load, and into the FID Inception plugin.
-- The files are tests/data/io/legacy_*.pt[h], made by tests/data/gen_legacy.py
-- with torch 1.13; the expected values were written by hand by the same script
-- (expected.safetensors, expected_legacy.safetensors). Damaged copies are made here.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local Model = require "taming.model"

local DATA = T.srcdir() .. "/tests/data/io/"
local tmp = T.tmpdir("legacy_ckpt")
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local read, write = T.read, T.write

-- every tensor of `path` equals the tensor of the same name in `want` (a name -> tensor table)
local function same_values(path, want, n)
  local c = tt.ckpt.open(path)
  T.eq(path .. ": format", c:format(), "torch-legacy")
  local got, count = c:tensors(), 0
  for name, t in pairs(got) do
    T.ok(("%s: unexpected tensor '%s'"):format(path, name), want[name] ~= nil)
    T.eq(name .. ": dtype", t:dtype(), want[name]:dtype())
    if t:numel() == 0 then T.eq(name .. ": shape", table.concat(t:shape(), "x"), table.concat(want[name]:shape(), "x"))
    else T.close(name, t, want[name], 0) end
    count = count + 1
  end
  T.eq(path .. ": tensors", count, n)
  return c
end

-- a failing `taming ARGS`: a non-zero exit without a crash, one line holding every needle
local function fails(what, args, ...)
  local status, out = T.sh(T.taming() .. " " .. args)
  T.ok(what .. ": expected a non-zero exit, got 0; output: " .. out, status ~= 0)
  T.ok(what .. ": crashed (status " .. status .. "): " .. out, status < 128)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.ok(what .. ": expected one line, got " .. #lines .. ":\n" .. out, #lines == 1)
  for _, n in ipairs({...}) do
    T.ok(("%s: message lacks '%s': %s"):format(what, n, out), out:find(n, 1, true) ~= nil)
  end
end

test("info_lists_the_legacy_files", function()
  local status, out = T.sh(T.taming() .. " info " .. DATA .. "legacy_mixed.pt")
  T.eq("taming info status", status, 0)
  for _, want in ipairs({"torch-legacy, 17 tensors", "\na_t f32 [6, 4]\n", "\nbf bf16 [2, 3]\n",
                         "\nafter: tensor f32 [3]\n", "\nepoch: 3\n", "\nnote: \"legacy\"\n"}) do
    T.ok(("taming info lacks %q:\n%s"):format(want, out), out:find(want, 1, true) ~= nil)
  end
  status, out = T.sh(T.taming() .. " info " .. DATA .. "legacy_inception_nonbt.pth")
  T.eq("taming info status", status, 0)
  T.ok("taming info:\n" .. out, out:find("torch-legacy, 5 tensors", 1, true) ~= nil)
end)

test("values_match_what_torch_saved", function()
  local c = same_values(DATA .. "legacy_mixed.pt", tt.ckpt.open(DATA .. "expected.safetensors"):tensors(), 17)
  local meta = c:meta()
  T.eq("epoch", meta.epoch, 3)
  T.eq("nested.neg", meta.nested.neg, -123456789012)
  local x = tt.ckpt.open(DATA .. "expected_legacy.safetensors"):tensors()
  T.close("after", meta.after, x.after, 0)
  same_values(DATA .. "legacy_inception.pth", x, 6)
  local no_nbt = {}
  for k, t in pairs(x) do if k:find("Conv2d_1a_3x3", 1, true) and not k:find("num_batches") then no_nbt[k] = t end end
  same_values(DATA .. "legacy_inception_nonbt.pth", no_nbt, 5)
end)

test("convert_writes_the_same_values", function()
  local out = tmp .. "/legacy_mixed.safetensors"
  os.remove(out)
  local status, msg = T.sh(("%s convert %s %s"):format(T.taming(), DATA .. "legacy_mixed.pt", out))
  T.eq("taming convert status (" .. msg .. ")", status, 0)
  local want, got = tt.ckpt.open(DATA .. "expected.safetensors"):tensors(), tt.ckpt.open(out):tensors()
  for k, t in pairs(want) do
    if t:numel() > 0 then T.close(k, got[k], t, 0) else T.eq(k .. " numel", got[k]:numel(), 0) end
  end
end)

-- the Inception plugin binds a legacy state dict: its first block from the file,
-- the rest from the seeded weights the FID test uses (the full 2015 network is
-- 95 MB, too big to commit)
test("inception_plugin_binds_a_legacy_state_dict", function()
  local seeded = tt.plugin("feature", "inception", {}, {seed = 15})
  for _, file in ipairs({"legacy_inception.pth", "legacy_inception_nonbt.pth"}) do
    local sd = {}
    for _, n in ipairs(seeded:param_names()) do sd[n] = seeded:param(n) end
    sd["Conv2d_1a_3x3.bn.num_batches_tracked"] = nil
    local legacy = tt.ckpt.open(DATA .. file):tensors()
    for k, t in pairs(legacy) do
      T.ok(file .. ": the plugin has no parameter " .. k, seeded:param_info(k) ~= nil)
      sd[k] = t
    end
    local m = Model.new("FIDInceptionV3")
    m.net = m:add("", tt.plugin("feature", "inception", {}, {init = false}))
    m:load_state(sd, {source = file})
    m:eval()
    for k, t in pairs(legacy) do T.close(file .. ": bound " .. k, m.net:param(k), t, 0) end
    -- the bound weights reach the features: the first conv differs from the seeded one
    local x = tt.full({1, 3, 32, 32}, 0.5)
    local pool = m.net:forward(x)
    T.eq("pool3 features", table.concat(pool:shape(), "x"), "1x2048")
    T.ok("pool3 features are not finite", pool:abs():max():item() < math.huge)
    T.ok("the legacy block changed nothing", T.max_diff(pool, seeded:forward(x)) > 1e-6)
  end
end)

test("damaged_copies_are_refused_in_one_line", function()
  local good = read(DATA .. "legacy_inception.pth")
  local cut = tmp .. "/cut.pth"
  write(cut, good:sub(1, #good - 3))   -- inside the last storage's bytes
  fails("info of a truncated file", "info " .. cut, "cut.pth", "truncated", "runs past the end of the file")
  local out = tmp .. "/cut.safetensors"
  os.remove(out)
  fails("convert of a truncated file", ("convert %s %s"):format(cut, out), "cut.pth", "truncated")
  T.ok("convert wrote a file", not tt.fs.exists(out))
  -- the conv weight's storage: 864 elements, as an int64 before its bytes
  local count = string.pack("<i8", 864)
  local at = good:find(count, 1, true)
  T.ok("the storage count is in the file", at ~= nil)
  local bad = tmp .. "/count.pth"
  write(bad, good:sub(1, at - 1) .. string.pack("<i8", 865) .. good:sub(at + 8))
  fails("info of a count mismatch", "info " .. bad, "count.pth",
    "holds 865 elements in the file but the pickle declares 864")
  -- tt.load goes through the same reader
  local script = tmp .. "/load.lua"
  local cfg = tmp .. "/tiny.yaml"
  write(cfg, [[
model:
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 4
    n_embed: 8
    ddconfig: {double_z: false, z_channels: 4, resolution: 16, in_channels: 3, out_ch: 3, ch: 32,
               ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
]])
  write(script, ('local tt = require "taming"\ntt.load(%q, {config = %q})\n'):format(bad, cfg))
  fails("tt.load of a count mismatch", "run " .. script, "count.pth", "holds 865 elements")
end)

os.exit(T.run("legacy_ckpt", tests))
