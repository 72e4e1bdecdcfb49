-- bench/train_step.lua — time of one training step of each stage, random
-- weights and data: the ImageNet f16 VQGAN autoencoder (L1 reconstruction +
-- codebook loss, backward, Adam) and the FacesHQ GPT (cross-entropy on
-- `tokens` tokens, backward, AdamW). Prints one JSON line per stage with the
-- median step time (the first step is a warm-up and not counted).
--
-- precision=bf16 runs the GPT's GEMMs (linear layers and attention, forward and
-- backward) with bf16 operands and f32 accumulation, as train_transformer
-- precision=bf16 does (f32 weights, gradients and optimizer state); a CPU without a
-- bf16 GEMM runs fp32 and says so in one line. For the VQGAN, precision=bf16 also runs
-- the convolutions (forward and backward) in bf16 through oneDNN, as train_vqgan
-- precision=bf16 does; "conv_isa" names their instruction set. int8 (weights for
-- inference) is refused always.
--
--   taming run bench/train_step.lua [what=vqgan,gpt] [size=256] [batch=1] [tokens=256]
--                                   [reps=3] [device=cpu] [threads=N] [precision=fp32|bf16]
local tt = require "taming"
local optim = require "taming.optim"
local B = require "taming.bench"

local a = B.args(..., {
  what = {"string", default = "vqgan,gpt"}, size = {"int", default = 256}, batch = {"int", default = 1},
  tokens = {"int", default = 256}, reps = {"int", default = 3, min = 1}, device = {"string", default = "cpu"},
  layers = {"int", default = 24}, width = {"int", default = 1024},
}, "taming run bench/train_step.lua [what=vqgan,gpt] [size=256] [tokens=256] [reps=3] [precision=fp32|bf16]",
  {"fp32", "bf16"}, "int8 weights are for inference; training computes in fp32 or bf16")

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
  return B.median(ts)
end

local function plugin_params(p)
  local out = {}
  for _, n in ipairs(p:param_names()) do
    if p:param_info(n).trainable then out[#out + 1] = {name = n, tensor = p:param(n)} end
  end
  return out
end

local want = {}
for w in a.what:gmatch("[^,]+") do
  if w ~= "vqgan" and w ~= "gpt" then error(("what=%s: expected vqgan, gpt or both (vqgan,gpt)"):format(a.what), 0) end
  want[w] = true
end

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
  local prev, info = B.compute_precision(a.precision, "the VQGAN's training")
  local s = time_steps(function()
    local xrec, qloss = model:forward(x)
    local loss = (x - xrec):abs():mean() + qloss:mean()
    if opt:backward(loss) then opt:step() end
    loss_value = loss:item()
  end)
  tt.set_compute_precision(prev)
  B.print_json{"bench", "train_step", "what", "vqgan", "precision", info.precision, "isa", info.isa,
    "conv_isa", info.conv_isa or "f32", "size", a.size,
    "batch", a.batch, "device", a.device, "threads", tt.threads(), "s", B.fmt("%.4f", s),
    "loss", B.fmt("%.6g", loss_value)}
end

if want.gpt then
  local gpt = tt.plugin("transformer", "mingpt", {vocab_size = 1024, block_size = 512, n_layer = a.layers, n_head = 16,
    n_embd = a.width}, {seed = 0, device = a.device})
  gpt:train(true)
  local opt = optim.AdamW(plugin_params(gpt), {lr = 4.5e-6, betas = {0.9, 0.95}})
  local toks = (tt.rand({a.batch, a.tokens + 1}, 2, {device = a.device}) * 1023):long()      -- [B, T + 1]
  local inp, tgt = toks:slice(1, 0, -1):contiguous(), toks:slice(1, 1):contiguous()        -- [B, T] each
  local loss_value
  local prev, info = B.compute_precision(a.precision, "the GPT's training")
  local s = time_steps(function()
    local logits = gpt:forward(inp)                                                        -- [B, T, 1024]
    local loss = tt.losses.gpt_loss(logits, tgt)
    if opt:backward(loss) then opt:step() end
    loss_value = loss:item()
  end)
  tt.set_compute_precision(prev)
  B.print_json{"bench", "train_step", "what", "gpt", "precision", info.precision, "isa", info.isa, "tokens", a.tokens,
    "batch", a.batch, "device", a.device, "threads", tt.threads(), "s", B.fmt("%.4f", s),
    "loss", B.fmt("%.6g", loss_value)}
end
