-- taming.data — training datasets and the threaded loader (host/data/dataloader.c).
--
--   local ds = data.image_folder{root = "imgs", size = 256, random_crop = true}
--   local ds = data.fashion_mnist{split = "train", channels = 1, size = 16}
--   local ds = data.paired{images = "img", conditions = "seg", kind = "segmentation", dataset = "sflckr", size = 256}
--   local loader = data.loader(ds, {batch = 8, seed = 23, workers = 2})
--   local b = loader:next()      -- {image = [B, C, H, W], cond =, label =, index =, epoch =, step =}
--   loader:position()            -- {epoch =, step =} of the next batch (saved in checkpoints)
--
-- A dataset is a description (file lists, an array, preprocessing); the loader
-- decodes it in C worker threads, in an order that depends only on the seed and
-- the epoch, so a resumed run sees the batches an uninterrupted one would.
local tt = require "taming.core"
local conditions = require "taming.conditions"

local D = {}

local IMAGE_EXT = {png = true, jpg = true, jpeg = true}

local function is_image(name)
  local ext = name:match("%.([^./]+)$")
  return ext ~= nil and IMAGE_EXT[ext:lower()] == true
end

-- relative paths of the image files under root, sorted (recursively)
local function list_images(root, rel, out)
  out = out or {}
  local dir = rel and (root .. "/" .. rel) or root
  if not tt.fs.isdir(dir) then error(("%s: not a folder"):format(dir), 0) end
  for _, name in ipairs(tt.fs.listdir(dir)) do
    local r = rel and (rel .. "/" .. name) or name
    if tt.fs.isdir(root .. "/" .. r) then
      list_images(root, r, out)
    elseif is_image(name) then
      out[#out + 1] = r
    end
  end
  return out
end
D.list_images = list_images

local function common(o, spec)
  spec.size = o.size or 0
  spec.random_crop = o.random_crop or false
  spec.hflip = o.hflip or false
  spec.channels = o.channels or spec.channels or 3
  spec.interp = o.interp or spec.interp or "linear"
  return spec
end

local function limit(list, n)
  if not n or n >= #list then return list end
  local out = {}
  for i = 1, n do out[i] = list[i] end
  return out
end

-- ImagePaths over every PNG/JPEG under root (sorted relative paths). With
-- class_folders = true the label of an image is the index of its first-level
-- folder among the sorted folders (as the ImageNet datasets number synsets).
function D.image_folder(o)
  if not o.root then error("image_folder: give root = 'folder'", 0) end
  local rel = limit(list_images(o.root), o.limit)
  if #rel == 0 then error(("%s: no PNG or JPEG files"):format(o.root), 0) end
  local spec = {paths = {}, n = #rel, name = o.root}
  for i, r in ipairs(rel) do spec.paths[i] = o.root .. "/" .. r end
  if o.class_folders then
    local classes, ids = {}, {}
    for _, r in ipairs(rel) do
      local top = r:match("^([^/]+)/")
      if not top then error(("%s/%s: with class_folders every image must be inside a class folder"):format(o.root, r), 0) end
      if not ids[top] then classes[#classes + 1] = top; ids[top] = true end
    end
    table.sort(classes)
    for i, c in ipairs(classes) do ids[c] = i - 1 end
    local labels = {}
    for i, r in ipairs(rel) do labels[i] = ids[r:match("^([^/]+)/")] end
    spec.labels = tt.tensor(labels, {dtype = "i64"})
    spec.classes = classes
  end
  return common(o, spec)
end

-- The official CustomTrain / CustomTest: a text file with one image path per
-- line (relative paths are taken relative to `root` when given); center crop.
function D.image_list(o)
  if not o.file then error("image_list: give file = 'list.txt'", 0) end
  -- 256 MiB: a million paths of 256 bytes
  local text = conditions.read_text(o.file, "an image list", 256 << 20)
  local spec = {paths = {}, name = o.file}
  for line in text:gmatch("[^\n]+") do
    local p = line:match("^%s*(.-)%s*$")
    if p ~= "" then
      if o.root and p:sub(1, 1) ~= "/" then p = o.root .. "/" .. p end
      spec.paths[#spec.paths + 1] = p
    end
  end
  spec.paths = limit(spec.paths, o.limit)
  spec.n = #spec.paths
  if spec.n == 0 then error(("%s: the image list is empty"):format(o.file), 0) end
  return common(o, spec)
end

-- Fashion-MNIST: u8 [N, 28, 28] padded with zeros to 32x32 (then resized and
-- cropped when size is given), 1 or 3 channels, class labels.
function D.fashion_mnist(o)
  o = o or {}
  local images, labels = tt.datasets.fashion_mnist(o.dir, o.split or "train")
  if o.limit and o.limit < images:size(0) then
    images = images:slice(0, 0, o.limit):contiguous()
    labels = labels:slice(0, 0, o.limit):contiguous()
  end
  local spec = {array = images, n = images:size(0), pad = o.pad or 2, name = "fashion-mnist/" .. (o.split or "train")}
  if o.labels ~= false then spec.labels = labels end
  return common(o, spec)
end

-- Images paired with a condition PNG of the same relative path (extension .png)
-- under `conditions`: kind = "segmentation" (8-bit labels -> one-hot; dataset =
-- sflckr | coco | ade20k picks K and the COCO shift, or give n_labels/shift) or
-- "depth" (RGBA float bytes, normalised to [-1, 1]). The image is resized with
-- interp (bicubic for segmentation, as SegmentationBase; bilinear for depth).
function D.paired(o)
  if not o.images or not o.conditions then error("paired: give images = 'folder' and conditions = 'folder'", 0) end
  local kind = o.kind or "segmentation"
  if kind ~= "segmentation" and kind ~= "depth" then
    error(("paired: kind must be segmentation or depth, found '%s'"):format(tostring(kind)), 0)
  end
  local rel = limit(list_images(o.images), o.limit)
  if #rel == 0 then error(("%s: no PNG or JPEG files"):format(o.images), 0) end
  local spec = {paths = {}, cond_paths = {}, n = #rel, cond = kind, name = o.images}
  for i, r in ipairs(rel) do
    spec.paths[i] = o.images .. "/" .. r
    local c = o.conditions .. "/" .. r:gsub("%.[^./]+$", "") .. ".png"
    if not tt.fs.exists(c) then
      error(("%s: no condition for %s (expected %s)"):format(o.conditions, spec.paths[i], c), 0)
    end
    spec.cond_paths[i] = c
  end
  if kind == "segmentation" then
    local ds = o.dataset and conditions.DATASETS[o.dataset]
    if o.dataset and not ds then
      error(("paired: unknown segmentation dataset '%s' (sflckr, coco, ade20k)"):format(o.dataset), 0)
    end
    spec.n_labels = o.n_labels or (ds and ds.K)
    if not spec.n_labels then error("paired: segmentation needs dataset = sflckr|coco|ade20k or n_labels = K", 0) end
    if o.shift ~= nil then spec.shift = o.shift else spec.shift = ds and ds.shift or false end
    spec.interp = "cubic"
  else
    spec.interp = "linear"
  end
  return common(o, spec)
end

-- The official data section (main.DataModuleFromConfig): batch size and the
-- train dataset. Returns dataset, batch_size. Supported targets: the custom
-- image lists (CustomTrain / CustomTest).
local CUSTOM = {
  ["taming.data.custom.CustomTrain"] = "training_images_list_file",
  ["taming.data.custom.CustomTest"] = "test_images_list_file",
}

function D.from_config(data, split, o)
  o = o or {}
  if type(data) ~= "table" then error("config: missing key 'data'", 0) end
  local p = data.params or {}
  local ds = p[split or "train"]
  if type(ds) ~= "table" or not ds.target then
    error(("config: missing key 'data.params.%s.target'"):format(split or "train"), 0)
  end
  local key = CUSTOM[ds.target]
  if not key then
    local known = {}
    for k in pairs(CUSTOM) do known[#known + 1] = k end
    table.sort(known)
    error(("config: data target '%s' is not supported (known: %s); choose the data with data=folder|list|"
      .. "paired|fashion_mnist instead"):format(ds.target, table.concat(known, ", ")), 0)
  end
  local dp = ds.params or {}
  if not dp[key] then error(("config: missing key 'data.params.%s.params.%s'"):format(split or "train", key), 0) end
  return D.image_list{file = dp[key], root = o.root, size = dp.size, limit = o.limit}, p.batch_size
end

-- ---- the loader ----

local Loader = {}
Loader.__index = Loader

-- opts: batch, seed, shuffle (true), drop_last, rank, world, workers (2), prefetch (4)
function D.loader(spec, opts)
  opts = opts or {}
  local c = tt.data_loader(spec, opts)
  local self = setmetatable({c = c, spec = spec, opts = opts, epoch = 0, step = 0}, Loader)
  self.steps = c:steps_per_epoch()
  return self
end

function Loader:next()
  local b = self.c:next()
  self.epoch, self.step = b.epoch, b.step + 1
  if self.step >= self.steps then self.epoch, self.step = self.epoch + 1, 0 end
  return b
end

-- the next batch's position (saved in checkpoints)
function Loader:position() return {epoch = self.epoch, step = self.step} end

function Loader:seek(epoch, step)
  self.c:seek(epoch, step)
  self.epoch, self.step = epoch, step
end

function Loader:steps_per_epoch() return self.steps end
function Loader:order(epoch) return self.c:order(epoch) end
function Loader:close() self.c:close() end

return D
