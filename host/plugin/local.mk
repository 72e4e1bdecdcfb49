# host/plugin/ — plugin loading and kind contracts, parameter sets and layers, sampling loops (libtaming).
host_libtaming_la_SOURCES += \
	host/plugin/plugin.c host/plugin/kinds.c host/plugin/kind_calls.c \
	host/plugin/module.c host/plugin/layers.c host/plugin/sampling.c
