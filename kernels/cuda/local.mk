# kernels/cuda/ — the CUDA backend: one .cu per op family behind the same kernel
# names as the CPU backend, built as its own shared object libtaming_cuda.so
# (installed in $(pkglibdir)) that libtaming dlopens the first time TT_CUDA is
# asked for. Skipped entirely when configure found no nvcc/cuBLAS. cuDNN is not
# linked: dnn.cu loads it at run time.
#
# nvcc does not speak libtool's PIC flags: kernels/cuda/nvcc-wrap forwards them
# to the host compiler, so libtool drives nvcc like any other compiler.
TT_CUDA_HDR = kernels/cuda/cuda_backend.h kernels/cuda/reduce.cuh kernels/cuda/conv_geom.cuh kernels/collapse.h host/core/backend_impl.h
TT_CUDA_CU = kernels/cuda/backend.cu kernels/cuda/dnn.cu
TT_CUDA_CU += kernels/cuda/copy.cu kernels/cuda/elementwise.cu kernels/cuda/reduce.cu
TT_CUDA_CU += kernels/cuda/gemm.cu kernels/cuda/gemm_bf16.cu kernels/cuda/random.cu
TT_CUDA_CU += kernels/cuda/conv.cu kernels/cuda/conv_bf16.cu
TT_CUDA_CU += kernels/cuda/resample.cu
TT_CUDA_CU += kernels/cuda/norm.cu
TT_CUDA_CU += kernels/cuda/softmax.cu kernels/cuda/attention.cu
TT_CUDA_CU += kernels/cuda/embedding.cu kernels/cuda/loss.cu
TT_CUDA_CU += kernels/cuda/quantize.cu kernels/cuda/optim.cu
# compare and sort families (sampler building blocks)
TT_CUDA_CU += kernels/cuda/compare.cu kernels/cuda/sort.cu
TT_CUDA_CU += kernels/cuda/qlinear.cu
EXTRA_DIST += kernels/cuda/nvcc-wrap $(TT_CUDA_HDR) $(TT_CUDA_CU)

# Exact fp32 by default (no --use_fast_math: the CPU kernels are the oracle).
# Host-compiler options are given as one -Xcompiler=... word: libtool would
# reorder a separate `-Xcompiler OPTION` pair (it is also a libtool flag).
TT_NVCCFLAGS = -std=c++17 -O3 -lineinfo $(CUDA_GENCODE) \
	-Xcompiler=-fvisibility=hidden,-Wall,-Wextra,-Wno-unused-parameter
TT_NVCC_CPPFLAGS = $(DEFAULT_INCLUDES) -I$(top_srcdir)/kernels/cuda $(AM_CPPFLAGS) $(CUDA_CPPFLAGS)
AM_V_NVCC = $(am__v_NVCC_@AM_V@)
am__v_NVCC_ = $(am__v_NVCC_@AM_DEFAULT_V@)
am__v_NVCC_0 = @echo "  NVCC    " $@;
am__v_NVCC_1 =

SUFFIXES = .cu
.cu.lo:
	@$(MKDIR_P) $(@D)
	$(AM_V_NVCC)$(LIBTOOL) $(AM_V_lt) --tag=CC $(AM_LIBTOOLFLAGS) $(LIBTOOLFLAGS) --mode=compile \
	  $(SHELL) $(top_srcdir)/kernels/cuda/nvcc-wrap $(NVCC) $(TT_NVCC_CPPFLAGS) $(TT_NVCCFLAGS) $(NVCCFLAGS) \
	  -c -o $@ $<

if HAVE_CUDA
taminglib_LTLIBRARIES += kernels/cuda/libtaming_cuda.la
kernels_cuda_libtaming_cuda_la_SOURCES = $(TT_CUDA_HDR) $(TT_CUDA_CU)
kernels_cuda_libtaming_cuda_la_LDFLAGS = -module -avoid-version -shared -no-undefined $(CUDA_LDFLAGS)
kernels_cuda_libtaming_cuda_la_LIBADD = host/libtaming.la -lcublas -lcudart
# nvcc objects need the C++ runtime: link with the C++ compiler.
kernels_cuda_libtaming_cuda_la_LINK = $(LIBTOOL) $(AM_V_lt) --tag=CXX $(AM_LIBTOOLFLAGS) $(LIBTOOLFLAGS) \
	--mode=link $(CXX) $(CXXFLAGS) $(kernels_cuda_libtaming_cuda_la_LDFLAGS) $(LDFLAGS) -o $@

# Every family includes the backend header and the SDK headers.
$(TT_CUDA_CU:.cu=.lo): $(TT_CUDA_HDR) \
	$(taming_HEADERS) $(tamingops_HEADERS) host/include/taming/version.h
endif
