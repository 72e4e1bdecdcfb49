-- test_optim.lua — taming.optim against torch.optim (tests/data/optim, made by
-- tests/data/gen_optim.py): AdamW with the Net2NetTransformer's parameter groups
-- and a skipped gradient, Adam with L2 decay and two accumulated micro-batches;
-- the state as named tensors survives a safetensors round trip exactly.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"
local optim = require "taming.optim"

local REF = tt.ckpt.open(T.srcdir() .. "/tests/data/optim/reference.safetensors")
local tmp = T.tmpdir("optim")
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local GPT_NAMES = {"blocks.0.attn.key.weight", "blocks.0.attn.key.bias", "blocks.0.ln1.weight", "blocks.0.mlp.2.weight",
                   "tok_emb.weight", "pos_emb", "head.weight"}
local AE_NAMES = {"encoder.conv_in.weight", "encoder.conv_in.bias", "loss.discriminator.w"}

local function ref(name)
  local t = REF:get(name)
  if not t then error("reference lacks " .. name) end
  return t
end

-- |a - b| <= tol * (1 + max |b|): moments grow with the gradients' squares
local function close_rel(what, a, b, tol)
  return T.close(what, a, b, tol * (1 + b:abs():max():item()))
end

local function params_from(case, names, prefix)
  local ps = {}
  for i, n in ipairs(names) do
    local t = ref(case .. ".init." .. n):clone()
    t:requires_grad(true)
    ps[i] = {name = (prefix or "") .. n, tensor = t, short = n}
  end
  return ps
end

test("gpt_groups_split_as_official", function()
  local ps = params_from("gpt", GPT_NAMES, "transformer.")
  local groups = optim.gpt_groups(ps, 0.01, "transformer.")
  local got = {}
  for _, g in ipairs(groups) do
    for _, p in ipairs(g.params) do got[p.short] = g.weight_decay end
  end
  local want = {["blocks.0.attn.key.weight"] = 0.01, ["blocks.0.mlp.2.weight"] = 0.01, ["head.weight"] = 0.01,
                ["blocks.0.attn.key.bias"] = 0.0, ["blocks.0.ln1.weight"] = 0.0, ["tok_emb.weight"] = 0.0,
                ["pos_emb"] = 0.0}
  for n, wd in pairs(want) do T.eq("weight decay of " .. n, got[n], wd) end
  for _, n in ipairs({"blocks.11.attn.query.weight", "blocks.3.attn.value.weight", "blocks.0.attn.proj.weight",
                      "blocks.2.mlp.0.weight"}) do
    T.eq(n, optim.gpt_decay_class(n), "decay")
  end
  for _, n in ipairs({"blocks.3.mlp.0.bias", "blocks.3.ln2.weight", "ln_f.weight", "ln_f.bias"}) do
    T.eq(n, optim.gpt_decay_class(n), "no_decay")
  end
  T.raises("unknown parameter", function()
    optim.gpt_groups({{name = "blocks.0.attn.mask", tensor = tt.zeros({1})}}, 0.01)
  end, "blocks.0.attn.mask", "either group")
end)

test("adamw_matches_torch", function()
  local ps = params_from("gpt", GPT_NAMES)
  local opt = optim.AdamW(optim.gpt_groups(ps, 0.01), {lr = 1e-2, betas = {0.9, 0.95}, eps = 1e-8})
  local worst = 0
  for step = 1, 3 do
    for _, p in ipairs(ps) do
      local g = REF:get(("gpt.grad%d.%s"):format(step, p.short))
      p.tensor:set_grad(g and g:clone() or nil)
    end
    opt:step()
    for _, p in ipairs(ps) do
      worst = math.max(worst, T.close(("step %d %s"):format(step, p.short), p.tensor,
        ref(("gpt.after%d.%s"):format(step, p.short)), 2e-6))
      T.ok("gradients are cleared after a step", p.tensor:grad() == nil)
    end
  end
  local sd = opt:state_dict()
  for _, p in ipairs(ps) do
    close_rel("exp_avg " .. p.short, sd[p.name .. ".exp_avg"], ref("gpt.exp_avg." .. p.short), 1e-6)
    close_rel("exp_avg_sq " .. p.short, sd[p.name .. ".exp_avg_sq"], ref("gpt.exp_avg_sq." .. p.short), 1e-6)
    T.eq("step " .. p.short, sd[p.name .. ".step"]:item(), ref("gpt.step." .. p.short):item())
  end
  T.eq("head.weight skipped once", sd["head.weight.step"]:item(), 2)
  print(("  adamw: max |param - torch| %.2g"):format(worst))
end)

