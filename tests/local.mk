# tests/ — check suites (one per area) and script tests. Run with `make check`.
if HAVE_CHECK
check_LTLIBRARIES += tests/libtesthelp.la
tests_libtesthelp_la_SOURCES = tests/testhelp.c tests/testhelp.h tests/ckptbuild.c tests/ckptbuild.h
tests_libtesthelp_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_libtesthelp_la_LIBADD = host/libtaming.la $(CHECK_LIBS)

TEST_LDADD = tests/libtesthelp.la host/libtaming_lua.la host/libtaming_data.la host/libtaming.la $(CHECK_LIBS) -lm
TEST_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)

check_PROGRAMS += tests/check_tensor tests/check_autograd tests/check_ops_core
# the public headers from C++: every function has C linkage
check_PROGRAMS += tests/check_headers_cxx
tests_check_headers_cxx_SOURCES = tests/check_headers_cxx.cc
tests_check_headers_cxx_CXXFLAGS = -std=c++17 -Wall
tests_check_headers_cxx_LDADD = host/libtaming_data.la host/libtaming.la
TESTS += tests/check_headers_cxx
tests_check_tensor_SOURCES = tests/check_tensor.c
tests_check_tensor_CFLAGS = $(TEST_CFLAGS)
tests_check_tensor_LDADD = $(TEST_LDADD)
tests_check_autograd_SOURCES = tests/check_autograd.c
tests_check_autograd_CFLAGS = $(TEST_CFLAGS)
tests_check_autograd_LDADD = $(TEST_LDADD)
tests_check_ops_core_SOURCES = tests/check_ops_core.c
tests_check_ops_core_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_core_LDADD = $(TEST_LDADD)
TESTS += tests/check_tensor tests/check_autograd tests/check_ops_core

# scopes that own temporaries (taming/scope.h); one case runs a second thread
check_PROGRAMS += tests/check_scope
tests_check_scope_SOURCES = tests/check_scope.c
tests_check_scope_CFLAGS = $(TEST_CFLAGS) -pthread
tests_check_scope_LDADD = $(TEST_LDADD) -lpthread
TESTS += tests/check_scope

# OpenBLAS's thread control is used to cover both tilings of the codebook argmin.
check_PROGRAMS += tests/check_ops_misc
tests_check_ops_misc_SOURCES = tests/check_ops_misc.c
tests_check_ops_misc_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_misc_LDADD = $(TEST_LDADD) $(BLAS_LIBS)
TESTS += tests/check_ops_misc

# comparisons, where, masked_fill, sort/topk, cumsum, multinomial (sampler building blocks)
check_PROGRAMS += tests/check_ops_select
tests_check_ops_select_SOURCES = tests/check_ops_select.c
tests_check_ops_select_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_select_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_select
# bf16 / int8 linear kernels (exit 77 where the CPU has neither)
check_PROGRAMS += tests/check_ops_qlinear
tests_check_ops_qlinear_SOURCES = tests/check_ops_qlinear.c
tests_check_ops_qlinear_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_qlinear_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_qlinear
# bf16 mixed-precision GEMMs and the compute-precision switch (exit 77 without AVX512-BF16)
check_PROGRAMS += tests/check_ops_gemm_bf16
tests_check_ops_gemm_bf16_SOURCES = tests/check_ops_gemm_bf16.c
tests_check_ops_gemm_bf16_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_gemm_bf16_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_gemm_bf16
TESTS += tests/gemm_bf16_paths_test.sh
EXTRA_DIST += tests/gemm_bf16_paths_test.sh
# the VQGAN and GPT fidelity gates on the AVX512-BF16 path without AMX (TAMING_CPU_ISA=avx512)
TESTS += tests/isa_paths_test.sh
EXTRA_DIST += tests/isa_paths_test.sh
check_PROGRAMS += tests/check_ops_conv_lowp
tests_check_ops_conv_lowp_SOURCES = tests/check_ops_conv_lowp.c
tests_check_ops_conv_lowp_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_conv_lowp_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_conv_lowp
check_PROGRAMS += tests/check_ops_conv_prec
tests_check_ops_conv_prec_SOURCES = tests/check_ops_conv_prec.c
tests_check_ops_conv_prec_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_conv_prec_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_conv_prec

