/* quantizer/vq.c — VectorQuantizer2, the quantizer of every official VQModel
 * (REFERENCE §2.7.1): nearest codebook entry by the expanded fp32 distance,
 * the legacy/non-legacy commitment loss, the straight-through estimator,
 * index remapping (remap + unknown_index) and sane_index_shape.
 * Parameters relative to `quantize.`: embedding.weight [n_e, e_dim], used [U]. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "taming/plugin.h"
#include "taming/scope.h"
#include "taming/io.h"

typedef struct {
  int64_t n_e, e_dim;
  double beta;
  bool legacy, sane_index_shape;
  tt_paramset ps;
  tt_param *embedding, *used;
  int64_t re_embed;       /* vocabulary seen by a second stage (n_e, or U / U+1 with remap) */
  int64_t unknown_index;  /* -1 = random */
  tt_rng rng;
} vq;

static void vq_destroy(void *self) {
  vq *q = self;
  if (!q) return;
  tt_paramset_free(&q->ps);
  free(q);
}

static tt_status vq_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"n_e", "n_embed", "e_dim", "embed_dim", "beta", "legacy", "sane_index_shape",
                                      "remap", "unknown_index", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  vq *q = calloc(1, sizeof *q);
  if (!q) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&q->ps);
  tt_status s;
  const char *remap = NULL, *unknown = "random";
  const tt_value *ne = tt_value_get(cfg, "n_e") ? tt_value_get(cfg, "n_e") : tt_value_get(cfg, "n_embed");
  const tt_value *ed = tt_value_get(cfg, "e_dim") ? tt_value_get(cfg, "e_dim") : tt_value_get(cfg, "embed_dim");
  if (!ne || !ed) {
    s = tt_error(TT_ERR_NOT_FOUND, "missing key '%s'", ne ? "e_dim (embed_dim)" : "n_e (n_embed)");
    goto fail;
  }
  if ((s = tt_value_as_int(ne, "n_e", &q->n_e)) || (s = tt_value_as_int(ed, "e_dim", &q->e_dim)) ||
      (s = tt_cfg_num_opt(cfg, "beta", 0.25, &q->beta)) || (s = tt_cfg_bool_opt(cfg, "legacy", true, &q->legacy)) ||
      (s = tt_cfg_bool_opt(cfg, "sane_index_shape", false, &q->sane_index_shape)) ||
      (s = tt_cfg_str_opt(cfg, "remap", NULL, &remap)))
    goto fail;
  if (q->n_e <= 0 || q->e_dim <= 0) {
    s = tt_error(TT_ERR_INVALID, "n_e and e_dim must be positive (got %lld, %lld)", (long long)q->n_e, (long long)q->e_dim);
    goto fail;
  }
  double bound = 1.0 / (double)q->n_e;
  q->embedding = tt_param_declare(&q->ps, TT_F32, TT_DIMS(q->n_e, q->e_dim), TT_PARAM_TRAINABLE,
                                  tt_init_uniform(-bound, bound), "embedding.weight");
  if (!q->embedding) { s = tt_last_status(); goto fail; }
  q->re_embed = q->n_e;
  q->unknown_index = -1;
  if (remap) {
    tt_tensor *used = NULL;
    if ((s = tt_npy_load(remap, &used)) != TT_OK) goto fail;
    tt_scope_begin();
    tt_tensor *u64 = tt_cast(tt_scope_own(used), TT_I64);   // [U]
    if (!u64 || u64->ndim != 1) s = tt_error(TT_ERR_INVALID, "remap %s: expected a 1-D integer array", remap);
    if (s == TT_OK)
      q->used = tt_param_declare(&q->ps, TT_I64, 1, u64->shape, TT_PARAM_BUFFER, tt_init_zeros(), "used");
    if (s == TT_OK) s = q->used ? tt_param_bind(q->used, u64, remap) : tt_last_status();
    tt_scope_end();
    if (s != TT_OK) goto fail;
    int64_t U = q->used->shape[0];
    q->re_embed = U;
    const tt_value *uk = tt_value_get(cfg, "unknown_index");
    if (uk && uk->type == TT_V_STR) unknown = uk->u.s;
    else if (uk && uk->type == TT_V_INT) { unknown = NULL; q->unknown_index = uk->u.i; }
    if (unknown && !strcmp(unknown, "extra")) { q->unknown_index = U; q->re_embed = U + 1; }
    else if (unknown && strcmp(unknown, "random") != 0) {
      s = tt_error(TT_ERR_INVALID, "unknown_index must be 'random', 'extra' or an integer, found '%s'", unknown);
      goto fail;
    }
  }
  q->rng = tt_rng_make(0x7671);
  *self = q;
  return TT_OK;
