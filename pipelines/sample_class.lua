-- sample_class — class-conditional samples (ImageNet cIN, or the shipped
-- Fashion-MNIST model): class=K for n samples of one class, class=all for a
-- labelled sheet with n samples of every class (one row per class).
--
--   taming run pipelines/sample_class.lua config=M.yaml ckpt=M.ckpt class=all|K [n=4]
--       [temperature=1] [top_k=..] [top_p=..] [seed=0] [output=samples.png] [codes=c.npy]
local tt = require "taming"
local P = require "taming.pipeline"

local a = tt.args.parse(..., P.sampling_schema({
  class = {"string", required = true, help = "a class id, or all"},
}), "taming run pipelines/sample_class.lua config=M.yaml ckpt=M.ckpt class=all|K [n=4]")
local model = P.load(a)
local nclass = model.n_classes
if not nclass then error(("%s: not a class-conditional model (no Labelator condition stage)"):format(a.config), 0) end

local classes = {}
if a.class == "all" then
  for k = 0, nclass - 1 do classes[#classes + 1] = k end
else
  local k = math.tointeger(tonumber(a.class))
  if not k then error(("argument class=%s: expected an integer or all"):format(a.class), 0) end
  classes[1] = k
end
local labels = {}
for _, k in ipairs(classes) do
  for _ = 1, a.n do labels[#labels + 1] = k end
end
-- Labelator checks the range (a class id outside [0, n_classes) is an error naming both)
local _, cond = model:encode_to_c(tt.tensor(labels, {dtype = "i64", device = a.device}))
local geo = P.geometry(model, a.size)
local codes = P.sample_grid(model, a, geo, cond, nil)
local images = P.decode(model, codes)
if a.class ~= "all" then
  a.nrow = a.nrow or a.n
  P.save(a, images, codes)
  return
end
-- a labelled sheet: one row per class, its name in a margin on the left
local pad, scale = 2, 1
local grid = tt.image.to_u8(tt.image.grid(images:to("cpu"), a.n, pad, -1.0))      -- [Hg, Wg, C] u8
local names = {}
local margin = 0
for k, c in ipairs(classes) do
  names[k] = (model.class_names and model.class_names[c + 1]) or tostring(c)
  margin = math.max(margin, tt.image.text_width(names[k], scale))
end
margin = margin + 2 * pad
local Hg, Wg, C = grid:size(0), grid:size(1), grid:size(2)
local sheet = tt.zeros({Hg, Wg + margin, C}, {dtype = "u8"})
sheet:narrow(1, margin, Wg):copy_(grid)
local h = images:size(2)
for k = 1, #classes do
  local y = pad + (k - 1) * (h + pad) + (h - 7 * scale) // 2
  tt.image.draw_text(sheet, pad, y, names[k], scale, 255)
end
tt.image.save(a.output, sheet)
if a.codes then tt.npy.save(a.codes, codes:to("cpu")) end
print(("wrote %s (%d classes x %d samples, latent %dx%d codes, w x h)%s"):format(a.output, #classes, a.n, codes:size(2),
  codes:size(1), a.codes and (" and " .. a.codes) or ""))
