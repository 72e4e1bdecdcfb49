/* common.c — the machinery shared by the permuter plugins (see permuter.h). */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "orders.h"
#include "taming/scope.h"

typedef struct {
  int64_t H, W, L;
  int64_t *fwd, *bwd;
  tt_paramset ps;
  tt_param *pf, *pb;
} permuter;

void tt_permuter_destroy(void *self) {
  permuter *p = self;
  if (!p) return;
  free(p->fwd);
  free(p->bwd);
  tt_paramset_free(&p->ps);
  free(p);
}

tt_paramset *tt_permuter_params(void *self) { return &((permuter *)self)->ps; }

static tt_status check_perm(const int64_t *fwd, int64_t L, const char *what) {
  unsigned char *seen = calloc((size_t)L, 1);
  if (!seen) return tt_error(TT_ERR_NOMEM, "out of memory");
  for (int64_t k = 0; k < L; k++) {
    if (fwd[k] < 0 || fwd[k] >= L || seen[fwd[k]]) {
      free(seen);
      return tt_error(TT_ERR_INVALID, "%s is not a permutation of 0..%lld (entry %lld = %lld)", what, (long long)L - 1,
                      (long long)k, (long long)fwd[k]);
    }
    seen[fwd[k]] = 1;
  }
  free(seen);
  return TT_OK;
}

tt_status tt_permuter_create(const tt_value *cfg, void **self, tt_order_fn order, bool buffers) {
  /* the official permuters take H and W; the random one also its seed */
  static const char *const known[] = {"H", "W", NULL}, *const known_random[] = {"H", "W", "seed", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, order == tt_order_random ? known_random : known));
  permuter *p = calloc(1, sizeof *p);
  if (!p) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&p->ps);
  tt_status s;
  if ((s = tt_cfg_int(cfg, "H", &p->H)) || (s = tt_cfg_int(cfg, "W", &p->W))) goto fail;
  if (p->H <= 0 || p->W <= 0) { s = tt_error(TT_ERR_INVALID, "H and W must be positive"); goto fail; }
  p->L = p->H * p->W;
  p->fwd = malloc(sizeof(int64_t) * (size_t)p->L);
  p->bwd = malloc(sizeof(int64_t) * (size_t)p->L);
  if (!p->fwd || !p->bwd) { s = tt_error(TT_ERR_NOMEM, "out of memory"); goto fail; }
  if ((s = order(p->H, p->W, cfg, p->fwd)) != TT_OK) goto fail;
  if ((s = check_perm(p->fwd, p->L, "the order")) != TT_OK) goto fail;
  for (int64_t k = 0; k < p->L; k++) p->bwd[p->fwd[k]] = k;
  if (buffers) {
    p->pf = tt_param_declare(&p->ps, TT_I64, 1, &p->L, TT_PARAM_BUFFER, tt_init_zeros(), "forward_shuffle_idx");
    p->pb = tt_param_declare(&p->ps, TT_I64, 1, &p->L, TT_PARAM_BUFFER, tt_init_zeros(), "backward_shuffle_idx");
    if (!p->pf || !p->pb) { s = tt_last_status(); goto fail; }
    tt_scope_begin();
    tt_tensor *tf = tt_tensor_from_data(TT_I64, 1, &p->L, p->fwd, TT_CPU);   // [L]
    tt_tensor *tb = tt_tensor_from_data(TT_I64, 1, &p->L, p->bwd, TT_CPU);
    s = (tf && tb) ? tt_param_bind(p->pf, tf, NULL) : tt_last_status();
    if (s == TT_OK) s = tt_param_bind(p->pb, tb, NULL);
    tt_scope_end();
    if (s != TT_OK) goto fail;
  }
  *self = p;
  return TT_OK;
fail:
  tt_permuter_destroy(p);
  return s;
}

/* buffers bound from a checkpoint replace the computed order */
tt_status tt_permuter_ready(void *self) {
  permuter *p = self;
  if (!p->pf) return TT_OK;
  tt_scope_begin();
  tt_tensor *f = tt_to_device(p->pf->t, TT_CPU), *b = tt_to_device(p->pb->t, TT_CPU);
  tt_status s = (f && b) ? TT_OK : tt_last_status();
  if (s == TT_OK) {
    for (int64_t k = 0; k < p->L; k++) p->fwd[k] = (int64_t)tt_tensor_get(f, k);
    s = check_perm(p->fwd, p->L, "forward_shuffle_idx");
  }
  for (int64_t k = 0; s == TT_OK && k < p->L; k++)
    if ((int64_t)tt_tensor_get(b, p->fwd[k]) != k)
      s = tt_error(TT_ERR_INVALID, "backward_shuffle_idx is not the inverse of forward_shuffle_idx (at %lld)", (long long)k);
  if (s == TT_OK)
    for (int64_t k = 0; k < p->L; k++) p->bwd[p->fwd[k]] = k;
  tt_scope_end();
  return s;
}

static tt_status apply(permuter *p, const tt_value *args, int nargs, tt_value *rets, int *nrets, const int64_t *map,
                       const char *what) {
  tt_tensor *x;
  TT_TRY(tt_args_check(what, nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "idx", &x));
  if (x->ndim != 2 || x->shape[1] != p->L || x->dtype != TT_I64) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "%s: expected i64 [B, %lld], found %s %s", what, (long long)p->L,
                    tt_dtype_name(x->dtype), tt_tensor_shape_str(x, b, sizeof b));
  }
  tt_scope_begin();
  tt_tensor *hc = tt_host_contiguous(x);
  tt_tensor *o = hc ? tt_tensor_new(TT_I64, 2, x->shape, TT_CPU) : NULL;   // [B, L]
  if (o) {
    for (int64_t b = 0; b < x->shape[0]; b++)
      for (int64_t k = 0; k < p->L; k++) tt_i64(o)[b * p->L + k] = tt_i64(hc)[b * p->L + map[k]];
  }
  return tt_scope_return(rets, nrets, tt_to_device(o, x->device));
}

static tt_status m_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  permuter *p = self;
  return apply(p, args, nargs, rets, nrets, p->fwd, "forward");
}

static tt_status m_reverse(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  permuter *p = self;
  return apply(p, args, nargs, rets, nrets, p->bwd, "reverse");
}

static tt_status m_indices(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  permuter *p = self;
  tt_scope_begin();
  tt_tensor *f = tt_tensor_from_data(TT_I64, 1, &p->L, p->fwd, TT_CPU);   // [L]
  tt_tensor *b = tt_tensor_from_data(TT_I64, 1, &p->L, p->bwd, TT_CPU);
  return tt_scope_return(rets, nrets, f, b);
}

const tt_method tt_permuter_methods[] = {
    {"forward", m_forward, "idx [B, H*W] raster -> sequence order"},
    {"reverse", m_reverse, "idx [B, H*W] sequence -> raster order"},
    {"indices", m_indices, "-> fwd, bwd"},
    {NULL, NULL, NULL}};
