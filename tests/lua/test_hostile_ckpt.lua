-- test_hostile_ckpt.lua — hostile checkpoints through `taming info`, `taming convert`
-- and tt.load: sizes that overflow, a reused storage that grows, huge header
-- lengths, a directory as a .npy file, and pickles that reference globals torch.load
-- would call. Each refusal is one line on stderr naming the file, a non-zero exit,
-- no crash, and under 1 GB of resident memory. Files are built here, without Python.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local P = T.pk

local tmp = T.tmpdir("hostile_ckpt")
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local write = T.write

local have_time = T.sh("test -x /usr/bin/time") == 0

-- runs taming with args; returns status, output and the peak RSS in kB (nil when unknown)
local function taming(args)
  local rss_file = tmp .. "/rss"
  os.remove(rss_file)
  local prefix = have_time and ("/usr/bin/time -f %M -o " .. rss_file .. " ") or ""
  local status, out = T.sh(prefix .. T.taming() .. " " .. args)
  local rss
  local f = io.open(rss_file)
  if f then
    rss = tonumber(f:read("a"):match("(%d+)%s*$"))
    f:close()
  end
  return status, out, rss
end

local function check_rss(what, rss)
  T.ok(("%s: peak RSS %s kB, over 1 GB"):format(what, tostring(rss)), rss == nil or rss < 1024 * 1024)
end