check_PROGRAMS += tests/check_module
tests_check_module_SOURCES = tests/check_module.c
tests_check_module_CFLAGS = $(TEST_CFLAGS)
tests_check_module_LDADD = $(TEST_LDADD)
TESTS += tests/check_module
check_PROGRAMS += tests/check_io
tests_check_io_SOURCES = tests/check_io.c
tests_check_io_CFLAGS = $(TEST_CFLAGS)
tests_check_io_LDADD = $(TEST_LDADD)
TESTS += tests/check_io
check_PROGRAMS += tests/check_hostile
tests_check_hostile_SOURCES = tests/check_hostile.c
tests_check_hostile_CFLAGS = $(TEST_CFLAGS)
tests_check_hostile_LDADD = $(TEST_LDADD)
TESTS += tests/check_hostile
check_PROGRAMS += tests/check_ops_norm tests/check_ops_attention
tests_check_ops_norm_SOURCES = tests/check_ops_norm.c tests/torch_ref.h
tests_check_ops_norm_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_norm_LDADD = $(TEST_LDADD)
tests_check_ops_attention_SOURCES = tests/check_ops_attention.c tests/torch_ref.h
tests_check_ops_attention_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_attention_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_norm tests/check_ops_attention
EXTRA_DIST += tests/data/gen_norm.py tests/data/norm/torch_ref.bin
endif
AM_TESTS_ENVIRONMENT = TT_SRCDIR='$(abs_top_srcdir)'; TT_BUILDDIR='$(abs_top_builddir)'; \
	TAMING_FIXTURES='$(abs_top_srcdir)/../shared/fixtures'; \
	export TT_SRCDIR TT_BUILDDIR TAMING_FIXTURES; OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2}; OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-passive}; \
	export OMP_NUM_THREADS OMP_WAIT_POLICY;

# test plugins for the loader: one good, several that must be refused
if HAVE_CHECK
TEST_PLUGIN_FLAGS = -module -avoid-version -shared -rpath $(abs_builddir)/tests/plugins
check_LTLIBRARIES += tests/plugins/test_good.la tests/plugins/test_badabi.la tests/plugins/test_nocreate.la \
	tests/plugins/test_bigdesc.la tests/plugins/test_notplugin.la tests/plugins/test_mismatch.la \
	tests/plugins/test_badsizes.la tests/plugins/test_abi10.la \
	tests/plugins/test_badcuda_abi.la tests/plugins/test_badcuda_layout.la
tests_plugins_test_abi10_la_SOURCES = tests/plugins/abi10.c
tests_plugins_test_abi10_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_badsizes_la_SOURCES = tests/plugins/badsizes.c
tests_plugins_test_badsizes_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
# stand-ins for a CUDA backend module of another ABI / another tt_backend layout
tests_plugins_test_badcuda_abi_la_SOURCES = tests/plugins/badcuda.c
tests_plugins_test_badcuda_abi_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_ABI
tests_plugins_test_badcuda_abi_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_badcuda_layout_la_SOURCES = tests/plugins/badcuda.c
tests_plugins_test_badcuda_layout_la_CPPFLAGS = $(AM_CPPFLAGS) -DBAD_LAYOUT
tests_plugins_test_badcuda_layout_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_good_la_SOURCES = tests/plugins/good.c
tests_plugins_test_good_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_good_la_LIBADD = host/libtaming.la
tests_plugins_test_badabi_la_SOURCES = tests/plugins/badabi.c
tests_plugins_test_badabi_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_nocreate_la_SOURCES = tests/plugins/nocreate.c
tests_plugins_test_nocreate_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_bigdesc_la_SOURCES = tests/plugins/bigdesc.c
tests_plugins_test_bigdesc_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_notplugin_la_SOURCES = tests/plugins/notplugin.c
tests_plugins_test_notplugin_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_mismatch_la_SOURCES = tests/plugins/mismatch.c
tests_plugins_test_mismatch_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)

# ABI 1.2: kind contracts checked at load, params optional, typed calls that check results
check_LTLIBRARIES += tests/plugins/sampler_nosample.la tests/plugins/sampler_halfstate.la \
	tests/plugins/test_nullfn.la tests/plugins/test_noparams.la tests/plugins/sampler_liar.la \
	tests/plugins/feature_stub.la
