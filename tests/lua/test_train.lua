-- test_train.lua — the training pipelines end to end on tiny models (a 16x16
-- one-channel VQGAN, ch 32, ch_mult [1, 2]; a 2-layer GPT over its 8x8 codes,
-- conditioned on the Fashion-MNIST class): the loss falls on a fixed batch, the
-- checkpoints load with tt.load and sample through the shipped pipelines, the
-- progress output off a terminal is plain lines, the TensorBoard file parses,
-- accumulation equals a larger batch, and two data-parallel processes (a
-- file-based stand-in for tt.dist) equal one process with twice the batch.
-- The VQGAN loss is tests/lua/stand_in_loss.lua (L1 + codebook + hinge GAN).
-- A config given as a Lua table file trains too and is written out as YAML.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
if not tt.fs.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") then
  return T.skip("train", "the runs train on Fashion-MNIST (Debian's dataset-fashion-mnist), which is absent")
end
local data = require "taming.data"
local train = require "taming.train"
local progress = require "taming.progress"
local ckpt = require "taming.checkpoint"

local tmp = T.tmpdir("train")
T.sh("rm -rf '" .. tmp .. "'")
tt.fs.mkdir(tmp)
local SRC = T.srcdir()
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local VQ_YAML = [[
model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 8
    n_embed: 32
    ddconfig:
      double_z: false
      z_channels: 8
      resolution: 16
      in_channels: 1
      out_ch: 1
      ch: 32
      ch_mult: [1, 2]
      num_res_blocks: 1
      attn_resolutions: []
      dropout: 0.0
    lossconfig:
      target: taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator
      params:
        disc_start: 0
]]

