# kernels/cpu/ — the CPU backend, one file per op family (linked into libtaming).
host_libtaming_la_SOURCES += \
	kernels/collapse.h kernels/cpu/cpu.h kernels/cpu/cpu_backend.c \
	kernels/cpu/copy.c kernels/cpu/elementwise.c kernels/cpu/reduce.c kernels/cpu/gemm.c kernels/cpu/qlinear.c \
	kernels/cpu/conv.c kernels/cpu/resample.c kernels/cpu/norm.c kernels/cpu/softmax.c kernels/cpu/softmax_row.h \
	kernels/cpu/attention.c kernels/cpu/embedding.c kernels/cpu/loss.c kernels/cpu/quantize.c kernels/cpu/optim.c \
	kernels/cpu/random.c kernels/cpu/compare.c kernels/cpu/sort.c kernels/cpu/amx.h
# bf16 GEMMs of mixed-precision training (AMX / AVX512-BF16); bf16 convolutions through oneDNN
host_libtaming_la_SOURCES += kernels/cpu/gemm_bf16.c
host_libtaming_la_SOURCES += kernels/cpu/conv_dnnl.c kernels/cpu/conv_dnnl_train.c kernels/cpu/nhwc.h
