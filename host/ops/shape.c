/* ops/shape.c — views (reshape, permute, slice, select, expand, squeeze) and the
 * rearranging copies (cat, pad, repeat), with their backward passes. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "common.h"

typedef struct {
  int kind;                        /* which view op */
  int nd;                          /* input geometry */
  int64_t shape[TT_MAX_DIMS];
  int dim;
  int64_t start, step, len;        /* slice / select */
  int perm[TT_MAX_DIMS];
  int64_t pads[4];
  int n;                           /* cat */
  int64_t *sizes;                  /* cat: size of each input along dim */
} view_ctx;

enum { V_RESHAPE, V_PERMUTE, V_SLICE, V_SELECT, V_EXPAND, V_CAT, V_PAD };

static void view_release(tt_node *n) {
  view_ctx *c = n->ctx;
  free(c->sizes);
  c->sizes = NULL;
}

/* zeros of the input shape with gy copied into the region the view covered */
static tt_tensor *scatter_into_zeros(const view_ctx *c, tt_tensor *gy) {
  tt_tensor *z = tt_zeros(TT_F32, c->nd, c->shape, gy->device);
  if (!z) return NULL;
  tt_tensor *v = c->kind == V_SLICE ? tt_slice(z, c->dim, c->start, c->start + c->len * c->step, c->step)
                                    : tt_select(z, c->dim, c->start);
  if (!v || tt_copy_(v, gy) != TT_OK) {
    tt_tensor_unref(v);
    tt_tensor_unref(z);
    return NULL;
  }
  tt_tensor_unref(v);
  return z;
}

static tt_status view_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  view_ctx *c = n->ctx;
  tt_tensor *g = gy[0];
  if (!g) return TT_OK;
  if (c->kind == V_CAT) {
    int64_t off = 0;
    for (int i = 0; i < c->n; i++) {
      if (tt_node_wants(n, i)) {
        tt_tensor *s = tt_slice(g, c->dim, off, off + c->sizes[i], 1);
        gx[i] = s ? tt_contiguous(s) : NULL;
        tt_tensor_unref(s);
        if (!gx[i]) return tt_last_status();
      }
      off += c->sizes[i];
    }
    return TT_OK;
  }
  if (!tt_node_wants(n, 0)) return TT_OK;
  tt_tensor *r = NULL;
  switch (c->kind) {
    case V_RESHAPE: r = tt_reshape(g, c->nd, c->shape); break;
    case V_PERMUTE: {
      int inv[TT_MAX_DIMS];
      for (int i = 0; i < c->nd; i++) inv[c->perm[i]] = i;
      r = tt_permute(g, inv);
      break;
    }
    case V_SLICE:
    case V_SELECT: r = scatter_into_zeros(c, g); break;
    case V_EXPAND: r = tt_sum_to(g, c->nd, c->shape); break;
    case V_PAD: {
      tt_tensor *a = tt_slice(g, -1, c->pads[0], g->shape[g->ndim - 1] - c->pads[1], 1);
      tt_tensor *b = a ? tt_slice(a, -2, c->pads[2], g->shape[g->ndim - 2] - c->pads[3], 1) : NULL;
      r = b ? tt_contiguous(b) : NULL;
      tt_tensor_unref(a);
      tt_tensor_unref(b);
      break;
    }
  }
  if (!r) return tt_last_status();
  gx[0] = r;
  return TT_OK;
}

static view_ctx *record(tt_tensor *in, tt_tensor *out, int kind) {
  tt_node *n = tt_node_new("view", view_backward, view_release, 1, &in, 1, sizeof(view_ctx));
  if (!n) return NULL;
  static const char *names[] = {"reshape", "permute", "slice", "select", "expand", "cat", "pad"};
  n->op = names[kind];
  view_ctx *c = n->ctx;
  c->kind = kind;
  c->nd = in->ndim;
  memcpy(c->shape, in->shape, sizeof c->shape);
  tt_node_attach(n, 0, out);
  tt_node_unref(n);
  return c;
}

static bool view_compatible(const tt_tensor *t) { return tt_tensor_is_contiguous(t); }

