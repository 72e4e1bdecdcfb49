-- reconstruct — encode an image with a VQGAN and decode it again.
--
--   taming run pipelines/reconstruct.lua config=M.yaml ckpt=M.ckpt input=IMG output=OUT.png
--                                        [size=N] [dump=DIR] [device=cpu|cuda] [precision=fp32|bf16]
--
-- precision=bf16 runs the encoder's and decoder's convolutions with bf16 weights where
-- the CPU has AVX512-BF16 or AMX (fp32 elsewhere, said in one line); the last line
-- names the precision that ran and its instruction set. int8 is the transformer's.
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
  precision = {"string", default = "fp32", choices = {"fp32", "bf16", "int8"},
               help = "the convolutions' weights: fp32 or bf16"},
}, "taming run pipelines/reconstruct.lua config=M.yaml ckpt=M.ckpt input=IMG output=OUT.png [size=N] [dump=DIR]")
if a.precision == "int8" then
  error("precision=int8: int8 weights are the transformer's; a VQGAN runs fp32 or bf16", 0)
end

local model = tt.load(a.ckpt, {config = a.config, device = a.device, precision = a.precision})
local info = model.precision_info

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
print(("%s -> %s (latent %dx%d, %d codes; %s, %s)"):format(a.input, a.output, h:size(2), h:size(3), model.n_embed,
  info.precision, info.isa))
