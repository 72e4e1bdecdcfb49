/* bigdesc.c — a plugin whose descriptor is larger than the host's (built against
 * a newer minor that appended fields): must be refused. */
#include "taming/plugin.h"

typedef struct {
  tt_plugin_desc base;
  void *newer_fields[4];
} newer_desc;

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static tt_paramset *p(void *self) { return NULL; }
static const tt_method m[] = {{NULL, NULL, NULL}};

TT_PLUGIN_EXPORT const newer_desc tt_plugin_descriptor = {
    .base = {.abi_major = TT_PLUGIN_ABI_MAJOR, .abi_minor = TT_PLUGIN_ABI_MINOR + 1,
             .desc_size = sizeof(newer_desc), .kind = "test", .name = "bigdesc", .version = "1.0.0",
             .create = c, .destroy = d, .params = p, .methods = m}};
