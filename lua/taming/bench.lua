-- taming.bench — what the benchmark drivers in bench/ share: the precision=
-- argument (fp32, bf16 or int8; refused with the reason where a bench has no such
-- path), the instruction-set path each precision took on this machine, the
-- median, and the one JSON line a bench prints.
--
--   local B = require "taming.bench"
--   local a = B.args(..., {tokens = {"int", default = 256}}, "taming run bench/x.lua ...",
--                    {"fp32", "bf16"}, "int8 has no meaning for X")
--   local info = B.set_precision(gpt, a.precision, "gpt")      -- {precision =, isa =[, fallback =]}
--   B.print_json{"bench", "x", "precision", info.precision, "isa", info.isa, "s", B.fmt("%.3f", dt)}
--
-- Every bench JSON line carries "precision" (what ran: fp32 where the CPU has no
-- kernel for what was asked) and "isa" (the kernels' instruction set: "openblas" for
-- fp32, e.g. "amx-bf16+avx512bf16" or "avx512bf16" for bf16). TAMING_CPU_ISA=avx512
-- (AMX hidden: the path of AVX512-BF16 CPUs without AMX) and =generic (no bf16/int8
-- kernel: the fp32 fallback) choose another path on the same machine.
local tt = require "taming.core"
local args = require "taming.args"
local Model = require "taming.model"

local B = {}

B.PRECISIONS = {"fp32", "bf16", "int8"}

-- the median of a list of numbers (the list itself is left unsorted)
function B.median(t)
  local s = {}
  for i, v in ipairs(t) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then error("median of no values", 2) end
  return n % 2 == 1 and s[(n + 1) // 2] or 0.5 * (s[n // 2] + s[n // 2 + 1])
end

-- tt.args.parse with what every bench takes added to `schema`: threads=N (set here)
-- and precision= (default: the first of `supported`, else fp32). `supported` lists
-- the precisions the bench runs (default: all three); any other of fp32/bf16/int8 is
-- refused with "precision=P: <why>", so the user learns why, not just that.
function B.args(argv, schema, usage, supported, why)
  supported = supported or B.PRECISIONS
  local s = {}
  for k, v in pairs(schema) do s[k] = v end
  s.threads = s.threads or {"int", min = 1, help = "threads (default: all, or OMP_NUM_THREADS)"}
  s.precision = s.precision or {"string", default = supported[1], choices = B.PRECISIONS,
    help = "weights / GEMMs in " .. table.concat(supported, ", ")}
  local a = args.parse(argv, s, usage)
  local ok = false
  for _, p in ipairs(supported) do ok = ok or p == a.precision end
  if not ok then
    error(("precision=%s: %s (this bench runs %s)"):format(a.precision, why or "not available in this bench",
      table.concat(supported, " or ")), 0)
  end
  if a.threads then tt.set_threads(a.threads) end
  return a
end

-- Puts a plugin or a Model into `precision` and returns {precision =, isa =[, fallback =]}:
-- the precision that runs (fp32 where this CPU has no kernel for the one asked) and the
-- instruction set of its kernels. A Model says so itself (one line per model on
-- stderr); for a plugin the line names it as `name`.
function B.set_precision(obj, precision, name)
  if Model.is_model(obj) then return obj:set_precision(precision) end
  local info = obj:set_precision(precision)
  if info.fallback then
    io.stderr:write(("taming: precision=%s is not available for %s (%s); running fp32\n"):format(precision,
      name or "the model", info.fallback))
  end
  return info
end

-- The precision a model loaded by tt.load(path, {precision = p}) runs, as B.set_precision
-- returns it (tt.load has said so already where it fell back).
function B.model_precision(model)
  return model.precision_info or {precision = "fp32", isa = "openblas"}
end

-- The GEMMs of training (tt.set_compute_precision, as train.set_precision uses it) in
-- `precision`: returns the previous setting (to restore) and {precision =, isa =[, fallback =]}.
-- A CPU without a bf16 GEMM runs fp32 and says so in one line on stderr.
function B.compute_precision(precision, what)
  if precision ~= "fp32" and precision ~= "bf16" then
    error(("precision=%s: training computes in fp32 or bf16 (int8 weights are for inference)"):format(precision), 0)
  end
  local prev = tt.compute_precision()
  local info = tt.set_compute_precision(precision)
  if info.fallback then
    io.stderr:write(("taming: precision=%s is not available for %s (%s); running fp32\n"):format(precision,
      what or "training", info.fallback))
  end
  return prev, info
end

-- a number written as `fmt` formats it (B.fmt("%.3f", x)) in B.print_json
local RAW = {}
function B.fmt(fmt, x) return setmetatable({text = fmt:format(x)}, RAW) end

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local function json_value(v)
  local t = type(v)
  if getmetatable(v) == RAW then return v.text end
  if t == "string" then return json_string(v) end
  if t == "boolean" then return tostring(v) end
  if t == "number" then
    if math.type(v) == "integer" then return ("%d"):format(v) end
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return ("%.6g"):format(v)
  end
  if t == "table" then   -- a list of numbers or strings
    local parts = {}
    for i, x in ipairs(v) do parts[i] = json_value(x) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  error(("print_json: cannot write a %s"):format(t), 3)
end

-- Prints one JSON object on one line, its keys in the order given:
-- B.print_json{"key1", value1, "key2", value2, ...}
function B.print_json(kv)
  if #kv % 2 ~= 0 then error("print_json: expected key, value pairs", 2) end
  local parts = {}
  for i = 1, #kv, 2 do parts[#parts + 1] = json_string(kv[i]) .. ":" .. json_value(kv[i + 1]) end
  print("{" .. table.concat(parts, ",") .. "}")
end

return B
