# pipelines/ — one Lua script per task (installed under $(pkgdatadir)/pipelines).
dist_pipelines_DATA += pipelines/reconstruct.lua