local GPT_YAML = [[
model:
  base_learning_rate: 4.5e-06
  target: taming.models.cond_transformer.Net2NetTransformer
  params:
    cond_stage_key: class_label
    transformer_config:
      target: taming.modules.transformer.mingpt.GPT
      params: {vocab_size: 32, block_size: 64, n_layer: 2, n_head: 2, n_embd: 32}
    first_stage_config:
      target: taming.models.vqgan.VQModel
      params:
        embed_dim: 8
        n_embed: 32
        ddconfig: {double_z: false, z_channels: 8, resolution: 16, in_channels: 1, out_ch: 1, ch: 32,
                   ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
        lossconfig: {target: taming.modules.losses.DummyLoss}
    cond_stage_config:
      target: taming.modules.util.Labelator
      params: {n_classes: 10}
]]

local write = T.write
write(tmp .. "/vq.yaml", VQ_YAML)
write(tmp .. "/gpt.yaml", GPT_YAML)

local LOSS = SRC .. "/tests/lua/stand_in_loss.lua"
local DATA = "data=fashion_mnist split=test size=16"

local function run(script, args)
  local status, out = T.sh(("%s run %s/pipelines/%s %s"):format(T.taming(), SRC, script, args))
  if status ~= 0 then error(("%s failed (status %d):\n%s"):format(script, status, out), 2) end
  return out
end

-- the fixed batch: the first 4 test images, as the loader gives them
local function fixed_batch()
  local ds = data.fashion_mnist{split = "test", limit = 4, channels = 1, size = 16}
  return data.loader(ds, {batch = 4, shuffle = false, workers = 0}):next()
end

local function rec_loss(model, x)
  return tt.no_grad(function()
    local xrec = model:forward(x)
    return (x - xrec):abs():mean():item()
  end)
end

local function event_file(dir)
  for _, n in ipairs(tt.fs.listdir(dir)) do
    if n:match("^events%.out%.tfevents%.") then return dir .. "/" .. n end
  end
  error("no event file in " .. dir)
end

test("vqgan_learns_a_fixed_batch", function()
  local logdir = tmp .. "/vq"
  local t0 = tt.time()
  local out = run("train_vqgan.lua", ("config=%s/vq.yaml %s limit=4 batch=4 steps=40 lr=2e-3 loss=%s "
    .. "log_every=10 ckpt_every=20 image_every=20 keep=1 logdir=%s"):format(tmp, DATA, LOSS, logdir))
  local secs = tt.time() - t0
  -- (d) off a terminal the progress is plain lines
  local steps = {}
  for line in out:gmatch("[^\n]+") do
    T.ok("plain text only: " .. line, not line:find("[%c\127]"))
    local s = line:match("^step (%d+)/40 | [%d%.]+ it/s | eta %d+:%d%d:%d%d | aeloss [%d%.]+ | rec [%d%.]+ | quant [%-%d%.e]+ | discloss [%d%.]+$")
    if s then steps[#steps + 1] = tonumber(s) end
  end
  T.eq("progress lines", table.concat(steps, ","), "10,20,30,40")
  T.ok("no carriage return", not out:find("\r", 1, true))
  local rate = tonumber(out:match("%(([%d%.]+) steps/s%)"))
  T.ok("a speed is reported", rate and rate > 0)
  print(("  vqgan: 40 steps of batch 4 in %.2fs (the loop reports %.1f steps/s)"):format(secs, rate))
  -- the loss on the batch it trained on fell: tt.load reads the checkpoint (b)
  local x = fixed_batch().image
  local init = tt.build(tmp .. "/vq.yaml")
  init:init(23)
  local trained = tt.load(logdir .. "/checkpoints/step-00000040.safetensors", {config = logdir .. "/project.yaml"})
  local before, after = rec_loss(init, x), rec_loss(trained, x)
  print(("  vqgan: L1 reconstruction loss on the fixed batch %.4f -> %.4f"):format(before, after))
  T.ok(("loss fell: %.4f -> %.4f"):format(before, after), after < 0.75 * before)
  T.eq("global step from the file's metadata", tonumber(trained.global_step), 40)
  -- the file also holds the stand-in loss's discriminator under loss.*
  local ck = tt.ckpt.open(logdir .. "/checkpoints/step-00000040.safetensors")
  T.ok("loss.discriminator saved", ck:get("loss.discriminator.main.0.weight") ~= nil)
  -- keep=1: only the last checkpoint is left; grids were written
  local names = tt.fs.listdir(logdir .. "/checkpoints")
  T.eq("files left", table.concat(names, " "),
    "latest step-00000040.optim.safetensors step-00000040.safetensors step-00000040.state.lua")
  T.ok("grid png", tt.fs.exists(logdir .. "/images/train/reconstructions_gs-000040.png"))
  -- (e) the TensorBoard file parses: CRCs, protobufs, tags, steps, PNGs
  local events = tt.tensorboard.read(event_file(logdir .. "/tensorboard"))
  T.eq("file_version", events[1].file_version, "brain.Event:2")
  local scalars, images = {}, {}
  for i = 2, #events do
    for _, v in ipairs(events[i].values) do
      if v.simple_value then
        scalars[v.tag] = scalars[v.tag] or {}
        scalars[v.tag][#scalars[v.tag] + 1] = {events[i].step, v.simple_value}
      end
      if v.image then images[#images + 1] = {events[i].step, v.image} end
    end
  end
  for _, tag in ipairs({"train/aeloss", "train/discloss", "train/rec_loss", "train/codebook_usage",
                        "train/codebook_perplexity", "train/lr"}) do
    T.ok("scalar " .. tag, scalars[tag] ~= nil)
    local st = {}
    for _, e in ipairs(scalars[tag]) do st[#st + 1] = e[1] end
    T.eq(tag .. " steps", table.concat(st, ","), "10,20,30,40")
  end
  for _, e in ipairs(scalars["train/codebook_usage"]) do T.ok("usage in (0, 1]", e[2] > 0 and e[2] <= 1) end
  for _, e in ipairs(scalars["train/codebook_perplexity"]) do T.ok("perplexity in [1, 32]", e[2] >= 1 and e[2] <= 32) end
  T.ok("lr", math.abs(scalars["train/lr"][1][2] - 2e-3) < 1e-9)
  T.eq("images", #images, 2)
  T.eq("image step", images[2][1], 40)
  -- two rows (inputs, reconstructions) of four 16x16 images, 2 pixels apart
  T.eq("grid height", images[2][2].height, 2 * 18 + 2)
  T.eq("grid width", images[2][2].width, 4 * 18 + 2)
  T.eq("png", images[2][2].png:sub(1, 8), "\137PNG\r\n\26\n")
  -- a fresh run into a folder that already holds checkpoints is refused
  local status, msg = T.sh(("%s run %s/pipelines/train_vqgan.lua config=%s/vq.yaml %s batch=4 steps=1 loss=%s logdir=%s")
    :format(T.taming(), SRC, tmp, DATA, LOSS, logdir))
  T.ok("refused", status ~= 0 and msg:find("resume=auto", 1, true) ~= nil)
end)

-- first-stage weights for the transformer tests: the tiny VQGAN, initialised
local function first_stage_file()
  local path = tmp .. "/first_stage.safetensors"
  if not tt.fs.exists(path) then
    local vq = tt.build(tmp .. "/vq.yaml")
    vq:init(5)
    tt.safetensors.save(path, vq:state_dict())
  end
  return path
end

local function gpt_loss(model, batch)
  return tt.no_grad(function()
    local logits, target = model:forward(batch.image, batch.label)
    local B, L = target:size(0), target:size(1)
    return tt.cross_entropy(logits:reshape(B * L, 32), target:reshape(B * L)):item()
  end)
end

test("transformer_learns_a_fixed_batch_and_samples", function()
  local logdir = tmp .. "/gpt"
  local fs = first_stage_file()
  local t0 = tt.time()
  local out = run("train_transformer.lua", ("config=%s/gpt.yaml first_stage=%s %s limit=4 batch=4 steps=40 lr=3e-3 "
    .. "log_every=10 ckpt_every=40 image_every=20 logdir=%s progress=lines"):format(tmp, fs, DATA, logdir))
  local rate = tonumber(out:match("%(([%d%.]+) steps/s%)"))
  print(("  transformer: 40 steps of batch 4 in %.2fs (the loop reports %.1f steps/s)"):format(tt.time() - t0, rate))
  local b = fixed_batch()
  local init = tt.build(tmp .. "/gpt.yaml")
  init.first_stage:load_state(tt.ckpt.open(fs))
  init:init(23)
  init:eval()
  local trained = tt.load(logdir .. "/checkpoints/step-00000040.safetensors", {config = logdir .. "/project.yaml"})
  local before, after = gpt_loss(init, b), gpt_loss(trained, b)
  print(("  transformer: cross-entropy on the fixed batch %.4f -> %.4f"):format(before, after))
  T.ok(("loss fell: %.4f -> %.4f"):format(before, after), after < 0.7 * before)
  -- the frozen first stage is unchanged
  local fsd = tt.ckpt.open(fs)
  for k, t in pairs(trained.first_stage:state_dict()) do T.close("frozen " .. k, t, fsd:get(k), 0) end
  T.ok("sample grid", tt.fs.exists(logdir .. "/images/train/samples_gs-000040.png"))
  -- (b) the shipped sampling pipeline reads the checkpoint
  local status, sout = T.sh(("%s run sample_class config=%s/project.yaml ckpt=%s/checkpoints/step-00000040.safetensors "
    .. "class=3 n=2 output=%s/samples.png"):format(T.taming(), logdir, logdir, tmp))
  T.ok("sample_class: " .. sout, status == 0)
  local png = tt.image.load(tmp .. "/samples.png", {raw = true})
  T.eq("samples: two 16x16 images side by side", table.concat(png:shape(), "x"), "20x38x1")
end)

local function transformer_weights(path)
  local out = {}
  for k, t in pairs(tt.ckpt.open(path):tensors()) do
    if k:sub(1, 12) == "transformer." then out[k] = t end
  end
  return out
end

local function compare(what, a, b, tol)
  local worst, n = 0, 0
  for k, t in pairs(a) do
    T.ok(what .. ": " .. k .. " missing", b[k] ~= nil)
    worst = math.max(worst, T.max_diff(t, b[k]))
    n = n + 1
  end
  T.ok(what .. ": tensors", n > 20)
  T.ok(("%s: max diff %.3g > %.3g"):format(what, worst, tol), worst <= tol)
  return worst
end

test("accumulation_equals_a_larger_batch", function()
  local fs = first_stage_file()
  local args = ("config=%s/gpt.yaml first_stage=%s %s limit=16 steps=4 base_lr=2e-4 log_every=100 ckpt_every=100 "
    .. "image_every=0 progress=off tensorboard=false"):format(tmp, fs, DATA)
  local o1 = run("train_transformer.lua", args .. " batch=8 accumulate=1 logdir=" .. tmp .. "/acc1")
  local o2 = run("train_transformer.lua", args .. " batch=4 accumulate=2 logdir=" .. tmp .. "/acc2")
  -- the learning-rate rule: accumulate x processes x batch x base_lr, the same for both
  T.ok("rule printed", o1:find("Setting learning rate to 1.60e-03 = 1 (accumulate_grad_batches) * 1 (num_gpus) "
    .. "* 8 (batchsize) * 2.00e-04 (base_lr)", 1, true) ~= nil)
  T.ok("rule printed", o2:find("Setting learning rate to 1.60e-03 = 2 (accumulate_grad_batches)", 1, true) ~= nil)
  local a = transformer_weights(tmp .. "/acc1/checkpoints/step-00000004.safetensors")
  local b = transformer_weights(tmp .. "/acc2/checkpoints/step-00000004.safetensors")
  local worst = compare("accumulate 2 x batch 4 vs batch 8", a, b, 1e-5)
  local init = tt.build(tmp .. "/gpt.yaml")
  init:init(23)
  local moved = 0
  for k, t in pairs(init:state_dict()) do
    if a[k] then moved = math.max(moved, T.max_diff(t, a[k])) end
  end
  print(("  accumulation: max |diff| %.2g while training moved weights by up to %.2g"):format(worst, moved))
  T.ok("training moved the weights", moved > 100 * math.max(worst, 1e-9))
end)

test("two_processes_equal_one_with_twice_the_batch", function()
  local fs = first_stage_file()
  local args = ("config=%s/gpt.yaml first_stage=%s %s limit=24 steps=5 base_lr=2e-4 log_every=100 "
    .. "ckpt_every=100 image_every=0 progress=off"):format(tmp, fs, DATA)
  local launcher, why = T.mpirun(2)
  if not launcher then print("  skipped: " .. why); return end
  -- one kernel thread per process: two ranks fill the two cores, and a fixed count keeps the arithmetic equal
  local status1, out1 = T.sh(("OMP_NUM_THREADS=1 %s run %s/pipelines/train_transformer.lua %s batch=8 logdir=%s/dp1"):format(
    T.taming(), SRC, args, tmp))
  T.ok("single process: " .. out1, status1 == 0)
  local status, out = T.sh(("OMP_NUM_THREADS=1 %s %s run %s/pipelines/train_transformer.lua %s batch=4 logdir=%s/dp2"):format(
    launcher, T.taming(), SRC, args, tmp))
  T.ok("mpirun exit 0: " .. out, status == 0)
  -- the rule counts both processes: 1 x 2 x 4 x 2e-4
  T.ok("lr rule over ranks: " .. out, out:find("Setting learning rate to 1.60e-03 = 1 (accumulate_grad_batches) * 2 "
    .. "(num_gpus) * 4 (batchsize)", 1, true) ~= nil)
  -- only rank 0 writes
  local a = transformer_weights(tmp .. "/dp1/checkpoints/step-00000005.safetensors")
  local b = transformer_weights(tmp .. "/dp2/checkpoints/step-00000005.safetensors")
  local worst = compare("2 processes x batch 4 vs 1 x batch 8", a, b, 1e-5)
  print(("  data parallel: max |diff| %.2g after 5 steps"):format(worst))
end)

test("lua_config_file", function()
  write(tmp .. "/vq_cfg.lua", [[
return {model = {target = "taming.models.vqgan.VQModel", base_learning_rate = 4.5e-6, params = {
  embed_dim = 8, n_embed = 32,
  ddconfig = {double_z = false, z_channels = 8, resolution = 16, in_channels = 1, out_ch = 1, ch = 32,
              ch_mult = {1, 2}, num_res_blocks = 1, attn_resolutions = {}, dropout = 0.0},
  lossconfig = {target = "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator", params = {disc_start = 0}}}}}
]])
  local logdir = tmp .. "/luacfg"
  local out = run("train_vqgan.lua", ("config=%s/vq_cfg.lua %s limit=2 batch=2 steps=2 loss=%s image_every=0 "
    .. "progress=off logdir=%s"):format(tmp, DATA, LOSS, logdir))
  -- no lr= given: the official rule, 1 x 1 x 2 x 4.5e-6
  T.ok("lr rule: " .. out, out:find("Setting learning rate to 9.00e-06", 1, true) ~= nil)
  -- the table config is written out as YAML that tt.load reads back
  local m = tt.load(logdir .. "/checkpoints/step-00000002.safetensors", {config = logdir .. "/project.yaml"})
  T.eq("kind", m.kind, "VQModel")
  T.eq("in_channels", m.in_channels, 1)
end)

-- recompute=norm_act: the VQGAN's convolutions keep no copy of the GroupNorm+SiLU
-- outputs and the backward computes them again; the same kernels on the same
-- inputs, so three steps of training give bit for bit the same weights.
test("recompute_norm_act_trains_the_same_weights", function()
  local sd = {}
  for _, mode in ipairs({"none", "norm_act"}) do
    local logdir = tmp .. "/recompute_" .. mode
    local out = run("train_vqgan.lua", ("config=%s/vq.yaml %s limit=4 batch=4 steps=3 lr=2e-3 loss=%s image_every=0 "
      .. "ckpt_every=3 progress=off tensorboard=false recompute=%s logdir=%s"):format(tmp, DATA, LOSS, mode, logdir))
    T.eq("recompute line with " .. mode, out:find("recompute: norm_act", 1, true) ~= nil, mode == "norm_act")
    sd[mode] = tt.ckpt.open(logdir .. "/checkpoints/step-00000003.safetensors"):tensors()
  end
  local n = 0
  for k, t in pairs(sd.none) do
    T.ok(k .. " saved with recompute=norm_act", sd.norm_act[k] ~= nil)
    if t:dtype() == "f32" then
      T.eq(k .. " max abs diff", T.max_diff(t, sd.norm_act[k]), 0)
      n = n + 1
    end
  end
  T.ok("weights compared: " .. n, n > 20)
  T.raises("a mode it does not know", function() tt.set_recompute("everything") end, "everything")
  T.eq("mode restored after the run", tt.recompute(), "none")
end)

test("segmentation_model_learns_ade20k_maps", function()
  -- VQSegmentationModel with BCELossWithQuant on the real ADE20K examples (151 labels)
  local EX = SRC .. "/../shared/data/examples"
  if not tt.fs.isdir(EX .. "/ade20k_segmentations") then print("  (skipped: " .. EX .. " absent)") return end
  write(tmp .. "/seg.yaml", [[
model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.VQSegmentationModel
  params:
    embed_dim: 8
    n_embed: 32
    image_key: segmentation
    n_labels: 151
    ddconfig: {double_z: false, z_channels: 8, resolution: 16, in_channels: 151, out_ch: 151, ch: 32,
               ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
    lossconfig:
      target: taming.modules.losses.segmentation.BCELossWithQuant
      params: {codebook_weight: 1.0}
]])
  local logdir = tmp .. "/seg"
  local args = ("config=%s/seg.yaml data=paired data_root=%s/ade20k_images cond_root=%s/ade20k_segmentations "
    .. "cond=segmentation seg_dataset=ade20k size=16 limit=2 batch=2 lr=2e-3 image_every=20 progress=off logdir=%s")
    :format(tmp, EX, EX, logdir)
  run("train_vqgan.lua", args .. " steps=1")
  run("train_vqgan.lua", args .. " steps=30 resume=auto")
  T.ok("colorized reconstructions", tt.fs.exists(logdir .. "/images/train/reconstructions_gs-000020.png"))
  -- BCE of the two training maps after 1 and after 30 steps
  local ds = data.paired{images = EX .. "/ade20k_images", conditions = EX .. "/ade20k_segmentations",
                         kind = "segmentation", dataset = "ade20k", size = 16, limit = 2}
  local maps = data.loader(ds, {batch = 2, shuffle = false, workers = 0}):next().cond
  T.eq("one-hot maps", table.concat(maps:shape(), "x"), "2x151x16x16")
  local function bce(step)
    local m = tt.load(("%s/checkpoints/step-%08d.safetensors"):format(logdir, step), {config = logdir .. "/project.yaml"})
    T.eq("kind", m.kind, "VQSegmentationModel")
    return tt.no_grad(function() return tt.bce_with_logits(m:forward(maps), maps):item() end)
  end
  local before, after = bce(1), bce(30)
  print(("  segmentation: BCE on the training maps %.4f -> %.4f"):format(before, after))
  T.ok(("BCE falls: %.4f -> %.4f"):format(before, after), after < 0.5 * before)
end)

test("config_data_section_splits", function()
  -- data=config: split=train reads data.params.train, split=test data.params.validation
  local lists = {train = {"a.png", "b.png", "c.png"}, validation = {"d.png", "e.png"}}
  for name, files in pairs(lists) do write(("%s/%s.txt"):format(tmp, name), table.concat(files, "\n") .. "\n") end
  local cfg = {data = {params = {batch_size = 2,
    train = {target = "taming.data.custom.CustomTrain", params = {training_images_list_file = tmp .. "/train.txt", size = 8}},
    validation = {target = "taming.data.custom.CustomTest", params = {test_images_list_file = tmp .. "/validation.txt", size = 8}}}}}
  local tr, b = train.dataset({data = "config", split = "train"}, cfg)
  local te = train.dataset({data = "config", split = "test"}, cfg)
  T.eq("batch", b, 2)
  T.eq("train images", tr.n, 3)
  T.eq("test images", te.n, 2)
  T.eq("test list", te.paths[1], "d.png")
end)

test("progress_bar_and_lines", function()
  local now = 100.0
  local clock = function() return now end
  local path = tmp .. "/progress.txt"
  local f = assert(io.open(path, "w"))
  local p = progress.new{total = 10, start = 0, every = 4, mode = "lines", out = f, clock = clock}
  for s = 1, 10 do
    now = now + 0.5
    p:update(s, {{"loss", 1 / s}})
  end
  p:finish()
  f:close()
  local text = io.open(path):read("a")
  T.eq("lines", text, "step 4/10 | 2.00 it/s | eta 0:00:03 | loss 0.2500\nstep 8/10 | 2.00 it/s | eta 0:00:01 | loss 0.1250\n"
    .. "step 10/10 | 2.00 it/s | eta 0:00:00 | loss 0.1000\n")
  -- on a terminal: one line redrawn in place, messages on lines of their own
  f = assert(io.open(path, "w"))
  now = 0
  p = progress.new{total = 4, start = 0, mode = "bar", out = f, clock = clock, width = 4}
  now = 1; p:update(1, {loss = 0.5})
  now = 1.01; p:update(2, {loss = 0.4})   -- within 0.1 s: not redrawn
  p:message("checkpoint x")
  now = 2; p:update(4, {loss = 0.25})
  p:finish()
  f:close()
  text = io.open(path):read("a")
  T.eq("bar", text, "\r[#...] step 1/4 | 1.00 it/s | eta 0:00:03 | loss 0.5000\27[K\r\27[Kcheckpoint x\n"
    .. "\r[####] step 4/4 | 2.00 it/s | eta 0:00:00 | loss 0.2500\27[K\n")
  T.eq("hms", progress.hms(3725), "1:02:05")
  T.raises("bad mode", function() progress.new{mode = "fancy"} end, "fancy")
  -- auto: a bar on a terminal, lines off one, and lines under an MPI launcher even
  -- though the launcher hands each rank a terminal
  local tty = function() return true end
  local function env(vars) return function(k) return vars[k] end end
  T.eq("auto on a terminal", progress.new{isatty = tty, getenv = env{}}.mode, "bar")
  T.eq("auto off a terminal", progress.new{isatty = function() return false end, getenv = env{}}.mode, "lines")
  for _, v in ipairs({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}) do
    T.eq("auto under a launcher (" .. v .. ")", progress.new{isatty = tty, getenv = env{[v] = "2"}}.mode, "lines")
  end
  T.eq("bar forced under a launcher", progress.new{mode = "bar", isatty = tty, getenv = env{PMI_SIZE = "2"}}.mode, "bar")
end)

test("checkpoint_sidecar_and_yaml_round_trip", function()
  local v = {1, 2.5, -0.0, "a \"quoted\"\nline", true, {x = 1}, big = math.maxinteger, small = math.mininteger,
             f = 1e300, tiny = 5e-324, int_float = 3.0, ["key with space"] = "v", ["end"] = 1, nested = {{}, {1}}}
  local path = tmp .. "/state.lua"
  tt.fs.write_atomic(path, ckpt.to_lua(v))
  local r = ckpt.read_lua(path)
  T.eq("int", r[1], 1)
  T.eq("float", r[2], 2.5)
  T.eq("string", r[4], v[4])
  T.eq("maxinteger", r.big, math.maxinteger)
  T.eq("mininteger", r.small, math.mininteger)
  T.eq("huge", r.f, 1e300)
  T.eq("denormal", r.tiny, 5e-324)
  T.eq("3.0 stays a float", math.type(r.int_float), "float")
  T.eq("keyword key", r["end"], 1)
  T.eq("spaced key", r["key with space"], "v")
  T.eq("nested", r.nested[2][1], 1)
  T.raises("atomic write into a missing folder", function()
    tt.fs.write_atomic(tmp .. "/no/such/dir/state.lua", "x")
  end, tmp .. "/no/such/dir/state.lua")
  -- a sidecar cannot reach anything
  write(path, "return {x = os.exit}")
  T.raises("no globals", function() ckpt.read_lua(path) end, "state.lua")
  -- configs as YAML read back into the same tables
  local cfg = tt.yaml.load(tmp .. "/gpt.yaml")
  cfg.extra = {s = "yes", n = "1e-5", e = 1e-05, list = {1, 2.5, "x"}, empty = {}}
  write(tmp .. "/rt.yaml", ckpt.to_yaml(cfg))
  local back = tt.yaml.load(tmp .. "/rt.yaml")
  T.eq("nested value", back.model.params.transformer_config.params.n_embd, 32)
  T.eq("empty list", #back.model.params.first_stage_config.params.ddconfig.attn_resolutions, 0)
  T.eq("base lr", back.model.base_learning_rate, 4.5e-6)
  T.eq("quoted yes stays a string", back.extra.s, "yes")
  T.eq("quoted number stays a string", back.extra.n, "1e-5")
  T.eq("float", back.extra.e, 1e-05)
  T.eq("list", back.extra.list[3], "x")
  -- an incomplete checkpoint is refused by name; stale temporary files are pruned
  local dir = tmp .. "/ck"
  tt.fs.mkdir(dir)
  local m = tt.build(tmp .. "/vq.yaml")
  m:init(1)
  ckpt.save(dir, 7, {model = m, keep = 2})
  ckpt.save(dir, 8, {model = m, keep = 2})
  write(dir .. "/step-00000009.safetensors.tmp.Ab12Cd", "partial")
  ckpt.save(dir, 9, {model = m, keep = 2})
  T.eq("kept", table.concat(tt.fs.listdir(dir), " "), "latest step-00000008.optim.safetensors "
    .. "step-00000008.safetensors step-00000008.state.lua step-00000009.optim.safetensors step-00000009.safetensors "
    .. "step-00000009.state.lua")
  T.eq("latest", ckpt.find(dir).base, "step-00000009")
  tt.fs.remove(dir .. "/step-00000009.optim.safetensors")
  T.raises("incomplete", function() ckpt.find(dir) end, "step-00000009.optim.safetensors", "missing")
end)

return T.run("train", tests)
