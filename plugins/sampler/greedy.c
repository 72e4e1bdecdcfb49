/* sampler/greedy.c — arg-max decoding (lowest index on ties, as the reference's
 * topk(1)). No settings, no weights, no random state. */
#include "config.h"
#include <stdlib.h>
#include "taming/kinds.h"
#include "taming/scope.h"

typedef struct { int unused; } greedy;

static tt_status gr_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  greedy *g = calloc(1, sizeof *g);
  if (!g) return tt_error(TT_ERR_NOMEM, "out of memory");
  *self = g;
  return TT_OK;
}

static void gr_destroy(void *self) { free(self); }

static tt_status gr_sample(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *l;
  TT_TRY(tt_sampler_host_logits(args, nargs, &l));
  int64_t B = l->shape[0], V = l->shape[1];                       // l [B, V] on the host
  tt_scope_begin();
  tt_scope_own(l);
  tt_tensor *out = tt_tensor_new(TT_I64, TT_DIMS(B), TT_CPU);      // [B]
  for (int64_t b = 0; out && b < B; b++) tt_i64(out)[b] = tt_sampler_argmax(tt_f32(l) + b * V, V);
  return tt_scope_return(rets, nrets, out);
}

static tt_status gr_probs(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *l;
  TT_TRY(tt_sampler_host_logits(args, nargs, &l));
  int64_t B = l->shape[0], V = l->shape[1];                       // l [B, V] on the host
  tt_scope_begin();
  tt_scope_own(l);
  tt_tensor *out = tt_zeros(TT_F32, TT_DIMS(B, V), TT_CPU);        // one-hot [B, V]
  for (int64_t b = 0; out && b < B; b++) tt_f32(out)[b * V + tt_sampler_argmax(tt_f32(l) + b * V, V)] = 1.0f;
  return tt_scope_return(rets, nrets, out);
}

static tt_status gr_state(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  rets[0] = tt_value_int(0);
  rets[1] = tt_value_int(0);
  *nrets = 2;
  return TT_OK;
}

static tt_status gr_set_state(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  return TT_OK;
}

static const tt_method gr_methods[] = {
    {"sample", gr_sample, "logits [B, V] | [B, T, V] -> tokens [B]"},
    {"probs", gr_probs, "logits -> one-hot of the arg-max"},
    {"state", gr_state, "-> 0, 0 (no randomness)"},
    {"set_state", gr_set_state, "(ignored)"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "sampler", .name = "greedy", .version = "1.0.0", .summary = "arg-max decoding",
                 .create = gr_create, .destroy = gr_destroy, .methods = gr_methods);
