/* mismatch.c — installed as test_mismatch.so but its descriptor says test/other:
 * the file name and the descriptor must agree. */
#include "taming/plugin.h"

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static tt_paramset *p(void *self) { return NULL; }
static const tt_method m[] = {{NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "test", .name = "other", .version = "1.0.0", .create = c, .destroy = d, .params = p,
                 .methods = m);
