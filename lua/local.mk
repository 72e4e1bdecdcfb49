# lua/ — the Lua library shared by the pipelines (installed under $(pkgdatadir)/lua).
# One file per line: fragments are merged by union.
dist_lua_DATA += lua/taming/init.lua
dist_lua_DATA += lua/taming/args.lua
dist_lua_DATA += lua/taming/model.lua
dist_lua_DATA += lua/taming/vqgan.lua
dist_lua_DATA += lua/taming/load.lua
dist_lua_DATA += lua/taming/net2net.lua
dist_lua_DATA += lua/taming/conditions.lua
dist_lua_DATA += lua/taming/pipeline.lua
dist_lua_DATA += lua/taming/losses.lua
dist_lua_DATA += lua/taming/data.lua
dist_lua_DATA += lua/taming/optim.lua
dist_lua_DATA += lua/taming/checkpoint.lua
dist_lua_DATA += lua/taming/progress.lua
dist_lua_DATA += lua/taming/train.lua
dist_lua_DATA += lua/taming/metrics.lua
dist_lua_DATA += lua/taming/bench.lua
