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

local read, write = T.read, T.write

-- runs taming with args (after the environment settings env, e.g. "X=1 ");
-- asserts a failure with exactly one line mentioning every needle
local function fails_env(env, what, args, ...)
  local status, out = T.sh(env .. T.taming() .. " " .. args)
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

local function fails(what, args, ...) return fails_env("", what, args, ...) end

-- the hand-built zip and pickle helpers of testlib
local zip, u, global, int = T.zip, T.pk.str, T.pk.global, T.pk.int

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

-- ---- hostile sizes: decompression bombs, resize amplification, IDX, configs ----

-- the process's peak resident memory in MB (nil where /proc is absent)
local function peak_rss_mb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local kb = f:read("a"):match("VmHWM:%s*(%d+)")
  f:close()
  return kb and tonumber(kb) / 1024
end

local function below_1gb(what)
  local mb = peak_rss_mb()
  print(("  %s: peak RSS %s MB"):format(what, mb and ("%.0f"):format(mb) or "?"))
  T.ok(("%s: peak RSS %.0f MB, over 1 GB"):format(what, mb or 0), not mb or mb < 1024)
end

local function crc32(s)
  local c = 0xFFFFFFFF
  for i = 1, #s do
    c = c ~ s:byte(i)
    for _ = 1, 8 do c = (c >> 1) ~ (0xEDB88320 & -(c & 1)) end
  end
  return c ~ 0xFFFFFFFF
end

-- a PNG written by tt.image.save whose IHDR then declares w x h (CRC fixed)
local function png_declaring(path, w, h)
  local p = tmp .. "/small.png"
  tt.image.save(p, tt.zeros({4, 4, 3}, {dtype = "u8"}))
  local png = read(p)
  local head = png:sub(1, 16) .. string.pack(">I4I4", w, h) .. png:sub(25, 29)
  write(path, head .. string.pack(">I4", crc32(head:sub(13, 29))) .. png:sub(34))
end

-- a JPEG of 61 x 83 pixels whose frame header then declares w x h
local function jpeg_declaring(path, w, h)
  local p = tmp .. "/small.jpg"
  tt.image.save(p, tt.full({61, 83, 3}, 90, {dtype = "u8"}))
  local jpg = read(p)
  local sof = assert(jpg:find("\xFF[\xC0\xC2]"), "no SOF marker")
  write(path, jpg:sub(1, sof + 4) .. string.pack(">I2I2", h, w) .. jpg:sub(sof + 9))
end

local function script(name, body)
  local s = tmp .. "/" .. name .. ".lua"
  write(s, 'local tt = require "taming"\n' .. body .. "\n")
  return s
end

test("image_decompression_bombs", function()
  local png, jpg, eoi = tmp .. "/bomb.png", tmp .. "/bomb.jpg", tmp .. "/eoi.jpg"
  png_declaring(png, 100000, 100000)
  jpeg_declaring(jpg, 65500, 65500)
  jpeg_declaring(eoi, 2000, 2000)     -- under the limit; the data ends after 61 x 83
  for _, c in ipairs({{png, "100000 x 100000"}, {jpg, "65500 x 65500"}}) do
    T.raises(c[1], function() return tt.image.load(c[1]) end, c[1], c[2], "over the limit of 178956970")
    fails(c[1], "run " .. script("load", ('tt.image.load("%s")'):format(c[1])), c[1], "over the limit")
  end
  T.raises("early end of the JPEG data", function() return tt.image.load(eoi) end, "eoi.jpg",
    "premature end of data segment")
  below_1gb("after the bombs")
  -- the limit's overrides: an option of tt.image.load and the environment
  local ok = tmp .. "/ok.png"
  tt.image.save(ok, tt.zeros({10, 20, 3}, {dtype = "u8"}))
  T.raises("max_pixels", function() return tt.image.load(ok, {max_pixels = 199}) end, "ok.png", "limit of 199")
  T.eq("max_pixels = 200", tt.image.load(ok, {raw = true, max_pixels = 200}):size(1), 20)
  T.eq("max_pixels = 0", tt.image.load(ok, {raw = true, max_pixels = 0}):size(0), 10)
  T.raises("negative max_pixels", function() return tt.image.load(ok, {max_pixels = -5}) end, "max_pixels")
  local load_ok = script("load_ok", ('tt.image.load("%s")'):format(ok))
  fails_env("TAMING_MAX_IMAGE_PIXELS=100 ", "limit from the environment", "run " .. load_ok, "ok.png", "limit of 100")
  fails_env("TAMING_MAX_IMAGE_PIXELS=many ", "unreadable limit", "run " .. load_ok, "TAMING_MAX_IMAGE_PIXELS=many")
  local status, out = T.sh("TAMING_MAX_IMAGE_PIXELS=none " .. T.taming() .. " run " .. load_ok)
  T.ok("TAMING_MAX_IMAGE_PIXELS=none: " .. out, status == 0)
end)

