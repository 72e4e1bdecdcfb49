/* quantizer/ema.c — EMAVectorQuantizer (REFERENCE §2.7.4; broken at the official
 * HEAD, implemented here as intended): nearest code as in VQ2, the codebook is
 * not trained by gradients but by exponential moving averages of assignments.
 * Parameters relative to `quantize.`: embedding.weight [K, D],
 * embedding.cluster_size [K], embedding.embed_avg [K, D] (all buffers). */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "taming/plugin.h"
#include "taming/scope.h"

typedef struct {
  int64_t K, D;
  double beta, decay, eps;
  bool training;
  tt_paramset ps;
  tt_param *weight, *cluster_size, *embed_avg;
} ema;

static void e_destroy(void *self) {
  ema *q = self;
  if (!q) return;
  tt_paramset_free(&q->ps);
  free(q);
}

static tt_status e_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"n_embed", "n_e", "embedding_dim", "embed_dim", "beta", "decay", "eps",
                                      "remap", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  ema *q = calloc(1, sizeof *q);
  if (!q) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&q->ps);
  tt_status s;
  const tt_value *ne = tt_value_get(cfg, "n_embed") ? tt_value_get(cfg, "n_embed") : tt_value_get(cfg, "n_e");
  const tt_value *ed = tt_value_get(cfg, "embedding_dim") ? tt_value_get(cfg, "embedding_dim") : tt_value_get(cfg, "embed_dim");
  if (!ne || !ed) { s = tt_error(TT_ERR_NOT_FOUND, "missing key '%s'", ne ? "embedding_dim" : "n_embed"); goto fail; }
  if ((s = tt_value_as_int(ne, "n_embed", &q->K)) || (s = tt_value_as_int(ed, "embedding_dim", &q->D)) ||
      (s = tt_cfg_num_opt(cfg, "beta", 0.25, &q->beta)) || (s = tt_cfg_num_opt(cfg, "decay", 0.99, &q->decay)) ||
      (s = tt_cfg_num_opt(cfg, "eps", 1e-5, &q->eps)))
    goto fail;
  if (tt_value_get(cfg, "remap") && tt_value_get(cfg, "remap")->type != TT_V_NIL) {
    s = tt_error(TT_ERR_UNSUPPORTED, "EMAVectorQuantizer with remap is not supported");
    goto fail;
  }
  q->weight = tt_param_declare(&q->ps, TT_F32, TT_DIMS(q->K, q->D), TT_PARAM_BUFFER, tt_init_normal(0, 1),
                               "embedding.weight");
  q->cluster_size = tt_param_declare(&q->ps, TT_F32, TT_DIMS(q->K), TT_PARAM_BUFFER, tt_init_zeros(),
                                     "embedding.cluster_size");
  /* the reference starts embed_avg as a copy of weight; done at the first update (see below) */
  q->embed_avg = tt_param_declare(&q->ps, TT_F32, TT_DIMS(q->K, q->D), TT_PARAM_BUFFER, tt_init_zeros(),
                                  "embedding.embed_avg");
  if (!q->weight || !q->cluster_size || !q->embed_avg) { s = tt_last_status(); goto fail; }
  *self = q;
  return TT_OK;
fail:
  e_destroy(q);
  return s;
}

static tt_paramset *e_params(void *self) { return &((ema *)self)->ps; }

static tt_status e_set_training(void *self, bool training) {
  ((ema *)self)->training = training;
  return TT_OK;
}

/* sum of an f32 vector in double, in index order, from one host copy; NAN when the copy fails */
static double host_sum(const tt_tensor *t) {
  tt_scope_begin();
  tt_tensor *h = tt_host_contiguous(t);
  double total = h ? 0 : NAN;
  const float *v = h ? tt_tensor_data(h) : NULL;
  for (int64_t k = 0, n = h ? tt_tensor_numel(h) : 0; k < n; k++) total += v[k];
  tt_scope_end();
  return total;
}

/* cluster_size <- d cs + (1-d) counts; embed_avg <- d ea + (1-d) onehot^T z;
 * weight <- embed_avg / ((cs + eps) / (n + K eps) * n) */
