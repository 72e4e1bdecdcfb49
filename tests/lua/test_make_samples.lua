-- test_make_samples.lua — `taming run make_samples`: numbered PNGs for every model
-- kind (the shipped class-conditional Fashion-MNIST model, tiny random unconditional
-- and edge-conditioned models), resuming (deleted files come back byte for byte, a
-- larger n leaves the first samples as they were and equals a fresh run), refusal of
-- a rerun with other settings (another precision among them).
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local SUITE = "make_samples"
local tmp = T.tmpdir("make_samples")
local MODEL = T.srcdir() .. "/models/fashion_mnist/"
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function run(args)
  local status, out = T.sh(T.taming() .. " run make_samples " .. args)
  if status ~= 0 then error("taming run make_samples " .. args .. " failed:\n" .. out, 2) end
  return out
end

local function fails(args, ...)
  local status, out = T.sh(T.taming() .. " run make_samples " .. args)
  T.ok("expected a failure: " .. args, status ~= 0)
  for _, p in ipairs({...}) do T.ok(("message lacks '%s': %s"):format(p, out), out:find(p, 1, true)) end
end

local function bytes(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function pngs(dir)
  local out = {}
  for _, f in ipairs(tt.fs.listdir(dir)) do if f:match("%.png$") then out[#out + 1] = f end end
  return out
end

local function rm(dir) T.sh("rm -rf '" .. dir .. "'") end

test("class_conditional_resume_and_extend", function()
  local base = ("config=%stransformer.yaml ckpt=%stransformer.safetensors seed=3 batch=4"):format(MODEL, MODEL)
  local a, b = tmp .. "/fm_a", tmp .. "/fm_b"
  rm(a)
  rm(b)
  run(("%s out=%s n=10"):format(base, a))
  T.eq("10 PNGs", #pngs(a), 10)
  local img = tt.image.load(a .. "/000007.png", {raw = true})
  T.eq("a 32x32 gray sample", table.concat(img:shape(), "x"), "32x32x1")
  local first = {}
  for i = 0, 9 do first[i] = bytes(("%s/%06d.png"):format(a, i)) end
  T.ok("samples differ", first[0] ~= first[1])
  -- deleted files come back identical (batches 0 and 2 are sampled again)
  os.remove(a .. "/000001.png")
  os.remove(a .. "/000009.png")
  local out = run(("%s out=%s n=10"):format(base, a))
  T.ok("resume made 2: " .. out, out:find("2 of 10 samples to make", 1, true))
  for i = 0, 9 do T.ok(("sample %d changed on resume"):format(i), bytes(("%s/%06d.png"):format(a, i)) == first[i]) end
  -- a larger n: the first 10 untouched, all 12 equal to a fresh run of 12
  run(("%s out=%s n=12"):format(base, a))
  run(("%s out=%s n=12"):format(base, b))
  for i = 0, 11 do
    local p = ("%06d.png"):format(i)
    T.ok(("sample %d: extended run and fresh run differ"):format(i), bytes(a .. "/" .. p) == bytes(b .. "/" .. p))
    if i < 10 then T.ok(("sample %d changed when n grew"):format(i), bytes(a .. "/" .. p) == first[i]) end
  end
  -- other settings in the same folder are refused, the precision among them (it moves the samples)
  fails(("%s out=%s n=12 batch=3"):format(base:gsub("batch=4", ""), a), "make_samples.json", "batch=4", "batch=3")
  fails(("%s out=%s n=12 precision=bf16"):format(base, a), "make_samples.json", "precision=fp32", "precision=bf16")
  -- class=K: every sample of that class
  run(("%s out=%s/k n=3 class=7"):format(base, tmp))
  T.eq("class=7 PNGs", #pngs(tmp .. "/k"), 3)
  fails(("%s out=%s/bad n=2 class=10"):format(base, tmp), "class id 10")
end)

-- tiny random models, as test_second_stage builds them
local function vq_yaml(indent, in_ch, out_ch, n_embed)
  local p = string.rep(" ", indent)
  return (p .. "target: taming.models.vqgan.VQModel\n" .. p .. "params:\n" .. p .. "  embed_dim: 8\n" ..
          p .. "  n_embed: " .. n_embed .. "\n" ..
          p .. "  ddconfig: {double_z: false, z_channels: 8, resolution: 32, in_channels: " .. in_ch ..
          ", out_ch: " .. out_ch .. ", ch: 32, ch_mult: [1, 1, 2], num_res_blocks: 1, attn_resolutions: [8], dropout: 0.0}\n" ..
          p .. "  lossconfig: {target: taming.modules.losses.vqperceptual.DummyLoss}\n")
end

local function net2net(name, cond_yaml, Lc, extra)
  local y = "model:\n  target: taming.models.cond_transformer.Net2NetTransformer\n  params:\n" .. (extra or "") ..
            "    transformer_config:\n      target: taming.modules.transformer.mingpt.GPT\n" ..
            "      params: {vocab_size: 64, block_size: " .. (Lc + 64) .. ", n_layer: 2, n_head: 2, n_embd: 32}\n" ..
            "    first_stage_config:\n" .. vq_yaml(6, 3, 3, 32) .. "    cond_stage_config:" .. cond_yaml
  local path = tmp .. "/" .. name .. ".yaml"
  local f = assert(io.open(path, "w"))
  f:write(y)
  f:close()
  local m = tt.build(path)
  m:init(11)
  local ck = tmp .. "/" .. name .. ".safetensors"
  tt.safetensors.save(ck, m:state_dict())
  return path, ck
end

test("unconditional_and_condition_folder", function()
  local cfg, ck = net2net("uncond", ' "__is_unconditional__"\n', 1, "    sos_token: 40\n")
  local u = tmp .. "/uncond"
  rm(u)
  run(("config=%s ckpt=%s out=%s n=5 batch=2 top_k=20"):format(cfg, ck, u))
  T.eq("5 unconditional PNGs", #pngs(u), 5)
  T.eq("RGB 32x32", table.concat(tt.image.load(u .. "/000004.png", {raw = true}):shape(), "x"), "32x32x3")
  fails(("config=%s ckpt=%s out=%s/x n=2 class=1"):format(cfg, ck, tmp), "unconditional model")
  -- edge maps of a folder of three images; sample i takes file i mod 3
  local cfg2, ck2 = net2net("edge", "\n" .. vq_yaml(6, 3, 3, 16), 64, "    cond_stage_key: edge\n")
  local conds = tmp .. "/conds"
  tt.fs.mkdir(conds)
  for k = 0, 2 do tt.image.save(("%s/c%d.png"):format(conds, k), tt.rand({1, 3, 32, 32}, 40 + k) * 2 - 1) end
  local e = tmp .. "/edge"
  rm(e)
  run(("config=%s ckpt=%s out=%s n=4 batch=4 cond=edge input=%s size=32"):format(cfg2, ck2, e, conds))
  T.eq("4 conditioned PNGs", #pngs(e), 4)
  fails(("config=%s ckpt=%s out=%s/y n=2"):format(cfg2, ck2, tmp), "needs cond=KIND input=DIR")
end)

test("export_images_copies_the_dataset_bytes", function()
  local mnist = "/usr/share/datasets/fashion-mnist"
  if not tt.fs.exists(mnist .. "/t10k-images-idx3-ubyte.gz") then return end
  local d = tmp .. "/real"
  rm(d)
  local status, out = T.sh(("%s run export_images data=fashion_mnist split=test out=%s limit=3"):format(T.taming(), d))
  T.ok("export_images failed: " .. out, status == 0)
  T.eq("3 PNGs", #pngs(d), 3)
  local ims = tt.datasets.fashion_mnist(mnist, "test")
  for i = 0, 2 do
    local x = tt.image.load(("%s/%06d.png"):format(d, i), {raw = true})
    T.eq("32x32x1", table.concat(x:shape(), "x"), "32x32x1")
    T.equal(("image %d inside the border"):format(i), x:narrow(0, 2, 28):narrow(1, 2, 28):select(2, 0), ims:select(0, i))
    T.eq(("image %d: the border is zero"):format(i), x:float():sum():item(), ims:select(0, i):float():sum():item())
  end
end)

os.exit(T.run(SUITE, tests))
