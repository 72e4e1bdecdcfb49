/* cond/dummy.c — DummyCondStage: the dataset already provides the condition as a
 * token list (scene synthesis). encode(c [B, L]) -> (c, nil, c). */
#include "config.h"
#include <stdlib.h>
#include "cond.h"

typedef struct { tt_paramset ps; } dummy;

static tt_status d_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"conditional_key", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  dummy *p = calloc(1, sizeof *p);
  if (!p) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&p->ps);
  *self = p;
  return TT_OK;
}
static void d_destroy(void *self) { dummy *p = self; tt_paramset_free(&p->ps); free(p); }
static tt_paramset *d_params(void *self) { return &((dummy *)self)->ps; }

static tt_status d_encode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  tt_tensor *c;
  TT_TRY(tt_args_check("encode", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "tokens", &c));
  if (c->dtype != TT_I64) return tt_error(TT_ERR_INVALID, "tokens must be i64, found %s", tt_dtype_name(c->dtype));
  return tt_cond_return(c, c, rets, nrets);
}

static const tt_method d_methods[] = {{"encode", d_encode, "tokens [B, L] -> tokens, nil, tokens"},
                                      {NULL, NULL, NULL}};
TT_PLUGIN_DEFINE(.kind = "cond", .name = "dummy", .version = "1.0.0", .summary = "DummyCondStage (token lists)",
                 .create = d_create, .destroy = d_destroy, .params = d_params, .methods = d_methods);