fail:
  vq_destroy(q);
  return s;
}

static tt_paramset *vq_params(void *self) { return &((vq *)self)->ps; }

/* indices into `used` (per the official remap_to_used); CPU-side, the arrays are small
 * (in the caller's scope) */
static tt_tensor *remap_to_used(vq *q, tt_tensor *idx) {
  if (!idx) return NULL;
  tt_tensor *ic = tt_to_device(idx, TT_CPU), *uc = tt_to_device(q->used->t, TT_CPU);
  tt_tensor *out = (ic && uc) ? tt_tensor_new(TT_I64, idx->ndim, idx->shape, TT_CPU) : NULL;
  if (!out) return NULL;
  int64_t n = tt_tensor_numel(ic), U = uc->shape[0];
  const int64_t *in = tt_i64(ic), *used = tt_i64(uc);
  int64_t *o = tt_i64(out);
  for (int64_t i = 0; i < n; i++) {
    int64_t k = 0;
    while (k < U && used[k] != in[i]) k++;
    if (k < U) o[i] = k;
    else o[i] = q->unknown_index >= 0 ? q->unknown_index : (int64_t)(tt_rng_uniform(&q->rng) * (double)q->re_embed);
  }
  return tt_to_device(out, idx->device);
}

/* the inverse of remap_to_used (in the caller's scope) */
static tt_tensor *unmap_to_all(vq *q, tt_tensor *idx) {
  if (!idx) return NULL;
  tt_tensor *ic = tt_to_device(idx, TT_CPU), *uc = tt_to_device(q->used->t, TT_CPU);
  tt_tensor *out = (ic && uc) ? tt_tensor_new(TT_I64, idx->ndim, idx->shape, TT_CPU) : NULL;
  if (!out) return NULL;
  int64_t n = tt_tensor_numel(ic), U = uc->shape[0];
  const int64_t *in = tt_i64(ic), *used = tt_i64(uc);
  int64_t *o = tt_i64(out);
  for (int64_t i = 0; i < n; i++) {
    int64_t k = in[i];
    if (q->re_embed > U && k >= U) k = 0;
    if (k < 0 || k >= U) {
      tt_error(TT_ERR_INVALID, "index %lld outside the remapped vocabulary of %lld", (long long)in[i], (long long)U);
      return NULL;
    }
    o[i] = used[k];
  }
  return tt_to_device(out, idx->device);
}

static tt_status vq_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  vq *q = self;
  tt_tensor *z;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "z", &z));
  if (z->ndim != 4 || z->shape[1] != q->e_dim) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "expected z [B, %lld, h, w], found %s", (long long)q->e_dim,
                    tt_tensor_shape_str(z, b, sizeof b));
  }
  int64_t B = z->shape[0], h = z->shape[2], w = z->shape[3], N = B * h * w;
  tt_tensor *E = q->embedding->t;
  tt_scope_begin();
  tt_tensor *zp = tt_permute(z, (int[]){0, 2, 3, 1});                 // [B, h, w, D]
  tt_tensor *zf = tt_reshape(zp, TT_DIMS(N, q->e_dim));                // [N, D]
  tt_tensor *idx = tt_codebook_argmin(zf, E, NULL);                    // [N]
  tt_tensor *zq = tt_embedding(E, idx);                                // [N, D]
  tt_tensor *t1 = tt_mse_loss(tt_detach(zq), zf);                      // pulls the encoder
  tt_tensor *t2 = tt_mse_loss(zq, tt_detach(zf));                      // pulls the codebook
  tt_tensor *loss = q->legacy ? tt_add(t1, tt_mul_scalar(t2, q->beta)) : tt_add(tt_mul_scalar(t1, q->beta), t2);
  /* straight-through: z + sg[zq - z], computed in that order as the reference does */
  tt_tensor *st = tt_add(zf, tt_detach(tt_sub(zq, zf)));              // [N, D]
  st = tt_reshape(st, TT_DIMS(B, h, w, q->e_dim));
  tt_tensor *out = tt_contiguous(tt_permute(st, (int[]){0, 3, 1, 2})); // [B, D, h, w]
  tt_tensor *ind = q->used ? remap_to_used(q, idx) : idx;
  ind = q->sane_index_shape ? tt_reshape(ind, TT_DIMS(B, h, w)) : q->used ? tt_reshape(ind, TT_DIMS(N, 1)) : ind;
  return tt_scope_return(rets, nrets, out, loss, ind);
}

