# host/core/ — libtaming's core: status, arenas, tensors, backends, autograd, profiling, values, dl search.
lib_LTLIBRARIES += host/libtaming.la
host_libtaming_la_SOURCES = \
	host/core/status.c host/core/arena.c host/core/tensor.c host/core/backend.c host/core/backend_impl.h \
	host/core/autograd.c host/core/profile.c host/core/scope.c host/core/value.c host/core/dl.c host/core/dl.h \
	host/core/internal.h
host_libtaming_la_CPPFLAGS = $(AM_CPPFLAGS) $(BLAS_CFLAGS)
host_libtaming_la_LIBADD = $(BLAS_LIBS) $(DNNL_LIBS) -lm
host_libtaming_la_LDFLAGS = -version-info 0:0:0 -no-undefined $(OPENMP_CFLAGS)
