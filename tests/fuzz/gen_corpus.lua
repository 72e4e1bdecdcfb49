-- gen_corpus.lua — writes the seed corpora of the fuzz targets (tests/fuzz/corpus/TARGET):
-- small valid inputs of every kind each reader accepts, plus a few it must refuse.
--   taming run tests/fuzz/gen_corpus.lua [out=tests/fuzz/corpus]
-- Run from the source tree; the seeds are committed, so this only runs when they change.
local tt = require "taming"

local arg = ...
local out = arg.out or "tests/fuzz/corpus"
local data = "tests/data"

local function write(target, name, bytes)
  tt.fs.mkdir(out .. "/" .. target)
  local f = assert(io.open(out .. "/" .. target .. "/" .. name, "wb"))
  f:write(bytes)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function tmp(name) return out .. "/.gen-" .. name end

local function saved(target, name, save)   -- save(path) writes a file with the library's own writer
  local p = tmp(name)
  save(p)
  write(target, name, read(p))
  os.remove(p)
end

-- ---- checkpoints: the torch zips of the I/O tests, and their pickles alone
for _, f in ipairs({"flat_p4.pt", "zip64_unaligned.pt", "lightning_like.ckpt", "legacy.pt", "legacy_mixed.pt",
                    "legacy_inception_nonbt.pth"}) do
  write("ckpt", f, read(data .. "/io/" .. f))
