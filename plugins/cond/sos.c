/* cond/sos.c — SOSProvider: the unconditional "condition", one start-of-sequence
 * token per sample. encode(x) -> (c, nil, c) with c = sos_token, i64 [B, 1]. */
#include "config.h"
#include <stdlib.h>
#include "cond.h"
#include "taming/scope.h"

typedef struct { int64_t sos; tt_paramset ps; } sos;

static tt_status s_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"sos_token", "quantize_interface", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  sos *p = calloc(1, sizeof *p);
  if (!p) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&p->ps);
  tt_status s = tt_cfg_int_opt(cfg, "sos_token", 0, &p->sos);
  if (s != TT_OK) { free(p); return s; }
  *self = p;
  return TT_OK;
}
static void s_destroy(void *self) { sos *p = self; tt_paramset_free(&p->ps); free(p); }
static tt_paramset *s_params(void *self) { return &((sos *)self)->ps; }

/* encode(x | B): x only gives the batch size (a tensor [B, ...] or an integer B) */
static tt_status s_encode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  sos *p = self;
  TT_TRY(tt_args_check("encode", nargs, 1, 1));
  int64_t B;
  tt_device dev = TT_CPU;
  if (args[0].type == TT_V_TENSOR) { B = args[0].u.t->ndim ? args[0].u.t->shape[0] : 1; dev = args[0].u.t->device; }
  else TT_TRY(tt_value_as_int(&args[0], "batch", &B));
  tt_scope_begin();
  tt_tensor *c = tt_full(TT_I64, TT_DIMS(B, 1), (double)p->sos, dev);   // [B, 1]
  tt_status s = c ? tt_cond_return(c, c, rets, nrets) : tt_last_status();
  tt_scope_end();
  return s;
}

static const tt_method s_methods[] = {{"encode", s_encode, "x [B, ...] | B -> c, nil, c (i64 [B, 1] = sos_token)"},
                                      {NULL, NULL, NULL}};
TT_PLUGIN_DEFINE(.kind = "cond", .name = "sos", .version = "1.0.0", .summary = "SOSProvider (unconditional)",
                 .create = s_create, .destroy = s_destroy, .params = s_params, .methods = s_methods);
