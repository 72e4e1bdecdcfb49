# bench/ — benchmark drivers that print JSON (not tests): taming run bench/X.lua ...
EXTRA_DIST += bench/vqgan.lua
EXTRA_DIST += bench/gpt.lua
EXTRA_DIST += bench/highres.lua
EXTRA_DIST += bench/gpu_check.sh
