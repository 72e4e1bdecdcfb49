-- taming.train — the training loops of both stages (REFERENCE §3.7, §4.4) and
-- what they share: logging (progress, TensorBoard, PNG grids), checkpoints
-- that resume exactly, and data parallelism through tt.dist when it is there.
--
--   train.vqgan{model = m, loader = l, steps = 1000, lr = lr, logdir = "logs/x", ...}
--   train.transformer{model = n2n, loader = l, steps = 1000, lr = lr, logdir = "logs/y", ...}
--
-- The VQGAN loop follows PyTorch Lightning 1.0.8 with two optimizers: for every
-- batch, optimizer 0 (a full autoencoder forward, the generator loss, backward,
-- an Adam step of the autoencoder) and then optimizer 1 (a new autoencoder
-- forward with the updated weights, the discriminator loss, backward, an Adam
-- step of the discriminator). While one optimizer runs, only its parameters
-- require gradients (Lightning's toggle_optimizer). global_step counts optimizer
-- steps (batches when accumulate = 1), so disc_start counts batches.
local tt = require "taming"
local optim = require "taming.optim"
local ckpt = require "taming.checkpoint"
local progress = require "taming.progress"
local data = require "taming.data"

local M = {}

-- ---- data parallel ----

-- The process group: tt.dist when it is loaded and has more than one process.
function M.dist()
  local d = rawget(tt, "dist")
  if type(d) == "table" and type(d.size) == "function" and d.size() > 1 then
    return {active = true, size = d.size(), rank = d.rank(),
            allreduce_mean_ = function(t) return d.allreduce_(t, "mean") end,
            broadcast_ = d.broadcast_, barrier = d.barrier}
  end
  return {active = false, size = 1, rank = 0}
end

-- Every tensor of the state_dict from rank 0, in name order (the same on every rank).
function M.broadcast_model(model, dist)
  local sd = model:state_dict()
  local names = {}
  for k in pairs(sd) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do dist.broadcast_(sd[k], 0) end
end

local function set_requires_grad(params, on)
  for _, p in ipairs(params) do p.tensor:requires_grad(on) end
end

local function number(v)
  if type(v) == "number" then return v end
  if type(v) == "boolean" then return v and 1 or 0 end
  if type(v) == "userdata" then return v:item() end
  return nil
end

-- Adds a loss's logs (numbers or one-element tensors) into acc, scaled.
local function add_logs(acc, logs, scale)
  for k, v in pairs(logs or {}) do
    local x = number(v)
    if x then acc[k] = (acc[k] or 0) + x * scale end
  end
end

-- ---- the run: logs, images, checkpoints ----

local Run = {}
Run.__index = Run

-- o: logdir, steps, start, ckpt_every, keep, image_every, log_every, progress,
-- tensorboard, dist, out
function M.new_run(o, dist)
  local self = setmetatable({o = o, dist = dist, main = dist.rank == 0, logdir = o.logdir or "logs/run"}, Run)
  self.ckdir = self.logdir .. "/checkpoints"
  self.imdir = self.logdir .. "/images/train"
  if self.main then
    tt.fs.mkdir(self.ckdir)
    tt.fs.mkdir(self.imdir)
    if o.tensorboard ~= false then self.tb = tt.tensorboard.open(self.logdir .. "/tensorboard") end
  end
  self.bar = progress.new{total = o.steps, start = o.start or 0, every = o.log_every or 50,
                          mode = self.main and (o.progress or "auto") or "off", out = o.out}
  self.t0 = tt.time()
  self.start = o.start or 0
  return self
end

-- Writes the config the run was built from as logdir/project.yaml (for tt.load).
function Run:write_config(config, source)
  if not self.main or not config then return end
  local text
  if type(source) == "string" and source:match("%.ya?ml$") then
    local f = io.open(source, "rb")
    if f then text = f:read("a"); f:close() end
  end
  tt.fs.write_atomic(self.logdir .. "/project.yaml", text or ckpt.to_yaml(config))
end

function Run:scalars(step, logs)
  if not self.main then return end
  local keys = {}
  for k in pairs(logs) do keys[#keys + 1] = k end
  table.sort(keys)
  if self.tb then
    for _, k in ipairs(keys) do self.tb:scalar(k, step, logs[k]) end
  end
end

-- grid of images ([B, C, H, W] tensors in [-1, 1], one row each) -> PNG + TensorBoard
function Run:images(step, tag, rows)
  if not self.main then return end
  local n = rows[1]:size(0)
  local list = {}
  for i, r in ipairs(rows) do list[i] = r:detach():to("cpu"):clamp(-1, 1) end
  local grid = tt.image.grid(list, n, 2, -1.0)
  local path = ("%s/%s_gs-%06d.png"):format(self.imdir, tag, step)
  tt.image.save(path, grid)
  if self.tb then self.tb:image("train/" .. tag, step, grid) end
  return path
end

function Run:progress(step, shown)
  self.bar:update(step, shown)
end

function Run:message(text)
  if self.main then self.bar:message(text) end
end

function Run:checkpoint(step, parts)
  if not self.main then return end
  local t = tt.time()
  parts.keep = self.o.keep
  local p = ckpt.save(self.ckdir, step, parts)
  if self.tb then self.tb:flush() end
  self:message(("checkpoint %s (%.2fs)"):format(p.weights, tt.time() - t))
end

function Run:due(step, every)
  return every and every > 0 and step % every == 0
end

-- profile=K: the per-op table of step K on stderr (tt.profile_*); on_step(step, loss)
-- is called after every step (benchmarks time steps with it; the transformer loop
-- passes the step's loss)
function Run:step_begin(step)
  if self.o.profile == step + 1 then tt.profile_start() end
end

function Run:step_end(step, loss)
  if self.o.profile == step then
    tt.profile_report(("step %d"):format(step))
    tt.profile_stop()
  end
  if self.o.on_step then self.o.on_step(step, loss) end
end

-- the last step's checkpoint is written unless checkpoint = false
function Run:checkpoint_due(step)
  return self:due(step, self.o.ckpt_every) or (step == self.o.steps and self.o.checkpoint ~= false)
end

function Run:finish(step)
  self.bar:finish()
  local dt = tt.time() - self.t0
  local rate = (step - self.start) / math.max(dt, 1e-9)
  if self.main then
    print(("trained steps %d..%d in %.2fs (%.2f steps/s)"):format(self.start, step, dt, rate))
  end
  if self.tb then self.tb:close() end
  if self.dist.active and self.dist.barrier then self.dist.barrier() end
  return rate
end

-- ---- resume ----

-- Restores a checkpoint's training state (the weights are loaded before the
-- optimizers are built) and puts the loader at the saved position. A changed
-- global batch (batch x processes) keeps the item order: the position is
-- carried over in items.
local function resume(o, parts, loader, batch, dist)
  local world = dist.size
  local st = ckpt.restore(o.resume, parts)
  if dist.rank == 0 then print(("resumed from step %d (%s)"):format(st.global_step, o.resume.weights)) end
  local pos = st.position or {epoch = 0, step = 0}
  local epoch, pstep = pos.epoch, pos.step
  local g_old, g_new = (st.batch or batch) * (st.world or world), batch * world
  if g_old ~= g_new then
    pstep = (pstep * g_old) // g_new
    io.stderr:write(("warning: the checkpoint was written with a global batch of %d, this run uses %d: "
      .. "resuming at item %d of epoch %d, the batches regroup\n"):format(g_old, g_new, pos.step * g_old, epoch))
  end
  if pstep >= loader:steps_per_epoch() then epoch, pstep = epoch + 1, 0 end
  loader:seek(epoch, pstep)
  -- the kernels' reductions split work by thread count: bitwise resumes need the same count
  if st.threads and st.threads ~= tt.threads() then
    io.stderr:write(("warning: the checkpoint was written with %d CPU threads, this run uses %d: the resumed run "
      .. "will not be bitwise identical to an uninterrupted one (set OMP_NUM_THREADS=%d)\n"):format(st.threads,
      tt.threads(), st.threads))
  end
  -- the GEMMs' precision changes every step's numbers
  local prec, was = o.precision or "fp32", st.precision or "fp32"
  if was ~= prec then
    io.stderr:write(("warning: the checkpoint was trained with precision=%s, this run uses precision=%s: the "
      .. "resumed run will not be bitwise identical to an uninterrupted one\n"):format(was, prec))
  end
  -- atomics in some CUDA backward kernels sum in a varying order
  if tostring(parts.device or "cpu"):match("^cuda") then
    io.stderr:write("warning: resuming on the GPU: CUDA training steps are not bitwise reproducible (some backward "
      .. "kernels add with atomics), so the resumed run matches an uninterrupted one to rounding, not bit for bit\n")
  end
  return st
end

local function common_state(o, loader, kind, batch, world, extra)
  local s = {kind = kind, epoch = loader:position().epoch, position = loader:position(), batch = batch, world = world,
             accumulate = o.accumulate or 1, lr = o.lr, seed = o.seed, config = o.config, args = o.args,
             threads = tt.threads(), precision = o.precision or "fp32"}
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

-- the batch size the loader gives per process
local function loader_batch(loader)
  return loader.opts and loader.opts.batch or 1
end

-- ---- first stage ----

-- ---- what a stage takes from a batch: a registry by key ----

-- key -> fn(batch, model) -> tensor: the input a model's image_key (first stage) or
-- cond_stage_key (second stage) names. A new task registers its own key (e.g. a
-- grayscale version of batch.image for colorization) instead of editing a chain.
M.inputs = {}

function M.register_input(key, fn)
  if type(key) ~= "string" or type(fn) ~= "function" then
    error("train.register_input(key, fn): a string key and a function fn(batch, model) -> tensor", 0)
  end
  M.inputs[key] = fn
end

local function batch_field(field, what)
  return function(batch, _, key)
    local v = batch[field]
    if v == nil then error(("the %s takes '%s', the data has no %s"):format(what, key, field), 0) end
    return v
  end
end

M.register_input("image", batch_field("image", "model"))
M.register_input("class_label", batch_field("label", "condition stage"))
M.register_input("class", batch_field("label", "condition stage"))
M.register_input("segmentation", batch_field("cond", "model"))
M.register_input("depth", batch_field("cond", "model"))

-- the tensor the data gives for `key`
function M.input(key, batch, model)
  local fn = M.inputs[key]
  if not fn then
    local known = {}
    for k in pairs(M.inputs) do known[#known + 1] = k end
    table.sort(known)
    error(("the data gives no '%s' (registered inputs: %s; add one with train.register_input)"):format(key,
      table.concat(known, ", ")), 0)
  end
  return fn(batch, model, key)
end

local function vq_input(model, batch)
  return M.input(model.image_key or "image", batch, model)
end

-- VQGAN training. o: model (a VQ model with its loss mounted as `loss`), loader
-- (taming.data), steps, lr, accumulate, device, seed, logdir, ckpt_every, keep,
-- image_every, log_every, progress, tensorboard, resume (ckpt.find result),
-- config, config_path, args, n_images (images per grid row), recompute ("none" or
-- "norm_act", see tt.set_recompute).
function M.vqgan(o)
  local model, loader = o.model, o.loader
  local L = o.loss or model.loss
  if not L then error("train.vqgan: the model has no loss (mount one with model:add('loss', L))", 0) end
  local dist = o.dist or M.dist()
  local prev_recompute = M.set_recompute(o.recompute, dist.rank == 0)
  local prev_precision = M.set_precision(o.precision, dist.rank == 0)
  local N = o.accumulate or 1
  local device = o.device or "cpu"
  if o.resume then ckpt.load_weights(o.resume, model, device) end
  local ae, disc, others = {}, {}, {}
  for _, p in ipairs(model:parameters()) do
    if p.name:sub(1, 19) == "loss.discriminator." then disc[#disc + 1] = p
    elseif p.name:sub(1, 5) == "loss." then others[#others + 1] = p
    else ae[#ae + 1] = p end   -- (EMAVQ's codebook is a buffer: moving averages, not gradients)
  end
  local adam = {lr = o.lr, betas = {0.5, 0.9}, eps = 1e-8, accumulate = N, dist = dist.active and dist or nil}
  adam.name = "opt_ae"
  local opt_ae = optim.Adam(ae, adam)
  local opt_disc
  if #disc > 0 then
    adam.name = "opt_disc"
    opt_disc = optim.Adam(disc, adam)
  end
  local optimizers = {opt_ae = opt_ae, opt_disc = opt_disc}
  local batch_size = loader_batch(loader)
  local step = 0
  if o.resume then
    step = resume(o, {model = model, optimizers = optimizers, device = device}, loader, batch_size, dist).global_step
  elseif dist.active then
    M.broadcast_model(model, dist)
  end
  set_requires_grad(others, false)   -- parameters no optimizer trains
  local run = M.new_run(setmetatable({start = step}, {__index = o}), dist)
  run:write_config(o.config, o.config_path)
  local n_embed = model.n_embed
  model:train(true)
  local codes, shown = {}, {}
  local last_x, last_rec
  local acc, acc_n = {}, 0
  while step < o.steps do
    run:step_begin(step)
    local logs = {}
    for _ = 1, N do
      local batch = loader:next()
      local x = vq_input(model, batch):to(device)
      -- optimizer_idx 0: the autoencoder
      set_requires_grad(disc, false)
      set_requires_grad(ae, true)
      local quant, qloss, idx = model:encode(x)
      local xrec = model:decode(quant)
      local aeloss, lg = L:generator(qloss, x, xrec, step, model:get_last_layer())
      if opt_ae:backward(aeloss) then opt_ae:step() end
      add_logs(logs, lg, 1 / N)
      logs["train/aeloss"] = (logs["train/aeloss"] or 0) + aeloss:item() / N
      codes[#codes + 1] = idx:reshape(-1)
      last_x, last_rec = x, xrec:detach()
      -- optimizer_idx 1: the discriminator, on a new forward with the updated weights
      if opt_disc then
        set_requires_grad(ae, false)
        set_requires_grad(disc, true)
        local xrec2 = model:forward(x)
        local dloss, ld = L:discriminator(x, xrec2, step)
        if opt_disc:backward(dloss) then opt_disc:step() end
        add_logs(logs, ld, 1 / N)
        logs["train/discloss"] = (logs["train/discloss"] or 0) + dloss:item() / N
      end
    end
    step = step + 1
    run:step_end(step, logs["train/aeloss"])
    add_logs(acc, logs, 1)
    acc_n = acc_n + 1
    shown = {{"aeloss", logs["train/aeloss"]},
             -- the segmentation loss (BCELossWithQuant) reports BCE in place of the L1 + LPIPS term
             logs["train/bce_loss"] and {"bce", logs["train/bce_loss"]} or {"rec", logs["train/rec_loss"]},
             {"quant", logs["train/quant_loss"]}}
    if opt_disc then shown[#shown + 1] = {"discloss", logs["train/discloss"]} end
    run:progress(step, shown)
    if run:due(step, o.log_every or 50) or step == o.steps then
      local out = {}
      for k, v in pairs(acc) do out[k] = v / acc_n end
      -- codebook health over the batches since the last report
      local used, perplexity, count = tt.codebook_usage(tt.cat(codes, 0), n_embed)
      out["train/codebook_usage"], out["train/codebook_perplexity"], out["train/codebook_used"] = used, perplexity, count
      out["train/lr"] = o.lr
      out["train/steps_per_s"] = run.bar:speed(step, tt.time()) or 0
      run:scalars(step, out)
      codes, acc, acc_n = {}, {}, 0
    end
    if run:due(step, o.image_every) then
      local n = math.min(last_x:size(0), o.n_images or 8)
      local xs, rs = last_x:slice(0, 0, n), last_rec:slice(0, 0, n)
      if model.kind == "VQSegmentationModel" then xs, rs = model:to_rgb(xs), model:to_rgb(rs) end
      run:images(step, "reconstructions", {xs, rs})
    end
    if run:checkpoint_due(step) then
      run:checkpoint(step, {model = model, optimizers = optimizers,
                            state = common_state(o, loader, "vqgan", batch_size, dist.size)})
    end
  end
  tt.set_recompute(prev_recompute)
  tt.set_compute_precision(prev_precision)
  return run:finish(step), step
end

-- recompute = "norm_act": see tt.set_recompute. Returns the previous mode.
function M.set_recompute(mode, main)
  mode = mode or "none"
  local prev = tt.set_recompute(mode)
  if main and mode ~= "none" then
    print(("recompute: %s (norm + activation outputs computed again in the backward, not kept)"):format(mode))
  end
  return prev
end

-- ---- mixed precision ----

-- precision = "bf16": the GEMMs of linear layers and matmuls, and the convolutions
-- (forward and backward; oneDNN where the CPU has AVX512-BF16 or AMX, else f32 with
-- one line saying so) take bf16 operands and accumulate in f32 (tt.set_compute_precision); weights,
-- gradients and the optimizer's state stay f32. No loss scaling: bf16 has f32's
-- exponent range, so gradients do not underflow as they would in f16. A CPU without
-- a bf16 GEMM trains in fp32 and says so in one line. Returns what to restore.
function M.set_precision(precision, main)
  precision = precision or "fp32"
  if precision ~= "fp32" and precision ~= "bf16" then
    error(("precision=%s: expected fp32 or bf16"):format(tostring(precision)), 0)
  end
  local prev = tt.compute_precision()
  local info = tt.set_compute_precision(precision)
  if main ~= false then
    if info.fallback then
      io.stderr:write(("taming: precision=%s is not available (%s); training in fp32\n"):format(precision,
        info.fallback))
    elseif precision == "bf16" then
      print(("precision: bf16 GEMMs (%s), bf16 convolutions (%s), f32 weights, gradients and optimizer state")
        :format(info.isa, info.conv_isa))
    end
  end
  return prev, info
end

-- ---- second stage ----

function M.cond_input(model, batch)
  local key = model.cond_stage_key
  -- an unconditional model or a condition stage shared with the first stage takes the images
  if key == model.first_stage_key then key = "image" end
  return M.input(key, batch, model)
end

local function frozen_stage(model, stage)
  if not stage or type(stage) ~= "table" or not stage.parameters then return end
  for _, p in ipairs(stage:parameters(true)) do
    if p.tensor:requires_grad() then p.tensor:requires_grad(false) end
  end
  stage:eval()
end

-- inputs, reconstructions through the codes, and samples from the batch's conditions
local function transformer_images(model, x, c, step, seed)
  return tt.no_grad(function()
    model.transformer:train(false)
    local quant, z = model:encode_to_z(x)
    local _, ci = model:encode_to_c(c)
    local zshape = quant:shape()
    local rec = model:decode_to_img(z, zshape)
    local sampler = tt.plugin("sampler", "categorical", {temperature = 1.0, seed = seed + step})
    local codes = model:sample(nil, ci, z:size(1), {sampler = sampler, cache = true,
                                                     vocab_limit = model.first_stage.n_embed})
    local samples = model:decode_to_img(codes, zshape)
    model.transformer:train(true)
    return rec, samples
  end)
end

-- Net2NetTransformer training: frozen first and condition stages, cross-entropy
-- over the image codes with the condition prepended, pkeep, AdamW with weight
-- decay on Linear weights only. o: as train.vqgan plus weight_decay (0.01) and
-- cond_drop (the probability of the null condition, for classifier-free guidance;
-- the pkeep stream draws it first, so cond_drop = 0 leaves runs as they were) and
-- precision ("fp32" or "bf16", see M.set_precision) and recompute (as train.vqgan;
-- the shipped GPT has no fused norm + activation op, so it changes nothing there yet).
function M.transformer(o)
  local model, loader = o.model, o.loader
  local dist = o.dist or M.dist()
  local prev_precision = M.set_precision(o.precision, dist.rank == 0)
  local prev_recompute = M.set_recompute(o.recompute, dist.rank == 0)
  local N = o.accumulate or 1
  local device = o.device or "cpu"
  if o.resume then ckpt.load_weights(o.resume, model, device) end
  local params = {}
  for _, p in ipairs(model:parameters()) do
    if p.name:sub(1, 12) == "transformer." then params[#params + 1] = p end
  end
  local opt = optim.AdamW(optim.gpt_groups(params, o.weight_decay or 0.01, "transformer."),
    {lr = o.lr, betas = {0.9, 0.95}, eps = 1e-8, accumulate = N, dist = dist.active and dist or nil, name = "opt"})
  local rng = tt.rng(o.seed or 0)
  local optimizers, rngs = {opt = opt}, {pkeep = rng}
  local batch_size = loader_batch(loader)
  local step = 0
  if o.resume then
    local st = resume(o, {model = model, optimizers = optimizers, rngs = rngs, device = device}, loader, batch_size,
      dist)
    step = st.global_step
    local gi = model.gpt_info or {}
    local cfg = ((((o.config or {}).model or {}).params or {}).transformer_config or {}).params or {}
    if (cfg.embd_pdrop or 0) > 0 or (cfg.resid_pdrop or 0) > 0 or (cfg.attn_pdrop or 0) > 0 then
      io.stderr:write(("warning: the GPT (%d layers) uses dropout, whose random stream is not saved in checkpoints; "
        .. "the resumed run is not bitwise identical to an uninterrupted one\n"):format(gi.n_layer or 0))
    end
  elseif dist.active then
    M.broadcast_model(model, dist)
  end
  model:train(true)
  frozen_stage(model, model.first_stage)
  if model.cond_stage ~= model.first_stage then frozen_stage(model, model.cond_stage) end
  local run = M.new_run(setmetatable({start = step}, {__index = o}), dist)
  run:write_config(o.config, o.config_path)
  local acc, acc_n = 0, 0
  local last_x, last_c
  while step < o.steps do
    run:step_begin(step)
    local loss_sum = 0
    for _ = 1, N do
      local batch = loader:next()
      local x = batch.image:to(device)
      local c = M.cond_input(model, batch):to(device)
      if (o.cond_drop or 0) > 0 and model.cond_drop ~= o.cond_drop then model:set_cond_drop(o.cond_drop, c) end
      local logits, target = model:forward(x, c, rng)   -- [B, L, V], [B, L]
      local loss = tt.losses.gpt_loss(logits, target)
      if opt:backward(loss) then opt:step() end
      loss_sum = loss_sum + loss:item() / N
      last_x, last_c = x, c
    end
    step = step + 1
    run:step_end(step, loss_sum)
    acc, acc_n = acc + loss_sum, acc_n + 1
    run:progress(step, {{"loss", loss_sum}})
    if run:due(step, o.log_every or 50) or step == o.steps then
      run:scalars(step, {["train/loss"] = acc / acc_n, ["train/lr"] = o.lr,
                         ["train/steps_per_s"] = run.bar:speed(step, tt.time()) or 0})
      acc, acc_n = 0, 0
    end
    if run:due(step, o.image_every) and run.main then
      local n = math.min(last_x:size(0), o.n_images or 4)
      local xs, cs = last_x:slice(0, 0, n), last_c:slice(0, 0, n)
      local rec, samples = transformer_images(model, xs, cs, step, o.seed or 0)
      run:images(step, "samples", {xs, rec, samples})
    end
    if run:checkpoint_due(step) then
      run:checkpoint(step, {model = model, optimizers = optimizers, rngs = rngs,
                            state = common_state(o, loader, "transformer", batch_size, dist.size)})
    end
  end
  tt.set_compute_precision(prev_precision)
  tt.set_recompute(prev_recompute)
  return run:finish(step), step
end

-- ---- what the training pipelines share (pipelines/train_*.lua) ----

-- key=value arguments of both training pipelines (merged with extra)
function M.schema(extra)
  local s = {
    config = {"string", help = "official YAML config (or a Lua file returning the config table)"},
    logdir = {"string", help = "run folder (default logs/<config name>)"},
    steps = {"int", default = 1000, help = "optimizer steps to train to"},
    batch = {"int", help = "batch per process (default: data.params.batch_size)"},
    lr = {"number", help = "learning rate (overrides the rule accumulate x processes x batch x base_lr)"},
    base_lr = {"number", help = "base learning rate (default: model.base_learning_rate)"},
    accumulate = {"int", default = 1, help = "micro-batches per optimizer step"},
    seed = {"int", default = 23},
    device = {"string", default = "cpu", choices = {"cpu", "cuda"}},
    resume = {"string", help = "auto (the log folder's latest checkpoint) or a checkpoint path"},
    threads = {"int"},
    workers = {"int", default = 2, help = "data decoding threads"},
    prefetch = {"int", default = 4, help = "batches decoded ahead"},
    ckpt_every = {"int", default = 1000},
    keep = {"int", default = 3, help = "checkpoints kept"},
    image_every = {"int", default = 1000, help = "sample/reconstruction grids every K steps (0: never)"},
    log_every = {"int", default = 50},
    progress = {"string", default = "auto", choices = {"auto", "bar", "lines", "off"}},
    tensorboard = {"bool", default = true},
    data = {"string", help = "config | folder | list | paired | fashion_mnist (default: config's data section)"},
    data_root = {"string", help = "image folder (folder, paired) or the root of list entries"},
    data_list = {"string", help = "text file of image paths (data=list)"},
    cond_root = {"string", help = "condition PNGs with the images' relative paths (data=paired)"},
    cond = {"string", default = "segmentation", choices = {"segmentation", "depth"}},
    seg_dataset = {"string", choices = {"sflckr", "coco", "ade20k"}},
    n_labels = {"int"},
    class_folders = {"bool", default = false, help = "labels from first-level folders (data=folder)"},
    split = {"string", default = "train", choices = {"train", "test"}},
    size = {"int", help = "SmallestMaxSize + crop size"},
    random_crop = {"bool", default = false},
    hflip = {"bool", default = false},
    channels = {"int", help = "1 or 3 (default: the model's in_channels)"},
    limit = {"int", help = "use only the first N items"},
    profile = {"int", help = "print the time and memory of each op during step K (stderr)"},
    recompute = {"string", default = "none", choices = {"none", "norm_act"}, help = "norm_act: the outputs of "
      .. "the fused norm + activation ops are not kept for the backward but computed again from their input "
      .. "(less memory, the same gradients)"},
  }
  for k, v in pairs(extra or {}) do s[k] = v end
  return s
end

-- YAML or a Lua file returning a table
function M.load_config(path)
  if path:match("%.lua$") then
    local chunk, err = loadfile(path, "t", {math = math})
    if not chunk then error(("%s: %s"):format(path, err), 0) end
    local cfg = chunk()
    if type(cfg) ~= "table" then error(("%s: must return the config table"):format(path), 0) end
    return cfg
  end
  return tt.yaml.load(path)
end

-- The checkpoint to resume from (or nil) and the config: from config= or, when
-- resuming without one, the config saved in the checkpoint.
function M.start(a, default_logdir)
  if a.threads then tt.set_threads(a.threads) end
  local cfg = a.config and M.load_config(a.config)
  local name = a.config and a.config:match("([^/]+)%.[^./]+$") or default_logdir
  a.logdir = a.logdir or ("logs/" .. name)
  local info
  if a.resume and a.resume ~= "" then
    info = ckpt.find(a.resume == "auto" and a.logdir or a.resume)
    if not info and a.resume ~= "auto" then error(("%s: no checkpoint to resume from"):format(a.resume), 0) end
  elseif ckpt.latest(a.logdir .. "/checkpoints") then
    error(("%s already holds checkpoints: pass resume=auto to continue that run, or another logdir="):format(a.logdir), 0)
  end
  if not cfg then
    if not info then error("missing argument config=... (the official YAML of the model)", 0) end
    cfg = info.state.config
  end
  return cfg, info
end

-- The dataset the arguments (or the config's data section) describe, and the batch size.
-- vq: the first stage the images feed; its in_channels are the images' channels unless
-- it encodes another key (a VQSegmentationModel encodes the segmentation maps).
function M.dataset(a, cfg, vq)
  local channels = vq and (vq.image_key or "image") == "image" and vq.in_channels or nil
  local kind = a.data or "config"
  local batch = a.batch or (cfg.data and cfg.data.params and cfg.data.params.batch_size)
  local common = {size = a.size, random_crop = a.random_crop, hflip = a.hflip, channels = a.channels or channels,
                  limit = a.limit}
  local ds
  if kind == "config" then
    if not cfg.data then error("the config has no data section: choose data=folder|list|paired|fashion_mnist", 0) end
    local cb
    -- the official data section names its held-out set "validation"
    ds, cb = data.from_config(cfg.data, a.split == "test" and "validation" or "train", {root = a.data_root, limit = a.limit})
    batch = a.batch or cb
    ds.channels = a.channels or channels or ds.channels
    if a.size then ds.size = a.size end
  elseif kind == "folder" then
    common.root = a.data_root or error("data=folder needs data_root=...", 0)
    common.class_folders = a.class_folders
    ds = data.image_folder(common)
  elseif kind == "list" then
    common.file = a.data_list or error("data=list needs data_list=...", 0)
    common.root = a.data_root
    ds = data.image_list(common)
  elseif kind == "paired" then
    common.images = a.data_root or error("data=paired needs data_root=...", 0)
    common.conditions = a.cond_root or error("data=paired needs cond_root=...", 0)
    common.kind, common.dataset, common.n_labels = a.cond, a.seg_dataset, a.n_labels
    ds = data.paired(common)
  elseif kind == "fashion_mnist" then
    common.dir, common.split = a.data_root, a.split
    ds = data.fashion_mnist(common)
  else
    error(("data=%s: expected config, folder, list, paired or fashion_mnist"):format(kind), 0)
  end
  if not batch then error("missing argument batch=... (the config gives no data.params.batch_size)", 0) end
  return ds, batch
end

-- The loader for this process's shard, and the learning rate (the official rule
-- unless lr= is given). Prints the rule as main.py does.
function M.loader_and_lr(a, ds, batch, base_lr, dist)
  local loader = data.loader(ds, {batch = batch, seed = a.seed, shuffle = true, rank = dist.rank, world = dist.size,
                                  workers = a.workers, prefetch = a.prefetch})
  local lr = a.lr
  if not lr then
    base_lr = a.base_lr or base_lr or 4.5e-6
    lr = optim.learning_rate(base_lr, batch, a.accumulate, dist.size)
    if dist.rank == 0 then
      print(("Setting learning rate to %.2e = %d (accumulate_grad_batches) * %d (num_gpus) * %d (batchsize) * %.2e (base_lr)")
        :format(lr, a.accumulate, dist.size, batch, base_lr))
    end
  end
  return loader, lr
end

-- the loop options common to both stages
function M.options(a, cfg, info)
  return {steps = a.steps, accumulate = a.accumulate, device = a.device, seed = a.seed, logdir = a.logdir,
          ckpt_every = a.ckpt_every, keep = a.keep, image_every = a.image_every, log_every = a.log_every,
          progress = a.progress, tensorboard = a.tensorboard, resume = info, config = cfg,
          config_path = a.config, args = a, profile = a.profile, recompute = a.recompute}
end

return M
