-- taming.pipeline — what the second-stage pipelines share: the sampling
-- arguments, the latent geometry, sampling a code grid (one pass when it fits
-- the transformer's block, the sliding window when it does not), decoding and
-- saving grids and codes.
local tt = require "taming.core"
local net2net = require "taming.net2net"

local P = {}

-- key=value arguments every sampling pipeline takes (merged into its schema)
function P.sampling_schema(extra)
  local s = {
    config = {"string", required = true, help = "official Net2NetTransformer YAML"},
    ckpt = {"string", required = true, help = ".ckpt or .safetensors"},
    output = {"string", default = "samples.png", help = "PNG grid"},
    codes = {"string", help = "also write the sampled codes as .npy"},
    n = {"int", default = 4, min = 1, help = "samples"},
    nrow = {"int", min = 1, help = "images per grid row"},
    seed = {"int", default = 0},
    temperature = {"number", help = "softmax temperature (1.0)"},
    top_k = {"int", min = 1, help = "keep the k most likely tokens"},
    top_p = {"number", help = "nucleus filter"},
    greedy = {"bool", help = "arg-max decoding"},
    sampler = {"string", help = "a sampler plugin by name (greedy, categorical, ...) or FILE.lua returning "
      .. "make(settings) -> f(logits [B, V]) -> tokens [B]"},
    ["sampler.*"] = {"settings", help = "sampler.KEY=VALUE: settings passed to sampler= (e.g. sampler.top_k=5)"},
    cache = {"bool", default = true, help = "KV cache"},
    cfg_scale = {"number", default = 1.0, help = "classifier-free guidance: logits u + s (c - u) against the null "
      .. "condition of a model trained with cond_drop (1: plain sampling)"},
    size = {"string", help = "output size in pixels, N or WxH (larger than the training size: sliding window)"},
    device = {"string", default = "cpu", choices = {"cpu", "cuda"}},
    threads = {"int", min = 1},
    precision = {"string", choices = {"fp32", "bf16", "int8"}, help = "weights of the transformer's linear layers"},
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

-- sampling_schema plus what a spatial condition takes (cond=, its file, the segmentation
-- encoding, the low-resolution factor) and class=; extra's entries win
function P.conditional_schema(extra)
  local C = require "taming.conditions"
  local s = P.sampling_schema({
    class = {"int", help = "class id for a class-conditional model"},
    cond = {"string", choices = C.KINDS, help = "a spatial condition: the kind"},
    cond_input = {"string", help = "cond=: the condition's file"},
    dataset = {"string", help = "segmentation encoding: sflckr, coco or ade20k"},
    factor = {"int", default = 8, help = "lowres: downscaling factor"},
  })
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

function P.load(a)
  if a.threads then tt.set_threads(a.threads) end
  local m = tt.load(a.ckpt, {config = a.config, device = a.device, precision = a.precision})
  if m.kind ~= "Net2NetTransformer" then
    error(("%s: expected a Net2NetTransformer config, found %s"):format(a.config, tostring(m.target)), 0)
  end
  return m
end

-- sampler.KEY=VALUE strings -> numbers, booleans or strings
local function settings(raw)
  local out = {}
  for k, v in pairs(raw or {}) do
    local l = v:lower()
    if tonumber(v) then out[k] = math.tointeger(tonumber(v)) or tonumber(v)
    elseif l == "true" or l == "false" then out[k] = l == "true"
    else out[k] = v end
  end
  return out
end

-- A sampler from the arguments: sampler=NAME (a plugin, or FILE.lua) with its
-- sampler.KEY=VALUE settings, or the built-in knobs greedy / temperature / top_k /
-- top_p. Mixing the two, or greedy with a knob it would ignore, is an error.
-- seed= (plus salt) seeds the sampler unless sampler.seed is given; greedy has none.
function P.sampler(a, salt)
  local knobs = {}
  for _, k in ipairs({"temperature", "top_k", "top_p"}) do
    if a[k] ~= nil then knobs[#knobs + 1] = k end
  end
  local cfg = settings(a["sampler.*"])
  local seed = a.seed + (salt or 0)
  if a.sampler then
    if a.greedy ~= nil then
      error(("sampler=%s and greedy=%s conflict: greedy=true is sampler=greedy; give one"):format(a.sampler,
        tostring(a.greedy)), 0)
    end
    if #knobs > 0 then
      error(("sampler=%s and %s=... conflict: with sampler= give its settings as sampler.%s=..."):format(a.sampler,
        knobs[1], knobs[1]), 0)
    end
    if cfg.seed == nil and a.sampler ~= "greedy" then cfg.seed = seed end
    if a.sampler:match("%.lua$") then
      local chunk, err = loadfile(a.sampler)
      if not chunk then error(("sampler=%s: %s"):format(a.sampler, err), 0) end
      local make = chunk()
      if type(make) ~= "function" then
        error(("sampler=%s: the file must return a function make(settings) -> f(logits), found a %s"):format(
          a.sampler, type(make)), 0)
      end
      local f = make(cfg)
      if type(f) ~= "function" then
        error(("sampler=%s: make(settings) must return a function f(logits), found a %s"):format(a.sampler, type(f)), 0)
      end
      return f
    end
    return tt.plugin("sampler", a.sampler, cfg)
  end
  local first = next(cfg)
  if first then error(("sampler.%s=... needs sampler=NAME (the sampler it configures)"):format(first), 0) end
  if a.greedy and #knobs > 0 then
    error(("greedy=true and %s=... conflict: greedy decoding takes no temperature, top_k or top_p"):format(knobs[1]), 0)
  end
  return net2net.sampler{temperature = a.temperature, top_k = a.top_k, top_p = a.top_p, greedy = a.greedy,
                         seed = seed}
end

-- size=N or size=WxH -> {w =, h =} (nil stays nil)
function P.parse_size(s)
  if s == nil or type(s) == "table" then return s end
  local str = tostring(s)
  local n = str:match("^%d+$") and math.tointeger(tonumber(str))
  if n then return {w = n, h = n} end
  local w, h = str:match("^(%d+)[xX](%d+)$")
  if not w then error(("argument size=%s: expected N or WxH in pixels (e.g. 256 or 1280x832)"):format(str), 0) end
  return {w = math.tointeger(tonumber(w)), h = math.tointeger(tonumber(h))}
end

-- first-stage geometry: downsampling factor, training latent size, latent h x w for
-- `size` (N, "WxH" or {w =, h =}; nil: the training size)
function P.geometry(model, size)
  local dd = model.first_stage.ddconfig
  local f = 1 << (#dd.ch_mult - 1)   -- an integer: shapes built from it must be integers
  local train = dd.resolution // f
  local s = P.parse_size(size) or {w = dd.resolution, h = dd.resolution}
  if s.w < 1 or s.h < 1 or s.w % f ~= 0 or s.h % f ~= 0 then
    error(("size=%dx%d: width and height must be positive multiples of the downsampling factor %d"):format(s.w, s.h,
      f), 0)
  end
  return {f = f, train = train, h = s.h // f, w = s.w // f, pixels = s, embed_dim = model.first_stage.embed_dim}
end

-- The fixed-prefix condition of n samples on a.device: the SOS token of an
-- unconditional model, or the class token(s) of a.class; nil when the model needs
-- another condition.
function P.prefix_cond(model, a, n)
  if model.unconditional then
    return tt.full({n, 1}, model.sos_token, {dtype = "i64", device = a.device})
  elseif a.class then
    local _, c = model:encode_to_c(tt.full({n}, a.class, {dtype = "i64", device = a.device}))
    return c
  end
end

-- the condition tokens of a batch of conditions; returns indices [B, Lc] and the cond grid
-- [B, hc, wc] when the condition is spatial
function P.encode_cond(model, c)
  local quant, idx = tt.no_grad(function() return model:encode_to_c(c) end)
  local grid
  if quant and type(quant) == "userdata" and quant:dim() == 4 then
    grid = idx:reshape(idx:size(0), quant:size(2), quant:size(3))
  end
  return idx, grid
end

-- Samples codes [B, h, w] (raster order). cond: indices [B, Lc] (a fixed prefix such as a
-- class or SOS token, or a spatial condition's codes), cond_grid: [B, hc, wc] when spatial.
-- known: image codes [B, h, w] whose first `start` cells are kept (completion), and with
-- mask [B, h, w] (1 = sample, 0 = keep) every cell where the mask is 0 (inpainting).
function P.sample_grid(model, a, geo, cond, cond_grid, known, start, mask)
  local B = cond:size(0)
  local h, w = geo.h, geo.w
  local block = model.gpt_info.block_size
  local sampler = P.sampler(a)
  local vocab = model.first_stage.n_embed
  start = start or 0
  local fits = cond:size(1) + h * w - 1 <= block
  if fits then
    local x
    if known and start > 0 then
      x = known:reshape(B, h * w)
      if model.permuter then x = model.permuter:forward(x) end
      x = x:slice(1, 0, start):contiguous()
    end
    local steps = h * w - start
    local opts = {sampler = sampler, cache = a.cache, vocab_limit = vocab, cfg_scale = a.cfg_scale}
    if mask then
      local kseq, mseq = known:reshape(B, h * w), mask:long():reshape(B, h * w)
      if model.permuter then kseq, mseq = model.permuter:forward(kseq), model.permuter:forward(mseq) end
      opts.known = kseq:slice(1, start, h * w):contiguous()
      opts.mask = mseq:slice(1, start, h * w):contiguous()
    end
    local codes = model:sample(x, cond, steps, opts)
    if model.permuter then codes = model.permuter:reverse(codes) end
    return codes:reshape(B, h, w)
  end
  -- the sliding window: the block holds a training-size window of the condition and the image
  if model.permuter then error("sliding-window sampling needs raster order (no permuter)", 0) end
  if (a.cfg_scale or 1.0) ~= 1.0 then
    error(("cfg_scale=%s: classifier-free guidance runs in one pass, not under the sliding window (the latent "
      .. "grid %dx%d exceeds the %d-token block)"):format(tostring(a.cfg_scale), w, h, block), 0)
  end
  local win = geo.train
  if h < win or w < win then
    error(("the latent grid %dx%d is smaller than the %dx%d window"):format(h, w, win, win), 0)
  end
  local grid = known and known:to("cpu"):long():contiguous():clone() or tt.zeros({B, h, w}, {dtype = "i64"})
  -- the official demo anchors the window at 8 for its 16x16 window: half the window
  local args = {gpt = model.transformer, sampler = sampler, grid = grid, window = {win, win},
                anchor = {win // 2, win // 2},
                start = start, cache = a.cache, vocab_limit = vocab,
                mask = mask and mask:to("cpu"):long():contiguous() or nil}
  if cond_grid then
    if cond_grid:size(1) ~= h or cond_grid:size(2) ~= w then
      error(("the condition's latent grid %dx%d differs from the image grid %dx%d"):format(cond_grid:size(1),
        cond_grid:size(2), h, w), 0)
    end
    args.cond_grid = cond_grid
  else
    args.cond_tokens = cond
  end
  tt.sample_window(args)
  return grid
end

function P.decode(model, codes)
  return tt.no_grad(function()
    return model.first_stage:decode_code(codes:to(model.device or "cpu"))
  end)
end

function P.save(a, images, codes)
  local B = images:size(0)
  local grid = tt.image.grid(images:to("cpu"), a.nrow or math.ceil(math.sqrt(B)), 2, -1.0)
  tt.image.save(a.output, grid)
  if a.codes then tt.npy.save(a.codes, codes:to("cpu")) end
  print(("wrote %s (%d sample%s, latent %dx%d codes, w x h)%s"):format(a.output, B, B == 1 and "" or "s", codes:size(2),
    codes:size(1), a.codes and (" and " .. a.codes) or ""))
end

-- repeats a [1, ...] tensor n times along dim 0
function P.repeat_batch(t, n)
  if t:size(0) == n then return t end
  local reps = {n}
  for _ = 2, t:dim() do reps[#reps + 1] = 1 end
  return t:repeat_(reps)
end

return P
