# bench/ — benchmark drivers that print JSON (not tests): taming run bench/X.lua ...
EXTRA_DIST += bench/vqgan.lua
EXTRA_DIST += bench/gpt.lua
EXTRA_DIST += bench/highres.lua
EXTRA_DIST += bench/fid.lua
EXTRA_DIST += bench/gpu_check.sh
EXTRA_DIST += bench/speed_table.sh
EXTRA_DIST += bench/train_step.lua
EXTRA_DIST += bench/train.lua
EXTRA_DIST += bench/torch_bench.py
# bench/ — (see the files in this folder)
# conv2d timings (JSON lines)
noinst_PROGRAMS += bench/bench_conv
bench_bench_conv_SOURCES = bench/conv.c
bench_bench_conv_CPPFLAGS = $(AM_CPPFLAGS) $(BLAS_CFLAGS)
bench_bench_conv_LDADD = host/libtaming.la $(BLAS_LIBS) -lm
EXTRA_DIST += bench/lua_sampler.lua
EXTRA_DIST += bench/cfg.lua
EXTRA_DIST += bench/gemm_bf16.lua
