-- test_second_stage.lua — token orders, samplers, condition stages, and every
-- second-stage pipeline end to end on tiny random-init models, with conditions
-- built from the real example data (../shared/data/examples).
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local tmp = T.tmpdir("second_stage")
local EX = os.getenv("TAMING_EXAMPLES") or (T.srcdir() .. "/../shared/data/examples")
local have_examples = tt.fs.isdir(EX)
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local write = T.write

-- 4x4 tables of REFERENCE §4.5: the sequence position of each raster cell
local TABLES = {
  subsample = {0, 4, 1, 5, 8, 12, 9, 13, 2, 6, 3, 7, 10, 14, 11, 15},
  zcurve = {0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15},
  spiral_out = {9, 10, 11, 12, 8, 1, 2, 13, 7, 0, 3, 14, 6, 5, 4, 15},
  alternate = {0, 1, 2, 3, 7, 6, 5, 4, 8, 9, 10, 11, 15, 14, 13, 12},
}

test("permuters_match_reference_tables", function()
  local raster = tt.arange(16):reshape(1, 16)
  for name, want in pairs(TABLES) do
    local p = tt.plugin("permuter", name, {H = 4, W = 4})
    local fwd = p:forward(raster)           -- sequence position k carries raster cell fwd[k]
    for k = 0, 15 do
      T.eq(("%s: cell %d at position %d"):format(name, fwd:get(0, k), k), want[fwd:get(0, k) + 1], k)
    end
    T.equal(name .. " round trip", p:reverse(fwd), raster)
  end
  local so = tt.plugin("permuter", "spiral_out", {H = 2, W = 2}):forward(tt.arange(4):reshape(1, 4))
  T.equal("spiral_out 2x2", so, tt.tensor({{2, 0, 1, 3}}, {dtype = "i64"}))
  local si = tt.plugin("permuter", "spiral_in", {H = 4, W = 4}):forward(raster)
  local sout = tt.plugin("permuter", "spiral_out", {H = 4, W = 4}):forward(raster)
  for k = 0, 15 do T.eq("spiral_in reverses spiral_out", si:get(0, k), sout:get(0, 15 - k)) end
  for _, name in ipairs({"identity", "subsample", "zcurve", "spiral_out", "spiral_in", "random", "alternate"}) do
    local p = tt.plugin("permuter", name, {H = 8, W = 8, seed = name == "random" and 3 or nil})
    local x = (tt.rand({3, 64}, 5) * 1000):long()
    T.equal(name .. " 8x8 round trip", p:reverse(p:forward(x)), x)
  end
  T.raises("zcurve needs a power of two", function() tt.plugin("permuter", "zcurve", {H = 6, W = 6}) end, "power")
  -- only the random order has a seed: elsewhere it is an unknown key, not a silent no-op
  T.raises("a seed for zcurve", function() tt.plugin("permuter", "zcurve", {H = 4, W = 4, seed = 3}) end,
    "unknown config key 'seed' (known: H, W)")
end)

test("samplers", function()
  local logits = tt.tensor({{1.0, 3.0, 3.0, 0.5}, {-1.0, -2.0, 5.0, 5.0}})
  T.equal("greedy takes the first maximum", tt.plugin("sampler", "greedy"):sample(logits),
    tt.tensor({1, 2}, {dtype = "i64"}))
  -- top_k keeps ties with the k-th largest value
  local p = tt.plugin("sampler", "categorical", {top_k = 1}):probs(logits)
  T.close("top_k=1 with a tie keeps both", p, tt.tensor({{0, 0.5, 0.5, 0}, {0, 0, 0.5, 0.5}}), 1e-6)
  -- nucleus: probs of row 0 sorted 0.4566,0.4566,0.0618,0.0250: top_p 0.5 keeps the first two
  local q = tt.plugin("sampler", "categorical", {top_p = 0.5}):probs(logits:slice(0, 0, 1))
  T.close("top_p keeps the entry that crosses", q, tt.tensor({{0, 0.5, 0.5, 0}}), 1e-6)
  local q1 = tt.plugin("sampler", "categorical", {top_p = 1.0}):probs(logits:slice(0, 0, 1))
  T.close("top_p=1 keeps all", q1:sum(), tt.tensor(1.0), 1e-6)
  -- temperature sharpens
  local hot = tt.plugin("sampler", "categorical", {temperature = 0.1}):probs(logits:slice(0, 0, 1))
  T.ok("temperature 0.1 concentrates", hot:get(0, 1) > 0.49 and hot:get(0, 0) < 1e-6)
  -- seeded draws are reproducible, frequencies follow the probabilities
  local big = tt.tensor({{0.0, math.log(3.0)}}):repeat_({4000, 1})
  local s1 = tt.plugin("sampler", "categorical", {seed = 7}):sample(big)
  local s2 = tt.plugin("sampler", "categorical", {seed = 7}):sample(big)
  T.equal("same seed", s1, s2)
  local ones = s1:float():mean():item()
  T.ok(("P(token 1) = %.3f, expected 0.75"):format(ones), math.abs(ones - 0.75) < 0.03)
  T.raises("all -inf", function()
    tt.plugin("sampler", "categorical", {top_k = 1}):sample(tt.tensor({{-1 / 0, -1 / 0}}))
  end, "-inf")
end)

