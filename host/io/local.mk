# host/io/ — file formats: checkpoints, JSON, .npy in libtaming; images, YAML, .npz, events in libtaming_data.
host_libtaming_la_SOURCES += \
	host/io/io_internal.h host/io/atomic.c host/io/zip.c host/io/pickle.c host/io/json.c host/io/npy.c \
	host/io/ckpt.c host/io/ckpt_torch.c host/io/ckpt_torch_legacy.c host/io/ckpt_safetensors.c host/io/ckpt_quantize.c
host_libtaming_data_la_SOURCES += \
	host/io/image.c host/io/yaml_config.c host/io/npz.c host/io/tensorboard.c
