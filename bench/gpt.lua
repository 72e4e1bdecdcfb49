-- bench/gpt.lua — KV-cached sampling speed of the official FacesHQ transformer
-- config (vocab 1024, block 512, 24 layers, 16 heads, width 1024: 305M
-- parameters), random weights, with the linear layers' weights in fp32, bf16 or
-- int8. Prints the ISA path taken and, because batch-1 decoding streams every
-- weight once per token, the bytes of weights read per decoding step, the
-- bandwidth that makes (bytes x steps/s), the bandwidth a plain streaming read
-- reaches on the same machine in the same run (all threads, a 1 GiB buffer, in
-- C: tt.stream_read_gbs) and their ratio. On a GPU only the first two. "cpu_s" is
-- the CPU time of all threads over the timed steps (steadier than "s" on a busy
-- machine; with spinning OpenMP threads it counts the spinning too).
--
--   taming run bench/gpt.lua [batch=1] [tokens=256] [precision=fp32|bf16|int8] [device=cpu] [threads=N]
local tt = require "taming"
local B = require "taming.bench"

local a = B.args(..., {
  batch = {"int", default = 1}, tokens = {"int", default = 256}, device = {"string", default = "cpu"},
  layers = {"int", default = 24}, width = {"int", default = 1024},
  cache = {"bool", default = true}, bandwidth = {"bool", default = true},
}, "taming run bench/gpt.lua [batch=1] [tokens=256] [precision=fp32|bf16|int8] [device=cpu] [threads=N]")

local gpt = tt.plugin("transformer", "mingpt", {vocab_size = 1024, block_size = 512, n_layer = a.layers, n_head = 16,
  n_embd = a.width}, {seed = 0, device = a.device})
local info = B.set_precision(gpt, a.precision, "gpt")
local sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, top_k = 250, seed = 0})
local prefix = tt.zeros({a.batch, 1}, {dtype = "i64", device = a.device})
local params = 0
for _, n in ipairs(gpt:param_names()) do   -- the weights (not the attention masks)
  if gpt:param_info(n).trainable then
    local c = 1
    for _, d in ipairs(gpt:param(n):shape()) do c = c * d end
    params = params + c
  end
end

tt.no_grad(function()
  tt.sample{gpt = gpt, sampler = sampler, prefix = prefix, steps = 4, cache = a.cache}   -- warm-up
  tt.synchronize(a.device)
  local t0, c0 = tt.time(), os.clock()
  local out = tt.sample{gpt = gpt, sampler = sampler, prefix = prefix, steps = a.tokens, cache = a.cache}
  tt.synchronize(a.device)
  local dt, cpu = tt.time() - t0, os.clock() - c0
  local bw = a.bandwidth and a.device == "cpu" and tt.stream_read_gbs(1024, 5) or 0
  -- every step reads the weights once, whatever the batch
  local wbytes = gpt:info().weight_bytes_per_token
  local weight_gbs = a.cache and wbytes * a.tokens / dt / 1e9 or 0
  local share = bw > 0 and weight_gbs / bw or 0
  if a.cache then
    io.stderr:write(("gpt: %s weights, %.1f MB read per step: %.1f GB/s%s\n"):format(info.precision, wbytes / 1e6,
      weight_gbs, bw > 0 and (", %.0f %% of the %.1f GB/s a streaming read reaches here (%d threads)"):format(
        100 * share, bw, tt.threads()) or ""))
  end
  B.print_json{"bench", "gpt", "batch", a.batch, "tokens", a.tokens, "device", a.device, "threads", tt.threads(),
    "cache", a.cache, "precision", info.precision, "isa", info.isa, "params", params, "s", B.fmt("%.3f", dt),
    "cpu_s", B.fmt("%.3f", cpu), "tok_per_s", B.fmt("%.3f", a.tokens * a.batch / dt), "weight_bytes_per_token", B.fmt("%d", wbytes),
    "weight_gbs", B.fmt("%.2f", weight_gbs), "stream_read_gbs", B.fmt("%.2f", bw),
    "bandwidth_share", B.fmt("%.3f", share)}
end)
