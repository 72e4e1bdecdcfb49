-- inpaint — resamples a region of an image and keeps the rest: the image is
-- encoded to codes, every code outside the region is kept (forced tokens) and
-- the codes inside it are sampled, each conditioned on all the codes before it
-- in raster order, kept or sampled; then the grid is decoded. The region is a
-- pixel box (x0,y0,x1,y1: x1, y1 exclusive) or a mask PNG of the input's size
-- whose bright pixels (> 127 in any channel) mark what to repaint; a latent
-- cell is resampled when any of its pixels is marked. The first image of the
-- sheet is the input's reconstruction.
--
--   taming run pipelines/inpaint.lua config=M.yaml ckpt=M.ckpt input=IMG box=x0,y0,x1,y1 | mask=M.png
--       [class=K | cond=KIND cond_input=FILE] [n=4] [size=N|WxH] [seed=0] [sampler=...] [output=samples.png]
local tt = require "taming"
local P = require "taming.pipeline"
local C = require "taming.conditions"

local a = tt.args.parse(..., P.conditional_schema({
  input = {"string", required = true, help = "the image to inpaint"},
  box = {"intlist", help = "x0,y0,x1,y1: the pixel box to repaint"},
  mask = {"string", help = "PNG of the input's size: bright pixels are repainted"},
}), "taming run pipelines/inpaint.lua config=M.yaml ckpt=M.ckpt input=IMG box=x0,y0,x1,y1|mask=M.png")
if (a.box == nil) == (a.mask == nil) then error("give the region to repaint as box=x0,y0,x1,y1 or as mask=FILE.png (one of them)", 0) end
local model = P.load(a)
local size = P.parse_size(a.size) or model.first_stage.ddconfig.resolution
local x = C.image(a.input, size, model.first_stage.in_channels):to(a.device)     -- [1, C, H, W]
local H, W = x:size(2), x:size(3)
local geo = P.geometry(model, {w = W, h = H})
local f = geo.f

-- the latent mask [1, h, w] u8: 1 where a cell is resampled
local cells
if a.box then
  local b = a.box
  if #b ~= 4 or not (0 <= b[1] and b[1] < b[3] and b[3] <= W and 0 <= b[2] and b[2] < b[4] and b[4] <= H) then
    error(("box=%s: expected x0,y0,x1,y1 with 0 <= x0 < x1 <= %d and 0 <= y0 < y1 <= %d (pixels of the %dx%d input)"):format(
      table.concat(b, ","), W, H, W, H), 0)
  end
  local j0, i0, j1, i1 = b[1] // f, b[2] // f, (b[3] + f - 1) // f, (b[4] + f - 1) // f
  cells = tt.zeros({1, geo.h, geo.w}, {dtype = "u8"})
  cells:narrow(1, i0, i1 - i0):narrow(2, j0, j1 - j0):fill_(1)
else
  local m, img = tt.image.load(a.mask, {raw = true}), tt.image.load(a.input, {raw = true})   -- [H, W, C] u8
  if m:size(0) ~= img:size(0) or m:size(1) ~= img:size(1) then
    error(("%s: the mask is %dx%d, the input %s is %dx%d (width x height): they must match"):format(a.mask, m:size(1),
      m:size(0), a.input, img:size(1), img:size(0)), 0)
  end
  local px = C.to_nchw(C.resize_crop(m, size, "nearest"):float())                 -- [1, Cm, H, W] in [0, 255]
  local any = tt.max_pool2d(px, f, f):max(1, true)                                 -- [1, 1, h, w]
  cells = any:gt(127):reshape(1, geo.h, geo.w)
  if cells:float():sum():item() == 0 then error(("%s: no pixel is marked (> 127): nothing to repaint"):format(a.mask), 0) end
end

local cond, cond_grid = P.prefix_cond(model, a, a.n), nil
if not cond and a.cond then
  if not a.cond_input then error("cond= needs cond_input=FILE", 0) end
  local c = C.build(a.cond, a.cond_input, {w = W, h = H}, {dataset = a.dataset, factor = a.factor, channels = model.cond_channels})
  cond, cond_grid = P.encode_cond(model, P.repeat_batch(c:to(a.device), a.n))
elseif not cond then
  error(("%s: give class= or cond=/cond_input= for this model's condition"):format(a.config), 0)
end
local _, _, idx = tt.no_grad(function() return model.first_stage:encode(x) end)
local known = P.repeat_batch(idx:reshape(1, geo.h, geo.w), a.n)
local codes = P.sample_grid(model, a, geo, cond, cond_grid, known, 0, P.repeat_batch(cells, a.n))
local rec = P.decode(model, known:slice(0, 0, 1):contiguous())
a.nrow = a.nrow or (a.n + 1)
P.save(a, tt.cat({rec, P.decode(model, codes)}, 0), codes)
