-- taming.metrics — sample-set metrics as the reference tools compute them: the
-- FID Inception network (plugin feature/inception) loaded from the standard
-- weights file, folders of PNG/JPEG images read as pytorch-fid reads them
-- (8-bit RGB / 255; the plugin resizes bilinearly to 299 and scales to 2x - 1),
-- the FID statistics (mean, covariance) and their .npz files in pytorch-fid's
-- layout (keys mu, sigma), the FID and the Inception Score (metrics.h).
local tt = require "taming.core"
local Model = require "taming.model"
local data = require "taming.data"
local progress = require "taming.progress"

local M = {}

M.FEATURES = 2048

-- The FID InceptionV3 with the weights of `path` (pt_inception-2015-12-05-6726825d.pth,
-- or a safetensors file with the same keys), on `device`, in eval mode.
function M.inception(path, device)
  if not path then error("weights=FILE: the FID Inception weights (pt_inception-2015-12-05-6726825d.pth)", 0) end
  if not tt.fs.exists(path) then
    error(("%s: no such file (the FID Inception weights, pt_inception-2015-12-05-6726825d.pth, are not " ..
      "downloaded: give the path of a copy)"):format(path), 0)
  end
  local m = Model.new("FIDInceptionV3")
  m.net = m:add("", tt.plugin("feature", "inception", {}, {init = false}))
  m:load_state(tt.ckpt.open(path), {source = path})
  if device and device ~= "cpu" then m:to(device) end
  m.device = device or "cpu"
  return m:eval()
end

-- the images of a folder, sorted (recursively, PNG and JPEG)
function M.list(dir)
  local files = data.list_images(dir)
  for i, f in ipairs(files) do files[i] = dir .. "/" .. f end
  return files
end

-- one image file -> f32 [1, 1|3, H, W] in [0, 1], as PIL's convert('RGB') + ToTensor
-- (gray stays one channel: the network repeats it; alpha is dropped)
function M.read(path)
  local u8 = tt.image.load(path, {raw = true})            -- [H, W, C]
  local c = u8:size(2)
  if c == 2 then u8 = u8:narrow(2, 0, 1) elseif c == 4 then u8 = u8:narrow(2, 0, 3) end
  return u8:permute(2, 0, 1):unsqueeze(0):float() / 255   -- [1, C, H, W]
end

-- a batch of images -> list of [b, C, H, W] tensors, one per run of equal sizes
local function stack_runs(xs)
  local out, run = {}, {}
  local function flush()
    if #run > 0 then out[#out + 1] = #run == 1 and run[1] or tt.cat(run, 0) end
    run = {}
  end
  for _, x in ipairs(xs) do
    local r = run[1]
    if r and (r:size(1) ~= x:size(1) or r:size(2) ~= x:size(2) or r:size(3) ~= x:size(3)) then flush() end
    run[#run + 1] = x
  end
  flush()
  return out
end

-- Runs the network over `files` in batches of o.batch (50); calls on_batch(pool [b, 2048],
-- logits [b, 1008]) for each, with a progress display (o.progress: its mode); returns images/s.
function M.each_batch(net, files, o, on_batch)
  local batch = o.batch or 50
  local bar = progress.new{total = #files, every = math.max(1, batch), mode = o.progress}
  local t0 = tt.time()
  for i = 1, #files, batch do
    local xs = {}
    for k = i, math.min(i + batch - 1, #files) do xs[#xs + 1] = M.read(files[k]) end
    for _, x in ipairs(stack_runs(xs)) do
      local pool, logits = tt.no_grad(function() return net.net:forward(x:to(net.device)) end)
      on_batch(pool:to("cpu"), logits:to("cpu"))
    end
    bar:update(math.min(i + batch - 1, #files))
  end
  bar:finish()
  return #files / math.max(tt.time() - t0, 1e-9)
end

-- Statistics of a folder: {mu, sigma, n, logits (when o.logits), rate (images/s)}
function M.folder_stats(net, dir, o)
  o = o or {}
  local files = M.list(dir)
  if #files < 2 then
    error(("%s: %d image%s; the statistics need at least 2"):format(dir, #files, #files == 1 and "" or "s"), 0)
  end
  local acc = tt.metrics.gauss_stats(M.FEATURES)
  local logits = o.logits and {} or nil
  local rate = M.each_batch(net, files, o, function(pool, lg)
    acc:add(pool)
    if logits then
      logits[#logits + 1] = lg
      if #logits == 128 then logits = {tt.cat(logits, 0)} end   -- tt.cat takes at most 256
    end
  end)
  local mu, sigma = acc:result()
  return {mu = mu, sigma = sigma, n = #files, logits = logits and tt.cat(logits, 0), rate = rate}
end

-- pytorch-fid's .npz statistics (np.savez(_compressed) with mu, sigma)
function M.load_stats(path)
  local t = tt.npz.load(path)
  for _, k in ipairs{"mu", "sigma"} do
    if not t[k] then error(("%s: no '%s' array (FID statistics have mu and sigma)"):format(path, k), 0) end
  end
  local D = t.mu:size(0)
  if t.mu:dim() ~= 1 or t.sigma:dim() ~= 2 or t.sigma:size(0) ~= D or t.sigma:size(1) ~= D then
    error(("%s: mu and sigma must be [D] and [D, D]"):format(path), 0)
  end
  if D ~= M.FEATURES then
    error(("%s: statistics of %d features, expected the %d pool3 features"):format(path, D, M.FEATURES), 0)
  end
  return {mu = t.mu, sigma = t.sigma}
end

function M.save_stats(path, s)
  tt.npz.save(path, {mu = s.mu, sigma = s.sigma})
end

function M.fid(a, b) return tt.metrics.frechet_distance(a.mu, a.sigma, b.mu, b.sigma) end

-- IS over logits [N, 1008]: torch-fidelity's isc (10 splits, rows shuffled with
-- RandomState(2020)) unless shuffle is false (the TensorFlow original's order)
function M.inception_score(logits, splits, shuffle)
  local seed = 2020
  if shuffle == false then seed = false end
  return tt.metrics.inception_score(logits, splits or 10, seed)
end

return M
