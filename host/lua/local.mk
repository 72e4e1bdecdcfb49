# host/lua/ — libtaming_lua: the C half of the `taming` Lua module (luaopen_taming_core).
lib_LTLIBRARIES += host/libtaming_lua.la
host_libtaming_lua_la_SOURCES = \
	host/lua/lua_internal.h host/lua/lua_core.c host/lua/lua_tensor.c host/lua/lua_select.c host/lua/lua_ops.c \
	host/lua/lua_plugin.c host/lua/lua_io.c host/lua/lua_sampling.c host/lua/lua_data.c host/lua/lua_dist.c \
	host/lua/lua_train.c host/lua/lua_metrics.c
host_libtaming_lua_la_CPPFLAGS = $(AM_CPPFLAGS) $(LUA_CFLAGS)
host_libtaming_lua_la_LIBADD = host/libtaming_data.la host/libtaming.la $(LUA_LIBS) -lm
host_libtaming_lua_la_LDFLAGS = -version-info 0:0:0 -no-undefined $(OPENMP_CFLAGS)
