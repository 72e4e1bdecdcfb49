# host/ — the runtime library libtaming and the `taming` command.
lib_LTLIBRARIES += host/libtaming.la
# the core: tensors, backends, autograd, values, parameters
host_libtaming_la_SOURCES = host/status.c host/arena.c host/tensor.c host/backend.c host/autograd.c
host_libtaming_la_SOURCES += host/profile.c
host_libtaming_la_SOURCES += host/value.c host/internal.h host/dl.c host/dl.h host/backend_impl.h
# files: checkpoints, safetensors, npy, YAML, atomic writes
host_libtaming_la_SOURCES += host/io_internal.h host/atomic.c host/ckpt.c host/zip.c host/pickle.c
host_libtaming_la_SOURCES += host/ckpt_torch.c host/json.c host/ckpt_safetensors.c host/npy.c host/yaml_config.c
host_libtaming_la_SOURCES += host/ckpt_quantize.c host/ckpt_torch_legacy.c
# op wrappers (shape checks, kernel dispatch, autograd), one file per family
host_libtaming_la_SOURCES += host/ops/common.c host/ops/common.h
host_libtaming_la_SOURCES += host/ops/copy.c host/ops/elementwise.c host/ops/shape.c host/ops/reduce.c
host_libtaming_la_SOURCES += host/ops/gemm.c host/ops/random.c host/ops/qlinear.c
host_libtaming_la_SOURCES += host/ops/conv_lowp.c
# plugins, the Lua module, the sampling loops
host_libtaming_la_SOURCES += host/plugin.c host/lua_internal.h host/lua_core.c host/lua_tensor.c host/lua_ops.c
host_libtaming_la_SOURCES += host/lua_plugin.c host/lua_io.c host/lua_sampling.c host/lua_data.c host/sampling.c
host_libtaming_la_SOURCES += host/lua_select.c
# what each plugin kind implements (checked at load) and typed calls to it
host_libtaming_la_SOURCES += host/kinds.c host/kind_calls.c
host_libtaming_la_SOURCES += host/ops/norm.c host/ops/softmax.c host/ops/attention.c
# sample-set metrics (FID, Inception Score) and the .npz files their statistics live in
host_libtaming_la_SOURCES += host/metrics.c host/lua_metrics.c host/npz.c
host_libtaming_la_CPPFLAGS = $(AM_CPPFLAGS) $(LUA_CFLAGS) $(PNG_CFLAGS) $(JPEG_CFLAGS) \
	$(YAML_CFLAGS) $(ZLIB_CFLAGS) $(BLAS_CFLAGS)
host_libtaming_la_LIBADD = $(LUA_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(YAML_LIBS) $(ZLIB_LIBS) $(BLAS_LIBS) $(DNNL_LIBS) -lm
host_libtaming_la_LDFLAGS = -version-info 0:0:0 -no-undefined $(OPENMP_CFLAGS)

taming_HEADERS = \
	host/include/taming/taming.h host/include/taming/export.h host/include/taming/status.h \
	host/include/taming/tensor.h host/include/taming/arena.h host/include/taming/backend.h \
	host/include/taming/autograd.h host/include/taming/ops.h host/include/taming/value.h \
	host/include/taming/module.h host/include/taming/plugin.h host/include/taming/io.h \
	host/include/taming/sampling.h
taming_HEADERS += host/include/taming/checked.h host/include/taming/profile.h
	host/include/taming/sampling.h host/include/taming/dtype.h
	host/include/taming/sampling.h host/include/taming/metrics.h
taming_HEADERS += host/include/taming/checked.h host/include/taming/dtype.h host/include/taming/kinds.h
nodist_taming_HEADERS = host/include/taming/version.h
tamingops_HEADERS += \
	host/include/taming/ops/copy.h host/include/taming/ops/elementwise.h \
	host/include/taming/ops/shape.h host/include/taming/ops/reduce.h \
	host/include/taming/ops/gemm.h host/include/taming/ops/conv.h \
	host/include/taming/ops/resample.h host/include/taming/ops/norm.h \
	host/include/taming/ops/softmax.h host/include/taming/ops/attention.h \
	host/include/taming/ops/embedding.h host/include/taming/ops/loss.h \
	host/include/taming/ops/quantize.h host/include/taming/ops/optim.h \
	host/include/taming/ops/random.h host/include/taming/ops/compare.h \
	host/include/taming/ops/sort.h
	host/include/taming/ops/random.h host/include/taming/ops/qlinear.h \
	host/include/taming/ops/conv_lowp.h
EXTRA_DIST += host/taming.pc.in host/include/taming/version.h.in

bin_PROGRAMS += host/taming
host_taming_SOURCES = host/main.c
host_taming_CPPFLAGS = $(AM_CPPFLAGS) $(LUA_CFLAGS)
host_taming_LDADD = host/libtaming.la $(LUA_LIBS)
host_libtaming_la_SOURCES += host/ops/embedding.c
host_libtaming_la_SOURCES += host/ops/loss.c
host_libtaming_la_SOURCES += host/ops/quantize.c
host_libtaming_la_SOURCES += host/ops/optim.c
host_libtaming_la_SOURCES += host/module.c host/layers.c
# images and the data pipeline's preprocessing
host_libtaming_la_SOURCES += host/image.c host/imgproc.c host/text.c
taming_HEADERS += host/include/taming/imgproc.h

# small dataset readers (Fashion-MNIST)
host_libtaming_la_SOURCES += host/datasets.c
taming_HEADERS += host/include/taming/datasets.h

# data-parallel training: the world and the tensor side (tt_dist_*) live in
# libtaming; the MPI (and NCCL) collectives in libtaming_mpi.so, which
# host/dist.c loads with dlopen only in processes started by a launcher.
host_libtaming_la_SOURCES += host/dist.c host/dist_module.h host/lua_dist.c
taming_HEADERS += host/include/taming/dist.h
if HAVE_MPI
taminglib_LTLIBRARIES += host/libtaming_mpi.la
host_libtaming_mpi_la_SOURCES = host/dist_mpi.c host/dist_module.h
host_libtaming_mpi_la_CPPFLAGS = $(AM_CPPFLAGS) $(MPI_CFLAGS)
host_libtaming_mpi_la_LDFLAGS = -module -avoid-version -shared -no-undefined
host_libtaming_mpi_la_LIBADD = host/libtaming.la $(MPI_LIBS)
if HAVE_NCCL
host_libtaming_mpi_la_CPPFLAGS += -DHAVE_NCCL $(CUDA_CPPFLAGS)
host_libtaming_mpi_la_LDFLAGS += $(CUDA_LDFLAGS)
host_libtaming_mpi_la_LIBADD += -lnccl -lcudart
endif
endif
# training: the threaded data loader, TensorBoard event files, their Lua bindings
host_libtaming_la_SOURCES += host/dataloader.c host/tensorboard.c host/lua_train.c
taming_HEADERS += host/include/taming/dataloader.h host/include/taming/tensorboard.h
# conv family
host_libtaming_la_SOURCES += host/ops/conv.c
# resample family
host_libtaming_la_SOURCES += host/ops/resample.c
# compare and sort families (sampler building blocks)
host_libtaming_la_SOURCES += host/ops/compare.c host/ops/sort.c
