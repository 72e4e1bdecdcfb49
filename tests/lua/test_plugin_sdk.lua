-- test_plugin_sdk.lua — the plugin SDK as a user meets it: method doc strings in
-- p:methods() and `taming plugins -v`, unknown config keys that list the known
-- ones, and `taming plugins` refusing exactly what tt.plugin refuses (a file
-- whose name disagrees with its descriptor, a plugin that lacks a method its
-- kind requires), with the stand-ins of tests/plugins.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local STANDINS = T.builddir() .. "/tests/plugins/.libs"
if not tt.fs.exists(STANDINS .. "/test_mismatch.so") then
  os.exit(T.skip("plugin_sdk", "the stand-in plugins of tests/plugins were not built (configure found no check)"))
end

local function find(list, pred)
  for _, x in ipairs(list) do if pred(x) then return x end end
end

T.run("plugin_sdk", {
  {"methods_with_docs", function()
    local s = tt.plugin("sampler", "categorical", {seed = 1})
    local ms = s:methods()
    T.eq("first method", ms[1].name, "sample")
    T.ok("sample is required", ms[1].required)
    T.ok("sample's doc", ms[1].doc:find("tokens [B]", 1, true))
    local probs = find(ms, function(m) return m.name == "probs" end)
    T.ok("probs is optional", probs and not probs.required)
    T.ok("probs's doc", probs.doc:find("distribution", 1, true))
  end},
  {"unknown_config_keys", function()
    T.raises("{topk = 5}", function() tt.plugin("sampler", "categorical", {topk = 5}) end,
      "sampler/categorical: unknown config key 'topk' (known: temperature, top_k, top_p, seed)")
    T.raises("a ddconfig typo", function()
      tt.plugin("encoder", "vqgan", {ch = 32, ch_mult = {1}, num_res_blocks = 1, attn_resolution = {}, resolution = 8,
                                     z_channels = 4}, {init = false})
    end, "unknown config key 'attn_resolution'", "attn_resolutions")
    T.raises("a GPT typo", function()
      tt.plugin("transformer", "mingpt", {vocab_size = 8, block_size = 4, n_embed = 8}, {init = false})
    end, "unknown config key 'n_embed'", "n_embd")
  end},
  {"plugins_verbose", function()
    local st, out = T.sh(T.taming() .. " plugins -v")
    T.eq("exit status", st, 0)
    T.ok("categorical listed", out:find("sampler%s+categorical"))
    T.ok("sample marked required, with its doc", out:find("sample%s+required%s+logits %[B, V%]"))
    T.ok("the summary", out:find("temperature / top-k / top-p", 1, true))
    local st2, out2 = T.sh(T.taming() .. " plugins --frobnicate")
    T.eq("unknown argument", st2, 2)
    T.ok("names it", out2:find("--frobnicate", 1, true))
  end},
  {"plugins_refuses_what_tt_plugin_refuses", function()
    local st, out = T.sh(("TAMING_PLUGIN_PATH=%s %s plugins"):format(STANDINS, T.taming()))
    T.eq("exit status", st, 0)
    local line = out:match("[^\n]*test_mismatch%.so[^\n]*")
    T.ok("mismatch listed", line)
    T.ok("mismatch refused", line:find("refused: .*descriptor says test/other"))
    local ns = out:match("[^\n]*sampler_nosample%.so[^\n]*")
    T.ok("nosample refused, naming the method", ns and ns:find("lacks the method 'sample'", 1, true))
    T.ok("test/good accepted", out:find("\ntest%s+good%s"))
    -- tt.plugin (the same search path) refuses the same files with the same words
    local _, lua_out = T.sh(("TAMING_PLUGIN_PATH=%s %s run %s/tests/lua/plugin_sdk_probe.lua"):format(
      STANDINS, T.taming(), T.srcdir()))
    T.ok("tt.plugin refuses the mismatch", lua_out:find("mismatch: .*descriptor says test/other"))
    T.ok("tt.plugin refuses nosample", lua_out:find("nosample: .*lacks the method 'sample'"))
  end},
})
