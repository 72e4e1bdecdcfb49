-- export_images — a dataset's images as numbered 8-bit PNGs, as the training data
-- loader presents them (Fashion-MNIST: 28x28 padded with zeros to 32x32, the
-- shipped model's resolution): the real side of `taming run fid`. The pixels are
-- copied as bytes, never through floats, so they are the dataset's own.
--
--   taming run export_images data=fashion_mnist split=test out=DIR [limit=N] [pad=2]
local tt = require "taming"

local a = tt.args.parse(..., {
  data = {"string", required = true, choices = {"fashion_mnist"}},
  data_root = {"string", help = "the dataset folder (default: Debian's dataset-fashion-mnist)"},
  split = {"string", default = "test", choices = {"train", "test"}},
  out = {"string", required = true, help = "folder for the PNGs"},
  limit = {"int", help = "the first N images only"},
  pad = {"int", default = 2, help = "zero border (2: the 32x32 the models train on)"},
}, "taming run export_images data=fashion_mnist split=test out=DIR [limit=N]")
if a.pad < 0 then error(("pad=%d: expected 0 or more"):format(a.pad), 0) end
local images = tt.datasets.fashion_mnist(a.data_root, a.split)    -- u8 [N, 28, 28]
local n = images:size(0)
if a.limit then
  if a.limit < 1 then error(("limit=%d: expected at least 1"):format(a.limit), 0) end
  n = math.min(n, a.limit)
end
local h, w = images:size(1), images:size(2)
tt.fs.mkdir(a.out)
local canvas = tt.zeros({h + 2 * a.pad, w + 2 * a.pad, 1}, {dtype = "u8"})
local inner = canvas:narrow(0, a.pad, h):narrow(1, a.pad, w)
for i = 0, n - 1 do
  inner:copy_(images:select(0, i):unsqueeze(2))
  tt.image.save(("%s/%06d.png"):format(a.out, i), canvas)
end
print(("wrote %d images (%dx%d) to %s"):format(n, h + 2 * a.pad, w + 2 * a.pad, a.out))