tests_plugins_feature_stub_la_SOURCES = tests/plugins/feature_stub.c
tests_plugins_feature_stub_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_feature_stub_la_LIBADD = host/libtaming.la
tests_plugins_sampler_nosample_la_SOURCES = tests/plugins/sampler_nosample.c
tests_plugins_sampler_nosample_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_sampler_halfstate_la_SOURCES = tests/plugins/sampler_halfstate.c
tests_plugins_sampler_halfstate_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_nullfn_la_SOURCES = tests/plugins/nullfn.c
tests_plugins_test_nullfn_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_noparams_la_SOURCES = tests/plugins/noparams.c
tests_plugins_test_noparams_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_test_noparams_la_LIBADD = host/libtaming.la
tests_plugins_sampler_liar_la_SOURCES = tests/plugins/sampler_liar.c
tests_plugins_sampler_liar_la_LDFLAGS = $(TEST_PLUGIN_FLAGS)
tests_plugins_sampler_liar_la_LIBADD = host/libtaming.la

check_PROGRAMS += tests/check_kinds
tests_check_kinds_SOURCES = tests/check_kinds.c
tests_check_kinds_CFLAGS = $(TEST_CFLAGS)
tests_check_kinds_LDADD = $(TEST_LDADD)
TESTS += tests/check_kinds

check_PROGRAMS += tests/check_plugin
tests_check_plugin_SOURCES = tests/check_plugin.c
tests_check_plugin_CFLAGS = $(TEST_CFLAGS) $(LUA_CFLAGS)
tests_check_plugin_LDADD = $(TEST_LDADD) $(LUA_LIBS)
TESTS += tests/check_plugin
endif
EXTRA_DIST += tests/data/gen_io.py tests/data/io/lightning_like.ckpt tests/data/io/flat_p4.pt \
	tests/data/io/zip64_unaligned.pt tests/data/io/legacy.pt tests/data/io/expected.safetensors \
	tests/data/gen_legacy.py tests/data/io/legacy_mixed.pt tests/data/io/legacy_inception.pth \
	tests/data/io/legacy_inception_nonbt.pth tests/data/io/expected_legacy.safetensors
# images and the data-pipeline preprocessing (reference data in tests/data/image)
if HAVE_CHECK
check_LTLIBRARIES += tests/libimgtest.la
tests_libimgtest_la_SOURCES = tests/imgtest.c tests/imgtest.h
tests_libimgtest_la_CFLAGS = $(AM_CFLAGS) $(CHECK_CFLAGS)
tests_libimgtest_la_LIBADD = tests/libtesthelp.la host/libtaming_data.la host/libtaming.la $(CHECK_LIBS)
check_PROGRAMS += tests/check_image tests/check_image_examples
tests_check_image_SOURCES = tests/check_image.c
tests_check_image_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_check_image_LDADD = tests/libimgtest.la $(TEST_LDADD) $(ZLIB_LIBS)
tests_check_image_examples_SOURCES = tests/check_image_examples.c
tests_check_image_examples_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_check_image_examples_LDADD = tests/libimgtest.la $(TEST_LDADD) $(ZLIB_LIBS)
TESTS += tests/check_image tests/check_image_examples
endif
EXTRA_DIST += tests/data/gen_image.py tests/data/image

# IDX / Fashion-MNIST reader
if HAVE_CHECK
check_PROGRAMS += tests/check_datasets
tests_check_datasets_SOURCES = tests/check_datasets.c
tests_check_datasets_CFLAGS = $(TEST_CFLAGS) $(ZLIB_CFLAGS)
tests_check_datasets_LDADD = $(TEST_LDADD) $(ZLIB_LIBS)
TESTS += tests/check_datasets
endif

