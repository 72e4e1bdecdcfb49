/* sampler_nosample.c — a sampler without the `sample` its kind requires: the
 * loader must refuse it, naming the file and the missing method. */
#include "taming/plugin.h"

static tt_status c(const tt_value *cfg, void **self) { return TT_OK; }
static void d(void *self) {}
static tt_status probs(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) { return TT_OK; }
static const tt_method m[] = {{"probs", probs, "logits -> p"}, {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "sampler", .name = "nosample", .version = "1.0.0", .create = c, .destroy = d, .methods = m);
