-- completion — keeps the top half of an image's codes and samples the rest
-- (the official "half sample"). The condition is the model's: SOS for an
-- unconditional model, class= for a class-conditional one, or cond=/cond_input=
-- for a spatial one.
--
--   taming run pipelines/completion.lua config=M.yaml ckpt=M.ckpt input=IMG [class=K]
--       [cond=depth|segmentation|edge|lowres|pose cond_input=FILE dataset=..] [size=N|WxH] [n=4] [keep=0.5]
local tt = require "taming"
local P = require "taming.pipeline"
local C = require "taming.conditions"

local a = tt.args.parse(..., P.conditional_schema({
  input = {"string", required = true, help = "the image to complete"},
  keep = {"number", default = 0.5, help = "share of the codes kept (raster order)"},
}), "taming run pipelines/completion.lua config=M.yaml ckpt=M.ckpt input=IMG")
local model = P.load(a)
local size = P.parse_size(a.size) or model.first_stage.ddconfig.resolution
local x = C.image(a.input, size, model.first_stage.in_channels):to(a.device)
local pixels = {w = x:size(3), h = x:size(2)}
local geo = P.geometry(model, pixels)
local cond, cond_grid = P.prefix_cond(model, a, a.n), nil
if not cond and a.cond then
  if not a.cond_input then error("cond= needs cond_input=FILE", 0) end
  local c = C.build(a.cond, a.cond_input, pixels, {dataset = a.dataset, factor = a.factor, channels = model.cond_channels})
  cond, cond_grid = P.encode_cond(model, P.repeat_batch(c:to(a.device), a.n))
elseif not cond then
  error(("%s: give class= or cond=/cond_input= for this model's condition"):format(a.config), 0)
end
local _, _, idx = tt.no_grad(function() return model.first_stage:encode(x) end)
local known = P.repeat_batch(idx:reshape(1, geo.h, geo.w), a.n)
local start = math.floor(geo.h * geo.w * a.keep)
local codes = P.sample_grid(model, a, geo, cond, cond_grid, known, start)
-- the first row of the sheet is the input's reconstruction
local rec = P.decode(model, known:slice(0, 0, 1):contiguous())
local samples = P.decode(model, codes)
a.nrow = a.nrow or (a.n + 1)
P.save(a, tt.cat({rec, samples}, 0), codes)