test("condition_stages", function()
  local lab = tt.plugin("cond", "labelator", {n_classes = 10})
  local _, _, c = lab:encode(tt.tensor({3, 9}, {dtype = "i64"}))
  T.equal("labelator", c, tt.tensor({{3}, {9}}, {dtype = "i64"}))
  T.raises("class out of range", function() lab:encode(tt.tensor({10}, {dtype = "i64"})) end, "class id 10", "10 classes")
  local _, _, s = tt.plugin("cond", "sos", {sos_token = 5}):encode(tt.zeros({3, 1, 4, 4}))
  T.equal("sos", s, tt.full({3, 1}, 5, {dtype = "i64"}))
  -- coord: area pooling then round half to even (2.5 -> 2, 3.5 -> 4)
  local coord = tt.plugin("cond", "coord", {n_embed = 10, down_factor = 2})
  local m = tt.tensor({{{{0.25, 0.25, 0.35, 0.35}, {0.25, 0.25, 0.35, 0.35}}}})
  local quant, _, idx = coord:encode(m)
  T.equal("coord tokens", idx, tt.tensor({{2, 4}}, {dtype = "i64"}))
  T.close("coord decode", coord:decode(quant), tt.tensor({{{{0.2, 0.2, 0.4, 0.4}, {0.2, 0.2, 0.4, 0.4}}}}), 1e-6)
end)

-- ---- tiny models for the pipelines ----

local function vq_yaml(indent, in_ch, out_ch, n_embed)
  local p = string.rep(" ", indent)
  return (p .. "target: taming.models.vqgan.VQModel\n" ..
          p .. "params:\n" ..
          p .. "  embed_dim: 8\n" ..
          p .. "  n_embed: " .. n_embed .. "\n" ..
          p .. "  ddconfig: {double_z: false, z_channels: 8, resolution: 32, in_channels: " .. in_ch ..
          ", out_ch: " .. out_ch .. ", ch: 32, ch_mult: [1, 1, 2], num_res_blocks: 1, attn_resolutions: [8], dropout: 0.0}\n" ..
          p .. "  lossconfig: {target: taming.modules.losses.vqperceptual.DummyLoss}\n")
end

-- Net2Net with a 32px f4 first stage (8x8 latent = 64 tokens, 32 codes) and a given condition
local function net2net(name, cond_yaml, Lc, extra)
  local y = "model:\n  target: taming.models.cond_transformer.Net2NetTransformer\n  params:\n" ..
            (extra or "") ..
            "    transformer_config:\n      target: taming.modules.transformer.mingpt.GPT\n" ..
            "      params: {vocab_size: 64, block_size: " .. (Lc + 64) .. ", n_layer: 2, n_head: 2, n_embd: 32}\n" ..
            "    first_stage_config:\n" .. vq_yaml(6, 3, 3, 32) ..
            "    cond_stage_config:" .. cond_yaml
  local path = tmp .. "/" .. name .. ".yaml"
  write(path, y)
  local m = tt.build(path)
  m:init(11)
  local ck = tmp .. "/" .. name .. ".safetensors"
  tt.safetensors.save(ck, m:state_dict())
  return path, ck
end

local function run(args)
  local status, out = T.sh(T.taming() .. " run " .. args)
  if status ~= 0 then error("taming run " .. args .. " failed:\n" .. out, 2) end
  return out
end

local function png_shape(path)
  local img = tt.image.load(path, {raw = true})
  return img:size(0), img:size(1), img:size(2)
end

