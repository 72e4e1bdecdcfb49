/* nocreate.c — a plugin without its required create callback: must be refused. */
#include "taming/plugin.h"

static void d(void *self) {}
static tt_paramset *p(void *self) { return NULL; }
static const tt_method m[] = {{NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "test", .name = "nocreate", .version = "1.0.0", .create = NULL, .destroy = d,
                 .params = p, .methods = m);
