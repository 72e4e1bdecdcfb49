# kernels/cpu/ — the CPU backend, one file per op family (linked into libtaming).
host_libtaming_la_SOURCES += \
	kernels/collapse.h kernels/cpu/cpu.h kernels/cpu/cpu_backend.c \
	kernels/cpu/copy.c kernels/cpu/elementwise.c kernels/cpu/reduce.c \
	kernels/cpu/gemm.c kernels/cpu/random.c
host_libtaming_la_SOURCES += kernels/cpu/embedding.c
host_libtaming_la_SOURCES += kernels/cpu/loss.c
host_libtaming_la_SOURCES += kernels/cpu/quantize.c
host_libtaming_la_SOURCES += kernels/cpu/optim.c
host_libtaming_la_SOURCES += \
	kernels/cpu/norm.c kernels/cpu/softmax.c kernels/cpu/softmax_row.h kernels/cpu/attention.c
# conv family
host_libtaming_la_SOURCES += kernels/cpu/conv.c
# resample family
host_libtaming_la_SOURCES += kernels/cpu/resample.c
# compare and sort families (sampler building blocks)
host_libtaming_la_SOURCES += kernels/cpu/compare.c kernels/cpu/sort.c
# low-precision linear family (bf16 / int8 weights)
host_libtaming_la_SOURCES += kernels/cpu/qlinear.c
# bf16 convolutions through oneDNN (compiled either way; registers nothing without it)
host_libtaming_la_SOURCES += kernels/cpu/conv_dnnl.c
