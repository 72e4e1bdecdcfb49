# host/dist/ — data parallelism: tt_dist_* in libtaming, the MPI/NCCL collectives in libtaming_mpi.so.
host_libtaming_la_SOURCES += host/dist/dist.c host/dist/dist_module.h
if HAVE_MPI
taminglib_LTLIBRARIES += host/libtaming_mpi.la
host_libtaming_mpi_la_SOURCES = host/dist/dist_mpi.c host/dist/dist_module.h
host_libtaming_mpi_la_CPPFLAGS = $(AM_CPPFLAGS) $(MPI_CFLAGS)
host_libtaming_mpi_la_LDFLAGS = -module -avoid-version -shared -no-undefined
host_libtaming_mpi_la_LIBADD = host/libtaming.la $(MPI_LIBS)
if HAVE_NCCL
host_libtaming_mpi_la_CPPFLAGS += -DHAVE_NCCL $(CUDA_CPPFLAGS)
host_libtaming_mpi_la_LDFLAGS += $(CUDA_LDFLAGS)
host_libtaming_mpi_la_LIBADD += -lnccl -lcudart
endif
endif
