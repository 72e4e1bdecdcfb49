/* cond/labelator.c — Labelator: class-conditional models condition on one token,
 * the class index. encode(labels [B]) -> (c, nil, c) with c i64 [B, 1]. */
#include "config.h"
#include <stdlib.h>
#include "cond.h"
#include "taming/scope.h"

typedef struct { int64_t n_classes; tt_paramset ps; } labelator;

static tt_status l_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"n_classes", "quantize_interface", "class_names", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  labelator *p = calloc(1, sizeof *p);
  if (!p) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&p->ps);
  tt_status s = tt_cfg_int(cfg, "n_classes", &p->n_classes);
  if (s == TT_OK && p->n_classes <= 0) s = tt_error(TT_ERR_INVALID, "n_classes must be positive");
  if (s != TT_OK) { free(p); return s; }
  *self = p;
  return TT_OK;
}
static void l_destroy(void *self) { labelator *p = self; tt_paramset_free(&p->ps); free(p); }
static tt_paramset *l_params(void *self) { return &((labelator *)self)->ps; }

static tt_status l_encode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  labelator *p = self;
  tt_tensor *c;
  TT_TRY(tt_args_check("encode", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "labels", &c));
  int64_t B = c->ndim ? c->shape[0] : 1;
  if (tt_tensor_numel(c) != B) return tt_error(TT_ERR_INVALID, "labels must be [B] or [B, 1]");
  tt_scope_begin();
  tt_tensor *r = tt_reshape(tt_cast(c, TT_I64), TT_DIMS(B, 1));   // [B, 1]
  tt_status s = r ? TT_OK : tt_last_status();
  for (int64_t b = 0; s == TT_OK && b < B; b++) {
    int64_t v = (int64_t)tt_tensor_get(r, b);
    if (v < 0 || v >= p->n_classes)
      s = tt_error(TT_ERR_INVALID, "class id %lld out of range: the model has %lld classes (0..%lld)", (long long)v,
                   (long long)p->n_classes, (long long)p->n_classes - 1);
  }
  if (s == TT_OK) s = tt_cond_return(r, r, rets, nrets);
  tt_scope_end();
  return s;
}

static const tt_method l_methods[] = {{"encode", l_encode, "labels [B] -> c, nil, c (i64 [B, 1])"},
                                      {NULL, NULL, NULL}};
TT_PLUGIN_DEFINE(.kind = "cond", .name = "labelator", .version = "1.0.0", .summary = "Labelator (class label)",
                 .create = l_create, .destroy = l_destroy, .params = l_params, .methods = l_methods);