test("adam_accumulation_matches_torch", function()
  local ps = params_from("ae", AE_NAMES)
  local opt = optim.Adam({{params = {ps[1], ps[2]}, weight_decay = 0.1}, {params = {ps[3]}}},
    {lr = 3e-3, betas = {0.5, 0.9}, eps = 1e-8, accumulate = 2})
  local worst = 0
  for step = 1, 3 do
    for micro = 1, 2 do
      local loss
      for _, p in ipairs(ps) do
        local term = (p.tensor * ref(("ae.grad%d.%d.%s"):format(step, micro, p.short))):sum()
        loss = loss and (loss + term) or term
      end
      local ready = opt:backward(loss)
      T.eq(("ready after micro-batch %d"):format(micro), ready, micro == 2)
    end
    T.eq("steps", opt:step(), 3)
    for _, p in ipairs(ps) do
      worst = math.max(worst, T.close(("step %d %s"):format(step, p.short), p.tensor,
        ref(("ae.after%d.%s"):format(step, p.short)), 2e-6))
    end
  end
  local sd = opt:state_dict("opt_ae.")
  for _, p in ipairs(ps) do
    close_rel("exp_avg " .. p.short, sd["opt_ae." .. p.name .. ".exp_avg"], ref("ae.exp_avg." .. p.short), 1e-6)
    close_rel("exp_avg_sq " .. p.short, sd["opt_ae." .. p.name .. ".exp_avg_sq"], ref("ae.exp_avg_sq." .. p.short), 1e-6)
  end
  print(("  adam: max |param - torch| %.2g"):format(worst))
end)

test("state_round_trip_is_exact", function()
  local function run(ps, opt, from, to)
    for step = from, to do
      for _, p in ipairs(ps) do
        local g = REF:get(("gpt.grad%d.%s"):format(step, p.short))
        p.tensor:set_grad(g and g:clone() or nil)
      end
      opt:step()
    end
  end
  local a = params_from("gpt", GPT_NAMES)
  local oa = optim.AdamW(optim.gpt_groups(a, 0.01), {lr = 1e-2, betas = {0.9, 0.95}})
  run(a, oa, 1, 2)
  local path = tmp .. "/state.safetensors"
  tt.safetensors.save(path, oa:state_dict("opt."))
  local b = {}
  for i, p in ipairs(a) do
    local t = p.tensor:detach():clone()
    t:requires_grad(true)
    b[i] = {name = p.name, tensor = t, short = p.short}
  end
  local ob = optim.AdamW(optim.gpt_groups(b, 0.01), {lr = 1e-2, betas = {0.9, 0.95}})
  ob:load_state_dict(tt.ckpt.open(path), "opt.", path)
  run(a, oa, 3, 3)
  run(b, ob, 3, 3)
  for i = 1, #a do T.close("resumed " .. a[i].short, b[i].tensor, a[i].tensor, 0) end
  T.eq("step counts", ob:state_dict()["head.weight.step"]:item(), 2)
  -- a state for a parameter the optimizer does not hold, or of the wrong shape
  T.raises("foreign state", function()
    ob:load_state_dict({["opt.nope.exp_avg"] = tt.zeros({1})}, "opt.", "x.safetensors")
  end, "x.safetensors", "nope")
  T.raises("wrong shape", function()
    ob:load_state_dict({["opt.pos_emb.exp_avg"] = tt.zeros({2}), ["opt.pos_emb.exp_avg_sq"] = tt.zeros({2}),
                        ["opt.pos_emb.step"] = tt.tensor(1, {dtype = "i64"})}, "opt.", "y.safetensors")
  end, "y.safetensors", "pos_emb", "[1, 2, 4]")
  T.raises("incomplete", function()
    ob:load_state_dict({["opt.pos_emb.exp_avg"] = tt.zeros({1, 2, 4})}, "opt.", "z.safetensors")
  end, "incomplete", "pos_emb")
end)

test("learning_rate_rule", function()
  -- imagenet_vqgan on one GPU: 1 x 1 x 12 x 4.5e-6
  T.ok("5.4e-5", math.abs(optim.learning_rate(4.5e-6, 12, 1, 1) - 5.4e-5) < 1e-18)
  T.ok("accumulate x world x batch", math.abs(optim.learning_rate(1e-6, 4, 3, 2) - 24e-6) < 1e-18)
  T.raises("accumulate 0", function() optim.Adam({}, {accumulate = 0}) end, "accumulate")
  local p = {name = "w", tensor = tt.zeros({2})}
  T.raises("duplicate", function() optim.Adam({p, p}) end, "'w' appears twice")
end)

return T.run("optim", tests)