/* get_codebook_entry(indices [, {B, h, w, D}]) -> [B, D, h, w] (or rows [N, D] without a shape) */
static tt_status vq_codebook_entry(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  vq *q = self;
  tt_tensor *idx;
  TT_TRY(tt_args_check("get_codebook_entry", nargs, 1, 2));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "indices", &idx));
  if (idx->dtype != TT_I64) return tt_error(TT_ERR_INVALID, "indices must be i64, found %s", tt_dtype_name(idx->dtype));
  int64_t shape[4] = {0};
  bool has_shape = nargs > 1 && args[1].type != TT_V_NIL;
  if (has_shape) {
    if (args[1].type != TT_V_LIST || tt_value_len(&args[1]) != 4)
      return tt_error(TT_ERR_INVALID, "shape must be a list {B, h, w, D}");
    for (int i = 0; i < 4; i++) TT_TRY(tt_value_as_int(tt_value_at(&args[1], i), "shape", &shape[i]));
    if (shape[3] != q->e_dim)
      return tt_error(TT_ERR_INVALID, "shape[3] = %lld, the codebook has e_dim %lld", (long long)shape[3], (long long)q->e_dim);
    if (shape[0] * shape[1] * shape[2] != tt_tensor_numel(idx))
      return tt_error(TT_ERR_INVALID, "shape {%lld, %lld, %lld, D} does not match %lld indices", (long long)shape[0],
                      (long long)shape[1], (long long)shape[2], (long long)tt_tensor_numel(idx));
  }
  tt_scope_begin();
  tt_tensor *flat = tt_reshape(idx, TT_DIMS(-1));
  if (q->used) flat = unmap_to_all(q, flat);
  tt_tensor *rows = tt_embedding(q->embedding->t, flat);   // [N, D]
  if (has_shape) rows = tt_contiguous(tt_permute(tt_reshape(rows, 4, shape), (int[]){0, 3, 1, 2}));   // [B, D, h, w]
  return tt_scope_return(rets, nrets, rows);
}

static tt_status vq_info(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  vq *q = self;
  rets[0] = tt_value_map();
  tt_value v = tt_value_int(q->n_e);
  TT_TRY(tt_value_set(&rets[0], "n_e", &v));
  v = tt_value_int(q->e_dim);
  TT_TRY(tt_value_set(&rets[0], "e_dim", &v));
  v = tt_value_int(q->re_embed);
  TT_TRY(tt_value_set(&rets[0], "re_embed", &v));
  v = tt_value_num(q->beta);
  TT_TRY(tt_value_set(&rets[0], "beta", &v));
  *nrets = 1;
  return TT_OK;
}

static const tt_method vq_methods[] = {
    {"forward", vq_forward, "z [B, D, h, w] -> zq [B, D, h, w], loss, indices"},
    {"get_codebook_entry", vq_codebook_entry, "indices [, {B, h, w, D}] -> zq [B, D, h, w]"},
    {"info", vq_info, "-> {n_e, e_dim, re_embed, beta}"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "quantizer", .name = "vq", .version = "1.0.0",
                 .summary = "VectorQuantizer2 (legacy beta, remap, sane_index_shape)", .create = vq_create,
                 .destroy = vq_destroy, .params = vq_params, .methods = vq_methods);
