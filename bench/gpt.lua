-- bench/gpt.lua — KV-cached sampling speed of the official FacesHQ transformer
-- config (vocab 1024, block 512, 24 layers, 16 heads, width 1024), random weights.
--
--   taming run bench/gpt.lua [batch=1] [tokens=256] [device=cpu] [threads=N]
local tt = require "taming"

local a = tt.args.parse(..., {
  batch = {"int", default = 1}, tokens = {"int", default = 256}, device = {"string", default = "cpu"},
  threads = {"int"}, layers = {"int", default = 24}, width = {"int", default = 1024},
  cache = {"bool", default = true},
})
if a.threads then tt.set_threads(a.threads) end

local gpt = tt.plugin("transformer", "mingpt", {vocab_size = 1024, block_size = 512, n_layer = a.layers, n_head = 16,
  n_embd = a.width}, {seed = 0, device = a.device})
local sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, top_k = 250, seed = 0})
local prefix = tt.zeros({a.batch, 1}, {dtype = "i64", device = a.device})

tt.no_grad(function()
  tt.sample{gpt = gpt, sampler = sampler, prefix = prefix, steps = 4, cache = a.cache}   -- warm-up
  tt.synchronize(a.device)
  local t0 = tt.time()
  local out = tt.sample{gpt = gpt, sampler = sampler, prefix = prefix, steps = a.tokens, cache = a.cache}
  tt.synchronize(a.device)
  local dt = tt.time() - t0
  print(('{"bench":"gpt","batch":%d,"tokens":%d,"device":"%s","threads":%d,"cache":%s,"s":%.3f,"tok_per_s":%.3f}'):format(
    a.batch, a.tokens, a.device, tt.threads(), tostring(a.cache), dt, a.tokens * a.batch / dt))
end)