test("sample_unconditional_and_highres", function()
  local cfg, ck = net2net("uncond", ' "__is_unconditional__"\n', 1, "    sos_token: 40\n")
  local base = ("config=%s ckpt=%s n=2 seed=3 top_k=20"):format(cfg, ck)
  run(("pipelines/sample_unconditional.lua %s output=%s/u1.png codes=%s/u1.npy"):format(base, tmp, tmp))
  run(("pipelines/sample_unconditional.lua %s output=%s/u2.png codes=%s/u2.npy cache=false"):format(base, tmp, tmp))
  local c1, c2 = tt.npy.load(tmp .. "/u1.npy"), tt.npy.load(tmp .. "/u2.npy")
  T.eq("codes shape", table.concat(c1:shape(), "x"), "2x8x8")
  T.equal("same seed, cached and uncached", c1, c2)
  T.ok("codes index the first stage", c1:float():max():item() < 32)
  local h, w = png_shape(tmp .. "/u1.png")
  T.eq("grid of 2 images 32px + padding 2", h .. "x" .. w, "36x70")
  run(("pipelines/sample_unconditional.lua %s seed=4 output=%s/u3.png codes=%s/u3.npy"):format(base, tmp, tmp))
  T.ok("another seed, other codes", T.max_diff(tt.npy.load(tmp .. "/u3.npy"), c1) > 0)
  -- sliding window over a 12x12 grid (48 px), with and without the cache
  run(("pipelines/highres.lua %s size=48 n=1 output=%s/h1.png codes=%s/h1.npy"):format(base, tmp, tmp))
  run(("pipelines/highres.lua %s size=48 n=1 output=%s/h2.png codes=%s/h2.npy cache=false"):format(base, tmp, tmp))
  T.equal("window: cached == uncached", tt.npy.load(tmp .. "/h1.npy"), tt.npy.load(tmp .. "/h2.npy"))
  T.eq("highres image (one image: no padding)", table.concat({png_shape(tmp .. "/h1.png")}, "x"), "48x48x3")
  local st, out = T.sh(T.taming() .. (" run pipelines/highres.lua %s size=16 output=%s/x.png"):format(base, tmp))
  T.ok("grid smaller than the window: " .. out, st ~= 0 and out:find("smaller than the 8x8 window", 1, true))
end)

test("sample_class", function()
  local cfg, ck = net2net("cls", "\n      target: taming.modules.util.Labelator\n      params: {n_classes: 3}\n", 1)
  run(("pipelines/sample_class.lua config=%s ckpt=%s class=all n=2 output=%s/c.png codes=%s/c.npy seed=1"):format(
    cfg, ck, tmp, tmp))
  T.eq("3 classes x 2", table.concat(tt.npy.load(tmp .. "/c.npy"):shape(), "x"), "6x8x8")
  local st, out = T.sh(T.taming() .. (" run pipelines/sample_class.lua config=%s ckpt=%s class=3 output=%s/x.png"):format(cfg, ck, tmp))
  T.ok("class out of range: " .. out, st ~= 0 and out:find("class id 3", 1, true))
end)

local function conditional(name, cond_stage, args, Lc)
  local cfg, ck = net2net(name, cond_stage, Lc or 64, "    cond_stage_key: " .. name .. "\n")
  local o1, o2 = ("%s/%s1"):format(tmp, name), ("%s/%s2"):format(tmp, name)
  run(("pipelines/conditional.lua config=%s ckpt=%s %s n=2 seed=5 output=%s.png codes=%s.npy"):format(cfg, ck, args, o1, o1))
  run(("pipelines/conditional.lua config=%s ckpt=%s %s n=2 seed=5 output=%s.png codes=%s.npy"):format(cfg, ck, args, o2, o2))
  local c = tt.npy.load(o1 .. ".npy")
  T.eq(name .. " codes", table.concat(c:shape(), "x"), "2x8x8")
  T.equal(name .. " deterministic", c, tt.npy.load(o2 .. ".npy"))
  return cfg, ck
end

