/* abi10.c — a plugin built against ABI 1.0, before the descriptor carried the
 * struct sizes: a minor version appends fields, so it must still load. */
#include <stddef.h>
#include "taming/plugin.h"

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static tt_paramset *p(void *self) { return NULL; }
static const tt_method m[] = {{NULL, NULL, NULL}};

TT_PLUGIN_EXPORT const tt_plugin_desc tt_plugin_descriptor = {
    .abi_major = TT_PLUGIN_ABI_MAJOR, .abi_minor = 0, .desc_size = offsetof(tt_plugin_desc, struct_sizes),
    .kind = "test", .name = "abi10", .version = "1.0.0", .create = c, .destroy = d, .params = p, .methods = m};