# Lua tests: run by the taming command itself (`taming run tests/lua/X.lua`)
TEST_EXTENSIONS = .lua
LUA_LOG_COMPILER = $(top_builddir)/host/taming
AM_LUA_LOG_FLAGS = run
LUA_TESTS = tests/lua/test_vqgan_parity.lua
LUA_TESTS += tests/lua/test_gpt_parity.lua
LUA_TESTS += tests/lua/test_bad_input.lua
LUA_TESTS += tests/lua/test_hostile_ckpt.lua
LUA_TESTS += tests/lua/test_legacy_ckpt.lua
LUA_TESTS += tests/lua/test_second_stage.lua
# bf16 / int8 GPT weights: fidelity gates against fp32 (random model; the fixtures' model)
LUA_TESTS += tests/lua/test_precision.lua tests/lua/test_precision_fixtures.lua
LUA_TESTS += tests/lua/test_vqgan_bf16.lua
# every bench takes precision= and names its ISA path in the JSON; fallbacks say so once per model
LUA_TESTS += tests/lua/test_bench_precision.lua
# every pipeline that runs a model takes precision= (bf16 reconstruct, bf16/int8 make_samples, refusals)
LUA_TESTS += tests/lua/test_pipeline_precision.lua
LUA_TESTS += tests/lua/test_train_parity.lua
LUA_TESTS += tests/lua/test_train_bf16.lua tests/lua/test_train_vqgan_bf16.lua
LUA_TESTS += tests/lua/test_loss_plugins.lua
LUA_TESTS += tests/lua/test_quantizers.lua
# f16 / bf16 / f64 checkpoints convert to the model's f32 on bind
LUA_TESTS += tests/lua/test_half_checkpoint.lua
TESTS += $(LUA_TESTS)
EXTRA_DIST += $(LUA_TESTS) tests/lua/testlib.lua
clean-local: clean-local-tests
clean-local-tests:
	-rm -rf tests/tmp
	export TT_SRCDIR TT_BUILDDIR TAMING_FIXTURES; OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2}; export OMP_NUM_THREADS;

# The CUDA backend against the CPU one; built always, skips (77) without a GPU.
if HAVE_CHECK
check_PROGRAMS += tests/check_cuda
tests_check_cuda_SOURCES = tests/check_cuda.c tests/cuda_parity.h
tests_check_cuda_CFLAGS = $(TEST_CFLAGS)
tests_check_cuda_LDADD = $(TEST_LDADD)
TESTS += tests/check_cuda
endif

# bench/gpu_check.sh against a stand-in bundle: fails loudly without a GPU, on a skip, etc.
TESTS += tests/gpu_check_test.sh
EXTRA_DIST += tests/gpu_check_test.sh
# bench/speed_table.sh's plan (dry run: no benchmark runs) and its refusals
TESTS += tests/speed_table_test.sh
EXTRA_DIST += tests/speed_table_test.sh

# every built shared object resolves all its symbols (the dlopen'ed modules included)
TESTS += tests/links_test.sh
EXTRA_DIST += tests/links_test.sh

# NCCL all-reduce on the backend's memory, one rank, no MPI; skips (77) without a GPU.
if HAVE_CHECK
if HAVE_NCCL
check_PROGRAMS += tests/check_nccl
tests_check_nccl_SOURCES = tests/check_nccl.c
tests_check_nccl_CFLAGS = $(TEST_CFLAGS) $(CUDA_CPPFLAGS)
tests_check_nccl_LDFLAGS = $(CUDA_LDFLAGS)
tests_check_nccl_LDADD = $(TEST_LDADD) -lnccl -lcudart
TESTS += tests/check_nccl
endif
endif

# first-stage loss plugins (LPIPS, PatchGAN) through the plugin interface
if HAVE_CHECK
check_PROGRAMS += tests/check_losses
tests_check_losses_SOURCES = tests/check_losses.c
tests_check_losses_CFLAGS = $(TEST_CFLAGS)
tests_check_losses_LDADD = $(TEST_LDADD)
TESTS += tests/check_losses
endif
EXTRA_DIST += tests/data/gen_train.py tests/data/train

# data-parallel training: one process (C suite and Lua), then two under mpirun
# (test_dist_mpi.lua skips when mpirun or the MPI module is missing)
if HAVE_CHECK
check_PROGRAMS += tests/check_dist
tests_check_dist_SOURCES = tests/check_dist.c
tests_check_dist_CFLAGS = $(TEST_CFLAGS)
tests_check_dist_LDADD = $(TEST_LDADD)
TESTS += tests/check_dist
endif
TESTS += tests/lua/test_dist_single.lua tests/lua/test_dist_mpi.lua
EXTRA_DIST += tests/lua/test_dist_single.lua tests/lua/test_dist_mpi.lua tests/lua/dist_worker.lua

