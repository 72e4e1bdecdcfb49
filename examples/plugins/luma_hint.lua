-- luma_hint — the cond/luma example plugin from a pipeline: the coarse
-- luminance tokens a transformer conditioned on cond/luma would see for an
-- image, and those tokens decoded back as a PNG.
--
--   TAMING_PLUGIN_PATH=DIR taming run luma_hint.lua input=IMG.png [n_levels=16] [down_factor=8] [output=hint.png]
local tt = require "taming"

local usage = "taming run luma_hint.lua input=IMG.png [n_levels=16] [down_factor=8] [output=hint.png]"
local a = tt.args.parse(..., {
  input = {"string", required = true, help = "an image (PNG or JPEG)"},
  n_levels = {"int", default = 16, min = 2, help = "tokens: luma levels"},
  down_factor = {"int", default = 8, min = 1, help = "pixels per token along each side"},
  output = {"string", default = "hint.png", help = "the decoded condition"},
}, usage)

local cond = tt.plugin("cond", "luma", {n_levels = a.n_levels, down_factor = a.down_factor})
local x = tt.image.load(a.input)                                 -- [1, C, H, W] in [-1, 1]
local f = a.down_factor
local H, W = x:size(2) // f * f, x:size(3) // f * f
if H == 0 or W == 0 then error(("%s: smaller than one %dx%d block"):format(a.input, f, f), 0) end
x = x:narrow(2, 0, H):narrow(3, 0, W):contiguous()               -- whole blocks only
local quant, _, tokens = cond:encode(x)                          -- [1, 1, H/f, W/f], nil, [1, (H/f)(W/f)]
tt.image.save(a.output, cond:decode(quant))
local counts, used = {}, 0
for _, t in ipairs(tokens:totable()[1]) do
  if not counts[t] then used = used + 1 end
  counts[t] = (counts[t] or 0) + 1
end
print(("wrote %s: %d tokens (%dx%d, w x h) using %d of %d levels"):format(a.output, tokens:size(1), W // f, H // f,
  used, a.n_levels))
