-- test_registries.lua — the extension points a new task uses without editing the
-- tree: conditions.register (cond=KIND), train.register_input (what a stage takes
-- from a batch), tt.build honouring ckpt_path / ignore_keys as the official
-- init_from_ckpt does, and tt.pipelines_dir().
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local C = require "taming.conditions"
local train = require "taming.train"
local ckpt = require "taming.checkpoint"

local tmp = T.tmpdir("registries")
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function vq_config(extra)
  local params = {embed_dim = 4, n_embed = 16, ddconfig = {double_z = false, z_channels = 4, resolution = 16,
    in_channels = 1, out_ch = 1, ch = 32, ch_mult = {1, 1, 1}, num_res_blocks = 1, attn_resolutions = {},
    dropout = 0.0}, lossconfig = {target = "taming.modules.losses.vqperceptual.DummyLoss"}}
  for k, v in pairs(extra or {}) do params[k] = v end
  return {model = {target = "taming.models.vqgan.VQModel", params = params}}
end

-- a first stage with weights of its own, saved as a checkpoint (plus a key of another module)
local function saved_vq(path, seed)
  local m = tt.build(vq_config())
  m:init(seed, "cpu")
  local sd = m:state_dict()
  sd["loss.logvar"] = tt.zeros({1})
  tt.safetensors.save(path, sd, {format = "pt"})
  return m
end

local function same_weights(what, a, b, keys)
  local sa, sb = a:state_dict(), b:state_dict()
  for _, k in ipairs(keys) do T.close(what .. ": " .. k, sa[k], sb[k], 0) end
end

