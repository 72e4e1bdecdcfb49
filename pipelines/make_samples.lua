-- make_samples — a sample set at scale: n samples as numbered PNGs in a folder
-- (000000.png, ...), the input of `taming run fid`. Any model kind: unconditional;
-- class-conditional (class=K, or class=all: sample i gets class i mod n_classes);
-- conditioned on a folder of condition files (cond=KIND input=DIR: sample i uses
-- the (i mod #files)-th file, sorted). Works in batches with progress and ETA.
--
--   taming run make_samples config=M.yaml ckpt=M.ckpt out=DIR n=50000 [batch=32]
--       [class=all|K] [cond=KIND input=DIR [dataset=..] [factor=8]] [seed=0]
--       [temperature=1] [top_k=..] [top_p=..] [greedy=false] [size=N] [precision=fp32|bf16|int8]
--
-- Resumable: a rerun skips the files already there. Batch k holds samples
-- [k*batch, (k+1)*batch) and its sampler is seeded from (seed, k*batch), the index of
-- its first sample, and always samples the whole batch; so sample i is a function of
-- (seed, batch, i) alone: a rerun, a larger n, or an interrupted run finished later give
-- the same images. The settings that decide the images are kept in DIR/make_samples.json
-- and a rerun with other values is refused.
local tt = require "taming"
local P = require "taming.pipeline"
local C = require "taming.conditions"
local progress = require "taming.progress"

local schema = P.sampling_schema({
  out = {"string", required = true, help = "folder for the PNGs"},
  batch = {"int", default = 32, help = "samples per batch"},
  class = {"string", help = "class-conditional models: a class id, or all (the default)"},
  cond = {"string", choices = C.KINDS, help = "spatial conditions: the kind"},
  input = {"string", help = "cond=: the folder of condition files"},
  dataset = {"string", help = "segmentation encoding: sflckr, coco or ade20k"},
  factor = {"int", default = 8, help = "lowres: downscaling factor"},
  precision = {"string", default = "fp32", choices = {"fp32", "bf16", "int8"},
               help = "weights of the transformer's linear layers (bf16 also the VQGAN's convolutions)"},
})
schema.output, schema.codes, schema.nrow = nil, nil, nil   -- one PNG per sample instead of a grid
schema.n.default = 50000
local a = tt.args.parse(..., schema, "taming run make_samples config=M.yaml ckpt=M.ckpt out=DIR n=N [batch=32]")
if a.n < 1 or a.batch < 1 then error(("n=%d, batch=%d: expected at least 1 each"):format(a.n, a.batch), 0) end
local model = P.load(a)

-- the condition of each sample: a prefix (SOS or class token) or a condition file
local label_of, files
if model.unconditional then
  if a.class or a.cond then error(("%s: an unconditional model takes neither class= nor cond="):format(a.config), 0) end
elseif model.n_classes then
  if a.cond then error(("%s: a class-conditional model; use class= instead of cond="):format(a.config), 0) end
  local k = a.class or "all"
  if k == "all" then
    label_of = function(i) return i % model.n_classes end
  else
    local c = math.tointeger(tonumber(k))
    if not c then error(("argument class=%s: expected an integer or all"):format(k), 0) end
    label_of = function() return c end
  end
else
  if not a.cond or not a.input then
    error(("%s: a model conditioned on %s needs cond=KIND input=DIR"):format(a.config,
      tostring(model.cond_stage_key)), 0)
  end
  if not tt.fs.isdir(a.input) then error(("input=%s: not a folder"):format(a.input), 0) end
  files = {}
  for _, f in ipairs(tt.fs.listdir(a.input)) do
    if not tt.fs.isdir(a.input .. "/" .. f) then files[#files + 1] = a.input .. "/" .. f end
  end
  if #files == 0 then error(("input=%s: no condition files"):format(a.input), 0) end
end

-- the settings that decide the images, kept with them
tt.fs.mkdir(a.out)
local keys = {"config", "ckpt", "seed", "batch", "temperature", "top_k", "top_p", "greedy", "size", "class", "cond",
              "input", "dataset", "factor", "precision"}
local settings = {}
for _, k in ipairs(keys) do settings[k] = a[k] end
local meta_path = a.out .. "/make_samples.json"
if tt.fs.exists(meta_path) then
  local old = tt.json.load(meta_path)
  local function same(x, y)
    if type(x) == "number" and type(y) == "number" then return x == y end
    return tostring(x) == tostring(y)
  end
  for _, k in ipairs(keys) do
    if k ~= "ckpt" and k ~= "config" and not same(old[k], settings[k]) then
      error(("%s: made with %s=%s, this run has %s=%s; the same settings give the same samples (or use another "
        .. "out=)"):format(meta_path, k, tostring(old[k]), k, tostring(settings[k])), 0)
    end
  end
else
  local parts = {}
  for _, k in ipairs(keys) do
    local v = settings[k]
    if v ~= nil then
      parts[#parts + 1] = ("  %q: %s"):format(k, type(v) == "string" and ("%q"):format(v) or tostring(v))
    end
  end
  tt.fs.write_atomic(meta_path, "{\n" .. table.concat(parts, ",\n") .. "\n}\n")
end

local function name(i) return ("%s/%06d.png"):format(a.out, i) end

-- the conditions of samples [first, first + batch): cond indices, the cond grid (spatial
-- conditions) and the latent geometry of the images
local geo = P.geometry(model, a.size)
local function conditions(first)
  local B = a.batch
  if model.unconditional then return P.prefix_cond(model, a, B), nil, geo end
  if label_of then
    local labels = {}
    for i = first, first + B - 1 do labels[#labels + 1] = label_of(i) end
    local _, c = model:encode_to_c(tt.tensor(labels, {dtype = "i64", device = a.device}))
    return c, nil, geo
  end
  local cs = {}
  for i = first, first + B - 1 do
    local c = C.build(a.cond, files[i % #files + 1], a.size, {dataset = a.dataset, factor = a.factor,
                                                               channels = model.cond_channels})
    cs[#cs + 1] = c
  end
  local h, w = cs[1]:size(2), cs[1]:size(3)
  if h ~= w then error(("%s: the condition is %dx%d; pass size=N for a square crop"):format(files[1], h, w), 0) end
  local cond, grid = P.encode_cond(model, tt.cat(cs, 0):to(a.device))
  return cond, grid, P.geometry(model, h)
end

local to_make, done = 0, 0
for i = 0, a.n - 1 do if not tt.fs.exists(name(i)) then to_make = to_make + 1 end end
print(("%s: %d of %d samples to make (batch %d)"):format(a.out, to_make, a.n, a.batch))
local bar = progress.new{total = to_make, every = a.batch}
local t0, made = tt.time(), 0
for first = 0, a.n - 1, a.batch do
  local missing = false
  for i = first, math.min(first + a.batch, a.n) - 1 do
    if not tt.fs.exists(name(i)) then missing = true; break end
  end
  if missing then
    local cond, cond_grid, geo_b = conditions(first)
    -- the batch's sampler is seeded by its first sample's index (the whole batch is
    -- always sampled, so a sample does not depend on n)
    local ab = setmetatable({seed = a.seed * 1000003 + first}, {__index = a})
    local codes = P.sample_grid(model, ab, geo_b, cond, cond_grid)
    local images = P.decode(model, codes):to("cpu")      -- [B, C, H, W] in [-1, 1]
    for i = first, math.min(first + a.batch, a.n) - 1 do
      if not tt.fs.exists(name(i)) then
        tt.image.save(name(i), images:select(0, i - first))
        done = done + 1
      end
    end
    made = made + a.batch
    bar:update(done)
  end
end
bar:finish()
local dt = tt.time() - t0
print(("wrote %d samples to %s in %.1f s (%.2f images/s, %d sampled)"):format(done, a.out, dt,
  dt > 0 and done / dt or 0, made))