end
-- legacy files one edit away from the reader's refusals: the protocol version, the
-- byte order, a storage's element count (legacy.pt holds one storage of 2 f32), the data
do
  local legacy = read(data .. "/io/legacy.pt")
  local function edit(name, from, to)
    local at = assert(legacy:find(from, 1, true), name)
    write("ckpt", name, legacy:sub(1, at - 1) .. to .. legacy:sub(at + #from))
  end
  edit("legacy_protocol1000.pt", "M\xe9\x03.", "M\xe8\x03.")
  edit("legacy_big_endian.pt", "little_endianq\x02\x88", "little_endianq\x02\x89")
  edit("legacy_count3.pt", "a." .. string.pack("<i8", 2), "a." .. string.pack("<i8", 3))
  write("ckpt", "legacy_cut.pt", legacy:sub(1, #legacy - 2))
end

-- an entry of a stored zip, found through the central directory (torch writes
-- data descriptors, so local headers may hold no sizes)
local function zip_entry(zip, suffix)
  local pos = 1
  while true do
    local at = zip:find("PK\1\2", pos, true)
    if not at then return nil end
    local size = string.unpack("<I4", zip, at + 20)
    local nlen, xlen, clen = string.unpack("<I2I2I2", zip, at + 28)
    local off = string.unpack("<I4", zip, at + 42)
    local name = zip:sub(at + 46, at + 45 + nlen)
    if name:sub(-#suffix) == suffix then
      local lnlen, lxlen = string.unpack("<I2I2", zip, off + 1 + 26)
      local start = off + 1 + 30 + lnlen + lxlen
      return zip:sub(start, start + size - 1)
    end
    pos = at + 46 + nlen + xlen + clen
  end
end
write("pickle", "flat_p4.pkl", zip_entry(read(data .. "/io/flat_p4.pt"), "data.pkl"))
write("pickle", "lightning_like.pkl", zip_entry(read(data .. "/io/lightning_like.ckpt"), "data.pkl"))

-- hand-made pickles (protocol 2) over the storages the harness provides (archive/data/0..19, 128 bytes)
local P = {}
function P.str(s) return "X" .. string.pack("<I4", #s) .. s end
function P.int(i) return "J" .. string.pack("<i4", i) end
function P.global(m, n) return "c" .. m .. "\n" .. n .. "\n" end
function P.tuple(items) return "(" .. table.concat(items) .. "t" end
-- torch._utils._rebuild_tensor_v2(persistent_load(('storage', cls, key, 'cpu', numel)), offset, size, stride)
function P.tensor(cls, key, numel, offset, size, stride)
  local ints = function(t) local r = {} for i, v in ipairs(t) do r[i] = P.int(v) end return P.tuple(r) end
  return P.global("torch._utils", "_rebuild_tensor_v2") ..
    "(" .. P.tuple({P.str("storage"), P.global("torch", cls), P.str(key), P.str("cpu"), P.int(numel)}) .. "Q" ..
    P.int(offset) .. ints(size) .. ints(stride) .. "\x89" .. P.global("collections", "OrderedDict") .. ")Rt" ..
    "R"
end
local function dict(pairs_) return "}(" .. table.concat(pairs_) .. "u" end
local function pickle(body) return "\x80\x02" .. body .. "." end
write("pickle", "one_tensor.pkl", pickle(dict({P.str("w"), P.tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1})})))
write("pickle", "state_dict.pkl", pickle(dict({
  P.str("state_dict"), dict({
    P.str("a.weight"), P.tensor("FloatStorage", "0", 8, 0, {2, 2, 2}, {4, 2, 1}),
    P.str("a.bias"), P.tensor("LongStorage", "1", 4, 1, {3}, {1}),
    P.str("b"), P.tensor("ByteStorage", "2", 16, 0, {4, 4}, {1, 4}),
    P.str("c"), P.tensor("HalfStorage", "3", 4, 0, {}, {}),
    P.str("d"), P.tensor("BFloat16Storage", "4", 2, 0, {2}, {1}),
  }),
  P.str("global_step"), P.int(42), P.str("epoch"), P.int(3),
  P.str("hparams"), "]" .. "(" .. P.str("x") .. "G" .. string.pack(">d", 0.5) .. "N\x88\x89" .. "e",
})))
write("pickle", "global_call.pkl", pickle(P.global("os", "system") .. "(" .. P.str("true") .. "tR"))
write("pickle", "memo.pkl", pickle("}q\0(" .. P.str("k") .. "h\0" .. P.str("t") ..
  P.tensor("IntStorage", "5", 4, 0, {4}, {1}) .. "q\1" .. P.str("u") .. "h\1u"))

-- ---- safetensors: the I/O tests' file and files of every dtype written by the library
write("safetensors", "expected.safetensors", read(data .. "/io/expected.safetensors"))
saved("safetensors", "dtypes.safetensors", function(p)
  tt.safetensors.save(p, {
    f32 = tt.tensor({{1, 2, 3}, {4, 5, 6}}),
    i64 = tt.tensor({7, 8}, {dtype = "i64"}),
    u8 = tt.tensor({{1, 2}, {3, 4}}, {dtype = "u8"}),
    i32 = tt.tensor({9}, {dtype = "i32"}),
    f64 = tt.tensor({0.25}, {dtype = "f64"}),
    scalar = tt.tensor(3.5),
  }, {format = "pt", note = "fuzz seed"})
end)
saved("safetensors", "empty.safetensors", function(p)
  tt.safetensors.save(p, {empty = tt.zeros({0, 4})})
end)

-- ---- JSON
write("json", "header.json", '{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}')
write("json", "values.json", '[0, -1, 1.5e-3, 1E+2, true, false, null, "a\\u00e9\\ud83d\\ude00\\n\\"", {}, [], {"k": [1, {"j": -0.0}]}]')
write("json", "deep.json", string.rep("[", 40) .. string.rep("]", 40))
write("json", "bad.json", '{"a": 1, "a": 2}')

-- ---- YAML: the shipped configs and the scalar forms PyYAML distinguishes
write("yaml", "vqgan.yaml", read("models/fashion_mnist/vqgan.yaml"))
write("yaml", "transformer.yaml", read("models/fashion_mnist/transformer.yaml"))
write("yaml", "scalars.yaml", table.concat({
  "model:", "  target: taming.models.vqgan.VQModel", "  base_learning_rate: 4.5e-6",
  "  params: &p", "    embed_dim: 256", "    ch_mult: [1, 1, 2, 2, 4]", "    hex: 0x1f", "    oct: 0o17",
  "    yes_: yes", "    no_: Off", "    nul: ~", "    inf: .inf", "    nan: .NaN", "    sexa: 1:30",
  "    quoted: '1e3'", "    block: |", "      two", "      lines", "  copy: *p", "  merged:", "    <<: *p",
  "    embed_dim: 8", ""}, "\n"))
write("yaml", "two_documents.yaml", "a: 1\n--- # a second document\nb: 2\n")
write("yaml", "flow.yaml", "{a: [1, 2, {b: c}], d: !!str 3, e: !!float 1, 'f g': \"h\\ti\"}\n")

-- ---- npy: a few from the image tests, and every dtype and layout written by the library
write("npy", "fmt_gray1.npy", read(data .. "/image/fmt_gray1.npy"))
write("npy", "fmt_ga.npy", read(data .. "/image/fmt_ga.npy"))
saved("npy", "f32.npy", function(p) tt.npy.save(p, tt.tensor({{1, 2, 3}, {4, 5, 6}})) end)
saved("npy", "i64.npy", function(p) tt.npy.save(p, tt.tensor({1, -2, 3}, {dtype = "i64"})) end)
saved("npy", "u8_3d.npy", function(p) tt.npy.save(p, tt.tensor({{{1, 2}, {3, 4}}}, {dtype = "u8"})) end)
saved("npy", "f64_scalar.npy", function(p) tt.npy.save(p, tt.tensor(2.5, {dtype = "f64"})) end)
saved("npy", "empty.npy", function(p) tt.npy.save(p, tt.zeros({0, 3})) end)
local function npy_raw(descr, fortran, shape, payload)
  local h = ("{'descr': '%s', 'fortran_order': %s, 'shape': %s, }"):format(descr, fortran, shape)
  local total = 10 + #h + 1
  h = h .. string.rep(" ", (64 - total % 64) % 64) .. "\n"
  return "\x93NUMPY\1\0" .. string.pack("<I2", #h) .. h .. payload
end
write("npy", "fortran.npy", npy_raw("<f4", "True", "(2, 3)", string.pack("<ffffff", 1, 4, 2, 5, 3, 6)))
write("npy", "i32_be.npy", npy_raw(">i4", "False", "(2,)", string.pack(">i4i4", 1, 2)))
write("npy", "bool.npy", npy_raw("|b1", "False", "(3,)", "\1\0\1"))

-- ---- images: the format tests' PNGs and JPEGs (8/16-bit, gray, alpha, palette, interlaced, progressive)
for _, f in ipairs({"fmt_gray1.png", "fmt_gray4.png", "fmt_gray.png", "fmt_ga.png", "fmt_palette.png",
                    "fmt_palette_trns.png", "fmt_gray16.png", "fmt_interlaced.png", "fmt_gray.jpg",
                    "fmt_progressive.jpg"}) do
  write("image", f, read(data .. "/image/" .. f))
end
local function pattern(h, w, c)   -- u8 [h, w, c]
  local rows = {}
  for y = 1, h do
    local row = {}
    for x = 1, w do
      local px = {}
      for k = 1, c do px[k] = (x * 37 + y * 11 + k * 70) % 256 end
      row[x] = px
    end
    rows[y] = row
  end
  return tt.tensor(rows, {dtype = "u8"})
end
saved("image", "rgb.png", function(p) tt.image.save(p, pattern(5, 7, 3)) end)
saved("image", "rgba.png", function(p) tt.image.save(p, pattern(4, 3, 4)) end)
saved("image", "rgb.jpg", function(p) tt.image.save(p, pattern(9, 17, 3), 80) end)

-- ---- IDX (big-endian sizes), plain and gzipped
local function idx(code, dims, payload)
  local h = "\0\0" .. string.char(code, #dims)
  for _, d in ipairs(dims) do h = h .. string.pack(">I4", d) end
  return h .. payload
end
write("idx", "u8.idx", idx(0x08, {2, 3, 3}, string.rep("\1\2\3", 6)))
write("idx", "labels.idx", idx(0x08, {5}, "\0\1\2\9\3"))
write("idx", "i32.idx", idx(0x0C, {3}, string.pack(">i4i4i4", 1, -2, 3)))
write("idx", "f32.idx", idx(0x0D, {2, 2}, string.pack(">ffff", 1, 2, 3, 4)))
write("idx", "f64.idx", idx(0x0E, {2}, string.pack(">dd", 0.5, -1)))
do
  local p = tmp("idx")
  local f = assert(io.open(p, "wb"))
  f:write(idx(0x08, {2, 4, 4}, string.rep("\7", 32)))
  f:close()
  assert(os.execute("gzip -9 -n -f " .. p))
  write("idx", "u8.idx.gz", read(p .. ".gz"))
  os.remove(p .. ".gz")
end

-- ---- the data loader: 6 header bytes (see fuzz_dataloader.c), an image, a condition
local function item(flags, size, K, seed, image, cond)
  return string.char(flags, size, K - 1, seed) .. string.pack("<I2", #image) .. image .. (cond or "")
end
local function png_bytes(t)
  local p = tmp("item.png")
  tt.image.save(p, t)
  local s = read(p)
  os.remove(p)
  return s
end
local img = png_bytes(pattern(6, 8, 3))
local labels = {}
for y = 1, 6 do
  labels[y] = {}
  for x = 1, 8 do labels[y][x] = {(x + y) % 5} end
end
local seg = png_bytes(tt.tensor(labels, {dtype = "u8"}))
local depth_rows = {}
for y = 1, 6 do
  depth_rows[y] = {}
  for x = 1, 8 do depth_rows[y][x] = {string.byte(string.pack("<f", x * 0.5 + y), 1, 4)} end
end
local depth = png_bytes(tt.tensor(depth_rows, {dtype = "u8"}))
write("dataloader", "plain_rgb.bin", item(4, 0, 1, 1, img))
write("dataloader", "gray_resized.bin", item(0 + 8 + 16 + 32, 5, 1, 2, img))
write("dataloader", "seg.bin", item(1 + 4 + 8, 4, 6, 3, img, seg))
write("dataloader", "seg_coco.bin", item(3 + 4 + 16, 12, 200, 4, img, seg))
write("dataloader", "depth.bin", item(2 + 4 + 64, 7, 1, 5, img, depth))
write("dataloader", "jpeg_cubic.bin", item(4 + 64, 16, 1, 6, read(data .. "/image/fmt_gray.jpg")))

-- ---- pipeline arguments, one per line
write("args", "typical.txt", "config=model.yaml\nsize=256\nn=8\nseed=23\ntemperature=0.7\ngreedy=true\n")
write("args", "lists.txt", "classes=1,2,3\nnames=a,b\ndevice=cuda\nk=2\ntop_p=0.9\n")
write("args", "forms.txt", "size=0x10\nn=1e2\ntemperature=-inf\ngreedy=Off\n_script=x\npositional\n")
write("args", "unknown.txt", "sizes=3\n")
print("seeds written under " .. out)
