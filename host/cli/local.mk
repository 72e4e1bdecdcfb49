# host/cli/ — the `taming` command: pipelines and scripts in a Lua state that has the taming module.
bin_PROGRAMS += host/taming
host_taming_SOURCES = host/cli/main.c
host_taming_CPPFLAGS = $(AM_CPPFLAGS) $(LUA_CFLAGS)
host_taming_LDADD = host/libtaming_lua.la host/libtaming_data.la host/libtaming.la $(LUA_LIBS)
