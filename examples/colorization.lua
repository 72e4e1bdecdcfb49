-- colorization — a new conditioning task in one file: colour images from their
-- grayscale version. The condition is the luma of the image, [B, 1, H, W] in
-- [-1, 1], encoded by a one-channel VQGAN condition stage; everything else is
-- the shipped pipelines. Walked through in docs/tutorial-colorization.md.
--
--   taming run examples/colorization.lua step=train_vqgan config=gray_vq.yaml data=folder data_root=photos ...
--   taming run examples/colorization.lua step=train_transformer config=colorize.yaml data=folder data_root=photos ...
--   taming run examples/colorization.lua step=conditional config=colorize.yaml ckpt=M.safetensors cond=gray input=x.png
local tt = require "taming"
local conditions = require "taming.conditions"
local train = require "taming.train"

-- ITU-R 601 luma, the range kept ([-1, 1])
local function gray(rgb)      -- [B, 3, H, W] -> [B, 1, H, W]
  return rgb:narrow(1, 0, 1) * 0.299 + rgb:narrow(1, 1, 1) * 0.587 + rgb:narrow(1, 2, 1) * 0.114
end

-- cond=gray in the sampling pipelines (from an image file), and image_key / cond_stage_key
-- gray in training (from each batch of the data loader)
conditions.register("gray", function(path, size) return gray(conditions.image(path, size, 3)) end)
train.register_input("gray", function(batch) return gray(batch.image) end)

-- run the shipped pipeline that step= names with the other arguments
local args, step = {}, nil
for k, v in pairs(... or {}) do
  if k == "step" then step = v elseif type(k) == "string" then args[k] = v end
end
local steps = {train_vqgan = true, train_transformer = true, conditional = true, completion = true, inpaint = true}
if not steps[step] then
  error(("step=%s: expected train_vqgan, train_transformer, conditional, completion or inpaint"):format(tostring(step)),
    0)
end
local chunk = assert(loadfile(tt.pipelines_dir() .. "/" .. step .. ".lua"))
return chunk(args)
