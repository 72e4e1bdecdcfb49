# host/ops/ — op wrappers: shape checks, kernel dispatch, autograd; one file per family (libtaming).
host_libtaming_la_SOURCES += \
	host/ops/common.c host/ops/common.h \
	host/ops/copy.c host/ops/elementwise.c host/ops/shape.c host/ops/reduce.c host/ops/gemm.c host/ops/qlinear.c \
	host/ops/conv.c host/ops/resample.c host/ops/norm.c host/ops/softmax.c host/ops/attention.c \
	host/ops/embedding.c host/ops/loss.c host/ops/quantize.c host/ops/optim.c host/ops/random.c \
	host/ops/compare.c host/ops/sort.c host/ops/conv_lowp.c
