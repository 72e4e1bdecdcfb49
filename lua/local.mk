# lua/ — the Lua library shared by the pipelines (installed under $(pkgdatadir)/lua).
dist_lua_DATA += lua/taming/init.lua lua/taming/args.lua lua/taming/model.lua lua/taming/vqgan.lua \
	lua/taming/load.lua lua/taming/net2net.lua lua/taming/conditions.lua lua/taming/pipeline.lua \
	lua/taming/losses.lua
	lua/taming/load.lua lua/taming/net2net.lua lua/taming/conditions.lua lua/taming/pipeline.lua
# training: datasets and the threaded loader
dist_lua_DATA += lua/taming/data.lua
# training: Adam and AdamW
dist_lua_DATA += lua/taming/optim.lua
# training: checkpoints, progress, the loops
dist_lua_DATA += lua/taming/checkpoint.lua lua/taming/progress.lua lua/taming/train.lua
