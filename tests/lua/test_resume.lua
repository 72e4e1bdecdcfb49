-- test_resume.lua — exact resume. A `taming run pipelines/train_vqgan.lua` run
-- is killed with SIGKILL right after it wrote its first checkpoint, resumed with
-- resume=auto, and must end with weights, optimizer moments and data position
-- bitwise equal to an uninterrupted run with the same seed (the data crosses an
-- epoch boundary, with random flips, decoded by two worker threads). Both runs
-- use the same OMP_NUM_THREADS (the harness's), which is all bitwise equality
-- needs: every kernel's reduction order depends on the thread count alone.
-- The transformer's resume (pkeep corruption draws from a saved RNG) is
-- checked the same way, stopped by steps= instead of a signal.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
if not tt.fs.exists("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") then
  return T.skip("resume", "the runs train on Fashion-MNIST (Debian's dataset-fashion-mnist), which is absent")
end
local ckpt = require "taming.checkpoint"

local tmp = T.tmpdir("resume")
T.sh("rm -rf '" .. tmp .. "'")
tt.fs.mkdir(tmp)
local SRC = T.srcdir()
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local read, write = T.read, T.write

write(tmp .. "/vq.yaml", [[
model:
  base_learning_rate: 4.5e-06
  target: taming.models.vqgan.VQModel
  params:
    embed_dim: 8
    n_embed: 32
    ddconfig: {double_z: false, z_channels: 8, resolution: 16, in_channels: 1, out_ch: 1, ch: 32, ch_mult: [1, 2],
               num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
    lossconfig:
      target: taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator
      params: {disc_start: 5}
]])

-- every tensor of two safetensors files identical (same keys, max |diff| 0)
local function identical(what, pa, pb)
  local a, b = tt.ckpt.open(pa):tensors(), tt.ckpt.open(pb):tensors()
  local n = 0
  for k, t in pairs(a) do
    T.ok(("%s: %s missing after the resume"):format(what, k), b[k] ~= nil)
    T.close(what .. " " .. k, b[k], t, 0)
    n = n + 1
  end
  for k in pairs(b) do T.ok(what .. ": unexpected " .. k, a[k] ~= nil) end
  return n
end

local VQ_ARGS = ("%s/pipelines/train_vqgan.lua config=%s/vq.yaml loss=%s/tests/lua/stand_in_loss.lua "
  .. "data=fashion_mnist split=test limit=64 size=16 hflip=true batch=4 steps=30 lr=1e-3 workers=2 "
  .. "ckpt_every=10 keep=2 image_every=10 log_every=5 progress=lines"):format(SRC, tmp, SRC)

test("vqgan_killed_and_resumed_equals_uninterrupted", function()
  local ref, cut = tmp .. "/ref", tmp .. "/cut"
  local t0 = tt.time()
  local status, out = T.sh(("%s run %s logdir=%s"):format(T.taming(), VQ_ARGS, ref))
  T.ok("uninterrupted run: " .. out, status == 0)
  local t_ref = tt.time() - t0
  -- start the same run in the background; SIGKILL it as soon as a checkpoint is complete
  local script = ([[
exec 2>&1
%s run %s logdir=%s > %s/cut.log 2>&1 &
pid=$!
n=0
while [ ! -f %s/checkpoints/latest ]; do
  if ! kill -0 $pid 2>/dev/null; then echo "exited early"; cat %s/cut.log; exit 3; fi
  n=$((n+1)); if [ $n -gt 6000 ]; then kill -9 $pid; echo "no checkpoint in 60 s"; exit 4; fi
  sleep 0.01
done
kill -9 $pid
wait $pid
echo "killed status $?"
]]):format(T.taming(), VQ_ARGS, cut, tmp, cut, tmp)
  status, out = T.sh(script)
  T.ok("kill: " .. out, status == 0 and out:find("killed status 137", 1, true) ~= nil)
  local at = ckpt.latest(cut .. "/checkpoints")
  T.ok("a checkpoint was complete at the kill", at ~= nil)
  T.ok(("killed too late (%s): the run must be interrupted before its end"):format(tostring(at)),
    at ~= "step-00000030")
  local log = io.open(tmp .. "/cut.log"):read("a")
  T.ok("the killed run did not finish", not log:find("trained steps", 1, true))
  -- resume and finish
  t0 = tt.time()
  status, out = T.sh(("%s run %s logdir=%s resume=auto"):format(T.taming(), VQ_ARGS, cut))
  T.ok("resumed run: " .. out, status == 0)
  local from = tonumber(out:match("trained steps (%d+)%.%.30"))
  T.ok("resumed from the checkpoint: " .. out, from and from >= 10 and from < 30)
  T.ok("a 'resumed from step' line: " .. out, out:find(("resumed from step %d ("):format(from), 1, true) ~= nil)
  print(("  resumed at step %d after SIGKILL (uninterrupted run %.2fs, resumed part %.2fs)"):format(from, t_ref,
    tt.time() - t0))
  local base = "/checkpoints/step-00000030"
  local n = identical("weights", ref .. base .. ".safetensors", cut .. base .. ".safetensors")
  local m = identical("optimizer", ref .. base .. ".optim.safetensors", cut .. base .. ".optim.safetensors")
  T.ok("tensors compared", n > 100 and m > 300)
  local sa, sb = ckpt.read_lua(ref .. base .. ".state.lua"), ckpt.read_lua(cut .. base .. ".state.lua")
  T.eq("epoch", sb.epoch, sa.epoch)
  T.eq("data position", sb.position.epoch .. ":" .. sb.position.step, sa.position.epoch .. ":" .. sa.position.step)
  T.eq("crossed an epoch (16 steps per epoch)", sa.position.epoch, 1)
  T.eq("optimizer steps", sb.optimizers.opt_ae.steps, 30)
  -- the resumed run's log continues where the killed one stopped
  T.ok("progress continues", out:find("step 30/30", 1, true) ~= nil)
  -- resuming a finished run does nothing; a missing checkpoint is an error
  status, out = T.sh(("%s run %s logdir=%s resume=auto"):format(T.taming(), VQ_ARGS, cut))
  T.ok("finished run: " .. out, status == 0 and out:find("trained steps 30..30", 1, true) ~= nil)
  status, out = T.sh(("%s run %s logdir=%s resume=%s/nothing"):format(T.taming(), VQ_ARGS, cut, tmp))
  T.ok("missing checkpoint: " .. out, status ~= 0 and out:find("nothing", 1, true) ~= nil)
end)

test("transformer_resume_with_pkeep_equals_uninterrupted", function()
  write(tmp .. "/gpt.yaml", [[
model:
  target: taming.models.cond_transformer.Net2NetTransformer
  params:
    cond_stage_key: class_label
    pkeep: 0.8
    transformer_config:
      target: taming.modules.transformer.mingpt.GPT
      params: {vocab_size: 32, block_size: 64, n_layer: 1, n_head: 2, n_embd: 32}
    first_stage_config:
      target: taming.models.vqgan.VQModel
      params:
        embed_dim: 8
        n_embed: 32
        ddconfig: {double_z: false, z_channels: 8, resolution: 16, in_channels: 1, out_ch: 1, ch: 32,
                   ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0}
        lossconfig: {target: taming.modules.losses.DummyLoss}
    cond_stage_config: {target: taming.modules.util.Labelator, params: {n_classes: 10}}
]])
  local vq = tt.build(tmp .. "/vq.yaml")
  vq:init(3)
  tt.safetensors.save(tmp .. "/fs.safetensors", vq:state_dict())
  local args = ("%s/pipelines/train_transformer.lua config=%s/gpt.yaml first_stage=%s/fs.safetensors data=fashion_mnist "
    .. "split=test limit=40 size=16 batch=8 lr=1e-3 ckpt_every=7 image_every=5 progress=off"):format(SRC, tmp, tmp)
  local s1, o1 = T.sh(("%s run %s steps=12 logdir=%s/g_ref"):format(T.taming(), args, tmp))
  T.ok(o1, s1 == 0)
  local s2, o2 = T.sh(("%s run %s steps=7 logdir=%s/g_cut"):format(T.taming(), args, tmp))
  T.ok(o2, s2 == 0)
  local s3, o3 = T.sh(("%s run %s steps=12 logdir=%s/g_cut resume=auto"):format(T.taming(), args, tmp))
  T.ok(o3, s3 == 0 and o3:find("trained steps 7..12", 1, true) ~= nil)
  T.ok("a 'resumed from step 7' line: " .. o3, o3:find("resumed from step 7 (" .. tmp .. "/g_cut/checkpoints/step-00000007.safetensors)", 1, true) ~= nil)
  local base = "/checkpoints/step-00000012"
  identical("weights", tmp .. "/g_ref" .. base .. ".safetensors", tmp .. "/g_cut" .. base .. ".safetensors")
  identical("optimizer", tmp .. "/g_ref" .. base .. ".optim.safetensors", tmp .. "/g_cut" .. base .. ".optim.safetensors")
  local sa = ckpt.read_lua(tmp .. "/g_ref" .. base .. ".state.lua")
  local sb = ckpt.read_lua(tmp .. "/g_cut" .. base .. ".state.lua")
  T.eq("pkeep stream", sb.rngs.pkeep[2], sa.rngs.pkeep[2])
  T.ok("the pkeep stream was used", sa.rngs.pkeep[2] > 0)
  -- the resumed run and the uninterrupted one wrote the same bytes, metadata included
  for _, ext in ipairs({".safetensors", ".optim.safetensors"}) do
    T.ok("identical bytes: step-00000012" .. ext, read(tmp .. "/g_ref" .. base .. ext) == read(tmp .. "/g_cut" .. base .. ext))
  end
end)

-- Identical runs write identical checkpoint bytes: Lua's table order changes from
-- process to process, and the safetensors metadata (a Lua table) used to follow it.
test("identical_runs_identical_bytes", function()
  local script = tmp .. "/meta.lua"
  write(script, [[
local tt = require "taming"
local meta = {}
for _, k in ipairs({"format", "global_step", "producer", "epoch", "alpha", "beta", "gamma", "delta", "kappa"}) do
  meta[k] = k .. "-value"
end
tt.safetensors.save(arg.out, {w = tt.ones({2, 3}), b = tt.zeros({4})}, meta)
]])
  local first
  for i = 1, 6 do
    local out = ("%s/meta%d.safetensors"):format(tmp, i)
    local status, msg = T.sh(("%s run %s out=%s"):format(T.taming(), script, out))
    T.ok(msg, status == 0)
    first = first or read(out)
    T.ok(("process %d wrote different bytes than process 1"):format(i), read(out) == first)
  end
  T.ok("metadata keys sorted", first:find('"__metadata__":{"alpha":"alpha-value","beta":"beta-value","delta"', 1, true))
end)

return T.run("resume", tests)
