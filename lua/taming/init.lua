-- taming — the Lua half of the runtime. `local tt = require "taming"` gives the
-- C core (tensors, ops, plugins, files) plus the shared Lua helpers pipelines use.
local tt = require "taming.core"

tt.args = require "taming.args"
tt.Model = require "taming.model"
tt.vqgan = require "taming.vqgan"
tt.models = require "taming.load"
tt.losses = require "taming.losses"

local function vq_builder(kind)
  return function(params, where, opts)
    local m = tt.vqgan.build(kind, params, where, opts)
    if kind == "VQSegmentationModel" or params.colorize_nlabels then m.keep_keys = {"colorize"} end
    return m
  end
end
tt.models.register("taming.models.vqgan.VQModel", vq_builder("VQModel"))
tt.models.register("taming.models.vqgan.GumbelVQ", vq_builder("GumbelVQ"))
tt.models.register("taming.models.vqgan.EMAVQ", vq_builder("EMAVQ"))
tt.models.register("taming.models.vqgan.VQSegmentationModel", vq_builder("VQSegmentationModel"))

tt.net2net = require "taming.net2net"
tt.models.register("taming.models.cond_transformer.Net2NetTransformer", tt.net2net.build)
tt.models.register("taming.modules.transformer.mingpt.GPT", function(params, where)
  local m = tt.Model.new("GPT")
  local ok, err = pcall(function() m:add("", tt.plugin("transformer", "mingpt", params, {init = false})) end)
  if not ok then error(("%s: %s"):format(where, err), 0) end
  m.gpt = m[""]
  -- a bare GPT saved from inside a Net2NetTransformer keeps its "transformer." prefix
  function m:guess_prefix(ck)
    if ck:get("tok_emb.weight") == nil and ck:get("transformer.tok_emb.weight") ~= nil then return "transformer." end
    return ""
  end
  return m
end)
tt.sampler = tt.net2net.sampler

-- The folder of the shipped pipelines (pipelines/X.lua), in the source tree when the
-- taming command runs uninstalled, else under the install prefix: a task file can run
-- one with loadfile(tt.pipelines_dir() .. "/conditional.lua")(args).
function tt.pipelines_dir()
  local root = rawget(_G, "TAMING_ROOT")
  if type(root) ~= "string" then error("tt.pipelines_dir: TAMING_ROOT is unset (run scripts with `taming run`)", 0) end
  return root .. "/pipelines"
end

tt.load = tt.models.load
tt.build = tt.models.build

return tt
