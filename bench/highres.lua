-- bench/highres.lua — depth-conditioned sliding-window sampling over a 32x32
-- latent grid with a 16x16 window (D-RIN sizes: GPT vocab 1024, block 512,
-- 24 layers, 16 heads, width 1024), random weights, KV cache reused while the
-- window does not move, and one KV cache per window column kept for the rows
-- that come back to the same windows (cache_slots=1: only the current one).
-- cells=N samples only the last N cells; they are not a fair sample of the grid
-- (the last rows all come back to windows met before), so time whole grids.
-- tokens_fed: tokens through the model, per sequence.
--
--   taming run bench/highres.lua [grid=32] [window=16] [device=cpu] [threads=N] [cells=N] [precision=fp32|bf16|int8]
--                                [cache_slots=0]
local tt = require "taming"

local a = tt.args.parse(..., {
  grid = {"int", default = 32}, window = {"int", default = 16}, device = {"string", default = "cpu"},
  threads = {"int"}, layers = {"int", default = 24}, width = {"int", default = 1024}, cache = {"bool", default = true},
  cells = {"int"}, cache_slots = {"int", default = 0}, precision = {"string", default = "fp32", choices = {"fp32", "bf16", "int8"}},
})
if a.threads then tt.set_threads(a.threads) end

local W = a.window
local gpt = tt.plugin("transformer", "mingpt", {vocab_size = 1024, block_size = 2 * W * W, n_layer = a.layers,
  n_head = 16, n_embd = a.width}, {seed = 0, device = a.device})
local info = gpt:set_precision(a.precision)
if info.fallback then
  io.stderr:write(("highres: precision=%s is not available (%s); running fp32\n"):format(a.precision, info.fallback))
end
local sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, top_k = 100, seed = 0})
local G = a.grid
-- a depth code grid (what the depth VQGAN would produce), and the image grid to fill
local cond = (tt.rand({1, G, G}, 3) * 1023):long()
local grid = tt.zeros({1, G, G}, {dtype = "i64"})
local start = a.cells and (G * G - a.cells) or 0

tt.no_grad(function()
  local t0 = tt.time()
  local fed = tt.sample_window{gpt = gpt, sampler = sampler, grid = grid, cond_grid = cond, window = {W, W},
                               anchor = {8, 8}, start = start, cache = a.cache, cache_slots = a.cache_slots}
  tt.synchronize(a.device)
  local dt = tt.time() - t0
  local n = G * G - start
  print(('{"bench":"highres","grid":%d,"window":%d,"cells":%d,"device":"%s","threads":%d,"cache":%s,"precision":"%s","isa":"%s","cache_slots":%d,"tokens_fed":%d,"s":%.2f,"s_per_token":%.4f}'):format(
    G, W, n, a.device, tt.threads(), tostring(a.cache), info.precision, info.isa, a.cache_slots, fed, dt, dt / n))
end)
