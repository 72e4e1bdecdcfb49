-- test_data.lua — the threaded data loader (host/data/dataloader.c via taming.data):
-- items equal the official preprocessing built from the single-image
-- primitives (ImagePaths, SegmentationBase, DRIN depth, padded Fashion-MNIST);
-- batches depend on (seed, epoch, step) only, not on the worker threads; the
-- shards of two processes are exactly the items of one process with twice the
-- batch; seek reproduces a position; bad files fail with their name.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local data = require "taming.data"
local conditions = require "taming.conditions"

local tmp = T.tmpdir("data")
T.sh("rm -rf '" .. tmp .. "'")   -- a rerun starts from an empty folder
tt.fs.mkdir(tmp)
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function rand_u8(shape, seed)
  return (tt.rand(shape, seed) * 255.99):byte()
end

-- an image folder: sizes differ, gray / RGBA / JPEG files among them
local function make_folder(dir)
  tt.fs.mkdir(dir .. "/b_class")
  tt.fs.mkdir(dir .. "/a_class/sub")
  local files = {
    {"a_class/x0.png", {20, 24, 3}}, {"a_class/sub/x1.png", {24, 20, 3}}, {"a_class/x2.png", {16, 16, 3}},
    {"b_class/x3.png", {19, 30, 1}}, {"b_class/x4.png", {22, 22, 4}}, {"b_class/x5.jpg", {18, 27, 3}},
    {"b_class/x6.png", {33, 17, 3}},
  }
  for i, f in ipairs(files) do tt.image.save(dir .. "/" .. f[1], rand_u8(f[2], 100 + i)) end
  -- not an image: ignored
  local g = assert(io.open(dir .. "/b_class/notes.txt", "w"))
  g:write("x")
  g:close()
  return files
end

-- every batch of `steps` steps of a loader: a list of {image, index, epoch, step}
local function collect(loader, steps)
  local out = {}
  for i = 1, steps do out[i] = loader:next() end
  return out
end

