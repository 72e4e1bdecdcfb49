-- sample_class — class-conditional samples (ImageNet cIN, or the shipped
-- Fashion-MNIST model): class=K for n samples of one class, class=all for a
-- labelled sheet with n samples of every class (one row per class).
--
--   taming run pipelines/sample_class.lua config=M.yaml ckpt=M.ckpt class=all|K [n=4]
--       [temperature=1] [top_k=..] [top_p=..] [seed=0] [output=samples.png] [codes=c.npy]
local tt = require "taming"
local P = require "taming.pipeline"

local a = tt.args.parse(..., P.sampling_schema({
  class = {"string", required = true, help = "a class id, or all"},
}), "taming run pipelines/sample_class.lua config=M.yaml ckpt=M.ckpt class=all|K [n=4]")
local model = P.load(a)
local nclass = model.n_classes
if not nclass then error(("%s: not a class-conditional model (no Labelator condition stage)"):format(a.config), 0) end

local classes = {}
if a.class == "all" then
  for k = 0, nclass - 1 do classes[#classes + 1] = k end
else
  local k = math.tointeger(tonumber(a.class))
  if not k then error(("argument class=%s: expected an integer or all"):format(a.class), 0) end
  classes[1] = k
end
local labels = {}
for _, k in ipairs(classes) do
  for _ = 1, a.n do labels[#labels + 1] = k end
end
-- Labelator checks the range (a class id outside [0, n_classes) is an error naming both)
local _, cond = model:encode_to_c(tt.tensor(labels, {dtype = "i64", device = a.device}))
local geo = P.geometry(model, a.size)
local codes = P.sample_grid(model, a, geo, cond, nil)
a.nrow = a.nrow or a.n
P.save(a, P.decode(model, codes), codes)
if a.class == "all" and model.class_names then
  print("rows: " .. table.concat(model.class_names, ", "))
end
