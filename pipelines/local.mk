# pipelines/ — one Lua script per task (installed under $(pkgdatadir)/pipelines).
dist_pipelines_DATA += pipelines/evaluate.lua pipelines/reconstruct.lua pipelines/sample_unconditional.lua pipelines/sample_class.lua \
	pipelines/conditional.lua pipelines/completion.lua pipelines/highres.lua pipelines/inpaint.lua
dist_pipelines_DATA += pipelines/train_vqgan.lua pipelines/train_transformer.lua
