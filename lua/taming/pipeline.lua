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
    n = {"int", default = 4, help = "samples"},
    nrow = {"int", help = "images per grid row"},
    seed = {"int", default = 0},
    temperature = {"number", default = 1.0},
    top_k = {"int", help = "keep the k most likely tokens"},
    top_p = {"number", help = "nucleus filter"},
    greedy = {"bool", default = false, help = "arg-max decoding"},
    cache = {"bool", default = true, help = "KV cache"},
    size = {"int", help = "output size in pixels (larger than the training size: sliding window)"},
    device = {"string", default = "cpu", choices = {"cpu", "cuda"}},
    threads = {"int"},
    precision = {"string", choices = {"fp32", "bf16", "int8"}, help = "weights of the transformer's linear layers"},
  }
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

function P.sampler(a, salt)
  return net2net.sampler{temperature = a.temperature, top_k = a.top_k, top_p = a.top_p, greedy = a.greedy,
                         seed = a.seed + (salt or 0)}
end

-- first-stage geometry: downsampling factor, training latent size, latent for `size`
function P.geometry(model, size)
  local dd = model.first_stage.ddconfig
  local f = 1 << (#dd.ch_mult - 1)   -- an integer: shapes built from it must be integers
  local train = dd.resolution // f
  local pixels = size or dd.resolution
  if pixels % f ~= 0 then error(("size=%d must be a multiple of the downsampling factor %d"):format(pixels, f), 0) end
  return {f = f, train = train, h = pixels // f, w = pixels // f, embed_dim = model.first_stage.embed_dim}
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
-- known: image codes [B, h, w] whose first `start` cells are kept (completion).
function P.sample_grid(model, a, geo, cond, cond_grid, known, start)
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
    local codes = model:sample(x, cond, steps, {sampler = sampler, cache = a.cache, vocab_limit = vocab})
    if model.permuter then codes = model.permuter:reverse(codes) end
    return codes:reshape(B, h, w)
  end
  -- the sliding window: the block holds a training-size window of the condition and the image
  if model.permuter then error("sliding-window sampling needs raster order (no permuter)", 0) end
  local win = geo.train
  if h < win or w < win then
    error(("the latent grid %dx%d is smaller than the %dx%d window"):format(h, w, win, win), 0)
  end
  local grid = known and known:to("cpu"):long():contiguous():clone() or tt.zeros({B, h, w}, {dtype = "i64"})
  -- the official demo anchors the window at 8 for its 16x16 window: half the window
  local args = {gpt = model.transformer, sampler = sampler, grid = grid, window = {win, win},
                anchor = {win // 2, win // 2},
                start = start, cache = a.cache, vocab_limit = vocab}
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
  print(("wrote %s (%d sample%s, latent %dx%d)%s"):format(a.output, B, B == 1 and "" or "s", codes:size(1),
    codes:size(2), a.codes and (" and " .. a.codes) or ""))
end

-- repeats a [1, ...] tensor n times along dim 0
function P.repeat_batch(t, n)
  if t:size(0) == n then return t end
  local reps = {n}
  for _ = 2, t:dim() do reps[#reps + 1] = 1 end
  return t:repeat_(reps)
end

return P