tt_tensor *tt_reshape(tt_tensor *t, int ndim, const int64_t *shape) {
  int64_t sh[TT_MAX_DIMS], known = 1, total = tt_tensor_numel(t);
  int infer = -1;
  char a[TT_SHAPE_BUF], b[TT_SHAPE_BUF];
  if (ndim > TT_MAX_DIMS) {
    tt_error(TT_ERR_INVALID, "reshape: at most %d dims", TT_MAX_DIMS);
    return NULL;
  }
  for (int i = 0; i < ndim; i++) {
    sh[i] = shape[i];
    if (shape[i] == -1) {
      if (infer >= 0) {
        tt_error(TT_ERR_INVALID, "reshape: more than one -1 in %s", tt_shape_str(ndim, shape, a, sizeof a));
        return NULL;
      }
      infer = i;
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0 && known > 0 && total % known == 0) sh[infer] = total / known;
  int64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= sh[i];
  if (n != total || (infer >= 0 && known == 0)) {
    tt_error(TT_ERR_INVALID, "reshape: cannot view %s (%lld elements) as %s", tt_tensor_shape_str(t, a, sizeof a),
             (long long)total, tt_shape_str(ndim, shape, b, sizeof b));
    return NULL;
  }
  tt_tensor *src = view_compatible(t) ? tt_tensor_ref(t) : tt_contiguous(t);
  if (!src) return NULL;
  tt_tensor *out = tt_tensor_view_of(src, ndim, sh, NULL, src->offset);
  if (out) record(src, out, V_RESHAPE);
  tt_tensor_unref(src);
  return out;
}

tt_tensor *tt_flatten(tt_tensor *t, int start_dim, int end_dim) {
  int s = tt_tensor_dim(t, start_dim), e = tt_tensor_dim(t, end_dim);
  if (t->ndim == 0) return tt_reshape(t, 1, (int64_t[]){1});
  if (s < 0 || e < 0 || s > e) {
    tt_error(TT_ERR_INVALID, "flatten: dims %d..%d out of range for %d dims", start_dim, end_dim, t->ndim);
    return NULL;
  }
  int64_t sh[TT_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < s; i++) sh[nd++] = t->shape[i];
  int64_t m = 1;
  for (int i = s; i <= e; i++) m *= t->shape[i];
  sh[nd++] = m;
  for (int i = e + 1; i < t->ndim; i++) sh[nd++] = t->shape[i];
  return tt_reshape(t, nd, sh);
}

tt_tensor *tt_permute(tt_tensor *t, const int *perm) {
  int64_t sh[TT_MAX_DIMS], st[TT_MAX_DIMS];
  unsigned seen = 0;
  for (int i = 0; i < t->ndim; i++) {
    int p = perm[i];
    if (p < 0 || p >= t->ndim || (seen >> p & 1)) {
      tt_error(TT_ERR_INVALID, "permute: not a permutation of %d dims", t->ndim);
      return NULL;
    }
    seen |= 1u << p;
    sh[i] = t->shape[p];
    st[i] = t->stride[p];
  }
  tt_tensor *out = tt_tensor_view_of(t, t->ndim, sh, st, t->offset);
  if (out) {
    view_ctx *c = record(t, out, V_PERMUTE);
    if (c) memcpy(c->perm, perm, sizeof(int) * (size_t)t->ndim);
  }
  return out;
}

tt_tensor *tt_transpose(tt_tensor *t, int d0, int d1) {
  int a = tt_tensor_dim(t, d0), b = tt_tensor_dim(t, d1);
  if (a < 0 || b < 0) {
    tt_error(TT_ERR_INVALID, "transpose: dims %d, %d out of range for %d dims", d0, d1, t->ndim);
    return NULL;
  }
  int perm[TT_MAX_DIMS];
  for (int i = 0; i < t->ndim; i++) perm[i] = i;
  perm[a] = b;
  perm[b] = a;
  return tt_permute(t, perm);
}

tt_tensor *tt_slice(tt_tensor *t, int dim, int64_t start, int64_t end, int64_t step) {
  int d = tt_tensor_dim(t, dim);
  if (d < 0 || t->ndim == 0 || step <= 0) {
    tt_error(TT_ERR_INVALID, "slice: dim %d out of range for %d dims (or step %lld <= 0)", dim, t->ndim,
             (long long)step);
    return NULL;
  }
  int64_t n = t->shape[d];
  if (start < 0) start += n;
  if (end < 0) end += n;
  if (start < 0) start = 0;
  if (end > n) end = n;
  if (start > n) start = n;
  int64_t len = end > start ? (end - start + step - 1) / step : 0;
  int64_t sh[TT_MAX_DIMS], st[TT_MAX_DIMS];
  memcpy(sh, t->shape, sizeof sh);
  memcpy(st, t->stride, sizeof st);
  sh[d] = len;
  st[d] = t->stride[d] * step;
  tt_tensor *out = tt_tensor_view_of(t, t->ndim, sh, st, t->offset + start * t->stride[d]);
  if (out) {
    view_ctx *c = record(t, out, V_SLICE);
    if (c) { c->dim = d; c->start = start; c->step = step; c->len = len; }
  }
  return out;
}

tt_tensor *tt_select(tt_tensor *t, int dim, int64_t index) {
  int d = tt_tensor_dim(t, dim);
  if (d < 0 || t->ndim == 0) {
    tt_error(TT_ERR_INVALID, "select: dim %d out of range for %d dims", dim, t->ndim);
    return NULL;
  }
  if (index < 0) index += t->shape[d];
  if (index < 0 || index >= t->shape[d]) {
    tt_error(TT_ERR_INVALID, "select: index %lld out of range for size %lld", (long long)index,
             (long long)t->shape[d]);
    return NULL;
  }
  int64_t sh[TT_MAX_DIMS], st[TT_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < t->ndim; i++) {
    if (i == d) continue;
    sh[nd] = t->shape[i];
    st[nd++] = t->stride[i];
  }
  tt_tensor *out = tt_tensor_view_of(t, nd, sh, st, t->offset + index * t->stride[d]);
  if (out) {
    view_ctx *c = record(t, out, V_SELECT);
    if (c) { c->dim = d; c->start = index; }
  }
  return out;
}

tt_tensor *tt_unsqueeze(tt_tensor *t, int dim) {
  if (dim < 0) dim += t->ndim + 1;
  if (dim < 0 || dim > t->ndim || t->ndim >= TT_MAX_DIMS) {
    tt_error(TT_ERR_INVALID, "unsqueeze: dim %d out of range for %d dims", dim, t->ndim);
    return NULL;
  }
  int64_t sh[TT_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i <= t->ndim; i++) {
    if (i == dim) sh[nd++] = 1;
    if (i < t->ndim) sh[nd++] = t->shape[i];
  }
  return tt_reshape(t, nd, sh);
}

tt_tensor *tt_squeeze(tt_tensor *t, int dim) {
  int d = tt_tensor_dim(t, dim);
  if (d < 0 || t->ndim == 0 || t->shape[d] != 1) {
    tt_error(TT_ERR_INVALID, "squeeze: dim %d is not of size 1", dim);
    return NULL;
  }
  int64_t sh[TT_MAX_DIMS];
  int nd = 0;
  for (int i = 0; i < t->ndim; i++)
    if (i != d) sh[nd++] = t->shape[i];
  return tt_reshape(t, nd, sh);
}

tt_tensor *tt_expand(tt_tensor *t, int ndim, const int64_t *shape) {
  int off = ndim - t->ndim;
  int64_t sh[TT_MAX_DIMS], st[TT_MAX_DIMS];
  char a[TT_SHAPE_BUF], b[TT_SHAPE_BUF];
  if (off < 0 || ndim > TT_MAX_DIMS) goto bad;
  for (int i = 0; i < ndim; i++) {
    int j = i - off;
    int64_t want = shape[i];
    if (j < 0) {
      if (want < 0) goto bad;
      sh[i] = want;
      st[i] = 0;
    } else if (want == -1 || want == t->shape[j]) {
      sh[i] = t->shape[j];
      st[i] = t->stride[j];
    } else if (t->shape[j] == 1) {
      sh[i] = want;
      st[i] = 0;
    } else {
      goto bad;
    }
  }
  tt_tensor *out = tt_tensor_view_of(t, ndim, sh, st, t->offset);
  if (out) record(t, out, V_EXPAND);
  return out;
bad:
  tt_error(TT_ERR_INVALID, "expand: cannot expand %s to %s", tt_tensor_shape_str(t, a, sizeof a),
           tt_shape_str(ndim, shape, b, sizeof b));
  return NULL;
}

tt_tensor *tt_cat(int n, tt_tensor *const *ts, int dim) {
  TT_PROFILE_OP("cat");
  if (n <= 0) {
    tt_error(TT_ERR_INVALID, "cat: no tensors");
    return NULL;
  }
  int d = tt_tensor_dim(ts[0], dim);
  if (d < 0) {
    tt_error(TT_ERR_INVALID, "cat: dim %d out of range for %d dims", dim, ts[0]->ndim);
    return NULL;
  }
  if (tt_check_same_device("cat", n, ts)) return NULL;
  int64_t sh[TT_MAX_DIMS];
  memcpy(sh, ts[0]->shape, sizeof sh);
  sh[d] = 0;
  for (int i = 0; i < n; i++) {
    bool ok = ts[i]->ndim == ts[0]->ndim && ts[i]->dtype == ts[0]->dtype;
    for (int k = 0; ok && k < ts[0]->ndim; k++)
      if (k != d && ts[i]->shape[k] != ts[0]->shape[k]) ok = false;
    if (!ok) {
      char a[TT_SHAPE_BUF], b[TT_SHAPE_BUF];
      tt_error(TT_ERR_INVALID, "cat: tensor %d has shape %s (%s), incompatible with %s (%s) along dim %d", i,
               tt_tensor_shape_str(ts[i], a, sizeof a), tt_dtype_name(ts[i]->dtype),
               tt_tensor_shape_str(ts[0], b, sizeof b), tt_dtype_name(ts[0]->dtype), d);
      return NULL;
    }
    sh[d] += ts[i]->shape[d];
  }
  tt_tensor *out = tt_tensor_new(ts[0]->dtype, ts[0]->ndim, sh, ts[0]->device);
  if (!out) return NULL;
  int64_t off = 0;
  bool prev = tt_grad_set_enabled(false);
  for (int i = 0; i < n; i++) {
    tt_tensor *v = tt_slice(out, d, off, off + ts[i]->shape[d], 1);
    tt_status s = v ? tt_copy_(v, ts[i]) : tt_last_status();
    tt_tensor_unref(v);
    if (s != TT_OK) {
      tt_grad_set_enabled(prev);
      tt_tensor_unref(out);
      return NULL;
    }
    off += ts[i]->shape[d];
  }
  tt_grad_set_enabled(prev);
  tt_node *node = tt_node_new("cat", view_backward, view_release, n, ts, 1, sizeof(view_ctx));
  if (node) {
    view_ctx *c = node->ctx;
    c->kind = V_CAT;
    c->dim = d;
    c->n = n;
    c->sizes = malloc(sizeof(int64_t) * (size_t)n);
    if (!c->sizes) {
      tt_node_unref(node);
      tt_tensor_unref(out);
      tt_error(TT_ERR_NOMEM, "out of memory in cat");
      return NULL;
    }
    for (int i = 0; i < n; i++) c->sizes[i] = ts[i]->shape[d];
    tt_node_attach(node, 0, out);
    tt_node_unref(node);
  }
  return out;
}

tt_tensor *tt_pad2d(tt_tensor *t, const int64_t pads[4], double value) {
  TT_PROFILE_OP("pad2d");
  if (t->ndim < 2) {
    tt_error(TT_ERR_INVALID, "pad2d: needs at least 2 dims, found %d", t->ndim);
    return NULL;
  }
  for (int i = 0; i < 4; i++)
    if (pads[i] < 0) {
      tt_error(TT_ERR_INVALID, "pad2d: negative padding %lld", (long long)pads[i]);
      return NULL;
    }
  int64_t sh[TT_MAX_DIMS];
  memcpy(sh, t->shape, sizeof sh);
  int nd = t->ndim;
  sh[nd - 1] += pads[0] + pads[1];
  sh[nd - 2] += pads[2] + pads[3];
  tt_tensor *out = tt_full(t->dtype, nd, sh, value, t->device);
  if (!out) return NULL;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *a = tt_slice(out, -1, pads[0], pads[0] + t->shape[nd - 1], 1);
  tt_tensor *b = a ? tt_slice(a, -2, pads[2], pads[2] + t->shape[nd - 2], 1) : NULL;
  tt_status s = b ? tt_copy_(b, t) : tt_last_status();
  tt_tensor_unref(a);
  tt_tensor_unref(b);
  tt_grad_set_enabled(prev);
  if (s != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  view_ctx *c = record(t, out, V_PAD);
  if (c) memcpy(c->pads, pads, sizeof c->pads);
  return out;
}

tt_tensor *tt_repeat(tt_tensor *t, int ndim, const int64_t *reps) {
  TT_PROFILE_OP("repeat");
  if (ndim < t->ndim || 2 * ndim > TT_MAX_DIMS) {
    tt_error(TT_ERR_INVALID, "repeat: %d repeats for %d dims", ndim, t->ndim);
    return NULL;
  }
  /* [s0, s1, ...] -> [1, s0, 1, s1, ...] -> expand [r0, s0, r1, s1, ...] -> [r0*s0, ...] */
  int64_t sh[TT_MAX_DIMS], ex[TT_MAX_DIMS], fin[TT_MAX_DIMS];
  int off = ndim - t->ndim;
  for (int i = 0; i < ndim; i++) {
    int64_t s = i >= off ? t->shape[i - off] : 1;
    sh[2 * i] = 1;
    sh[2 * i + 1] = s;
    ex[2 * i] = reps[i];
    ex[2 * i + 1] = s;
    fin[i] = reps[i] * s;
  }
  tt_tensor *a = tt_reshape(t, 2 * ndim, sh);
  tt_tensor *b = a ? tt_expand(a, 2 * ndim, ex) : NULL;
  tt_tensor *c = b ? tt_contiguous(b) : NULL;
  tt_tensor *d = c ? tt_reshape(c, ndim, fin) : NULL;
  tt_tensor_unref(a);
  tt_tensor_unref(b);
  tt_tensor_unref(c);
  return d;
}