static tt_status ema_update(ema *q, tt_tensor *idx, tt_tensor *zf) {
  tt_tensor *cs = q->cluster_size->t, *ea = q->embed_avg->t, *w = q->weight->t;
  bool prev = tt_grad_set_enabled(false);
  double total = host_sum(cs);
  tt_status s = isnan(total) ? tt_last_status() : TT_OK;
  if (s == TT_OK && total == 0) s = tt_copy_(ea, w);   /* fresh state: embed_avg starts as the codebook */
  tt_scope_begin();
  tt_tensor *oh = s == TT_OK ? tt_one_hot(idx, q->K) : NULL;                  // [N, K]
  tt_tensor *counts = tt_sum_dim(oh, 0, false);                               // [K]
  tt_tensor *sums = tt_matmul(tt_transpose(oh, 0, 1), zf);                    // [K, D]
  tt_tensor *ncs = tt_add(tt_affine(cs, q->decay, 0), tt_mul_scalar(counts, 1 - q->decay));
  tt_tensor *nea = tt_add(tt_mul_scalar(ea, q->decay), tt_mul_scalar(sums, 1 - q->decay));
  if (s == TT_OK) s = nea && ncs ? tt_copy_(cs, ncs) : tt_last_status();
  if (s == TT_OK) s = tt_copy_(ea, nea);
  if (s == TT_OK) {
    double n = host_sum(cs);
    tt_tensor *sm = tt_affine(cs, n / (n + (double)q->K * q->eps), q->eps * n / (n + (double)q->K * q->eps));
    tt_tensor *nw = tt_div(ea, tt_unsqueeze(sm, 1));                          // / [K, 1]
    s = nw ? tt_copy_(w, nw) : tt_last_status();
  }
  tt_scope_end();
  tt_grad_set_enabled(prev);
  return s;
}

static tt_status e_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  ema *q = self;
  tt_tensor *z;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "z", &z));
  if (z->ndim != 4 || z->shape[1] != q->D) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "expected z [B, %lld, h, w], found %s", (long long)q->D, tt_tensor_shape_str(z, b, sizeof b));
  }
  int64_t B = z->shape[0], h = z->shape[2], w = z->shape[3], N = B * h * w;
  tt_scope_begin();
  tt_tensor *zf = tt_reshape(tt_permute(z, (int[]){0, 2, 3, 1}), TT_DIMS(N, q->D));   // [N, D]
  tt_tensor *idx = tt_codebook_argmin(zf, q->weight->t, NULL);                          // [N]
  tt_tensor *zfd = tt_detach(zf);
  if (idx && zfd && q->training && ema_update(q, idx, zfd) != TT_OK) idx = NULL;
  tt_tensor *zq = tt_embedding(q->weight->t, idx);                  // [N, D], no gradient (buffer)
  tt_tensor *loss = tt_mul_scalar(tt_mse_loss(zq, zf), q->beta);
  tt_tensor *st = tt_add(zf, tt_sub(zq, zfd));                      // straight-through
  st = tt_reshape(st, TT_DIMS(B, h, w, q->D));
  tt_tensor *out = tt_contiguous(tt_permute(st, (int[]){0, 3, 1, 2}));   // [B, D, h, w]
  return tt_scope_return(rets, nrets, out, loss, idx);
}

static tt_status e_codebook_entry(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  ema *q = self;
  tt_tensor *idx;
  TT_TRY(tt_args_check("get_codebook_entry", nargs, 2, 2));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "indices", &idx));
  int64_t shape[4];
  if (args[1].type != TT_V_LIST || tt_value_len(&args[1]) != 4)
    return tt_error(TT_ERR_INVALID, "shape must be a list {B, h, w, D}");
  for (int i = 0; i < 4; i++) TT_TRY(tt_value_as_int(tt_value_at(&args[1], i), "shape", &shape[i]));
  tt_scope_begin();
  tt_tensor *rows = tt_embedding(q->weight->t, tt_reshape(idx, TT_DIMS(-1)));               // [N, D]
  tt_tensor *c = tt_contiguous(tt_permute(tt_reshape(rows, 4, shape), (int[]){0, 3, 1, 2}));   // [B, D, h, w]
  return tt_scope_return(rets, nrets, c);
}

static const tt_method e_methods[] = {
    {"forward", e_forward, "z [B, D, h, w] -> zq, loss, indices [N] (training: EMA codebook update)"},
    {"get_codebook_entry", e_codebook_entry, "indices, {B, h, w, D} -> zq [B, D, h, w]"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "quantizer", .name = "ema", .version = "1.0.0", .summary = "EMAVectorQuantizer",
                 .create = e_create, .destroy = e_destroy, .params = e_params, .methods = e_methods,
                 .set_training = e_set_training);
