-- bench/train.lua — steps/s and peak memory of the shipped training loops
-- (taming.train: train.vqgan, train.transformer) on the reference harness's
-- configs (../shared/tools/torch-reference/train/*.yaml), so the comparison with
-- PyTorch is one command on each side. As the harness does, the data is
-- preloaded (random images and labels: no loader cost), the weights are random
-- (the frozen first stage too), and checkpoints, image grids and TensorBoard are
-- off. Prints one JSON line: median and mean steps/s over the timed steps, the
-- median CPU seconds a step takes (all threads: steadier than wall time on a
-- shared machine), the warm-up steps' wall and CPU times, peak RSS and its growth over the RSS before the first
-- step, the peak of tensor memory per step (taming's own allocator), and the minor page faults
-- of each step (first-touch memory: what makes the first steps slower).
--
--   taming run bench/train.lua what=vqgan|transformer [config=FILE.yaml] [size=64] [batch=N]
--                              [steps=12] [warmup=3] [threads=N] [profile=K] [seed=23] [precision=fp32|bf16]
--                              [recompute=none|norm_act]
-- precision=bf16: the GEMMs (and for the VQGAN the convolutions) in bf16 with f32 accumulation
-- (train.set_precision); the JSON names the precision that ran and the bf16 GEMM's and convolution's
-- instruction sets.
local tt = require "taming"
local train = require "taming.train"

local harness = (TAMING_ROOT or ".") .. "/../shared/tools/torch-reference/train/"
local a = tt.args.parse(..., {
  what = {"string", default = "vqgan", choices = {"vqgan", "transformer"}},
  config = {"string", help = "default: the harness's vqgan64.yaml or transformer.yaml"},
  size = {"int", help = "image size (default: the config's resolution; 64 for the transformer)"},
  batch = {"int", help = "default: the config's data.params.batch_size"},
  steps = {"int", default = 12, help = "steps in all, warm-up included"},
  warmup = {"int", default = 3, help = "first steps left out of the rate"},
  threads = {"int"}, seed = {"int", default = 23},
  profile = {"int", help = "print the per-op table of step K (stderr)"},
  precision = {"string", default = "fp32", choices = {"fp32", "bf16"}},
  recompute = {"string", default = "none", choices = {"none", "norm_act"}},
}, "taming run bench/train.lua what=vqgan|transformer [config=...] [steps=12] [warmup=3]")
if a.threads then tt.set_threads(a.threads) end
if a.steps <= a.warmup then error(("steps=%d must exceed warmup=%d"):format(a.steps, a.warmup), 0) end

local function rss_now()   -- resident bytes now (/proc/self/statm: pages)
  local f = io.open("/proc/self/statm", "r")
  if not f then return 0 end
  local _, res = f:read("l"):match("^(%d+)%s+(%d+)")
  f:close()
  return tonumber(res) * 4096
end

local function minflt_now()   -- minor page faults of the process so far (/proc/self/stat, field 10)
  local f = io.open("/proc/self/stat", "r")
  if not f then return 0 end
  local rest = f:read("l"):match("%)%s+(.*)$")
  f:close()
  local i = 2   -- rest starts at field 3 (state)
  for v in rest:gmatch("%S+") do
    i = i + 1
    if i == 10 then return tonumber(v) end
  end
  return 0
end

local config = a.config or (harness .. (a.what == "vqgan" and "vqgan64.yaml" or "transformer.yaml"))
local cfg = tt.yaml.load(config)
local model = tt.build(cfg, {train = a.what == "vqgan", loss = {seed = a.seed}, ckpt_path = false})   -- random weights
if a.what == "vqgan" and not model.loss then error(config .. ": the lossconfig gives nothing to train", 0) end
model:init(a.seed, "cpu")

local mp = cfg.model.params
local batch = a.batch or (cfg.data and cfg.data.params and cfg.data.params.batch_size) or 8
local size = a.size or (a.what == "vqgan" and mp.ddconfig.resolution) or
  mp.first_stage_config.params.ddconfig.resolution
local channels = a.what == "vqgan" and mp.ddconfig.in_channels or mp.first_stage_config.params.ddconfig.in_channels

-- a few preloaded batches, handed out in turn; the loader interface of taming.data
local batches = {}
for i = 1, 4 do
  batches[i] = {image = tt.rand({batch, channels, size, size}, a.seed + i) * 2.0 - 1.0,   -- [B, C, H, W]
                label = (tt.rand({batch}, a.seed + 100 + i) * 9.999):long()}            -- [B] in 0..9
end
local loader = {opts = {batch = batch}, i = 0}
function loader:next()
  self.i = self.i + 1
  return batches[(self.i - 1) % #batches + 1]
end
function loader:position() return {epoch = 0, step = self.i} end
function loader:steps_per_epoch() return #batches end
function loader:close() end

local logdir = os.tmpname()
os.remove(logdir)
local times, cpus, peaks, faults = {}, {}, {}, {}
local t_last, c_last, f_last
local rss0 = rss_now()
local o = {model = model, loader = loader, steps = a.steps, lr = 4.5e-6 * batch, seed = a.seed, logdir = logdir,
           ckpt_every = 0, checkpoint = false, image_every = 0, log_every = a.steps + 1, progress = "off",
           tensorboard = false, profile = a.profile, config = cfg,
           precision = a.precision, recompute = a.recompute}
local ran, isa, conv_isa = a.precision, "openblas", "f32"
if a.precision == "bf16" then
  local prev, info = train.set_precision("bf16", false)
  tt.set_compute_precision(prev)
  ran, isa, conv_isa = info.precision, info.isa, info.conv_isa
end
-- the tensor-memory peak of each step: the profiler's window, restarted after every step
-- (a profile=K table is printed before this runs)
o.on_step = function(step)
  local t, c = tt.time(), os.clock()
  times[step], cpus[step] = t - t_last, c - c_last
  local fl = minflt_now()
  faults[step], f_last = fl - f_last, fl
  peaks[step] = tt.profile_memory()
  tt.profile_start()
  t_last, c_last = tt.time(), os.clock()
end
tt.profile_start()
f_last = minflt_now()
t_last, c_last = tt.time(), os.clock()
if a.what == "vqgan" then train.vqgan(o) else train.transformer(o) end
tt.profile_stop()
os.execute(("rm -rf '%s'"):format(logdir))

local function median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  return n % 2 == 1 and s[(n + 1) / 2] or 0.5 * (s[n / 2] + s[n / 2 + 1])
end
local timed, warm, warm_cpu, cpu = {}, {}, {}, {}
for i = 1, a.steps do
  if i <= a.warmup then warm[#warm + 1], warm_cpu[#warm_cpu + 1] = ("%.3f"):format(times[i]), ("%.3f"):format(cpus[i])
  else timed[#timed + 1], cpu[#cpu + 1] = times[i], cpus[i] end
end
local sum = 0
for _, v in ipairs(timed) do sum = sum + v end
local peak_tensors = 0
for i = a.warmup + 1, a.steps do peak_tensors = math.max(peak_tensors, peaks[i]) end
local rss_peak = tt.peak_rss()
print(('{"bench":"train","what":"%s","precision":"%s","isa":"%s","conv_isa":"%s","recompute":"%s","config":"%s","size":%d,"batch":%d,"threads":%d,"steps":%d,"warmup":%d,'
  .. '"steps_per_s":%.4f,"steps_per_s_mean":%.4f,"step_s_min":%.4f,"cpu_s_per_step":%.3f,"warmup_s":[%s],"warmup_cpu_s":[%s],'
  .. '"peak_rss_mb":%.1f,"rss_before_mb":%.1f,"rss_growth_mb":%.1f,"peak_tensor_mb":%.1f,"page_faults":[%s]}')
  :format(a.what, ran, isa, conv_isa, a.recompute, config:match("[^/]+$"), size, batch, tt.threads(), a.steps, a.warmup, 1 / median(timed),
    #timed / sum, math.min(table.unpack(timed)), median(cpu), table.concat(warm, ","), table.concat(warm_cpu, ","),
    rss_peak / 2^20, rss0 / 2^20,
    (rss_peak - rss0) / 2^20, peak_tensors / 2^20, table.concat(faults, ",")))
