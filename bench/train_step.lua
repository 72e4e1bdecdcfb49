-- bench/train_step.lua — time of one training step of each stage, random
-- weights and data: the ImageNet f16 VQGAN autoencoder (L1 reconstruction +
-- codebook loss, backward, Adam) and the FacesHQ GPT (cross-entropy on
-- `tokens` tokens, backward, AdamW). Prints one JSON line per stage with the
-- median step time (the first step is a warm-up and not counted).
--
--   taming run bench/train_step.lua [what=vqgan,gpt] [size=256] [batch=1] [tokens=256]
--                                   [reps=3] [device=cpu] [threads=N]
local tt = require "taming"
local optim = require "taming.optim"

local a = tt.args.parse(..., {
  what = {"string", default = "vqgan,gpt"}, size = {"int", default = 256}, batch = {"int", default = 1},
  tokens = {"int", default = 256}, reps = {"int", default = 3}, device = {"string", default = "cpu"},
  threads = {"int"}, layers = {"int", default = 24}, width = {"int", default = 1024},
})
if a.threads then tt.set_threads(a.threads) end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) / 2] or 0.5 * (t[n / 2] + t[n / 2 + 1])
end

-- runs step() reps + 1 times (the first is the warm-up); the median time of the others
local function time_steps(step)
  step()
  tt.synchronize(a.device)
  local ts = {}
  for r = 1, a.reps do
    local t0 = tt.time()
    step()
    tt.synchronize(a.device)
    ts[r] = tt.time() - t0
  end
  return median(ts)
end

local function plugin_params(p)
  local out = {}
  for _, n in ipairs(p:param_names()) do
    if p:param_info(n).trainable then out[#out + 1] = {name = n, tensor = p:param(n)} end
  end
  return out
end

local want = {}
for w in a.what:gmatch("[^,]+") do want[w] = true end

if want.vqgan then
  local model = tt.vqgan.build("VQModel", {
    embed_dim = 256, n_embed = 1024,
    ddconfig = {double_z = false, z_channels = 256, resolution = 256, in_channels = 3, out_ch = 3, ch = 128,
                ch_mult = {1, 1, 2, 2, 4}, num_res_blocks = 2, attn_resolutions = {16}, dropout = 0.0},
  }, "bench")
  model:init(0, a.device):train()
  local opt = optim.Adam(model:parameters(), {lr = 4.5e-6, betas = {0.5, 0.9}})
  local x = (tt.rand({a.batch, 3, a.size, a.size}, 1, {device = a.device}) * 2.0) - 1.0   -- [B, 3, H, W]
  local loss_value
  local s = time_steps(function()
    local xrec, qloss = model:forward(x)
    local loss = (x - xrec):abs():mean() + qloss:mean()
    if opt:backward(loss) then opt:step() end
    loss_value = loss:item()
  end)
  print(('{"bench":"train_step","what":"vqgan","size":%d,"batch":%d,"device":"%s","threads":%d,"s":%.4f,"loss":%.6g}')
    :format(a.size, a.batch, a.device, tt.threads(), s, loss_value))
end

if want.gpt then
  local gpt = tt.plugin("transformer", "mingpt", {vocab_size = 1024, block_size = 512, n_layer = a.layers, n_head = 16,
    n_embd = a.width}, {seed = 0, device = a.device})
  gpt:train(true)
  local opt = optim.AdamW(plugin_params(gpt), {lr = 4.5e-6, betas = {0.9, 0.95}})
  local toks = (tt.rand({a.batch, a.tokens + 1}, 2, {device = a.device}) * 1023):long()      -- [B, T + 1]
  local inp, tgt = toks:slice(1, 0, -1):contiguous(), toks:slice(1, 1):contiguous()        -- [B, T] each
  local loss_value
  local s = time_steps(function()
    local logits = gpt:forward(inp)                                                        -- [B, T, 1024]
    local loss = tt.losses.gpt_loss(logits, tgt)
    if opt:backward(loss) then opt:step() end
    loss_value = loss:item()
  end)
  print(('{"bench":"train_step","what":"gpt","tokens":%d,"batch":%d,"device":"%s","threads":%d,"s":%.4f,"loss":%.6g}')
    :format(a.tokens, a.batch, a.device, tt.threads(), s, loss_value))
end
