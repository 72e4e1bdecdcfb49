-- conditional — image synthesis from a condition: depth (D-RIN), segmentation
-- (S-FLCKR, ADE20K, COCO), edges, a low-resolution image (x8 super-resolution)
-- or a pose. The condition is built from input= exactly as the official data
-- code builds it; a latent grid larger than the training window is sampled with
-- the sliding window (the condition's codes are cropped with the same window).
--
--   taming run pipelines/conditional.lua config=M.yaml ckpt=M.ckpt cond=depth|segmentation|edge|lowres|pose
--       input=FILE [dataset=sflckr|coco|ade20k] [size=N|WxH] [n=1] [factor=8] [seed=0] [temperature=1]
--       [top_k=100] [output=samples.png] [codes=c.npy]
local tt = require "taming"
local P = require "taming.pipeline"
local C = require "taming.conditions"

local a = tt.args.parse(..., P.sampling_schema({
  cond = {"string", required = true, choices = C.KINDS},
  input = {"string", required = true, help = "the condition's file"},
  dataset = {"string", help = "segmentation encoding: sflckr, coco or ade20k"},
  factor = {"int", default = 8, help = "lowres: downscaling factor"},
}), "taming run pipelines/conditional.lua config=M.yaml ckpt=M.ckpt cond=KIND input=FILE")
local model = P.load(a)
local size = P.parse_size(a.size)   -- nil: the condition file's own size
local cin = model.cond_channels
local c = C.build(a.cond, a.input, size, {dataset = a.dataset, factor = a.factor, channels = cin})
if cin and c:size(1) ~= cin then
  error(("%s: the %s condition has %d channels, the model's condition stage takes %d"):format(a.input, a.cond,
    c:size(1), cin), 0)
end
c = P.repeat_batch(c:to(a.device), a.n)
local cond, cond_grid = P.encode_cond(model, c)
local geo = P.geometry(model, {w = c:size(3), h = c:size(2)})
local codes = P.sample_grid(model, a, geo, cond, cond_grid)
P.save(a, P.decode(model, codes), codes)