-- asserts a failure with exactly one line mentioning every needle
local function fails(what, args, ...)
  local status, out, rss = taming(args)
  T.ok(what .. ": expected a non-zero exit, got 0; output: " .. out, status ~= 0)
  T.ok(what .. ": crashed (status " .. status .. "): " .. out, status < 128)
  local lines = {}
  for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
  T.ok(what .. ": expected one line, got " .. #lines .. ":\n" .. out, #lines == 1)
  for _, n in ipairs({...}) do
    T.ok(("%s: message lacks '%s': %s"):format(what, n, out), out:find(n, 1, true) ~= nil)
  end
  check_rss(what, rss)
  return out
end

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

-- tt.load(path) in a child `taming run`, so a crash shows up as a status
local function load_script(path, opts)
  local s = tmp .. "/load.lua"
  write(s, ('local tt = require "taming"\ntt.load(%q, {config = %q%s})\n'):format(path, tiny_config(), opts or ""))
  return "run " .. s
end

-- state_dict {'a': 4 i64 of storage '0', 'b': storage '0' again claiming numel_b, shape (size_b,)}
local function reused_storage_ckpt(path, numel_b, size_b)
  local pkl = "\x80\x02}" .. P.str("state_dict") .. P.global("collections", "OrderedDict") .. ")R" ..
    P.str("a") .. P.tensor("LongStorage", "0", 4, 0, {4}, {1}) .. "s" ..
    P.str("b") .. P.tensor("LongStorage", "0", numel_b, 0, {size_b}, {1}) .. "s" .. "s."
  write(path, T.zip({{"archive/data.pkl", pkl}, {"archive/data/0", string.pack("<i8i8i8i8", 1, 2, 3, 4)},
                     {"archive/version", "3\n"}}))
end

test("reused_storage_that_grows", function()
  local huge = (1 << 61) + 1
  local p = tmp .. "/regrow.ckpt"
  reused_storage_ckpt(p, huge, huge)
  print(fails("info regrow", "info " .. p, "regrow.ckpt", "tensor 'b'"))
  local out = tmp .. "/regrow.safetensors"
  os.remove(out)
  fails("convert regrow", ("convert %s %s"):format(p, out), "regrow.ckpt", "tensor 'b'")
  T.ok("convert wrote a file", not tt.fs.exists(out))
  fails("tt.load regrow", load_script(p), "regrow.ckpt", "tensor 'b'")
  local q = tmp .. "/regrow2.ckpt"
  reused_storage_ckpt(q, huge, 2)
  fails("info regrow2", "info " .. q, "regrow2.ckpt", "tensor 'b'", "storage '0' is declared with 2305843009213693953")
  T.raises("tt.ckpt.open regrow2", function() tt.ckpt.open(q) end, "regrow2.ckpt", "tensor 'b'")
end)

test("zero_dim_hides_overflow", function()
  local p = tmp .. "/zero_dim.ckpt"
  local pkl = "\x80\x02}" .. P.str("state_dict") .. "}" .. P.str("w") ..
    P.tensor("FloatStorage", "0", 4, 0, {1 << 40, 1 << 40, 0}, {1, 1, 1}) .. "ss."
  write(p, T.zip({{"archive/data.pkl", pkl}, {"archive/data/0", string.rep("\0", 16)}, {"archive/version", "3\n"}}))
  fails("info zero dim ckpt", "info " .. p, "zero_dim.ckpt", "tensor 'w'", "impossible shape")
  local hdr = '{"w":{"dtype":"F32","shape":[1099511627776,1099511627776,0],"data_offsets":[0,0]}}'
  local st = tmp .. "/zero_dim.safetensors"
  write(st, string.pack("<I8", #hdr) .. hdr)
  fails("info zero dim safetensors", "info " .. st, "zero_dim.safetensors", "tensor 'w'", "impossible shape")
end)

test("safetensors_header_length", function()
  local p = tmp .. "/huge_header.safetensors"
  write(p, string.pack("<I8", 1 << 62) .. "{}      ")
  fails("2^62 header", "info " .. p, "huge_header.safetensors", "header length 4611686018427387904 exceeds the file size")
end)

test("npy_directory", function()
  local d = tmp .. "/dir.npy"
  tt.fs.mkdir(d)
  T.raises("npy directory", function() tt.npy.load(d) end, "dir.npy", "is a directory")
end)

local function global_ckpt(path, mod, name)
  local pkl = "\x80\x02}" .. P.str("thing") .. P.global(mod, name) .. P.str("touch " .. tmp .. "/pwned") .. "\x85Rs" ..
    P.str("global_step") .. P.int(3) .. "s."
  write(path, T.zip({{"archive/data.pkl", pkl}, {"archive/version", "3\n"}}))
end

test("pickle_global_outside_the_allowlist", function()
  local p = tmp .. "/pipepager.ckpt"
  global_ckpt(p, "pydoc", "pipepager")
  -- info lists the file and warns on stderr, exit 0
  local status, out, rss = taming("info " .. p)
  T.ok("info failed: " .. out, status == 0)
  T.ok("no warning: " .. out, out:find("warning: " .. p .. ": the pickle references pydoc.pipepager, which torch.load " ..
    "without weights_only=True would call", 1, true) ~= nil)
  T.ok("no listing: " .. out, out:find("global_step: 3", 1, true) ~= nil)
  check_rss("info pipepager", rss)
  print(out)
  -- convert refuses unless allowed
  local out_st = tmp .. "/pipepager.safetensors"
  os.remove(out_st)
  fails("convert pipepager", ("convert %s %s"):format(p, out_st), "pipepager.ckpt", "pydoc.pipepager",
    "--allow-unsafe-globals")
  T.ok("convert wrote a file", not tt.fs.exists(out_st))
  status, out = taming(("convert %s %s --allow-unsafe-globals"):format(p, out_st))
  T.ok("convert --allow-unsafe-globals failed: " .. out, status == 0 and tt.fs.exists(out_st))
  -- tt.load refuses unless the caller opts in (then the missing weights are the problem)
  fails("tt.load pipepager", load_script(p), "pipepager.ckpt", "pydoc.pipepager", "unsafe_globals")
  local msg = fails("tt.load pipepager opted in", load_script(p, ", unsafe_globals = true"), "pipepager.ckpt")
  T.ok("opted in, still refused for the global: " .. msg, not msg:find("pydoc.pipepager", 1, true))
  T.raises("tt.ckpt.open", function() tt.ckpt.open(p) end, "pydoc.pipepager")
  local c = tt.ckpt.open(p, {unsafe_globals = true})
  T.eq("unsafe globals", table.concat(c:unsafe_globals(), ","), "pydoc.pipepager")
  T.eq("global_step", c:meta().global_step, 3)
  T.ok("the pickle was executed", not tt.fs.exists(tmp .. "/pwned"))
end)

test("official_fixtures_have_no_warnings", function()
  local F = T.fixtures()
  if not F then return print("fixtures absent: skipped") end
  for _, name in ipairs({"vqgan.ckpt", "gpt.ckpt"}) do
    local status, out = taming("info " .. F .. "/tiny/" .. name)
    T.ok(name .. ": info failed: " .. out, status == 0)
    T.ok(name .. ": warned: " .. out, not out:find("warning", 1, true))
    T.eq(name .. " unsafe globals", #tt.ckpt.open(F .. "/tiny/" .. name):unsafe_globals(), 0)
  end
end)

return T.run("hostile_ckpt", tests)