local function same_batches(what, a, b)
  T.eq(what .. ": batches", #a, #b)
  for i = 1, #a do
    T.equal(("%s: batch %d indices"):format(what, i), a[i].index, b[i].index)
    T.close(("%s: batch %d images"):format(what, i), a[i].image, b[i].image, 0)
    T.eq(("%s: batch %d epoch"):format(what, i), a[i].epoch, b[i].epoch)
    T.eq(("%s: batch %d step"):format(what, i), a[i].step, b[i].step)
  end
end

local FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"

-- an in-memory dataset of n random 6x6 gray images with labels i % 10
local function array_dataset(n, seed)
  local labels = {}
  for i = 1, n do labels[i] = (i - 1) % 10 end
  return {array = rand_u8({n, 6, 6}, seed), labels = tt.tensor(labels, {dtype = "i64"}), n = n, channels = 1}
end

local function fashion_mnist_padded_items()
  local images, labels = tt.datasets.fashion_mnist(nil, "test")
  local ds = data.fashion_mnist{split = "test", limit = 50, channels = 3}
  local L = data.loader(ds, {batch = 7, seed = 5, workers = 0})
  local b = L:next()
  T.eq("shape", table.concat(b.image:shape(), "x"), "7x3x32x32")
  for i = 0, 6 do
    local idx = b.index:get(i)
    T.ok("index in the first 50", idx >= 0 and idx < 50)
    T.eq("label", b.label:get(i), labels:get(idx))
    local img = b.image:select(0, i)                                       -- [3, 32, 32]
    local want = tt.image.from_u8(images:select(0, idx):unsqueeze(2))      -- [1, 1, 28, 28]
    for c = 0, 2 do
      T.close("interior", img:select(0, c):slice(0, 2, 30):slice(1, 2, 30), want:reshape(28, 28), 0)
    end
    T.close("border", img:slice(1, 0, 2), tt.full({3, 2, 32}, -1.0), 0)
    T.close("border", img:slice(2, 30, 32), tt.full({3, 32, 2}, -1.0), 0)
  end
  -- resized: pad to 32, then SmallestMaxSize(16) (cv2 linear on u8) and a centre crop
  local ds16 = data.fashion_mnist{split = "test", limit = 4, channels = 1, size = 16}
  local b16 = data.loader(ds16, {batch = 4, seed = 1, shuffle = false, workers = 0}):next()
  local padded = tt.pad2d(images:select(0, 2):float():unsqueeze(0):unsqueeze(0), {2, 2, 2, 2}, 0):byte()
  local u8 = padded:reshape(32, 32, 1)
  local want = tt.image.from_u8(tt.image.center_crop(tt.image.smallest_max_size(u8, 16, "linear"), 16, 16))
  T.close("resized item", b16.image:slice(0, 2, 3), want, 0)
end
if tt.fs.exists(FMNIST) then
  test("fashion_mnist_padded_items", fashion_mnist_padded_items)
else
  print("note: " .. FMNIST .. " is absent (Debian's dataset-fashion-mnist): the Fashion-MNIST test is left out")
end

test("order_depends_on_seed_and_epoch_only", function()
  local ds = array_dataset(23, 1)
  local L = data.loader(ds, {batch = 5, seed = 7, workers = 0})
  T.eq("steps per epoch (last batch partial)", L:steps_per_epoch(), 5)
  local o0, o1 = L:order(0):totable(), L:order(1):totable()
  local seen = {}
  for _, v in ipairs(o0) do seen[v] = true end
  for i = 0, 22 do T.ok("epoch 0 visits item " .. i, seen[i]) end
  T.ok("epochs differ", table.concat(o0, ",") ~= table.concat(o1, ","))
  local again = data.loader(ds, {batch = 5, seed = 7, workers = 2}):order(1):totable()
  T.eq("same seed, same order", table.concat(again, ","), table.concat(o1, ","))
  local other = data.loader(ds, {batch = 5, seed = 8, workers = 0}):order(0):totable()
  T.ok("another seed, another order", table.concat(other, ",") ~= table.concat(o0, ","))
  local plain = data.loader(ds, {batch = 5, seed = 7, shuffle = false, workers = 0}):order(3):totable()
  for i, v in ipairs(plain) do T.eq("no shuffle", v, i - 1) end
  -- the batches walk the order; the last one of an epoch is partial
  local bs = collect(L, 6)
  for s = 0, 4 do
    local n = s < 4 and 5 or 3
    T.eq("batch size", bs[s + 1].index:size(0), n)
    for i = 0, n - 1 do T.eq("item", bs[s + 1].index:get(i), o0[s * 5 + i + 1]) end
  end
  T.eq("next epoch", bs[6].epoch, 1)
  T.eq("first item of epoch 1", bs[6].index:get(0), o1[1])
  local dl = data.loader(ds, {batch = 5, seed = 7, workers = 0, drop_last = true})
  T.eq("drop_last", dl:steps_per_epoch(), 4)
end)

test("threads_do_not_change_batches", function()
  local dir = tmp .. "/folder_threads"
  make_folder(dir)
  local ds = data.image_folder{root = dir, size = 12, random_crop = true, hflip = true}
  local ref = collect(data.loader(ds, {batch = 3, seed = 11, workers = 0}), 8)
  for _, w in ipairs({1, 3}) do
    local L = data.loader(ds, {batch = 3, seed = 11, workers = w, prefetch = 2})
    same_batches(("%d workers"):format(w), collect(L, 8), ref)
    L:close()
  end
  -- seeking while the workers run: position (1, 1) is the 5th batch (3 steps per epoch)
  local L = data.loader(ds, {batch = 3, seed = 11, workers = 3, prefetch = 3})
  collect(L, 2)
  L:seek(1, 1)
  T.eq("position after seek", L:position().step, 1)
  same_batches("after seek", collect(L, 3), {ref[5], ref[6], ref[7]})
  L:seek(0, 0)
  same_batches("seek back", collect(L, 8), ref)
  T.eq("position", L:position().epoch, 2)
  T.eq("position", L:position().step, 2)
  T.raises("seek past an epoch", function() L:seek(0, 3) end, "step 3", "3 steps per epoch")
end)

test("two_shards_are_one_double_batch", function()
  local ds = array_dataset(40, 2)
  local one = collect(data.loader(ds, {batch = 6, seed = 3, workers = 0}), 9)
  local r0 = collect(data.loader(ds, {batch = 3, seed = 3, rank = 0, world = 2, workers = 2}), 9)
  local r1 = collect(data.loader(ds, {batch = 3, seed = 3, rank = 1, world = 2, workers = 0}), 9)
  for s = 1, 9 do
    local want = one[s].index:totable()
    if s > 6 then
      -- 40 items, global batch 6: six full steps; with two processes the partial
      -- seventh is dropped so that both take the same number of steps
      T.eq("epoch after six steps", r0[s].epoch, 1)
    else
      for i = 0, 2 do
        T.eq(("step %d rank 0 item %d"):format(s, i), r0[s].index:get(i), want[2 * i + 1])
        T.eq(("step %d rank 1 item %d"):format(s, i), r1[s].index:get(i), want[2 * i + 2])
        T.close("same pixels", r1[s].image:select(0, i), one[s].image:select(0, 2 * i + 1), 0)
      end
    end
  end
  T.raises("rank out of range", function() data.loader(ds, {batch = 2, rank = 2, world = 2}) end, "rank 2 of world 2")
  T.raises("too few items", function() data.loader(ds, {batch = 30, world = 2}) end, "40 items", "60")
end)

test("image_folder_matches_image_paths", function()
  local dir = tmp .. "/folder"
  local files = make_folder(dir)
  local ds = data.image_folder{root = dir, size = 12, class_folders = true}
  T.eq("items", ds.n, #files)
  T.eq("classes", table.concat(ds.classes, ","), "a_class,b_class")
  local L = data.loader(ds, {batch = #files, seed = 1, shuffle = false, workers = 2})
  local b = L:next()
  for i, f in ipairs(files) do
    -- listing order: sorted relative paths
    local k
    for j, p in ipairs(ds.paths) do if p == dir .. "/" .. f[1] then k = j - 1 end end
    T.ok("listed " .. f[1], k ~= nil)
    local want = conditions.image(dir .. "/" .. f[1], 12)          -- SmallestMaxSize + CenterCrop
    if want:size(1) == 1 then want = tt.cat({want, want, want}, 1) end
    if want:size(1) == 4 then want = want:slice(1, 0, 3) end     -- RGBA: alpha dropped, as PIL's convert("RGB")
    T.close("item " .. f[1], b.image:slice(0, k, k + 1), want, 0)
    T.eq("label " .. f[1], b.label:get(k), f[1]:sub(1, 1) == "a" and 0 or 1)
  end
  -- random crops: each item is one of the crops of the resized image
  local rc = data.loader(data.image_folder{root = dir, size = 12, random_crop = true},
    {batch = #files, seed = 4, shuffle = false, workers = 0}):next()
  local offsets = 0
  for k, path in ipairs(ds.paths) do
    local u8 = tt.image.load(path, {raw = true})
    if u8:size(2) == 4 then u8 = u8:slice(2, 0, 3):contiguous() end
    local big = tt.image.smallest_max_size(u8, 12, "linear")
    local found = false
    for y = 0, big:size(0) - 12 do
      for x = 0, big:size(1) - 12 do
        local want = tt.image.from_u8(tt.image.crop(big, y, x, 12, 12))
        if want:size(1) == 1 then want = tt.cat({want, want, want}, 1) end
        if not found and T.max_diff(rc.image:slice(0, k - 1, k), want) == 0 then
          found = true
          if y + x > 0 then offsets = offsets + 1 end
        end
      end
    end
    T.ok("random crop of " .. path .. " is a crop of the resized image", found)
  end
  T.ok("some crops are off-centre", offsets > 0)
end)

test("gray_output_as_pil_convert_L", function()
  local dir = tmp .. "/gray"
  tt.fs.mkdir(dir)
  local rgb = rand_u8({5, 6, 3}, 9)
  tt.image.save(dir .. "/c.png", rgb)
  local b = data.loader(data.image_folder{root = dir, channels = 1}, {batch = 1, workers = 0}):next()
  T.eq("shape", table.concat(b.image:shape(), "x"), "1x1x5x6")
  for y = 0, 4 do
    for x = 0, 5 do
      local r, g, bl = rgb:get(y, x, 0), rgb:get(y, x, 1), rgb:get(y, x, 2)
      local L = (r * 19595 + g * 38470 + bl * 7471 + 0x8000) >> 16
      T.ok(("pixel %d,%d"):format(y, x), math.abs(b.image:get(0, 0, y, x) - (L / 127.5 - 1)) < 1e-7)
    end
  end
end)

test("paired_segmentation_and_depth", function()
  local img, seg, dep = tmp .. "/p_img", tmp .. "/p_seg", tmp .. "/p_depth"
  for _, d in ipairs({img, seg, dep}) do tt.fs.mkdir(d .. "/t") end
  local sizes = {{14, 18}, {20, 15}, {16, 16}}
  for i, s in ipairs(sizes) do
    local name = ("t/im%d"):format(i)
    tt.image.save(img .. "/" .. name .. ".jpg", rand_u8({s[1], s[2], 3}, i))
    local labels = (tt.rand({s[1], s[2], 1}, 50 + i) * 150.99):byte()
    tt.image.save(seg .. "/" .. name .. ".png", labels)
    -- a depth map: float32 bytes in RGBA
    local bytes = {}
    for y = 1, s[1] do
      local row = {}
      for x = 1, s[2] do
        local v = string.pack("<f", 5.0 + 3.0 * math.sin(y * 0.7 + x * 0.3 + i))
        row[x] = {v:byte(1), v:byte(2), v:byte(3), v:byte(4)}
      end
      bytes[y] = row
    end
    tt.image.save(dep .. "/" .. name .. ".png", tt.tensor(bytes, {dtype = "u8"}))
  end
  local ds = data.paired{images = img, conditions = seg, kind = "segmentation", dataset = "ade20k", size = 12}
  local b = data.loader(ds, {batch = 3, shuffle = false, workers = 1}):next()
  T.eq("one-hot shape", table.concat(b.cond:shape(), "x"), "3x151x12x12")
  for k = 1, 3 do
    local want_c = conditions.segmentation(ds.cond_paths[k], "ade20k", 12)
    T.close("segmentation " .. k, b.cond:slice(0, k - 1, k), want_c, 0)
    local u8 = tt.image.load(ds.paths[k], {raw = true})
    local want_i = tt.image.from_u8(tt.image.center_crop(tt.image.smallest_max_size(u8, 12, "cubic"), 12, 12))
    T.close("image " .. k .. " (bicubic, as SegmentationBase)", b.image:slice(0, k - 1, k), want_i, 0)
  end
  local dd = data.paired{images = img, conditions = dep, kind = "depth", size = 10}
  local bd = data.loader(dd, {batch = 3, shuffle = false, workers = 0}):next()
  for k = 1, 3 do
    T.close("depth " .. k, bd.cond:slice(0, k - 1, k), conditions.depth(dd.cond_paths[k], 10), 0)
    T.close("image " .. k, bd.image:slice(0, k - 1, k), conditions.image(dd.paths[k], 10), 0)
  end
  -- a missing condition is named at once
  tt.image.save(img .. "/t/orphan.png", rand_u8({8, 8, 3}, 3))
  T.raises("missing condition", function()
    data.paired{images = img, conditions = seg, kind = "segmentation", dataset = "ade20k"}
  end, "orphan.png", seg .. "/t/orphan.png")
end)

test("bad_files_are_named", function()
  local dir = tmp .. "/bad"
  tt.fs.mkdir(dir)
  tt.image.save(dir .. "/a.png", rand_u8({8, 8, 3}, 1))
  tt.image.save(dir .. "/b.png", rand_u8({9, 8, 3}, 2))
  local f = assert(io.open(dir .. "/c.png", "wb"))
  f:write("\137PNG\r\n\26\n broken")
  f:close()
  local L = data.loader(data.image_folder{root = dir}, {batch = 2, shuffle = false, workers = 2})
  T.raises("sizes differ without size=", function() L:next() end, "b.png", "9x8", "8x8", "size")
  T.raises("corrupt file", function() L:next() end, "c.png")
  L:close()
  T.raises("not a string", function() tt.data_loader({paths = {dir .. "/a.png", 3}}, {}) end, "paths[2]")
  T.raises("channels", function() tt.data_loader({paths = {dir .. "/a.png"}, channels = 2}, {}) end, "channels", "1 or 3")
  T.raises("interp", function() tt.data_loader({paths = {dir .. "/a.png"}, interp = "lanczos"}, {}) end, "lanczos")
  T.raises("cond without paths", function()
    tt.data_loader({paths = {dir .. "/a.png"}, cond = "depth"}, {})
  end, "condition paths")
  T.raises("empty folder", function()
    tt.fs.mkdir(dir .. "/empty")
    data.image_folder{root = dir .. "/empty"}
  end, "no PNG or JPEG")
end)

return T.run("data", tests)
