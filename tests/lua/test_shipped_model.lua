-- test_shipped_model.lua — the model shipped in models/fashion_mnist loads,
-- reconstructs held-out Fashion-MNIST images about as well as its README says
-- (measured there on all 10,000: PSNR 22.23 dB, validation loss 2.268), and the
-- README's sample command writes a labelled sheet of every class.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local M = T.srcdir() .. "/models/fashion_mnist"
local FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
if not tt.fs.exists(M .. "/transformer.safetensors") then
  os.exit(T.skip("shipped_model", M .. "/transformer.safetensors is absent"))
end
local tmp = T.tmpdir("shipped_model")
tt.fs.mkdir(tmp)
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end
local cmd = ("%s run %s/pipelines/%%s config=%s/transformer.yaml ckpt=%s/transformer.safetensors")
  :format(T.taming(), T.srcdir(), M, M)

test("weights_match_config", function()
  local model = tt.load(M .. "/transformer.safetensors", {config = M .. "/transformer.yaml"})
  T.eq("kind", model.kind, "Net2NetTransformer")
  T.eq("first stage codes", model.first_stage.n_embed, 128)
  -- no training state is shipped: no discriminator, no loss network
  local ck = tt.safetensors.load(M .. "/transformer.safetensors")
  T.ok("tensors in the file", ck:count() > 0)
  for _, k in ipairs(ck:names()) do
    T.ok("inference-only key " .. k, not k:find("discriminator", 1, true) and not k:find("^loss%."))
  end
  -- the transformer's file given with the first stage's config: the error points at the prefix
  T.raises("first-stage config, Net2Net weights", function()
    tt.load(M .. "/transformer.safetensors", {config = M .. "/vqgan.yaml"})
  end, "transformer.safetensors: missing keys 'encoder.conv_in.weight' [32, 1, 3, 3]",
    "the file has 'first_stage_model.encoder.conv_in.weight'")
end)

test("held_out_metrics", function()
  if not tt.fs.exists(FMNIST) then print("  (skipped: " .. FMNIST .. " absent)") return end
  local status, out = T.sh(cmd:format("evaluate.lua") .. " data=fashion_mnist split=test limit=512")
  T.eq("evaluate exit status: " .. out, status, 0)
  local function num(k) return tonumber(out:match('"' .. k .. '":([%d%.%-e]+)')) end
  T.eq("images", num("images"), 512)
  T.ok(("PSNR %.3f dB >= 21.5"):format(num("psnr_db")), num("psnr_db") >= 21.5)
  T.ok(("L1 %.4f <= 0.095"):format(num("rec_l1")), num("rec_l1") <= 0.095)
  T.ok(("codes used %d >= 96"):format(num("codebook_used")), num("codebook_used") >= 96)
  T.ok(("validation loss %.3f <= 2.40"):format(num("val_loss")), num("val_loss") <= 2.40)
end)

test("sample_sheet_of_every_class", function()
  local out_png = tmp .. "/sheet.png"
  local status, out = T.sh(cmd:format("sample_class.lua") .. " class=all n=3 seed=5 output=" .. out_png)
  T.eq("sample_class exit status: " .. out, status, 0)
  local img = tt.image.load(out_png)                  -- [1, 1, H, W] in [-1, 1]
  -- 10 rows of 32x32 samples 2 pixels apart; the class names in a left margin
  T.eq("sheet height", img:size(2), 10 * 34 + 2)
  local W = img:size(3)
  T.ok("sheet width " .. W .. " > 3 samples", W > 3 * 34 + 2)
  -- the last sample of every row is a garment: some ink, not a white square
  for r = 0, 9 do
    local cell = img:slice(2, 2 + r * 34, 2 + r * 34 + 32):slice(3, W - 34, W - 2)
    local ink, mean = cell:max():item(), cell:mean():item()
    T.ok(("row %d: max %.2f > 0"):format(r, ink), ink > 0)
    T.ok(("row %d: mean %.2f in (-0.95, 0.6)"):format(r, mean), mean > -0.95 and mean < 0.6)
  end
end)

os.exit(T.run("shipped_model", tests))
