-- taming.conditions — condition tensors built from files exactly as the official
-- data code builds them (REFERENCE §6). Every builder returns a float tensor
-- [1, C, H, W] ready for a condition stage's encode. A size is N (square) or
-- {w =, h =} (non-square: scaled to cover it, centre-cropped). The kinds live in a
-- registry: conditions.register(kind, builder) adds one (cond=KIND in every
-- pipeline); the shipped kinds register themselves the same way.
--
--   image(path, size)           RGB in [-1, 1]: SmallestMaxSize(size) bilinear + CenterCrop
--   depth(path, size)           D-RIN: RGBA float bytes -> min-max to [-1, 1] at full
--                               resolution -> SmallestMaxSize bilinear (float) + CenterCrop
--   segmentation(path, dataset, size, K)
--                               label PNG -> (COCO: +1 shift) -> nearest resize + crop ->
--                               one-hot [K, H, W] of 0/1 (sflckr 182, coco 183, ade20k 151)
--   edge(path, size)            Canny (sigma 2) of the gray [-1, 1] image, 0/1, 3 channels
--   lowres(path, size, factor)  PIL bicubic down by `factor` and back up (ImageNetScale)
--   pose(path, size, K)         keypoints (a text file of "x y [visible]" lines in the
--                               image's pixel coordinates) rendered as one 0/1 disc map
--                               per keypoint, [K, H, W]
local tt = require "taming.core"

local M = {}

M.DATASETS = {
  sflckr = {K = 182, shift = false},
  coco = {K = 183, shift = true},
  ade20k = {K = 151, shift = false},
}

-- u8 [H, W, C] -> resized (shorter side `size`) and centre-cropped, or unchanged without size.
-- size is N (square, the official SmallestMaxSize + CenterCrop) or {w =, h =}: the image is
-- scaled to cover w x h (aspect kept) and centre-cropped to it.
local function resize_crop(img, size, interp)
  if not size then return img end
  if type(size) == "table" then
    if size.w == size.h then return resize_crop(img, size.w, interp) end
    local h0, w0 = img:size(0), img:size(1)
    local k = math.max(size.w / w0, size.h / h0)
    local nh, nw = math.max(size.h, math.ceil(h0 * k - 1e-9)), math.max(size.w, math.ceil(w0 * k - 1e-9))
    -- the centre crop's window only is resized (center_crop's origin: (N - n) // 2)
    return tt.image.resize(img, nh, nw, interp or "linear", (nh - size.h) // 2, (nw - size.w) // 2, size.h, size.w)
  end
  -- only the kept window is resized, so a long thin strip does not grow first
  return tt.image.smallest_max_size_crop(img, size, interp or "linear", size, size)
end
M.resize_crop = resize_crop

-- The text of a small input file (keypoints, image lists), read whole up to
-- `limit` bytes: a directory or a device such as /dev/zero is refused instead of
-- being read line by line until memory runs out.
function M.read_text(path, what, limit)
  if tt.fs.isdir(path) then error(("%s: is a directory, not %s"):format(path, what), 0) end
  local f, err = io.open(path, "rb")
  if not f then error(("%s: cannot open %s: %s"):format(path, what, err), 0) end
  local text, rerr = f:read(limit + 1)
  f:close()
  if not text and rerr then error(("%s: cannot read %s: %s"):format(path, what, rerr), 0) end
  text = text or ""
  if #text > limit then error(("%s: larger than %d bytes, too large for %s"):format(path, limit, what), 0) end
  return text
end

-- u8/f32 [H, W, C] -> f32 [1, C, H, W]
local function to_nchw(x)
  if x:dim() == 2 then x = x:unsqueeze(2) end
  return x:permute(2, 0, 1):unsqueeze(0):contiguous()
end
M.to_nchw = to_nchw

function M.image(path, size, channels)
  local u8 = tt.image.load(path, {raw = true})       -- [H, W, C]
  local c = u8:size(2)
  if channels and c ~= channels then
    error(("%s: the image has %d channel%s but the model takes %d"):format(path, c, c == 1 and "" or "s", channels), 0)
  end
  return tt.image.from_u8(resize_crop(u8, size, "linear"))
end

function M.depth(path, size)
  local d = tt.image.depth_normalize(tt.image.depth_load(path))    -- f32 [H, W] in [-1, 1]
  if size then d = resize_crop(d, size, "linear") end
  return to_nchw(d)
end

function M.segmentation(path, dataset, size, K)
  local ds = M.DATASETS[dataset]
  if not ds then error(("segmentation: unknown dataset '%s' (sflckr, coco, ade20k)"):format(tostring(dataset)), 0) end
  local labels = tt.image.labels_load(path)                        -- u8 [H, W]
  -- nearest resizing commutes with the +1 shift, which labels_onehot applies
  if size then labels = resize_crop(labels, size, "nearest") end
  K = K or ds.K
  return tt.image.labels_onehot(labels, K, ds.shift, path):unsqueeze(0)   -- [1, K, H, W]
end

function M.edge(path, size)
  local x = tt.image.from_u8(resize_crop(tt.image.load(path, {raw = true}), size, "linear"))   -- [1, 3, H, W]
  local hwc = x:select(0, 0):permute(1, 2, 0):contiguous()                                -- [H, W, 3] in [-1, 1]
  local edges = tt.image.canny(tt.image.rgb2gray(hwc), 2.0)                                -- [H, W] 0/1
  local e = edges:unsqueeze(0):unsqueeze(0)
  return tt.cat({e, e, e}, 1)
end

function M.lowres(path, size, factor)
  factor = factor or 8
  local u8 = resize_crop(tt.image.load(path, {raw = true}), size, "linear")
  local h, w = u8:size(0), u8:size(1)
  local nh, nw = h // factor, w // factor
  if nh < 1 or nw < 1 then error(("%s: %dx%d is too small to downscale by %d"):format(path, h, w, factor), 0) end
  local small = tt.image.pil_resize(u8, nh, nw, "bicubic")
  return tt.image.from_u8(tt.image.pil_resize(small, h, w, "bicubic"))
end

-- keypoints: "x y [visible]" per line (# comments allowed); K keypoints in file order
function M.pose(path, size, K, radius)
  local text = M.read_text(path, "a keypoints file", 1 << 20)
  local pts = {}
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    local s = line:gsub("#.*", "")
    if s:match("%S") then
      local x, y, v = s:match("^%s*(%-?[%d%.]+)%s+(%-?[%d%.]+)%s*(%-?[%d%.]*)%s*$")
      if not x then error(("%s:%d: expected 'x y [visible]'"):format(path, n), 0) end
      pts[#pts + 1] = {tonumber(x), tonumber(y), v == "" and 1 or tonumber(v)}
    end
  end
  K = K or #pts
  if #pts ~= K then error(("%s: %d keypoints, the model takes %d"):format(path, #pts, K), 0) end
  size = size or 256
  local H, W = size, size
  if type(size) == "table" then H, W = size.h, size.w end
  radius = radius or math.max(1, math.min(H, W) // 64)
  local map = tt.image.render_keypoints(pts, H, W, radius)          -- [K, H, W]
  return map:unsqueeze(0)
end

-- ---- the registry of condition kinds (cond=KIND in the pipelines) ----

-- kind -> builder(path, size, o) -> f32 [1, C, H, W]; M.KINDS lists the kinds in
-- registration order (the pipelines' cond= choices).
M.builders = {}
M.KINDS = {}

-- Registers (or replaces) a condition kind. builder(path, size, o): path is the
-- condition's file (checked to exist), size nil | N | {w =, h =}, o the options of
-- M.build; it returns the condition tensor [1, C, H, W] a condition stage encodes.
function M.register(kind, builder)
  if type(kind) ~= "string" or not kind:match("^[%w_]+$") then
    error(("conditions.register: the kind must be a name of letters, digits and _, found %s"):format(tostring(kind)), 0)
  end
  if type(builder) ~= "function" then
    error(("conditions.register('%s'): the builder must be a function(path, size, o), found a %s"):format(kind,
      type(builder)), 0)
  end
  if not M.builders[kind] then M.KINDS[#M.KINDS + 1] = kind end
  M.builders[kind] = builder
end

M.register("depth", function(path, size) return M.depth(path, size) end)
M.register("segmentation", function(path, size, o)
  if not o.dataset then error("cond=segmentation needs dataset=sflckr|coco|ade20k", 0) end
  return M.segmentation(path, o.dataset, size, o.channels)
end)
M.register("edge", function(path, size) return M.edge(path, size) end)
M.register("lowres", function(path, size, o) return M.lowres(path, size, o.factor) end)
M.register("pose", function(path, size, o) return M.pose(path, size, o.channels) end)

-- The condition tensor [1, C, H, W] of a file, as the kind's builder makes it.
-- o: dataset (segmentation: sflckr | coco | ade20k), factor (lowres), channels (the
-- model's condition channels: segmentation labels, pose keypoints).
function M.build(kind, path, size, o)
  local builder = M.builders[kind]
  if not builder then
    error(("cond=%s: expected one of %s (or a kind added with conditions.register)"):format(tostring(kind),
      table.concat(M.KINDS, ", ")), 0)
  end
  if not path then error(("cond=%s needs an input file"):format(kind), 0) end
  if not tt.fs.exists(path) then error(("%s: no such file (the condition input)"):format(path), 0) end
  return builder(path, size, o or {})
end

return M
