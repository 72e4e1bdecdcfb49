# host/ — the runtime, one folder per part (docs/architecture.md has the map);
# here: the installed SDK headers and the pkg-config files. The libraries:
#   libtaming       what plugins link: tensors, backends, ops, autograd,
#                   parameter sets, plugin loading, checkpoint IO (core/,
#                   plugin/, ops/, io/, dist/, kernels/cpu/)
#   libtaming_data  images, YAML, .npz, datasets, preprocessing, metrics,
#                   TensorBoard: png, jpeg, yaml and zlib (data/, io/)
#   libtaming_lua   the C half of the `taming` Lua module: Lua (lua/)
# and the `taming` command (cli/), which links all three.
taming_HEADERS = \
	host/include/taming/taming.h host/include/taming/export.h host/include/taming/status.h \
	host/include/taming/checked.h host/include/taming/dtype.h host/include/taming/tensor.h \
	host/include/taming/arena.h host/include/taming/backend.h host/include/taming/autograd.h \
	host/include/taming/profile.h host/include/taming/ops.h host/include/taming/value.h \
	host/include/taming/module.h host/include/taming/plugin.h host/include/taming/kinds.h \
	host/include/taming/sampling.h host/include/taming/io.h host/include/taming/dist.h \
	host/include/taming/imgproc.h host/include/taming/datasets.h host/include/taming/dataloader.h \
	host/include/taming/tensorboard.h host/include/taming/metrics.h host/include/taming/scope.h
nodist_taming_HEADERS = host/include/taming/version.h
tamingops_HEADERS += \
	host/include/taming/ops/copy.h host/include/taming/ops/elementwise.h \
	host/include/taming/ops/shape.h host/include/taming/ops/reduce.h \
	host/include/taming/ops/gemm.h host/include/taming/ops/qlinear.h \
	host/include/taming/ops/conv.h host/include/taming/ops/resample.h \
	host/include/taming/ops/norm.h host/include/taming/ops/softmax.h \
	host/include/taming/ops/attention.h host/include/taming/ops/embedding.h \
	host/include/taming/ops/loss.h host/include/taming/ops/quantize.h \
	host/include/taming/ops/optim.h host/include/taming/ops/random.h \
	host/include/taming/ops/compare.h host/include/taming/ops/sort.h host/include/taming/ops/conv_lowp.h \
	host/include/taming/ops/conv_prec.h
EXTRA_DIST += host/taming.pc.in host/taming-data.pc.in host/include/taming/version.h.in