test("conditions_register_adds_a_kind", function()
  local png = tmp .. "/c.png"
  tt.image.save(png, tt.rand({1, 3, 8, 8}, 1) * 2 - 1)
  T.raises("unknown kind", function() C.build("gray", png) end, "cond=gray", "depth, segmentation, edge, lowres, pose",
    "conditions.register")
  local seen
  C.register("gray", function(path, size, o)
    seen = {path, size, o.factor}
    return C.image(path, size):mean({1}):unsqueeze(1)                      -- [1, 1, H, W]
  end)
  T.eq("listed last", C.KINDS[#C.KINDS], "gray")
  local g = C.build("gray", png, 8, {factor = 2})
  T.eq("builder got the path", seen[1], png)
  T.eq("builder got the options", seen[3], 2)
  T.eq("shape", table.concat(g:shape(), "x"), "1x1x8x8")
  T.raises("the input must exist", function() C.build("gray", tmp .. "/none.png") end, "none.png", "no such file")
  T.raises("a builder is a function", function() C.register("x", 3) end, "conditions.register('x')", "function")
  T.raises("a kind is a name", function() C.register("a b", print) end, "a b")
  local n = #C.KINDS
  C.register("gray", function() return g end)
  T.eq("re-registering replaces, not duplicates", #C.KINDS, n)
  -- the shipped kinds go through the same registry
  for _, k in ipairs({"depth", "segmentation", "edge", "lowres", "pose"}) do
    T.ok(k .. " is registered", type(C.builders[k]) == "function")
  end
end)

test("train_register_input_feeds_a_stage", function()
  local b = {image = tt.rand({2, 3, 4, 4}, 3), label = tt.tensor({1, 0}, {dtype = "i64"})}
  T.raises("an unknown key lists the registered ones", function()
    train.cond_input({cond_stage_key = "gray", first_stage_key = "image"}, b)
  end, "'gray'", "class_label", "train.register_input")
  train.register_input("gray", function(batch) return batch.image:mean({1}):unsqueeze(1) end)
  local c = train.cond_input({cond_stage_key = "gray", first_stage_key = "image"}, b)
  T.close("the registered input", c, b.image:mean({1}):unsqueeze(1), 0)
  T.equal("class labels", train.cond_input({cond_stage_key = "class_label", first_stage_key = "image"}, b), b.label)
  T.close("a condition stage shared with the first stage takes the images",
    train.cond_input({cond_stage_key = "x", first_stage_key = "x"}, b), b.image, 0)
  T.raises("labels the data lacks", function()
    train.cond_input({cond_stage_key = "class_label", first_stage_key = "image"}, {image = b.image})
  end, "'class_label'", "no label")
end)

test("build_honours_ckpt_path_and_ignore_keys", function()
  local src = saved_vq(tmp .. "/vq.safetensors", 11)
  local keys = {"encoder.conv_in.weight", "decoder.conv_out.bias", "quantize.embedding.weight"}
  local plain = tt.build(vq_config())
  plain:init(0, "cpu")
  T.ok("random init differs from the file", T.max_diff(plain:state_dict()[keys[1]], src:state_dict()[keys[1]]) > 0)
  local m = tt.build(vq_config({ckpt_path = tmp .. "/vq.safetensors"}))
  same_weights("ckpt_path", m, src, keys)
  T.eq("restored_from", m.restored_from, tmp .. "/vq.safetensors")
  -- ignore_keys: keys starting with a prefix are deleted before loading and keep their initialisation
  local ig = tt.build(vq_config({ckpt_path = tmp .. "/vq.safetensors", ignore_keys = {"quantize."}}))
  same_weights("ignore_keys keeps the rest", ig, src, {keys[1], keys[2]})
  T.ok("an ignored key is not loaded",
    T.max_diff(ig:state_dict()["quantize.embedding.weight"], src:state_dict()["quantize.embedding.weight"]) > 0)
  -- a stage's ckpt_path inside a Net2NetTransformer config; tt.load reads every weight from its own file
  local n2n = {model = {target = "taming.models.cond_transformer.Net2NetTransformer", params = {
    cond_stage_key = "class_label",
    transformer_config = {target = "taming.modules.transformer.mingpt.GPT",
      params = {vocab_size = 16, block_size = 17, n_layer = 1, n_head = 1, n_embd = 16}},
    first_stage_config = vq_config({ckpt_path = tmp .. "/vq.safetensors"}).model,
    cond_stage_config = {target = "taming.modules.util.Labelator", params = {n_classes = 2}}}}}
  local net = tt.build(n2n)
  same_weights("first_stage_config.params.ckpt_path", net.first_stage, src, keys)
  net:init(0, "cpu")
  tt.safetensors.save(tmp .. "/n2n.safetensors", net:state_dict(), {format = "pt"})
  -- the whole model's ckpt_path, its first stage found under first_stage_model.
  n2n.model.params.first_stage_config.params.ckpt_path = tmp .. "/n2n.safetensors"
  same_weights("a stage from a whole-model file", tt.build(n2n).first_stage, src, keys)
  n2n.model.params.first_stage_config.params.ckpt_path = tmp .. "/gone.ckpt"
  T.raises("a missing ckpt_path", function() tt.build(n2n) end, "gone.ckpt", "no such file")
  n2n.model.params.ckpt_path = tmp .. "/n2n.safetensors"
  local cfgp = tmp .. "/n2n.yaml"
  tt.fs.write_atomic(cfgp, ckpt.to_yaml(n2n))
  local loaded = tt.load(tmp .. "/n2n.safetensors", {config = cfgp})
  same_weights("tt.load ignores ckpt_path (the official sampling scripts delete it)", loaded.first_stage, src, keys)
  -- a file with none of the model's keys
  tt.safetensors.save(tmp .. "/other.safetensors", {["foo.weight"] = tt.zeros({2})}, {format = "pt"})
  T.raises("a file of another model", function()
    tt.build(vq_config({ckpt_path = tmp .. "/other.safetensors"}))
  end, "other.safetensors", "holds none of the model's", "encoder.")
end)

test("build_ckpt_path_with_the_fixture", function()
  local F = T.fixtures()
  if not F then print("  (../shared/fixtures absent: the self-made checkpoint above covers ckpt_path)"); return end
  local cfg = tt.yaml.load(F .. "/tiny/vqgan.yaml")
  cfg.model.params.ckpt_path = F .. "/tiny/vqgan.ckpt"
  local m = tt.build(cfg)
  local ref = tt.load(F .. "/tiny/vqgan.ckpt", {config = F .. "/tiny/vqgan.yaml"})
  local sr, sm = ref:state_dict(), m:state_dict()
  local n = 0
  for k, t in pairs(sr) do T.close(k, sm[k], t, 0); n = n + 1 end
  T.ok("compared the fixture's weights", n > 10)
  cfg.model.params.ignore_keys = {"decoder."}
  local ig = tt.build(cfg)
  T.ok("ignore_keys on the official checkpoint",
    T.max_diff(ig:state_dict()["decoder.conv_out.weight"], sr["decoder.conv_out.weight"]) > 0)
  T.close("the rest loads", ig:state_dict()["encoder.conv_in.weight"], sr["encoder.conv_in.weight"], 0)
end)

test("pipelines_dir", function()
  local d = tt.pipelines_dir()
  for _, p in ipairs({"conditional", "sample_class", "train_transformer"}) do
    T.ok(d .. "/" .. p .. ".lua exists", tt.fs.exists(d .. "/" .. p .. ".lua"))
  end
end)

os.exit(T.run("registries", tests))
