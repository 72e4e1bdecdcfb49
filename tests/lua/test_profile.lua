-- test_profile.lua — the per-op profiler as a user meets it: profile=K on the
-- training pipeline prints the table of step K alone, TAMING_PROFILE=1 the whole
-- run's table at exit, and the rows name the ops of a VQGAN step with both passes
-- and the optimizer update. Trains a 16x16 one-channel VQGAN on Fashion-MNIST
-- for two steps (the stand-in loss of test_train.lua).
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
if not tt.fs.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") then
  return T.skip("profile", "the run trains on Fashion-MNIST (Debian's dataset-fashion-mnist), which is absent")
end

local tmp = T.tmpdir("profile")
T.sh("rm -rf '" .. tmp .. "'")
tt.fs.mkdir(tmp)
local SRC = T.srcdir()
local f = assert(io.open(tmp .. "/vq.yaml", "w"))
f:write([[
model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 8
    n_embed: 32
    ddconfig: {double_z: false, z_channels: 8, resolution: 16, in_channels: 1, out_ch: 1, ch: 32,
               ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
    lossconfig:
      target: taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator
      params: {disc_start: 0}
]])
f:close()

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local function train(env, extra, logdir)
  local status, out = T.sh(("%s %s run %s/pipelines/train_vqgan.lua config=%s/vq.yaml data=fashion_mnist split=test "
    .. "size=16 limit=4 batch=2 steps=2 loss=%s/tests/lua/stand_in_loss.lua image_every=0 progress=off "
    .. "tensorboard=false logdir=%s %s"):format(env, T.taming(), SRC, tmp, SRC, tmp .. "/" .. logdir, extra))
  if status ~= 0 then error(("train_vqgan failed (status %d):\n%s"):format(status, out), 2) end
  return out
end

-- the rows of the table(s) in out: {op.pass = calls}
local function rows(out)
  local r, n = {}, 0
  for op, pass, calls in out:gmatch("\n([%w_]+)%s+(%a+)%s+(%d+)%s+[%d.]+%s+[%d.]+%s+[%d.]+") do
    r[op .. "." .. pass] = (r[op .. "." .. pass] or 0) + tonumber(calls)
    n = n + 1
  end
  return r, n
end

test("profile=K prints step K only", function()
  local out = train("", "profile=2", "a")
  local _, count = out:gsub("profile of step", "")
  T.eq("tables printed", count, 1)
  T.ok("the table is step 2's", out:find("profile of step 2:", 1, true) ~= nil)
  local r = rows(out)
  for _, k in ipairs({"conv2d.forward", "conv2d.backward", "group_norm.forward", "group_norm.backward",
                      "adam_step_multi.update"}) do
    T.ok(k .. " has a row", (r[k] or 0) > 0)
  end
  -- one step, two optimizers (autoencoder, discriminator): two fused updates
  T.eq("optimizer updates in one step", r["adam_step_multi.update"], 2)
end)

test("TAMING_PROFILE=1 prints the run's table at exit", function()
  local out = train("TAMING_PROFILE=1", "", "b")
  T.ok("a table at exit", out:find("profile of [^\n]*train_vqgan.lua:") ~= nil)
  local r = rows(out)
  -- two steps and the checkpoint's bookkeeping: at least four updates
  T.ok("updates of both steps counted", (r["adam_step_multi.update"] or 0) >= 4)
  T.ok("outside-ops line", out:find("(outside ops)", 1, true) ~= nil)
end)

test("no table unless asked", function()
  local out = train("", "", "c")
  T.ok("silent", out:find("profile of", 1, true) == nil)
end)

return T.run("profile", tests)
