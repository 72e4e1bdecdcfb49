/* ops/attention.c — scaled dot-product attention: argument checks, kernel
 * calls and the autograd node. The leading dims of q, k, v fold into one
 * batch*head dim for the kernels: [..., T, d] -> [BH, T, d]. The attention
 * probabilities [BH, Tq, Tk] are kept only when a gradient will be needed. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "common.h"

typedef struct {
  tt_attention_params p;
  tt_tensor *q, *k, *v;      /* contiguous, detached */
  tt_tensor *probs;          /* [BH, Tq, Tk] */
  int64_t BH;
  bool bf16;                 /* the forward's GEMMs ran in bf16: so do the backward's */
} attention_ctx;

static void attention_release(tt_node *n) {
  attention_ctx *c = n->ctx;
  tt_tensor_release(&c->q);
  tt_tensor_release(&c->k);
  tt_tensor_release(&c->v);
  tt_tensor_release(&c->probs);
}

/* [..., T, d] contiguous -> a [BH, T, d] header on the same data. */
static tt_tensor as_heads(const tt_tensor *t, int64_t BH) {
  tt_tensor v = *t;
  v.ndim = 3;
  v.shape[0] = BH;
  v.shape[1] = t->shape[t->ndim - 2];
  v.shape[2] = t->shape[t->ndim - 1];
  tt_contiguous_strides(3, v.shape, v.stride);
  return v;
}

/* A [BH, T, d] header on t's own data when its last two dims are dense (rows d
 * apart) and its leading dims collapse to one head stride: a KV cache sliced to
 * the keys seen so far is such a view, and reading it in place saves copying the
 * whole cache at every decoding step. False when t needs a copy. */
static bool strided_heads(const tt_tensor *t, int64_t BH, tt_tensor *out) {
  int nd = t->ndim;
  int64_t T = t->shape[nd - 2], d = t->shape[nd - 1];
  if ((d > 1 && t->stride[nd - 1] != 1) || (T > 1 && t->stride[nd - 2] != d)) return false;
  int64_t hs = nd >= 3 ? t->stride[nd - 3] : T * d;
  for (int i = nd - 4; i >= 0; i--)   /* leading dims must step like one flat head index */
    if (t->shape[i] > 1 && t->stride[i] != t->stride[i + 1] * t->shape[i + 1]) return false;
  *out = *t;
  out->ndim = 3;
  out->shape[0] = BH;
  out->shape[1] = T;
  out->shape[2] = d;
  out->stride[0] = hs;
  out->stride[1] = d;
  out->stride[2] = 1;
  return true;
}

static tt_status attention_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  attention_ctx *c = n->ctx;
  if (!gy[0]) return TT_OK;
  tt_attention_bwd_fn f =
      c->bf16 ? TT_KERNEL(c->q->device, attention_bwd_bf16) : TT_KERNEL(c->q->device, attention_bwd);
  if (!f) return tt_last_status();
  tt_tensor *g = tt_contiguous(gy[0]);
  if (!g) return tt_last_status();
  tt_tensor *src[3] = {c->q, c->k, c->v}, *r[3] = {NULL, NULL, NULL}, vr[3];
  tt_status s = TT_OK;
  for (int i = 0; i < 3 && s == TT_OK; i++) {
    if (!tt_node_wants(n, i)) continue;
    r[i] = tt_tensor_new(TT_F32, src[i]->ndim, src[i]->shape, g->device);
    if (!r[i]) s = tt_last_status();
    else vr[i] = as_heads(r[i], c->BH);
  }
  if (s == TT_OK) {
    tt_tensor vq = as_heads(c->q, c->BH), vk = as_heads(c->k, c->BH), vv = as_heads(c->v, c->BH);
    tt_tensor vg = as_heads(g, c->BH);
    s = f(&c->p, &vq, &vk, &vv, c->probs, &vg, r[0] ? &vr[0] : NULL, r[1] ? &vr[1] : NULL, r[2] ? &vr[2] : NULL);
  }
  tt_tensor_unref(g);
  for (int i = 0; i < 3; i++) {
    if (s == TT_OK) gx[i] = r[i];
    else tt_tensor_unref(r[i]);
  }
  return s;
}

