/* sampler_liar.c — a sampler that breaks its contract on request (config
 * `lie`): f32 tokens, the wrong count, a number, or nothing. The typed call
 * tt_sampler_sample must refuse each, naming the plugin and the method. */
#include "taming/kinds.h"
#include <stdlib.h>
#include <string.h>

typedef struct { char lie[16]; } liar;

static tt_status c(const tt_value *cfg, void **self) {
  static const char *const known[] = {"lie", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  const char *lie;
  TT_TRY(tt_cfg_str_opt(cfg, "lie", "none", &lie));
  liar *l = calloc(1, sizeof *l);
  if (!l) return tt_error(TT_ERR_NOMEM, "out of memory");
  strncpy(l->lie, lie, sizeof l->lie - 1);
  *self = l;
  return TT_OK;
}
static void d(void *self) { free(self); }

static tt_status sample(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  liar *l = self;
  tt_tensor *x;
  TT_TRY(tt_sampler_host_logits(args, nargs, &x));
  int64_t B = x->shape[0], V = x->shape[1];
  tt_status s = TT_OK;
  *nrets = 1;
  if (!strcmp(l->lie, "f32")) {
    rets[0] = tt_value_tensor_steal(tt_zeros(TT_F32, TT_DIMS(B), TT_CPU));
  } else if (!strcmp(l->lie, "count")) {
    rets[0] = tt_value_tensor_steal(tt_zeros(TT_I64, TT_DIMS(B + 1), TT_CPU));
  } else if (!strcmp(l->lie, "number")) {
    rets[0] = tt_value_int(0);
  } else if (!strcmp(l->lie, "nothing")) {
    *nrets = 0;
  } else {
    tt_tensor *t = tt_tensor_new(TT_I64, TT_DIMS(B), TT_CPU);
    if (!t) s = tt_last_status();
    for (int64_t b = 0; t && b < B; b++) tt_i64(t)[b] = tt_sampler_argmax(tt_f32(x) + b * V, V);
    if (t) rets[0] = tt_value_tensor_steal(t);
  }
  tt_tensor_unref(x);
  return s;
}
static const tt_method m[] = {{"sample", sample, "logits [B, V] -> tokens i64 [B] (or a lie)"}, {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "sampler", .name = "liar", .version = "1.0.0", .create = c, .destroy = d, .methods = m);
