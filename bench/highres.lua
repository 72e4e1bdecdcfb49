-- bench/highres.lua — depth-conditioned sliding-window sampling over a 32x32
-- latent grid with a 16x16 window (D-RIN sizes: GPT vocab 1024, block 512,
-- 24 layers, 16 heads, width 1024), random weights, KV cache reused while the
-- window does not move, and one KV cache per window column kept for the rows
-- that come back to the same windows (cache_slots=1: only the current one). The
-- window is anchored at its middle (8 for the 16x16 window, as in the official demo).
-- cells=N samples only the last N cells; they are not a fair sample of the grid
-- (the last rows all come back to windows met before), so time whole grids.
-- tokens_fed: tokens through the model, per sequence.
--
--   taming run bench/highres.lua [grid=32] [window=16] [device=cpu] [threads=N] [cells=N] [precision=fp32|bf16|int8]
--                                [cache_slots=0]
local tt = require "taming"
local B = require "taming.bench"

local a = B.args(..., {
  grid = {"int", default = 32}, window = {"int", default = 16}, device = {"string", default = "cpu"},
  layers = {"int", default = 24}, width = {"int", default = 1024}, cache = {"bool", default = true},
  cells = {"int"}, cache_slots = {"int", default = 0},
}, "taming run bench/highres.lua [grid=32] [window=16] [cells=N] [cache_slots=0] [precision=fp32|bf16|int8] [threads=N]")

local W = a.window
local gpt = tt.plugin("transformer", "mingpt", {vocab_size = 1024, block_size = 2 * W * W, n_layer = a.layers,
  n_head = 16, n_embd = a.width}, {seed = 0, device = a.device})
local info = B.set_precision(gpt, a.precision, "gpt")
local sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, top_k = 100, seed = 0})
local G = a.grid
-- a depth code grid (what the depth VQGAN would produce), and the image grid to fill
local cond = (tt.rand({1, G, G}, 3) * 1023):long()
local grid = tt.zeros({1, G, G}, {dtype = "i64"})
local start = a.cells and (G * G - a.cells) or 0

tt.no_grad(function()
  local t0 = tt.time()
  local fed = tt.sample_window{gpt = gpt, sampler = sampler, grid = grid, cond_grid = cond, window = {W, W},
                               anchor = {W // 2, W // 2}, start = start, cache = a.cache, cache_slots = a.cache_slots}
  tt.synchronize(a.device)
  local dt = tt.time() - t0
  local n = G * G - start
  B.print_json{"bench", "highres", "grid", G, "window", W, "cells", n, "device", a.device, "threads", tt.threads(),
    "cache", a.cache, "precision", info.precision, "isa", info.isa, "cache_slots", a.cache_slots, "tokens_fed", fed,
    "s", B.fmt("%.2f", dt), "s_per_token", B.fmt("%.4f", dt / n)}
end)
