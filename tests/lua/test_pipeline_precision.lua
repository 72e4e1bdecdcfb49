-- test_pipeline_precision.lua — every pipeline that runs a model takes precision=:
--   * each pipelines/*.lua lists precision= in its --help (export_images, which
--     copies dataset bytes into PNGs and runs no model, is the one exception);
--   * reconstruct precision=bf16 runs the shipped VQGAN's bf16 convolutions: its
--     output differs from fp32 (bf16 ran), its codes equal fp32's on >= 98 % of the
--     positions and its reconstruction is >= 35 dB from fp32's; its last line names
--     the precision and the instruction set;
--   * make_samples precision=bf16 and int8 sample (it refused them before) and keep
--     the precision with the samples' settings;
--   * where a precision has no meaning the pipeline refuses it in one line with the
--     reason (train_vqgan int8, train_transformer int8, reconstruct int8, fid bf16);
--   * TAMING_CPU_ISA=generic: sample_class precision=bf16 runs fp32 and says so once
--     for the VQGAN and once for the transformer.
-- Uses the shipped Fashion-MNIST model; the data-driven parts need Debian's
-- dataset-fashion-mnist and are skipped without it.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local SRC = T.srcdir()
local MODEL = SRC .. "/models/fashion_mnist/"
local FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
local NO_MODEL = {["export_images.lua"] = "copies dataset bytes into PNGs; no model runs"}
local tmp = T.tmpdir("pipeline_precision")

local function pipeline(name, args, env)
  return T.sh(("%s %s run %s/pipelines/%s %s"):format(env or "", T.taming(), SRC, name, args))
end

local function count(out, s)
  local _, n = out:gsub(s:gsub("%p", "%%%0"), "")
  return n
end

local bf16 = tt.plugin("encoder", "vqgan", {ch = 32, out_ch = 1, ch_mult = {1}, num_res_blocks = 1,
  attn_resolutions = {}, in_channels = 1, resolution = 8, z_channels = 4, double_z = false}, {seed = 1})
local bf16_info = bf16:set_precision("bf16")
bf16 = nil

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("every_pipeline_takes_precision", function()
  local p = io.popen(("ls '%s'/pipelines/*.lua"):format(SRC))
  local n = 0
  for path in p:lines() do
    local file = path:match("[^/]+$")
    local status, out = pipeline(file, "--help")
    T.eq(file .. " --help: exit status\n" .. out, status, 0)
    if NO_MODEL[file] then
      print(("  %s: no precision= (%s)"):format(file, NO_MODEL[file]))
    else
      T.ok(file .. " takes no precision=\n" .. out, out:find("\n%s*precision=") ~= nil)
    end
    n = n + 1
  end
  p:close()
  T.ok("pipelines found", n >= 13)
end)

test("refusals_name_the_reason", function()
  for _, c in ipairs{
    {"train_vqgan.lua", "config=x.yaml precision=int8", "precision=int8: int8 weights are for inference"},
    {"train_transformer.lua", "config=x.yaml precision=int8", "precision=int8: int8 weights are for inference"},
    {"reconstruct.lua", "config=x.yaml ckpt=x input=x output=x precision=int8",
     "precision=int8: int8 weights are the transformer's"},
    {"fid.lua", "real=x fake=y weights=w precision=bf16", "precision=bf16: the Inception network of the FID runs fp32"},
    {"make_samples.lua", "config=x ckpt=x out=x precision=fp16", "precision=fp16: expected one of fp32, bf16, int8"},
  } do
    local status, out = pipeline(c[1], c[2])
    T.ok(c[1] .. ": refused\n" .. out, status ~= 0)
    T.ok(c[1] .. ": says why\n" .. out, out:find(c[3], 1, true) ~= nil)
    T.eq(c[1] .. ": one line\n" .. out, count(out, "\n"), 1)
  end
end)

-- the shipped model's first stage on its own, and one Fashion-MNIST image as a PNG
local function first_stage_and_image()
  local vq = tmp .. "/vqgan.safetensors"
  local m = tt.load(MODEL .. "transformer.safetensors", {config = MODEL .. "transformer.yaml"})
  tt.safetensors.save(vq, m.first_stage:state_dict())
  local status, out = pipeline("export_images.lua", ("data=fashion_mnist split=test out=%s/img limit=1"):format(tmp))
  if status ~= 0 then error("export_images failed:\n" .. out, 2) end
  return vq, tmp .. "/img/000000.png"
end

test("reconstruct_bf16", function()
  if not tt.fs.exists(FMNIST) then print("  (skipped: no " .. FMNIST .. ")") return end
  if bf16_info.fallback then print("  (skipped: no bf16 convolutions here: " .. bf16_info.fallback .. ")") return end
  local vq, img = first_stage_and_image()
  local dumps = {}
  for _, p in ipairs{"fp32", "bf16"} do
    dumps[p] = tmp .. "/dump_" .. p
    local status, out = pipeline("reconstruct.lua", ("config=%svqgan.yaml ckpt=%s input=%s output=%s/rec_%s.png "
      .. "dump=%s precision=%s"):format(MODEL, vq, img, tmp, p, dumps[p], p))
    T.eq("reconstruct precision=" .. p .. ": exit status\n" .. out, status, 0)
    T.ok("names the precision that ran: " .. out, out:find("; " .. p .. ", ", 1, true) ~= nil)
  end
  local i32, i16 = tt.npy.load(dumps.fp32 .. "/indices.npy"), tt.npy.load(dumps.bf16 .. "/indices.npy")
  local r32, r16 = tt.npy.load(dumps.fp32 .. "/rec.npy"), tt.npy.load(dumps.bf16 .. "/rec.npy")
  local same = i32:eq(i16):float():sum():item()
  local mse = ((r32 - r16) * (r32 - r16)):mean():item()
  local psnr = mse > 0 and 10 * math.log(4 / mse, 10) or math.huge
  print(("  codes equal to fp32 %d/%d, reconstruction PSNR vs fp32 %.1f dB"):format(same, i32:numel(), psnr))
  T.ok("bf16 ran: the reconstruction differs from fp32's", mse > 0)
  T.ok(("codes equal %d/%d below 98 %%"):format(same, i32:numel()), same >= 0.98 * i32:numel())
  T.ok(("PSNR %.1f dB below 35"):format(psnr), psnr >= 35)
end)

test("make_samples_lower_precisions", function()
  for _, p in ipairs{"bf16", "int8"} do
    local out_dir = tmp .. "/samples_" .. p
    os.execute(("rm -rf '%s'"):format(out_dir))   -- a folder left by an earlier run would be resumed, not sampled
    local status, out = pipeline("make_samples.lua", ("config=%stransformer.yaml ckpt=%stransformer.safetensors "
      .. "out=%s n=2 batch=2 class=3 precision=%s"):format(MODEL, MODEL, out_dir, p))
    T.eq("make_samples precision=" .. p .. ": exit status\n" .. out, status, 0)
    T.ok("sampled both: " .. out, out:find("2 of 2 samples to make", 1, true) ~= nil)
    T.ok("wrote the samples", tt.fs.exists(out_dir .. "/000001.png"))
    T.eq("keeps the precision", tt.json.load(out_dir .. "/make_samples.json").precision, p)
  end
end)

test("fallback_one_line_per_model", function()
  local status, out = pipeline("sample_class.lua", ("config=%stransformer.yaml ckpt=%stransformer.safetensors class=1 "
    .. "n=1 output=%s/fallback.png precision=bf16"):format(MODEL, MODEL, tmp), "TAMING_CPU_ISA=generic")
  T.eq("exit status\n" .. out, status, 0)
  T.eq("one line per model\n" .. out, count(out, "precision=bf16 is not available"), 2)
  T.ok("the VQGAN's line\n" .. out, out:find("not available for first_stage_model.encoder, "
    .. "first_stage_model.decoder (no kernel (TAMING_CPU_ISA=generic)); running fp32", 1, true) ~= nil)
  T.ok("the transformer's line\n" .. out, out:find("not available for transformer (no kernel "
    .. "(TAMING_CPU_ISA=generic)); running fp32", 1, true) ~= nil)
end)

T.run("pipeline_precision", tests)
