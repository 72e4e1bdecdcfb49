# host/ — the runtime library libtaming and the `taming` command.
lib_LTLIBRARIES += host/libtaming.la
host_libtaming_la_SOURCES = \
	host/status.c host/arena.c host/tensor.c host/backend.c host/autograd.c \
	host/value.c host/internal.h \
	host/ops/common.c host/ops/common.h \
	host/ops/copy.c host/ops/elementwise.c host/ops/shape.c host/ops/reduce.c \
	host/ops/gemm.c host/ops/random.c
host_libtaming_la_CPPFLAGS = $(AM_CPPFLAGS) $(LUA_CFLAGS) $(PNG_CFLAGS) $(JPEG_CFLAGS) \
	$(YAML_CFLAGS) $(ZLIB_CFLAGS) $(BLAS_CFLAGS)
host_libtaming_la_LIBADD = $(LUA_LIBS) $(PNG_LIBS) $(JPEG_LIBS) $(YAML_LIBS) $(ZLIB_LIBS) $(BLAS_LIBS) -lm
host_libtaming_la_LDFLAGS = -version-info 0:0:0 -no-undefined $(OPENMP_CFLAGS)

taming_HEADERS = \
	host/include/taming/taming.h host/include/taming/export.h host/include/taming/status.h \
	host/include/taming/tensor.h host/include/taming/arena.h host/include/taming/backend.h \
	host/include/taming/autograd.h host/include/taming/ops.h host/include/taming/value.h \
	host/include/taming/module.h host/include/taming/plugin.h host/include/taming/io.h
nodist_taming_HEADERS = host/include/taming/version.h
tamingops_HEADERS += \
	host/include/taming/ops/copy.h host/include/taming/ops/elementwise.h \
	host/include/taming/ops/shape.h host/include/taming/ops/reduce.h \
	host/include/taming/ops/gemm.h host/include/taming/ops/conv.h \
	host/include/taming/ops/resample.h host/include/taming/ops/norm.h \
	host/include/taming/ops/softmax.h host/include/taming/ops/attention.h \
	host/include/taming/ops/embedding.h host/include/taming/ops/loss.h \
	host/include/taming/ops/quantize.h host/include/taming/ops/optim.h \
	host/include/taming/ops/random.h
EXTRA_DIST += host/taming.pc.in host/include/taming/version.h.in
# conv family
host_libtaming_la_SOURCES += host/ops/conv.c
# resample family
host_libtaming_la_SOURCES += host/ops/resample.c