# training infrastructure: TensorBoard event files
if HAVE_CHECK
check_PROGRAMS += tests/check_tensorboard
tests_check_tensorboard_SOURCES = tests/check_tensorboard.c
tests_check_tensorboard_CFLAGS = $(TEST_CFLAGS)
tests_check_tensorboard_LDADD = $(TEST_LDADD)
TESTS += tests/check_tensorboard
endif
# training: the data loader
LUA_TESTS += tests/lua/test_data.lua
# training: Adam / AdamW against torch.optim (reference data from tests/data/gen_optim.py)
LUA_TESTS += tests/lua/test_optim.lua
EXTRA_DIST += tests/data/gen_optim.py tests/data/optim/reference.safetensors
# training: both loops end to end, data parallel through a file-based tt.dist, kill -9 and resume
# (stand_in_loss.lua is a helper those tests load, not a test)
LUA_TESTS += tests/lua/test_train.lua tests/lua/test_resume.lua
# the per-op profiler through the training pipeline (profile=K, TAMING_PROFILE=1)
LUA_TESTS += tests/lua/test_profile.lua
EXTRA_DIST += tests/lua/stand_in_loss.lua
# the shipped Fashion-MNIST model: held-out metrics and the README sample command
LUA_TESTS += tests/lua/test_shipped_model.lua
# samplers as Lua functions, forced tokens (known/mask), pipeline sampler= options
LUA_TESTS += tests/lua/test_samplers.lua
EXTRA_DIST += tests/lua/lua_categorical_sampler.lua
# the plugin SDK as a user meets it: doc strings, unknown config keys, `taming plugins [-v]`
# (plugin_sdk_probe.lua is a helper it runs, not a test)
LUA_TESTS += tests/lua/test_plugin_sdk.lua
EXTRA_DIST += tests/lua/plugin_sdk_probe.lua
# size=WxH: a 2:3 high-resolution run against the official window loop
LUA_TESTS += tests/lua/test_nonsquare.lua
# FID / IS parity with pytorch-fid and torch-fidelity (tests/fid/make_fixture.py)
LUA_TESTS += tests/lua/test_fid.lua
# sample sets at scale: resumable, per-index seeds, every model kind
LUA_TESTS += tests/lua/test_make_samples.lua
EXTRA_DIST += tests/fid/make_fixture.py tests/fid/inception_weights.lua
# conv and resample families
if HAVE_CHECK
check_PROGRAMS += tests/check_ops_conv
tests_check_ops_conv_SOURCES = tests/check_ops_conv.c
tests_check_ops_conv_CFLAGS = $(TEST_CFLAGS)
tests_check_ops_conv_LDADD = $(TEST_LDADD)
TESTS += tests/check_ops_conv
endif
EXTRA_DIST += tests/data/gen_resample.py tests/data/resample/interpolate.txt

# sample-set metrics: FID statistics and distance, Inception Score, .npz files
check_PROGRAMS += tests/check_metrics
tests_check_metrics_SOURCES = tests/check_metrics.c
tests_check_metrics_CFLAGS = $(TEST_CFLAGS)
tests_check_metrics_LDADD = $(TEST_LDADD)
TESTS += tests/check_metrics
EXTRA_DIST += tests/data/fid/tiny_stats_compressed.npz tests/data/fid/reference.json tests/data/fid/pool_real4.npy
# classifier-free guidance: cond_drop, the null condition in checkpoints, cfg_scale=
LUA_TESTS += tests/lua/test_cfg.lua
# extension points: conditions.register, train.register_input, ckpt_path in tt.build, tt.pipelines_dir
LUA_TESTS += tests/lua/test_registries.lua
# the colorization tutorial runs as written (docs/tutorial-colorization.md, examples/colorization.lua)
LUA_TESTS += tests/lua/test_tutorial.lua
# docs/lua-api.md lists every binding of the taming module and every tensor method
LUA_TESTS += tests/lua/test_api_doc.lua
# the profiler and the fused optimizer (what a training step is built from)
if HAVE_CHECK
check_PROGRAMS += tests/check_train
tests_check_train_SOURCES = tests/check_train.c
tests_check_train_CFLAGS = $(TEST_CFLAGS)
tests_check_train_LDADD = $(TEST_LDADD)
TESTS += tests/check_train
endif
