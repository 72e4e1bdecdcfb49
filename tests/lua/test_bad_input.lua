-- test_bad_input.lua — bad input through the `taming` command: each case must end
-- with one line on stderr naming the file and the cause, a non-zero exit, and no
-- crash (no signal, no sanitizer report). Files are built here, without Python.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local F = T.fixtures()
local tmp = T.tmpdir("bad_input")
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

-- runs taming with args; asserts a failure with exactly one line mentioning every needle
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
  return out
end

-- a minimal stored (uncompressed) zip writer: entries = {{name, data}, ...}
local function zip(entries, method)
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

-- pickle helpers (protocol 2)
local function u(s) return "X" .. string.pack("<I4", #s) .. s end
local function global(mod, name) return "c" .. mod .. "\n" .. name .. "\n" end
local function int(n) return "J" .. string.pack("<i4", n) end

local function tiny_config()
  local p = tmp .. "/tiny.yaml"
  write(p, [[
model:
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 4
    n_embed: 8
    ddconfig: {double_z: false, z_channels: 4, resolution: 16, in_channels: 3, out_ch: 3, ch: 32,
               ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
]])
  return p
end

test("truncated_ckpt", function()
  if not F then return end
  local full = read(F .. "/tiny/vqgan.ckpt")
  local p = tmp .. "/truncated.ckpt"
  write(p, full:sub(1, #full // 2))
  fails("truncated", ("run reconstruct config=%s/tiny/vqgan.yaml ckpt=%s input=%s/tiny/input.png output=%s/x.png"):format(
    F, p, F, tmp), "truncated.ckpt")
  fails("info truncated", "info " .. p, "truncated.ckpt")
end)

test("compressed_zip_entry", function()
  local p = tmp .. "/compressed.ckpt"
  write(p, zip({{"archive/data.pkl", "\x80\x02}."}, {"archive/version", "3\n"}}, 8))
  fails("compressed", "info " .. p, "compressed.ckpt", "compress")
end)

test("pickle_calling_os_system", function()
  local p = tmp .. "/evil.ckpt"
  local pkl = "\x80\x02" .. global("os", "system") .. u("touch " .. tmp .. "/pwned") .. "\x85R."
  write(p, zip({{"archive/data.pkl", pkl}, {"archive/version", "3\n"}}))
  fails("os.system", "info " .. p, "evil.ckpt", "os.system")
  T.ok("the pickle was executed", not tt.fs.exists(tmp .. "/pwned"))
end)

test("storage_outside_file", function()
  local p = tmp .. "/outside.ckpt"
  -- {'state_dict': {'w': _rebuild_tensor_v2(storage('0', FloatStorage, numel 1e6), 0, (1e6,), (1,), False, OrderedDict())}}
  local storage = "(" .. u("storage") .. global("torch", "FloatStorage") .. u("0") .. u("cpu") .. int(1000000) .. "tQ"
  local tensor = global("torch._utils", "_rebuild_tensor_v2") .. "(" .. storage .. int(0) .. int(1000000) .. "\x85" ..
    int(1) .. "\x85" .. "\x89" .. global("collections", "OrderedDict") .. ")Rt" .. "R"
  local pkl = "\x80\x02}" .. u("state_dict") .. "}" .. u("w") .. tensor .. "ss."
  write(p, zip({{"archive/data.pkl", pkl}, {"archive/data/0", string.rep("\0", 16)}, {"archive/version", "3\n"}}))
  fails("outside", "info " .. p, "outside.ckpt")
end)

test("yaml_missing_ddconfig_key", function()
  local p = tmp .. "/noch.yaml"
  write(p, read(tiny_config()):gsub(" ch: 32,", ""))
  local st = tmp .. "/weights.safetensors"
  tt.safetensors.save(st, {x = tt.zeros({1})})
  fails("missing ch", ("run reconstruct config=%s ckpt=%s input=x.png output=%s/x.png"):format(p, st, tmp), "noch.yaml",
    "ddconfig", "'ch'")
end)

test("grayscale_image_to_rgb_model", function()
  if not F then return end
  local gray = tmp .. "/gray.png"
  tt.image.save(gray, tt.zeros({16, 16, 1}, {dtype = "u8"}))
  fails("gray", ("run reconstruct config=%s/tiny/vqgan.yaml ckpt=%s/tiny/vqgan.ckpt input=%s output=%s/x.png"):format(
    F, F, gray, tmp), "gray.png", "1 channel", "takes 3")
end)

test("corrupt_png", function()
  if not F then return end
  local png = read(F .. "/tiny/input.png")
  local p = tmp .. "/corrupt.png"
  write(p, png:sub(1, 60) .. string.rep("\xff", 40) .. png:sub(101))
  fails("corrupt png", ("run reconstruct config=%s/tiny/vqgan.yaml ckpt=%s/tiny/vqgan.ckpt input=%s output=%s/x.png"):format(
    F, F, p, tmp), "corrupt.png")
end)

test("npy_bad_header", function()
  local p = tmp .. "/bad.npy"
  write(p, "\x93NUMPY\x01\x00\x10\x00{'descr': 'xx'}\n")
  local s = tmp .. "/load_npy.lua"
  write(s, ('local tt = require "taming"\ntt.npy.load("%s")\n'):format(p))
  fails("bad npy", "run " .. s, "bad.npy")
end)

test("lua_syntax_error", function()
  local s = tmp .. "/syntax.lua"
  write(s, "local x = = 1\n")
  fails("syntax", "run " .. s, "syntax.lua:1")
end)

test("lua_runtime_error_and_unknown_argument", function()
  fails("unknown arg", "run reconstruct config=a ckpt=b input=c output=d bogus=1", "unknown argument 'bogus'")
  fails("missing script", "run no_such_script.lua", "no_such_script.lua")
end)

test("truncated_safetensors_and_missing_file", function()
  local st = tmp .. "/t.safetensors"
  tt.safetensors.save(st, {w = tt.zeros({64, 64})})
  local bytes = read(st)
  write(tmp .. "/cut.safetensors", bytes:sub(1, #bytes - 100))
  fails("cut safetensors", "info " .. tmp .. "/cut.safetensors", "cut.safetensors")
  fails("missing", "info " .. tmp .. "/absent.ckpt", "absent.ckpt")
end)

test("tensor_binding_messages", function()
  -- messages with 64-bit numbers in them (Lua's formatter takes %I, not %lld)
  local x = tt.zeros({2, 3})
  T.raises("index out of range", function() x:set(1, 0, 7) end, "index 7 out of range for dim 1 of size 3")
  T.raises("get out of range", function() return x:get(2, 0) end, "index 2 out of range for dim 0 of size 2")
  T.raises("ragged table", function() return tt.tensor({{1, 2}, {3, 4, 5}}) end, "ragged nested table at dim 1")
  T.raises("codes outside the codebook", function() return tt.codebook_usage(tt.tensor({0, 9}, {dtype = "i64"}), 4) end,
    "codebook_usage: index 9 is outside 0..3")
end)

return T.run("bad_input", tests)
