-- plugin_sdk_probe.lua — run by test_plugin_sdk.lua with TAMING_PLUGIN_PATH on the
-- stand-ins: prints what tt.plugin says about the files `taming plugins` refuses.
local tt = require "taming"
for _, n in ipairs({{"test", "mismatch"}, {"sampler", "nosample"}}) do
  local ok, err = pcall(tt.plugin, n[1], n[2])
  print(("%s: %s"):format(n[2], ok and "loaded" or tostring(err)))
end
