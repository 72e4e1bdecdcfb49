/* badsizes.c — a plugin of this ABI built where a public struct had another
 * size (here tt_value 8 bytes larger): its struct fingerprint differs from the
 * host's, so it must be refused even though its ABI numbers match. */
#include "taming/plugin.h"

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static tt_paramset *p(void *self) { return NULL; }
static const tt_method m[] = {{NULL, NULL, NULL}};

TT_PLUGIN_EXPORT const tt_plugin_desc tt_plugin_descriptor = {
    .abi_major = TT_PLUGIN_ABI_MAJOR, .abi_minor = TT_PLUGIN_ABI_MINOR, .desc_size = sizeof(tt_plugin_desc),
    .kind = "test", .name = "badsizes", .version = "1.0.0", .create = c, .destroy = d, .params = p, .methods = m,
    .struct_sizes = TT_PLUGIN_STRUCT_SIZES + ((uint64_t)8 << 20)};
