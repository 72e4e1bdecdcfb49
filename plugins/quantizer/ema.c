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
  tt_tensor *h = tt_host_contiguous(t);
  if (!h) return NAN;
  const float *v = tt_tensor_data(h);
  double total = 0;
  for (int64_t k = 0, n = tt_tensor_numel(h); k < n; k++) total += v[k];
  tt_tensor_unref(h);
  return total;
}

/* cluster_size <- d cs + (1-d) counts; embed_avg <- d ea + (1-d) onehot^T z;
 * weight <- embed_avg / ((cs + eps) / (n + K eps) * n) */
static tt_status ema_update(ema *q, tt_tensor *idx, tt_tensor *zf) {
  tt_status s = TT_OK;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *cs = q->cluster_size->t, *ea = q->embed_avg->t, *w = q->weight->t;
  double total = host_sum(cs);
  if (isnan(total)) s = tt_last_status();
  else if (total == 0) s = tt_copy_(ea, w);   /* fresh state: embed_avg starts as the codebook */
  tt_tensor *oh = s == TT_OK ? tt_one_hot(idx, q->K) : NULL;                   // [N, K]
  tt_tensor *counts = oh ? tt_sum_dim(oh, 0, false) : NULL;                   // [K]
  tt_tensor *oht = oh ? tt_transpose(oh, 0, 1) : NULL;
  tt_tensor *sums = oht ? tt_matmul(oht, zf) : NULL;                          // [K, D]
  tt_tensor *a = counts ? tt_affine(cs, q->decay, 0) : NULL, *b = a ? tt_mul_scalar(counts, 1 - q->decay) : NULL;
  tt_tensor *ncs = b ? tt_add(a, b) : NULL;
  tt_tensor *c = sums ? tt_mul_scalar(ea, q->decay) : NULL, *d = c ? tt_mul_scalar(sums, 1 - q->decay) : NULL;
  tt_tensor *nea = d ? tt_add(c, d) : NULL;
  if (!nea || !ncs) s = tt_last_status();
  if (s == TT_OK) s = tt_copy_(cs, ncs);
  if (s == TT_OK) s = tt_copy_(ea, nea);
  if (s == TT_OK) {
    double n = host_sum(cs);
    tt_tensor *sm = tt_affine(cs, n / (n + (double)q->K * q->eps), q->eps * n / (n + (double)q->K * q->eps));
    tt_tensor *sm2 = sm ? tt_unsqueeze(sm, 1) : NULL;                          // [K, 1]
    tt_tensor *nw = sm2 ? tt_div(ea, sm2) : NULL;
    s = nw ? tt_copy_(w, nw) : tt_last_status();
    tt_tensor_unref(sm); tt_tensor_unref(sm2); tt_tensor_unref(nw);
  }
  tt_tensor *all[] = {oh, counts, oht, sums, a, b, ncs, c, d, nea};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
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
  tt_status s = TT_OK;
  tt_tensor *zp = NULL, *zf = NULL, *zfd = NULL, *idx = NULL, *zq = NULL, *t1 = NULL, *loss = NULL, *diff = NULL,
            *st = NULL, *st4 = NULL, *stp = NULL, *out = NULL;
#define NN(x) if (!(x)) { s = tt_last_status(); goto done; }
  NN(zp = tt_permute(z, (int[]){0, 2, 3, 1}));
  NN(zf = tt_reshape(zp, TT_DIMS(N, q->D)));                       // [N, D]
  NN(idx = tt_codebook_argmin(zf, q->weight->t, NULL));
  NN(zfd = tt_detach(zf));
  if (q->training && (s = ema_update(q, idx, zfd)) != TT_OK) goto done;
  NN(zq = tt_embedding(q->weight->t, idx));                        // [N, D], no gradient (buffer)
  NN(t1 = tt_mse_loss(zq, zf));
  NN(loss = tt_mul_scalar(t1, q->beta));
  NN(diff = tt_sub(zq, zfd));
  NN(st = tt_add(zf, diff));
  NN(st4 = tt_reshape(st, TT_DIMS(B, h, w, q->D)));
  NN(stp = tt_permute(st4, (int[]){0, 3, 1, 2}));
  NN(out = tt_contiguous(stp));
  rets[0] = tt_value_tensor(out);
  rets[1] = tt_value_tensor(loss);
  rets[2] = tt_value_tensor(idx);
  *nrets = 3;
done:;
#undef NN
  tt_tensor *all[] = {zp, zf, zfd, idx, zq, t1, loss, diff, st, st4, stp, out};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
  return s;
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
  tt_tensor *flat = tt_reshape(idx, TT_DIMS(-1));
  tt_tensor *rows = flat ? tt_embedding(q->weight->t, flat) : NULL;
  tt_tensor *r4 = rows ? tt_reshape(rows, 4, shape) : NULL;
  tt_tensor *p = r4 ? tt_permute(r4, (int[]){0, 3, 1, 2}) : NULL;
  tt_tensor *c = p ? tt_contiguous(p) : NULL;
  tt_tensor_unref(flat); tt_tensor_unref(rows); tt_tensor_unref(r4); tt_tensor_unref(p);
  if (!c) return tt_last_status();
  rets[0] = tt_value_tensor_steal(c);
  *nrets = 1;
  return TT_OK;
}

static const tt_method e_methods[] = {
    {"forward", e_forward, "z [B, D, h, w] -> zq, loss, indices [N] (training: EMA codebook update)"},
    {"get_codebook_entry", e_codebook_entry, "indices, {B, h, w, D} -> zq [B, D, h, w]"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "quantizer", .name = "ema", .version = "1.0.0", .summary = "EMAVectorQuantizer",
                 .create = e_create, .destroy = e_destroy, .params = e_params, .methods = e_methods,
                 .set_training = e_set_training);