test("resize_crops_before_it_enlarges", function()
  -- 1 x 1,000,000 RGB (3 KB as PNG): a short side of 32 makes it 32 x 32,000,000 whole
  local strip = tmp .. "/strip.png"
  tt.image.save(strip, tt.full({1, 1000000, 3}, 200, {dtype = "u8"}))
  local x = require("taming.conditions").image(strip, 32, 3)
  T.eq("strip -> [1, 3, 32, 32]", table.concat(x:shape(), ","), "1,3,32,32")
  T.close("strip values", x, tt.full({1, 3, 32, 32}, 200 / 127.5 - 1), 1e-6)
  below_1gb("after the strip")
  if F then
    local out = tmp .. "/strip_rec.png"
    local status, o = T.sh(("%s run reconstruct config=%s/tiny/vqgan.yaml ckpt=%s/tiny/vqgan.ckpt input=%s output=%s size=16")
      :format(T.taming(), F, F, strip, out))
    T.ok("reconstruct of the strip failed: " .. o, status == 0)
    T.eq("reconstruct of the strip", table.concat(tt.image.load(out, {raw = true}):shape(), ","), "16,16,3")
  end
end)

test("idx_header_larger_than_the_file", function()
  local p = tmp .. "/bomb.idx"
  write(p, "\0\0\8\2" .. string.pack(">I4I4", 65536, 32768) .. "\0")   -- 13 bytes declaring 2 GB
  T.raises("13-byte IDX", function() return tt.datasets.idx_load(p) end, "bomb.idx",
    "declares 2147483648 bytes of data")
  T.raises("IDX directory", function() return tt.datasets.idx_load(tmp) end, "is a directory")
  below_1gb("after the IDX header")
end)

test("config_files", function()
  local st = tmp .. "/weights.safetensors"
  tt.safetensors.save(st, {x = tt.zeros({1})})
  local function run(cfg) return ("run reconstruct config=%s ckpt=%s input=x.png output=%s/x.png"):format(cfg, st, tmp) end
  local empty, scalar, comments = tmp .. "/empty.yaml", tmp .. "/scalar.yaml", tmp .. "/comments.yaml"
  write(empty, "")
  write(scalar, "just a string\n")
  write(comments, "# nothing but a comment\n\n")
  fails("empty config", run(empty), "empty.yaml: empty config")
  fails("comments only", run(comments), "comments.yaml: empty config")
  fails("scalar config", run(scalar), "scalar.yaml", "expected a mapping")
  fails("directory as config", run(tmp), tmp, "is a directory")
  fails("device as config", run("/dev/zero"), "/dev/zero", "not a regular file")
  fails("missing config", run(tmp .. "/absent.yaml"), "absent.yaml", "No such file")
  local big = tmp .. "/big.yaml"
  write(big, "model:\n  target: x\n" .. ("# padding\n"):rep(100))
  fails_env("TAMING_MAX_CONFIG_BYTES=500 ", "config over the size limit", run(big), "big.yaml: larger than 500 bytes")
  fails_env("TAMING_MAX_CONFIG_BYTES=lots ", "unreadable size limit", run(big), "TAMING_MAX_CONFIG_BYTES=lots")
  -- under the limit, the same file is read (and fails later, on its unknown target)
  fails_env("TAMING_MAX_CONFIG_BYTES=5000 ", "config under the size limit", run(big), "big.yaml", "unknown model.target")
  below_1gb("after the configs")
end)

test("text_inputs", function()
  local cond, data = require "taming.conditions", require "taming.data"
  T.raises("keypoints from /dev/zero", function() return cond.pose("/dev/zero", 32) end, "/dev/zero",
    "larger than 1048576 bytes, too large for a keypoints file")
  T.raises("keypoints from a directory", function() return cond.pose(tmp, 32) end, tmp, "is a directory")
  T.raises("image list from a directory", function() return data.image_list{file = tmp} end, tmp, "is a directory")
  local kp = tmp .. "/kp.txt"
  write(kp, "# x y\n1 2\n\n3 4 0\nfive six\n")
  T.raises("bad keypoint line", function() return cond.pose(kp, 32) end, "kp.txt:5: expected 'x y [visible]'")
  write(kp, "1 2\r\n3 4 0")
  T.eq("keypoints with CRLF and no final newline", cond.pose(kp, 32):size(1), 2)
  below_1gb("after the text inputs")
end)

test("arguments", function()
  local su = "run sample_unconditional config=a.yaml ckpt=b.ckpt "
  fails("seed beyond 64 bits", su .. "seed=99999999999999999999", "seed=99999999999999999999", "64-bit integer")
  fails("n = 1e300", su .. "n=1e300", "argument n=1e300", "64-bit integer")
  fails("n = 0", su .. "n=0", "argument n=0", ">= 1")
  fails("infinite temperature", su .. "temperature=1e999", "temperature=1e999", "finite")
  fails("fractional seed", su .. "seed=1.5", "seed=1.5", "integer")
  fails("not key=value", su .. "--verbose", "'--verbose' is not key=value")
  local status, out = T.sh(T.taming() .. " run reconstruct --help")
  T.ok("--help exits 0: " .. out, status == 0)
  T.ok("--help lists the arguments: " .. out, out:find("config=STRING", 1, true) and out:find("official YAML config", 1, true))
end)

return T.run("bad_input", tests)
