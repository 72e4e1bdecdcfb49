/* badabi.c — a plugin built for another ABI major: must be refused. */
#include "taming/plugin.h"

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static tt_paramset *p(void *self) { return NULL; }
static const tt_method m[] = {{NULL, NULL, NULL}};

TT_PLUGIN_EXPORT const tt_plugin_desc tt_plugin_descriptor = {
    .abi_major = TT_PLUGIN_ABI_MAJOR + 98, .abi_minor = 0, .desc_size = sizeof(tt_plugin_desc),
    .kind = "test", .name = "badabi", .version = "1.0.0", .create = c, .destroy = d, .params = p, .methods = m};
