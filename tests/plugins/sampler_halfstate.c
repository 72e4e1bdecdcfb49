/* sampler_halfstate.c — a sampler with state() but no set_state(): the pair goes
 * together (a checkpoint saves one and a resumed run calls the other), so the
 * loader must refuse it. */
#include "taming/plugin.h"

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static tt_status any(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) { return TT_OK; }
static const tt_method m[] = {{"sample", any, "logits -> tokens"}, {"state", any, "-> seed, counter"},
                              {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "sampler", .name = "halfstate", .version = "1.0.0", .create = c, .destroy = d, .methods = m);
