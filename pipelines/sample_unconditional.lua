-- sample_unconditional — samples from an unconditional model (FFHQ, CelebA-HQ:
-- the condition is one SOS token). With size= larger than the training size the
-- latent grid is filled with the sliding attention window.
--
--   taming run pipelines/sample_unconditional.lua config=M.yaml ckpt=M.ckpt [n=4] [seed=0]
--       [temperature=1] [top_k=250] [top_p=..] [greedy=false] [size=N|WxH] [output=samples.png] [codes=c.npy]
local tt = require "taming"
local P = require "taming.pipeline"

local a = tt.args.parse(..., P.sampling_schema(),
  "taming run pipelines/sample_unconditional.lua config=M.yaml ckpt=M.ckpt [n=4] [output=samples.png]")
local model = P.load(a)
if not model.unconditional then
  error(("%s: not an unconditional model (its condition stage is %s)"):format(a.config, tostring(model.cond_stage_key)), 0)
end
local geo = P.geometry(model, a.size)
local cond = P.prefix_cond(model, a, a.n)
local codes = P.sample_grid(model, a, geo, cond, nil)
P.save(a, P.decode(model, codes), codes)
