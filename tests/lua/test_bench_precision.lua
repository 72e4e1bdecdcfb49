-- test_bench_precision.lua — every bench (bench/*.lua) takes precision= and says
-- in its JSON which precision ran and on which instruction set. Each runs in its
-- quickest mode at fp32, bf16 and int8:
--   * a precision the bench runs: exit 0, and every JSON line has "precision" (the
--     one asked, or fp32 with a line saying why on a CPU without the kernels) and
--     "isa" ("openblas" for fp32; for bf16 one naming bf16);
--   * one it does not run: a non-zero exit and one line "precision=P: why".
-- A bench missing from the table below fails the test: a new bench must take
-- precision= too. Then, with TAMING_CPU_ISA=generic (a CPU without AVX512-BF16 or
-- AMX), precision=bf16 on the VQGAN, the GPT and the training benches runs fp32 and
-- says so in exactly one line per model, and with TAMING_CPU_ISA=avx512 (AMX
-- hidden, as on AMD Zen 4) the benches name the AVX512-BF16 path.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local SRC = T.srcdir()
local MODEL = SRC .. "/models/fashion_mnist"
local FMNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
local HARNESS = SRC .. "/../shared/tools/torch-reference/train/transformer.yaml"
local ALL = {"fp32", "bf16", "int8"}

-- bench file -> its quickest mode, the precisions it runs, and what it needs
local BENCHES = {
  ["gpt.lua"] = {args = "layers=1 width=64 tokens=4 bandwidth=false", runs = ALL},
  ["highres.lua"] = {args = "grid=8 window=4 cells=2 layers=1 width=64", runs = ALL},
  ["vqgan.lua"] = {args = "size=32 reps=1", runs = {"fp32", "bf16"}},
  ["train_step.lua"] = {args = "what=gpt layers=1 width=64 tokens=8 reps=1", runs = {"fp32", "bf16"}},
  ["train.lua"] = {args = "what=transformer steps=2 warmup=1 size=16 batch=1", runs = {"fp32", "bf16"},
                   needs = HARNESS},
  ["gemm_bf16.lua"] = {args = "rows=16 reps=1", runs = {"bf16"}},
  ["fid.lua"] = {args = "n=2 batch=2 distance=false", runs = {"fp32"}, needs = FMNIST},
  ["cfg.lua"] = {args = ("config=%s/transformer.yaml ckpt=%s/transformer_cfg.safetensors scales=1 n=1"):format(MODEL,
                 MODEL), runs = ALL},
  ["lua_sampler.lua"] = {args = "n=1 reps=1 model=" .. MODEL, runs = ALL},
}

-- runs a bench; returns the exit status, the output, and its JSON lines parsed
local function run(file, args, env)
  local status, out = T.sh(("cd '%s' && %s %s run bench/%s %s threads=1"):format(SRC, env or "", T.taming(), file, args))
  local rows = {}
  for line in out:gmatch("[^\n]+") do
    if line:sub(1, 1) == "{" then rows[#rows + 1] = tt.json.parse(line, file) end
  end
  return status, out, rows
end

local function count(out, s)
  local n, i = 0, 1
  while true do
    local j = out:find(s, i, true)
    if not j then return n end
    n, i = n + 1, j + #s
  end
end

local function runs(b, p)
  for _, q in ipairs(b.runs) do if q == p then return true end end
  return false
end

local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

test("every_bench_is_listed", function()
  local p = io.popen(("ls '%s'/bench/*.lua"):format(SRC))
  local n = 0
  for path in p:lines() do
    local file = path:match("[^/]+$")
    T.ok(("bench/%s has no quick mode in this test: add it to BENCHES"):format(file), BENCHES[file] ~= nil)
    n = n + 1
  end
  p:close()
  T.ok("benches found", n >= 9)
end)

local names = {}
for file in pairs(BENCHES) do names[#names + 1] = file end
table.sort(names)
for _, file in ipairs(names) do
  local b = BENCHES[file]
  test(file:gsub("%.lua$", ""), function()
    if b.needs and not tt.fs.exists(b.needs) then print(("  (skipped: no %s)"):format(b.needs)) return end
    for _, p in ipairs(ALL) do
      local status, out, rows = run(file, b.args .. " precision=" .. p)
      local what = ("bench/%s precision=%s"):format(file, p)
      if runs(b, p) then
        T.eq(what .. ": exit status\n" .. out, status, 0)
        T.ok(what .. ": no JSON line\n" .. out, #rows >= 1)
        for _, r in ipairs(rows) do
          T.ok(what .. ": JSON without \"isa\"\n" .. out, type(r.isa) == "string" and r.isa ~= "")
          if r.precision == p then
            if p == "fp32" then T.eq(what .. ": isa", r.isa, "openblas") end
            if p == "bf16" then T.ok(what .. ": the bf16 isa names bf16: " .. r.isa, r.isa:find("bf16") ~= nil) end
            if p == "int8" then T.ok(what .. ": an int8 isa: " .. r.isa, r.isa ~= "openblas") end
          else
            -- a CPU without the kernels: fp32, and why
            T.eq(what .. ": precision (fp32 when not available)\n" .. out, r.precision, "fp32")
            T.ok(what .. ": says why it runs fp32\n" .. out,
              out:find(("precision=%s is not available for"):format(p), 1, true) ~= nil)
          end
        end
        print(("  %s: ran %s on %s"):format(what, rows[1].precision, rows[1].isa))
      else
        T.ok(what .. ": refused (exit status)\n" .. out, status ~= 0)
        T.eq(what .. ": no JSON\n" .. out, #rows, 0)
        T.ok(what .. ": one line naming the precision\n" .. out, out:find("precision=" .. p, 1, true) ~= nil)
        local _, lines = out:gsub("\n", "")
        T.eq(what .. ": one line\n" .. out, lines, 1)
      end
    end
  end)
end

-- a CPU without AVX512-BF16 or AMX: bf16 runs fp32 and says so once per model
test("fallback_one_line_per_model", function()
  local env = "TAMING_CPU_ISA=generic"
  local cases = {
    {"vqgan.lua", "size=32 reps=1", "encoder, decoder"},
    {"gpt.lua", "layers=1 width=64 tokens=4 bandwidth=false", "gpt"},
    {"highres.lua", "grid=8 window=4 cells=2 layers=1 width=64", "gpt"},
    {"train_step.lua", "what=gpt layers=1 width=64 tokens=8 reps=1", "the GPT's training"},
  }
  if tt.fs.exists(HARNESS) then
    cases[#cases + 1] = {"train.lua", "what=transformer steps=2 warmup=1 size=16 batch=1", nil}
  end
  for _, c in ipairs(cases) do
    local status, out, rows = run(c[1], c[2] .. " precision=bf16", env)
    local what = "TAMING_CPU_ISA=generic bench/" .. c[1]
    T.eq(what .. ": exit status\n" .. out, status, 0)
    T.eq(what .. ": one line saying so\n" .. out, count(out, "precision=bf16 is not available"), 1)
    if c[3] then
      T.ok(what .. ": names " .. c[3] .. "\n" .. out, out:find("is not available for " .. c[3] .. " (", 1, true) ~= nil)
    end
    T.ok(what .. ": with the reason\n" .. out, out:find("TAMING_CPU_ISA=generic", 1, true) ~= nil)
    T.eq(what .. ": JSON precision\n" .. out, rows[1] and rows[1].precision, "fp32")
    T.eq(what .. ": JSON isa\n" .. out, rows[1] and rows[1].isa, "openblas")
  end
  -- a Net2Net model (a VQGAN and a GPT): one line for each
  local status, out = run("cfg.lua", BENCHES["cfg.lua"].args .. " precision=bf16", env)
  T.eq("cfg: exit status\n" .. out, status, 0)
  T.eq("cfg: one line per model\n" .. out, count(out, "precision=bf16 is not available"), 2)
  T.ok("cfg: the first stage's line\n" .. out,
    out:find("not available for first_stage_model.encoder, first_stage_model.decoder (", 1, true) ~= nil)
  T.ok("cfg: the transformer's line\n" .. out, out:find("not available for transformer (", 1, true) ~= nil)
end)

-- AMX hidden (TAMING_CPU_ISA=avx512): the path of AVX512-BF16 CPUs without AMX, named as such
test("avx512bf16_path_named", function()
  local probe = tt.set_compute_precision("bf16")
  tt.set_compute_precision("fp32")
  if probe.fallback then print("  (skipped: no bf16 GEMM on this CPU: " .. probe.fallback .. ")") return end
  local env = "TAMING_CPU_ISA=avx512"
  for _, c in ipairs{{"gpt.lua", "avx512bf16"}, {"vqgan.lua", "avx512bf16 (oneDNN)"}, {"train_step.lua", "avx512bf16"}} do
    local status, out, rows = run(c[1], BENCHES[c[1]].args .. " precision=bf16", env)
    local what = "TAMING_CPU_ISA=avx512 bench/" .. c[1]
    T.eq(what .. ": exit status\n" .. out, status, 0)
    if rows[1] and rows[1].precision == "bf16" then
      T.eq(what .. ": isa", rows[1].isa, c[2])
    else
      print(("  %s: no bf16 %s kernel here: %s"):format(what, c[1], out))
    end
  end
end)

T.run("bench_precision", tests)
