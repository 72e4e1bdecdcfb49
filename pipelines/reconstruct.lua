-- reconstruct — encode an image with a VQGAN and decode it again.
--
--   taming run pipelines/reconstruct.lua config=M.yaml ckpt=M.ckpt input=IMG output=OUT.png
--                                        [size=N] [dump=DIR] [device=cpu|cuda]
--
-- size=N resizes the shorter side to N and centre-crops N x N, as the official
-- ImagePaths does. dump=DIR writes h.npy (after quant_conv), indices.npy (int64
-- [1, h, w]), zq.npy and rec.npy.
local tt = require "taming"

local a = tt.args.parse(..., {
  config = {"string", required = true, help = "official YAML config"},
  ckpt = {"string", required = true, help = ".ckpt or .safetensors"},
  input = {"string", required = true, help = "PNG or JPEG"},
  output = {"string", required = true, help = "PNG to write"},
  size = {"int"},
  dump = {"string"},
  device = {"string", default = "cpu", choices = {"cpu", "cuda"}},
}, "taming run pipelines/reconstruct.lua config=M.yaml ckpt=M.ckpt input=IMG output=OUT.png [size=N] [dump=DIR]")

local model = tt.load(a.ckpt, {config = a.config, device = a.device})

-- [1, C, H, W] in [-1, 1]; the channel count checked against the model's
local x = require("taming.conditions").image(a.input, a.size, model.in_channels)
x = x:to(a.device)

local h, quant, indices, rec = tt.no_grad(function()
  local h = model:encode_to_prequant(x)                 -- [1, embed_dim, h, w]
  local quant, _, indices = model.quantize:forward(h)
  return h, quant, indices, model:decode(quant)
end)

tt.image.save(a.output, rec:to("cpu"))
if a.dump then
  tt.fs.mkdir(a.dump)
  local hw = h:shape()
  tt.npy.save(a.dump .. "/h.npy", h:to("cpu"))
  tt.npy.save(a.dump .. "/indices.npy", indices:to("cpu"):reshape(hw[1], hw[3], hw[4]))
  tt.npy.save(a.dump .. "/zq.npy", quant:to("cpu"))
  tt.npy.save(a.dump .. "/rec.npy", rec:to("cpu"))
end
print(("%s -> %s (latent %dx%d, %d codes)"):format(a.input, a.output, h:size(2), h:size(3), model.n_embed))