test("conditional_from_example_data", function()
  if not have_examples then return end
  local depth = EX .. "/drin_depth/n01795545/ILSVRC2012_val_00023344.png"
  conditional("depth", "\n" .. vq_yaml(6, 1, 1, 16), "cond=depth input=" .. depth .. " size=32")
  local ade = EX .. "/ade20k_segmentations/ADE_val_00000123.png"
  local cfg, ck = conditional("segmentation", "\n" .. vq_yaml(6, 151, 151, 16),
    "cond=segmentation dataset=ade20k input=" .. ade .. " size=32")
  -- a COCO map (183 classes after the shift) for a model that takes 151
  local st, out = T.sh(T.taming() .. (" run pipelines/conditional.lua config=%s ckpt=%s cond=segmentation dataset=coco input=%s size=32 output=%s/x.png"):format(
    cfg, ck, EX .. "/coco_segmentations/000000018380.png", tmp))
  T.ok("more labels than the model has: " .. out, st ~= 0 and out:find("000000018380.png", 1, true))
  local st2, out2 = T.sh(T.taming() .. (" run pipelines/conditional.lua config=%s ckpt=%s cond=depth input=%s/absent.png output=%s/x.png"):format(
    cfg, ck, tmp, tmp))
  T.ok("missing cond image: " .. out2, st2 ~= 0 and out2:find("absent.png", 1, true))
  conditional("sflckr", "\n" .. vq_yaml(6, 182, 182, 16),
    "cond=segmentation dataset=sflckr input=" .. EX .. "/sflckr_segmentations/canada/256743165_9f130ba95b_b.png size=32")
  conditional("coco", "\n" .. vq_yaml(6, 183, 183, 16),
    "cond=segmentation dataset=coco input=" .. EX .. "/coco_segmentations/000000018380.png size=32")
  local img = EX .. "/ade20k_images/ADE_val_00000123.jpg"
  conditional("edge", "\n" .. vq_yaml(6, 3, 3, 16), "cond=edge input=" .. img .. " size=32")
  conditional("lowres", ' "__is_first_stage__"\n', "cond=lowres factor=8 input=" .. img .. " size=32")
  local kp = tmp .. "/pose.txt"
  local lines = {}
  for k = 0, 17 do lines[#lines + 1] = ("%d %d 1"):format(4 + (k * 7) % 24, 3 + (k * 5) % 26) end
  write(kp, table.concat(lines, "\n") .. "\n")
  conditional("pose", "\n" .. vq_yaml(6, 18, 18, 16), "cond=pose input=" .. kp .. " size=32")
  -- a depth-conditioned sliding window: 48 px -> 12x12 grids for image and condition
  local dcfg = tmp .. "/depth.yaml"
  run(("pipelines/highres.lua config=%s ckpt=%s/depth.safetensors cond=depth input=%s size=48 output=%s/hd.png codes=%s/hd.npy"):format(
    dcfg, tmp, depth, tmp, tmp))
  T.eq("depth highres", table.concat(tt.npy.load(tmp .. "/hd.npy"):shape(), "x"), "1x12x12")
end)

test("completion", function()
  if not have_examples then return end
  local cfg, ck = net2net("compl", ' "__is_unconditional__"\n', 1)
  local img = EX .. "/coco_images/000000018380.jpg"
  run(("pipelines/completion.lua config=%s ckpt=%s input=%s n=2 output=%s/k.png codes=%s/k.npy"):format(cfg, ck, img, tmp, tmp))
  local codes = tt.npy.load(tmp .. "/k.npy")
  -- the kept half equals the image's own codes
  local m = tt.load(ck, {config = cfg})
  local x = require("taming.conditions").image(img, 32)
  local _, _, idx = tt.no_grad(function() return m.first_stage:encode(x) end)
  local known = idx:reshape(1, 8, 8)
  T.equal("top half kept", codes:slice(0, 0, 1):slice(1, 0, 4), known:slice(1, 0, 4))
  T.eq("sheet: reconstruction + 2 samples", table.concat({png_shape(tmp .. "/k.png")}, "x"), "36x104x3")
end)

test("gpt_dropout_paths", function()
  -- training with dropout runs attention through the explicit masked softmax; with a
  -- vanishing rate it must equal the fused kernel (eval), causality and n_unmasked included
  local cfg = {vocab_size = 20, block_size = 12, n_layer = 2, n_head = 2, n_embd = 16, n_unmasked = 3}
  local x = (tt.rand({2, 10}, 7) * 19.99):long()
  local ref = tt.no_grad(function() return tt.plugin("transformer", "mingpt", cfg, {seed = 3}):forward(x) end)
  for _, k in ipairs({"attn_pdrop", "resid_pdrop", "embd_pdrop"}) do
    local c = {}
    for kk, v in pairs(cfg) do c[kk] = v end
    c[k] = 1e-9
    local g = tt.plugin("transformer", "mingpt", c, {seed = 3})
    g:train(true)
    T.close(k .. " -> 0 equals eval", tt.no_grad(function() return g:forward(x) end), ref, 1e-5)
    -- a real rate changes the logits, and the future still cannot reach the past
    c[k] = 0.5
    local d = tt.plugin("transformer", "mingpt", c, {seed = 3})
    d:train(true)
    local y = tt.no_grad(function() return d:forward(x) end)
    T.ok(k .. " = 0.5 changes the logits", T.max_diff(y, ref) > 1e-3)
  end
  local c = {}
  for kk, v in pairs(cfg) do c[kk] = v end
  c.attn_pdrop = 1e-9
  local g = tt.plugin("transformer", "mingpt", c, {seed = 3})
  g:train(true)
  local x2 = x:clone()
  x2:set((x:get(0, 9) + 1) % 20, 0, 9)      -- change the last token of row 0
  local a, b = tt.no_grad(function() return g:forward(x), g:forward(x2) end)
  T.close("causal: positions before the change", a:slice(1, 0, 9), b:slice(1, 0, 9), 1e-6)
end)

return T.run("second_stage", tests)
