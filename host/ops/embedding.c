/* ops/embedding.c — table lookup (the transformer's token embedding, the
 * quantizer's codebook rows) with its backward, and one-hot encoding. */
#include "config.h"
#include "common.h"

typedef struct {
  tt_tensor *idx;    /* [N] i64, contiguous */
  int64_t V, E;
} embedding_ctx;

static void embedding_release(tt_node *n) {
  embedding_ctx *c = n->ctx;
  tt_tensor_release(&c->idx);
}

static tt_status embedding_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  embedding_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  tt_tensor *g = tt_contiguous(gy[0]);   // [..., E]
  if (!g) return tt_last_status();
  int64_t N = tt_tensor_numel(c->idx);
  tt_tensor *g2 = tt_tensor_view_of(g, TT_DIMS(N, c->E), NULL, g->offset);   // [N, E]
  tt_tensor *gw = tt_tensor_new(TT_F32, TT_DIMS(c->V, c->E), g->device);   // [V, E]
  tt_embedding_bwd_fn f = TT_KERNEL(g->device, embedding_bwd);
  tt_status s = (!g2 || !gw || !f) ? tt_last_status() : f(c->idx, g2, gw);
  tt_tensor_unref(g2);
  tt_tensor_unref(g);
  if (s != TT_OK) {
    tt_tensor_unref(gw);
    return s;
  }
  gx[0] = gw;
  return TT_OK;
}

static tt_status check_index(const char *op, const tt_tensor *idx) {
  if (!idx) return tt_error(TT_ERR_INVALID, "%s: index tensor is missing", op);
  if (idx->dtype != TT_I64)
    return tt_error(TT_ERR_INVALID, "%s: indices must be i64, found %s", op, tt_dtype_name(idx->dtype));
  if (idx->ndim >= TT_MAX_DIMS) {
    char b[TT_SHAPE_BUF];
    return tt_error(TT_ERR_INVALID, "%s: indices of shape %s leave no room for the output's last dim", op,
                    tt_tensor_shape_str(idx, b, sizeof b));
  }
  return TT_OK;
}

/* A contiguous [N] view of idx (a reference). */
static tt_tensor *flat_index(tt_tensor *idx) {
  tt_tensor *c = tt_contiguous(idx);
  if (!c) return NULL;
  tt_tensor *v = tt_tensor_view_of(c, TT_DIMS(tt_tensor_numel(c)), NULL, c->offset);
  tt_tensor_unref(c);
  return v;
}

// weight [V, E], idx [...] -> [..., E]
tt_tensor *tt_embedding(tt_tensor *weight, tt_tensor *idx) {
  TT_PROFILE_OP("embedding");
  tt_tensor *args[2] = {weight, idx};
  if (tt_check_f32("embedding", "weight", weight) || tt_check_ndim("embedding", "weight", weight, 2) ||
      check_index("embedding", idx) || tt_check_same_device("embedding", 2, args))
    return NULL;
  tt_embedding_fwd_fn f = TT_KERNEL(weight->device, embedding_fwd);
  if (!f) return NULL;
  int64_t V = weight->shape[0], E = weight->shape[1];
  int64_t shape[TT_MAX_DIMS];
  for (int i = 0; i < idx->ndim; i++) shape[i] = idx->shape[i];
  shape[idx->ndim] = E;
  tt_tensor *out = NULL, *flat = NULL, *wc = NULL;
  TT_NO_GRAD_BEGIN;
  flat = flat_index(idx);
  wc = tt_contiguous(weight);
  TT_NO_GRAD_END;
  if (flat && wc) {
    out = tt_tensor_new(TT_F32, idx->ndim + 1, shape, weight->device);
    tt_tensor *o2 = out ? tt_tensor_view_of(out, TT_DIMS(tt_tensor_numel(flat), E), NULL, 0) : NULL;
    if (!o2 || f(wc, flat, o2) != TT_OK) tt_tensor_release(&out);
    tt_tensor_unref(o2);
  }
  tt_tensor_unref(wc);
  if (!out) {
    tt_tensor_unref(flat);
    return NULL;
  }
  tt_node *n = tt_node_new("embedding", embedding_backward, embedding_release, 1, &weight, 1,
                           sizeof(embedding_ctx));
  if (n) {
    embedding_ctx *c = n->ctx;
    c->idx = tt_tensor_ref(flat);
    c->V = V;
    c->E = E;
    tt_node_attach(n, 0, out);
    tt_node_unref(n);
  }
  tt_tensor_unref(flat);
  return out;
}

// idx [...] -> [..., n]
tt_tensor *tt_one_hot(tt_tensor *idx, int64_t n) {
  if (check_index("one_hot", idx)) return NULL;
  if (n <= 0) {
    tt_error(TT_ERR_INVALID, "one_hot: the number of classes must be positive, found %lld", (long long)n);
    return NULL;
  }
  tt_one_hot_fn f = TT_KERNEL(idx->device, one_hot);
  if (!f) return NULL;
  int64_t shape[TT_MAX_DIMS];
  for (int i = 0; i < idx->ndim; i++) shape[i] = idx->shape[i];
  shape[idx->ndim] = n;
  tt_tensor *flat = flat_index(idx);
  if (!flat) return NULL;
  tt_tensor *out = tt_tensor_new(TT_F32, idx->ndim + 1, shape, idx->device);
  tt_tensor *o2 = out ? tt_tensor_view_of(out, TT_DIMS(tt_tensor_numel(flat), n), NULL, 0) : NULL;
  if (!o2 || f(flat, n, o2) != TT_OK) tt_tensor_release(&out);
  tt_tensor_unref(o2);
  tt_tensor_unref(flat);
  return out;
}
