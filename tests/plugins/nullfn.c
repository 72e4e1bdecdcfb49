/* nullfn.c — a plugin that lists a method without a function: refused at load
 * rather than crashing at the first call. */
#include "taming/plugin.h"

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static const tt_method m[] = {{"forward", NULL, "x -> y"}, {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "test", .name = "nullfn", .version = "1.0.0", .create = c, .destroy = d, .methods = m);
