# plugins/ — one folder per kind, one file per plugin -> KIND_NAME.so (libtool modules).
# The plugins themselves are listed one per line in plugins/plugins.list;
# ./bootstrap writes their automake lines into plugins/list.mk (gen-list.sh).
# Here: the convenience libraries they share.
noinst_LTLIBRARIES += plugins/libblocks.la
plugins_libblocks_la_SOURCES = plugins/common/blocks.c plugins/common/blocks.h

# (sampler plugins need only the SDK: tt_sampler_host_logits is in taming/kinds.h)
noinst_LTLIBRARIES += plugins/libpermuter.la plugins/libcond.la
plugins_libpermuter_la_SOURCES = plugins/permuter/common.c plugins/permuter/orders.c plugins/permuter/orders.h \
	plugins/permuter/permuter.h
plugins_libcond_la_SOURCES = plugins/cond/cond.c plugins/cond/cond.h

include $(top_srcdir)/plugins/list.mk
EXTRA_DIST += plugins/plugins.list plugins/gen-list.sh plugins/list.mk
