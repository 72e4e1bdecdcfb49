-- highres — high-resolution synthesis with the sliding attention window (the
-- paper's 1280x832 landscapes, D-RIN at 512): a latent grid larger than the
-- transformer's block is filled cell by cell, each predicted from a
-- training-size window placed as the official demo places it (anchor 8), the
-- KV cache reused while the window does not move. With cond=none the model's
-- own fixed prefix (SOS or class) conditions every window. size=WxH gives a
-- non-square grid (1280x832 -> 80x52 codes at f16): the window is placed in each
-- direction as the official loop places it, and the condition is built at WxH.
--
--   taming run pipelines/highres.lua config=M.yaml ckpt=M.ckpt size=N|WxH [cond=none|depth|segmentation|edge|lowres|pose]
--       [input=FILE] [dataset=..] [class=K] [n=1] [seed=0] [top_k=100] [output=highres.png] [codes=c.npy]
local tt = require "taming"
local P = require "taming.pipeline"
local C = require "taming.conditions"

local a = tt.args.parse(..., P.sampling_schema({
  cond = {"string", default = "none", choices = {"none", table.unpack(C.KINDS)}},
  input = {"string"},
  dataset = {"string"},
  class = {"int"},
  factor = {"int", default = 8},
  n = {"int", default = 1, help = "samples"},
}), "taming run pipelines/highres.lua config=M.yaml ckpt=M.ckpt size=N [cond=...] [input=FILE]")
local model = P.load(a)
local size = P.parse_size(a.size) or model.first_stage.ddconfig.resolution
local geo = P.geometry(model, size)
if geo.h < geo.train or geo.w < geo.train then
  error(("size=%dx%d gives a %dx%d latent grid (w x h), smaller than the %dx%d window the model was trained on "
    .. "(use width and height >= %d)"):format(geo.pixels.w, geo.pixels.h, geo.w, geo.h, geo.train, geo.train,
    geo.train * geo.f), 0)
end
local cond, cond_grid
if a.cond == "none" then
  cond = P.prefix_cond(model, a, a.n)
  if not cond then error(("%s: this model needs a condition (cond=... input=... or class=)"):format(a.config), 0) end
else
  local c = C.build(a.cond, a.input, geo.pixels, {dataset = a.dataset, factor = a.factor, channels = model.cond_channels})
  cond, cond_grid = P.encode_cond(model, P.repeat_batch(c:to(a.device), a.n))
end
local codes = P.sample_grid(model, a, geo, cond, cond_grid)
P.save(a, P.decode(model, codes), codes)