static tt_status check_args(tt_tensor *q, tt_tensor *k, tt_tensor *v, const tt_attention_params *p) {
  const char *op = "attention";
  if (!p) return tt_error(TT_ERR_INVALID, "attention: params are missing");
  tt_tensor *args[3] = {q, k, v};
  TT_TRY(tt_check_f32(op, "q", q));
  TT_TRY(tt_check_f32(op, "k", k));
  TT_TRY(tt_check_f32(op, "v", v));
  TT_TRY(tt_check_same_device(op, 3, args));
  char sq[TT_SHAPE_BUF], sk[TT_SHAPE_BUF], sv[TT_SHAPE_BUF];
  tt_tensor_shape_str(q, sq, sizeof sq);
  tt_tensor_shape_str(k, sk, sizeof sk);
  tt_tensor_shape_str(v, sv, sizeof sv);
  int nd = q->ndim;
  if (nd < 2 || k->ndim != nd || v->ndim != nd)
    return tt_error(TT_ERR_INVALID, "attention: q %s, k %s, v %s must be [..., T, d] with the same number of dims",
                    sq, sk, sv);
  for (int i = 0; i < nd - 2; i++)
    if (k->shape[i] != q->shape[i] || v->shape[i] != q->shape[i])
      return tt_error(TT_ERR_INVALID, "attention: leading dims differ: q %s, k %s, v %s", sq, sk, sv);
  int64_t Tq = q->shape[nd - 2], Tk = k->shape[nd - 2];
  if (k->shape[nd - 1] != q->shape[nd - 1])
    return tt_error(TT_ERR_INVALID, "attention: q %s and k %s have different head sizes (%lld vs %lld)", sq, sk,
                    (long long)q->shape[nd - 1], (long long)k->shape[nd - 1]);
  if (v->shape[nd - 2] != Tk)
    return tt_error(TT_ERR_INVALID, "attention: k %s and v %s have different lengths (%lld vs %lld)", sk, sv,
                    (long long)Tk, (long long)v->shape[nd - 2]);
  if (Tk == 0) return tt_error(TT_ERR_INVALID, "attention: no keys (k %s)", sk);
  if (!isfinite(p->scale)) return tt_error(TT_ERR_INVALID, "attention: scale %g is not finite", (double)p->scale);
  if (p->causal) {
    if (p->q_offset < 0 || p->n_unmasked < 0)
      return tt_error(TT_ERR_INVALID, "attention: q_offset %lld and n_unmasked %lld must be >= 0",
                      (long long)p->q_offset, (long long)p->n_unmasked);
    if (p->q_offset + Tq > Tk)
      return tt_error(TT_ERR_INVALID,
                      "attention: causal queries at positions %lld..%lld (q_offset %lld, q %s) lie beyond the "
                      "last key %lld (k %s)",
                      (long long)p->q_offset, (long long)(p->q_offset + Tq - 1), (long long)p->q_offset, sq,
                      (long long)(Tk - 1), sk);
  }
  return TT_OK;
}

tt_tensor *tt_attention(tt_tensor *q, tt_tensor *k, tt_tensor *v, const tt_attention_params *p) {
  TT_PROFILE_OP("attention");
  if (check_args(q, k, v, p)) return NULL;
  /* mixed precision (tt_set_compute_precision): the kernels' GEMMs in bf16 where the device has them */
  bool bf = tt_compute_precision() == TT_BF16 && tt_backend_supports(q->device, "attention_fwd_bf16");
  tt_attention_fwd_fn f = bf ? TT_KERNEL(q->device, attention_fwd_bf16) : TT_KERNEL(q->device, attention_fwd);
  if (!f) return NULL;
  int nd = q->ndim;
  int64_t BH = 1;
  for (int i = 0; i < nd - 2; i++) BH *= q->shape[i];
  int64_t Tq = q->shape[nd - 2], Tk = k->shape[nd - 2];
  tt_tensor *args[3] = {q, k, v};
  bool need_grad = tt_grad_enabled() && (tt_requires_grad(q) || tt_requires_grad(k) || tt_requires_grad(v));
  bool prev = tt_grad_set_enabled(false);
  /* inference on the CPU reads K and V in place where they are strided heads (the KV cache) */
  tt_tensor hk, hv;
  bool in_place = !need_grad && q->device == TT_CPU && strided_heads(k, BH, &hk) && strided_heads(v, BH, &hv);
  tt_tensor *qc = tt_contiguous(q), *kc = in_place ? tt_tensor_ref(k) : tt_contiguous(k),
            *vc = in_place ? tt_tensor_ref(v) : tt_contiguous(v);
  tt_tensor *cs[3] = {qc, kc, vc};
  for (int i = 0; i < 3 && !in_place; i++) { /* drop any history: the saved copies must not point back at the graph */
    tt_tensor *d = cs[i] ? tt_detach(cs[i]) : NULL;
    tt_tensor_unref(cs[i]);
    cs[i] = d;
  }
  qc = cs[0];
  kc = cs[1];
  vc = cs[2];
  int64_t osh[TT_MAX_DIMS];
  memcpy(osh, q->shape, sizeof osh);
  osh[nd - 1] = v->shape[nd - 1];
  tt_tensor *out = qc && kc && vc ? tt_tensor_new(TT_F32, nd, osh, q->device) : NULL;
  tt_tensor *probs = out && need_grad ? tt_tensor_new(TT_F32, TT_DIMS(BH, Tq, Tk), q->device) : NULL;
  tt_status s = out && (!need_grad || probs) ? TT_OK : tt_last_status();
  if (s == TT_OK) {
    tt_tensor vq = as_heads(qc, BH), vo = as_heads(out, BH);
    tt_tensor vk = in_place ? hk : as_heads(kc, BH), vv = in_place ? hv : as_heads(vc, BH);
    s = f(p, &vq, &vk, &vv, &vo, probs);
  }
  tt_grad_set_enabled(prev);
  tt_node *n = s == TT_OK && need_grad ? tt_node_new("attention", attention_backward, attention_release, 3, args, 1,
                                        sizeof(attention_ctx))
                          : NULL;
  if (n) {
    attention_ctx *c = n->ctx;
    c->p = *p;
    c->q = qc;
    c->k = kc;
    c->v = vc;
    c->probs = probs;
    c->BH = BH;
    c->bf16 = bf;
    tt_node_attach(n, 0, out);
    tt_node_unref(n);
  } else {
    tt_tensor_unref(qc);
    tt_tensor_unref(kc);
    tt_tensor_unref(vc);
    tt_tensor_unref(probs);
  }
  if (s != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  return out;
}
