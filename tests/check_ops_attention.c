/* check_ops_attention.c — softmax / log-softmax along any dim (with -inf and
 * fully masked rows) and scaled dot-product attention with the minGPT mask:
 * values and gradients against double-precision references computed here,
 * finite-difference gradients of every input, the causal mask, the
 * n_unmasked block, q_offset (KV-cache decoding), the saved probabilities and
 * the error messages of mismatched shapes. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"
#include "torch_ref.h"

/* ======================= softmax ======================= */

/* softmax / log_softmax of x (any layout) along dim, in double, row-major over x's shape. */
static double *ref_softmax(const tt_tensor *x, int dim, bool log_) {
  int nd = x->ndim;
  int d = dim < 0 ? dim + nd : dim;
  int64_t outer = 1, D = x->shape[d], inner = 1;
  for (int i = 0; i < d; i++) outer *= x->shape[i];
  for (int i = d + 1; i < nd; i++) inner *= x->shape[i];
  double *y = th_ref_alloc(outer * D * inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t in = 0; in < inner; in++) {
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < D; j++) m = fmax(m, tt_tensor_get(x, (o * D + j) * inner + in));
      for (int64_t j = 0; j < D; j++) s += exp(tt_tensor_get(x, (o * D + j) * inner + in) - m);
      for (int64_t j = 0; j < D; j++) {
        double v = tt_tensor_get(x, (o * D + j) * inner + in) - m;
        y[(o * D + j) * inner + in] = m == -INFINITY ? (log_ ? -INFINITY : 0.0) : log_ ? v - log(s) : exp(v) / s;
      }
    }
  return y;
}

START_TEST(test_softmax_values_any_dim) {
  tt_tensor *x = th_randn(1, TT_DIMS(3, 4, 5), 3.0f);
  for (int log_ = 0; log_ < 2; log_++)
    for (int dim = -1; dim < 3; dim++) {
      tt_tensor *y = log_ ? tt_log_softmax(x, dim) : tt_softmax(x, dim);
      TH_NN(y);
      ck_assert(tt_tensor_same_shape(x, y));
      ck_assert(tt_tensor_is_contiguous(y));
      double *ref = ref_softmax(x, dim, log_);
      char name[64];
      snprintf(name, sizeof name, "%s dim %d", log_ ? "log_softmax" : "softmax", dim);
      th_assert_ref(name, y, ref, 1e-6, 1e-6);
      free(ref);
      tt_tensor_unref(y);
    }
  /* a strided input: softmax of a transposed view along its last dim */
  tt_tensor *xt = tt_transpose(x, 0, 2);   /* [5, 4, 3] */
  tt_tensor *yt = tt_softmax(xt, -1);
  double *ref = ref_softmax(xt, -1, false);
  th_assert_ref("softmax of a transposed view", yt, ref, 1e-6, 1e-6);
  free(ref);
  /* many rows: the parallel path; every row sums to 1 */
  tt_tensor *big = th_randn(2, TT_DIMS(64, 1000), 4.0f);
  tt_tensor *yb = tt_softmax(big, 1), *lb = tt_log_softmax(big, 1);
  double *rb = ref_softmax(big, 1, false), *rl = ref_softmax(big, 1, true);
  th_assert_ref("softmax [64, 1000]", yb, rb, 1e-7, 2e-6);
  th_assert_ref("log_softmax [64, 1000]", lb, rl, 2e-6, 1e-6);
  for (int r = 0; r < 64; r++) {
    double s = 0;
    for (int j = 0; j < 1000; j++) s += tt_f32(yb)[r * 1000 + j];
    ck_assert_msg(fabs(s - 1) < 1e-5, "softmax row %d sums to %.9g", r, s);
  }
  /* a 0-dim tensor is one row of one value */
  tt_tensor *sc = tt_scalar(2.5, TT_CPU), *ys = tt_softmax(sc, 0);
  TH_NN(ys);
  ck_assert_double_eq(tt_tensor_get(ys, 0), 1.0);
  ck_assert_ptr_null(tt_softmax(x, 3));
  ck_assert_msg(strstr(tt_error_message(), "dim 3 out of range") && strstr(tt_error_message(), "[3, 4, 5]"),
                "message: %s", tt_error_message());
  free(rb); free(rl);
  tt_tensor_unref(x); tt_tensor_unref(xt); tt_tensor_unref(yt); tt_tensor_unref(big); tt_tensor_unref(yb);
  tt_tensor_unref(lb); tt_tensor_unref(sc); tt_tensor_unref(ys);
}
END_TEST

typedef struct { int dim; bool log; } sm_case;
static tt_tensor *f_softmax(tt_tensor *const *in, void *ud) {
  sm_case *c = ud;
  return c->log ? tt_log_softmax(in[0], c->dim) : tt_softmax(in[0], c->dim);
}

START_TEST(test_softmax_grads) {
  tt_tensor *x = th_leaf(10, TT_DIMS(3, 4, 5), 1.5f);
  for (int log_ = 0; log_ < 2; log_++)
    for (int dim = 0; dim < 3; dim++) {
      sm_case c = {dim, log_};
      char name[64];
      snprintf(name, sizeof name, "%s grad dim %d", log_ ? "log_softmax" : "softmax", dim);
      th_gradcheck(name, f_softmax, 1, &x, &c, 1e-2, 1e-3, 1e-2, 60);
    }
  tt_tensor *big = th_leaf(11, TT_DIMS(40, 999), 2.0f);
  for (int log_ = 0; log_ < 2; log_++) {
    sm_case c = {-1, log_};
    th_gradcheck("softmax grad, parallel rows", f_softmax, 1, &big, &c, 1e-2, 1e-3, 1e-2, 24);
  }
  tt_tensor_unref(x);
  tt_tensor_unref(big);
}
END_TEST

/* log_softmax with its -inf outputs clamped, so finite differences stay finite. */
static tt_tensor *f_log_softmax_clamped(tt_tensor *const *in, void *ud) {
  tt_tensor *y = tt_log_softmax(in[0], -1);
  tt_tensor *c = y ? tt_clamp(y, -1e4f, 1e4f) : NULL;
  tt_tensor_unref(y);
  return c;
}

START_TEST(test_softmax_neg_inf) {
  /* row 0: two -inf entries; row 1: all -inf (fully masked); row 2: finite */
  float v[3][5] = {{0.5f, -INFINITY, 1.5f, -INFINITY, -0.25f},
                   {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY},
                   {0.1f, 0.2f, -0.3f, 2.0f, 1.0f}};
  tt_tensor *x = tt_tensor_from_data(TT_F32, TT_DIMS(3, 5), v, TT_CPU);
  tt_tensor_set_requires_grad(x, true);
  tt_tensor *p = tt_softmax(x, 1), *lp = tt_log_softmax(x, 1);
  TH_NN(p);
  TH_NN(lp);
  double *rp = ref_softmax(x, 1, false), *rl = ref_softmax(x, 1, true);
  th_assert_ref("softmax with -inf", p, rp, 1e-7, 1e-6);
  th_assert_ref("log_softmax with -inf", lp, rl, 1e-6, 1e-6);
  for (int j = 0; j < 5; j++) {
    ck_assert_msg(tt_f32(p)[5 + j] == 0.0f, "fully masked softmax row gives %g, want 0", (double)tt_f32(p)[5 + j]);
    ck_assert_msg(isinf(tt_f32(lp)[5 + j]) && tt_f32(lp)[5 + j] < 0, "fully masked log_softmax row gives %g",
                  (double)tt_f32(lp)[5 + j]);
  }
  ck_assert(tt_f32(p)[1] == 0.0f && tt_f32(p)[3] == 0.0f);
  ck_assert(isinf(tt_f32(lp)[1]) && isinf(tt_f32(lp)[3]));
  /* gradients: finite everywhere, 0 on the fully masked row, and equal to the
   * closed forms gx = p*(gy - sum p*gy), gx = gy - p*sum(gy) elsewhere */
  float gv[15];
  for (int i = 0; i < 15; i++) gv[i] = (float)(0.3 * i - 2.0);
  tt_tensor *g = tt_tensor_from_data(TT_F32, TT_DIMS(3, 5), gv, TT_CPU);
  for (int log_ = 0; log_ < 2; log_++) {
    tt_tensor *y = log_ ? lp : p;
    TH_OK(tt_backward(y, g, true));
    double want[15];
    for (int r = 0; r < 3; r++) {
      double dot = 0, sum = 0;
      for (int j = 0; j < 5; j++) {
        dot += rp[r * 5 + j] * gv[r * 5 + j];
        sum += gv[r * 5 + j];
      }
      for (int j = 0; j < 5; j++) {
        int i = r * 5 + j;
        want[i] = r == 1 ? 0.0 : log_ ? gv[i] - rp[i] * sum : rp[i] * (gv[i] - dot);
      }
    }
    th_assert_ref(log_ ? "log_softmax grad with -inf" : "softmax grad with -inf", x->grad, want, 1e-6, 1e-5);
    tt_zero_grad(x);
  }
  /* finite differences: softmax directly, log_softmax through a clamp of its -inf outputs */
  sm_case c = {1, false};
  th_gradcheck("softmax grad with -inf", f_softmax, 1, &x, &c, 1e-2, 1e-3, 1e-2, 15);
  th_gradcheck("log_softmax grad with -inf", f_log_softmax_clamped, 1, &x, NULL, 1e-2, 1e-3, 1e-2, 15);
  free(rp); free(rl);
  tt_tensor_unref(x); tt_tensor_unref(p); tt_tensor_unref(lp); tt_tensor_unref(g);
}
END_TEST

/* ======================= attention ======================= */

static bool ref_visible(const tt_attention_params *p, int64_t t, int64_t s) {
  if (!p->causal) return true;
  int64_t i = p->q_offset + t;
  return s <= i || (i < p->n_unmasked && s < p->n_unmasked);
}

typedef struct {
  double *out, *P;              /* [BH, Tq, dv], [BH, Tq, Tk] */
  double *gq, *gk, *gv;         /* for gout (when given) */
} attn_ref;

/* Straight from the definition in double, masked entries set to -inf before the softmax. */
static attn_ref ref_attention(const tt_tensor *q, const tt_tensor *k, const tt_tensor *v,
                              const tt_attention_params *p, const tt_tensor *gout) {
  int nd = q->ndim;
  int64_t Tq = q->shape[nd - 2], d = q->shape[nd - 1], Tk = k->shape[nd - 2], dv = v->shape[nd - 1];
  int64_t BH = tt_tensor_numel(q) / (Tq * d);
  attn_ref r = {th_ref_alloc(BH * Tq * dv), th_ref_alloc(BH * Tq * Tk), NULL, NULL, NULL};
  if (gout) {
    r.gq = th_ref_alloc(BH * Tq * d);
    r.gk = th_ref_alloc(BH * Tk * d);
    r.gv = th_ref_alloc(BH * Tk * dv);
  }
  double *S = th_ref_alloc(Tk), *gP = th_ref_alloc(Tk);
  for (int64_t h = 0; h < BH; h++)
    for (int64_t t = 0; t < Tq; t++) {
      double m = -INFINITY, sum = 0;
      for (int64_t s = 0; s < Tk; s++) {
        double acc = 0;
        for (int64_t j = 0; j < d; j++)
          acc += tt_tensor_get(q, (h * Tq + t) * d + j) * tt_tensor_get(k, (h * Tk + s) * d + j);
        S[s] = ref_visible(p, t, s) ? acc * p->scale : -INFINITY;
        m = fmax(m, S[s]);
      }
      for (int64_t s = 0; s < Tk; s++) sum += exp(S[s] - m);
      double *P = r.P + (h * Tq + t) * Tk;
      for (int64_t s = 0; s < Tk; s++) P[s] = exp(S[s] - m) / sum;
      for (int64_t c = 0; c < dv; c++) {
        double acc = 0;
        for (int64_t s = 0; s < Tk; s++) acc += P[s] * tt_tensor_get(v, (h * Tk + s) * dv + c);
        r.out[(h * Tq + t) * dv + c] = acc;
      }
      if (!gout) continue;
      double dot = 0;
      for (int64_t s = 0; s < Tk; s++) {
        double acc = 0;
        for (int64_t c = 0; c < dv; c++)
          acc += tt_tensor_get(gout, (h * Tq + t) * dv + c) * tt_tensor_get(v, (h * Tk + s) * dv + c);
        gP[s] = acc;
        dot += acc * P[s];
      }
      for (int64_t s = 0; s < Tk; s++) {
        double gs = P[s] * (gP[s] - dot) * p->scale;
        for (int64_t j = 0; j < d; j++) {
          r.gq[(h * Tq + t) * d + j] += gs * tt_tensor_get(k, (h * Tk + s) * d + j);
          r.gk[(h * Tk + s) * d + j] += gs * tt_tensor_get(q, (h * Tq + t) * d + j);
        }
        for (int64_t c = 0; c < dv; c++)
          r.gv[(h * Tk + s) * dv + c] += P[s] * tt_tensor_get(gout, (h * Tq + t) * dv + c);
      }
    }
  free(S);
  free(gP);
  return r;
}

static void ref_free(attn_ref *r) {
  free(r->out); free(r->P); free(r->gq); free(r->gk); free(r->gv);
}

typedef struct {
  int nd;
  int64_t lead[2];   /* leading dims (nd - 2 of them) */
  int64_t Tq, Tk, d, dv;
  bool causal;
  int64_t q_offset, n_unmasked;
  double scale;      /* 0: 1/sqrt(d) */
} attn_case;

static void case_shapes(const attn_case *c, int64_t *sq, int64_t *sk, int64_t *sv) {
  for (int i = 0; i < c->nd - 2; i++) sq[i] = sk[i] = sv[i] = c->lead[i];
  sq[c->nd - 2] = c->Tq; sq[c->nd - 1] = c->d;
  sk[c->nd - 2] = c->Tk; sk[c->nd - 1] = c->d;
  sv[c->nd - 2] = c->Tk; sv[c->nd - 1] = c->dv;
}

static tt_attention_params case_params(const attn_case *c) {
  return (tt_attention_params){.scale = (float)(c->scale ? c->scale : 1.0 / sqrt((double)c->d)),
                               .causal = c->causal, .q_offset = c->q_offset, .n_unmasked = c->n_unmasked};
}

static const attn_case cases[] = {
    {4, {2, 3}, 5, 7, 4, 6, false, 0, 0, 0},          /* Tq != Tk, d != dv, 6 heads (parallel) */
    {4, {1, 3}, 9, 9, 8, 8, true, 0, 0, 0},           /* causal, 3 heads (one at a time) */
    {4, {2, 2}, 9, 9, 5, 3, true, 0, 4, 0},           /* causal with an n_unmasked block */
    {4, {2, 2}, 3, 8, 4, 4, true, 5, 0, 0},           /* the last 3 positions against a cache */
    {4, {1, 2}, 4, 11, 4, 5, true, 7, 9, 0},          /* q_offset inside and past n_unmasked */
    {3, {2, 0}, 12, 12, 8, 8, false, 0, 0, 0},        /* the VQGAN block: [B, HW, C], one head */
    {2, {0, 0}, 6, 10, 3, 2, false, 0, 0, 0.7},       /* no leading dims, explicit scale */
    {4, {2, 2}, 150, 150, 16, 12, true, 0, 20, 0},    /* several causal row blocks */
    {3, {1, 0}, 300, 300, 24, 24, false, 0, 0, 0},    /* one head, many rows */
    {3, {1, 0}, 600, 8000, 4, 3, false, 0, 0, 0},     /* no-grad scores beyond one block's budget */
};

START_TEST(test_attention_values) {
  for (size_t n = 0; n < sizeof cases / sizeof *cases; n++) {
    const attn_case *c = &cases[n];
    int64_t sq[4], sk[4], sv[4];
    case_shapes(c, sq, sk, sv);
    tt_tensor *q = th_leaf(100 + n, c->nd, sq, 1.0f), *k = th_leaf(200 + n, c->nd, sk, 1.0f),
              *v = th_leaf(300 + n, c->nd, sv, 1.0f);
    tt_attention_params p = case_params(c);
    int64_t osh[4];
    memcpy(osh, sq, sizeof osh);
    osh[c->nd - 1] = c->dv;
    tt_tensor *g = th_randn(400 + n, c->nd, osh, 1.0f);
    attn_ref r = ref_attention(q, k, v, &p, g);
    char name[80];
    for (int grad = 0; grad < 2; grad++) {   /* without and with a recorded node (probs kept) */
      bool prev = tt_grad_set_enabled(grad);
      tt_tensor *o = tt_attention(q, k, v, &p);
      tt_grad_set_enabled(prev);
      TH_NN(o);
      ck_assert_int_eq(o->ndim, c->nd);
      ck_assert_int_eq(o->shape[c->nd - 1], c->dv);
      snprintf(name, sizeof name, "attention case %zu%s", n, grad ? " (grad)" : "");
      th_assert_ref(name, o, r.out, 2e-6, 2e-5);
      ck_assert(grad ? o->grad_fn != NULL : o->grad_fn == NULL);
      if (grad) {
        TH_OK(tt_backward(o, g, false));
        snprintf(name, sizeof name, "attention case %zu gq", n);
        th_assert_ref(name, q->grad, r.gq, 1e-5, 1e-4);
        snprintf(name, sizeof name, "attention case %zu gk", n);
        th_assert_ref(name, k->grad, r.gk, 1e-5, 1e-4);
        snprintf(name, sizeof name, "attention case %zu gv", n);
        th_assert_ref(name, v->grad, r.gv, 1e-5, 1e-4);
        tt_zero_grad(q); tt_zero_grad(k); tt_zero_grad(v);
      }
      tt_tensor_unref(o);
    }
    ref_free(&r);
    tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v); tt_tensor_unref(g);
  }
  ck_assert_int_eq(tt_autograd_live_nodes(), 0);
}
END_TEST

static tt_tensor *f_attention(tt_tensor *const *in, void *ud) {
  tt_attention_params p = case_params(ud);
  return tt_attention(in[0], in[1], in[2], &p);
}

START_TEST(test_attention_grads) {
  for (size_t n = 0; n < 7; n++) {   /* the small cases */
    const attn_case *c = &cases[n];
    int64_t sq[4], sk[4], sv[4];
    case_shapes(c, sq, sk, sv);
    tt_tensor *in[3] = {th_leaf(500 + n, c->nd, sq, 1.0f), th_leaf(600 + n, c->nd, sk, 1.0f),
                        th_leaf(700 + n, c->nd, sv, 1.0f)};
    char name[64];
    snprintf(name, sizeof name, "attention grad case %zu", n);
    th_gradcheck(name, f_attention, 3, in, (void *)c, 1e-2, 1e-3, 1e-2, 48);
    for (int i = 0; i < 3; i++) tt_tensor_unref(in[i]);
  }
  /* only some inputs need a gradient: the others get none and the rest stay right */
  const attn_case *c = &cases[2];
  int64_t sq[4], sk[4], sv[4];
  case_shapes(c, sq, sk, sv);
  tt_tensor *in[3] = {th_randn(800, c->nd, sq, 1.0f), th_leaf(801, c->nd, sk, 1.0f), th_randn(802, c->nd, sv, 1.0f)};
  th_gradcheck("attention grad, k only", f_attention, 3, in, (void *)c, 1e-2, 1e-3, 1e-2, 48);
  ck_assert_ptr_null(in[0]->grad);
  for (int i = 0; i < 3; i++) tt_tensor_unref(in[i]);
}
END_TEST

/* The kernel's saved probabilities: rows sum to 1, exact zeros where masked,
 * the reference values, and the same output with and without them. */
START_TEST(test_attention_probs) {
  tt_attention_fwd_fn f = TT_KERNEL(TT_CPU, attention_fwd);
  TH_NN(f);
  for (size_t n = 0; n < sizeof cases / sizeof *cases; n++) {
    const attn_case *c = &cases[n];
    int64_t sq[4], sk[4], sv[4];
    case_shapes(c, sq, sk, sv);
    tt_tensor *q = th_randn(900 + n, c->nd, sq, 1.0f), *k = th_randn(910 + n, c->nd, sk, 1.0f),
              *v = th_randn(920 + n, c->nd, sv, 1.0f);
    int64_t BH = tt_tensor_numel(q) / (c->Tq * c->d);
    tt_attention_params p = case_params(c);
    tt_tensor *q3 = tt_reshape(q, TT_DIMS(BH, c->Tq, c->d)), *k3 = tt_reshape(k, TT_DIMS(BH, c->Tk, c->d)),
              *v3 = tt_reshape(v, TT_DIMS(BH, c->Tk, c->dv));
    tt_tensor *o1 = tt_tensor_new(TT_F32, TT_DIMS(BH, c->Tq, c->dv), TT_CPU),
              *o2 = tt_tensor_new(TT_F32, TT_DIMS(BH, c->Tq, c->dv), TT_CPU),
              *P = tt_full(TT_F32, TT_DIMS(BH, c->Tq, c->Tk), NAN, TT_CPU);
    TH_OK(f(&p, q3, k3, v3, o1, P));
    TH_OK(f(&p, q3, k3, v3, o2, NULL));
    char name[64];
    snprintf(name, sizeof name, "attention case %zu without probs", n);
    th_assert_close(name, o1, o2, 1e-6);
    attn_ref r = ref_attention(q, k, v, &p, NULL);
    snprintf(name, sizeof name, "attention case %zu probs", n);
    th_assert_ref(name, P, r.P, 1e-6, 1e-5);
    for (int64_t h = 0; h < BH; h++)
      for (int64_t t = 0; t < c->Tq; t++) {
        double s = 0;
        for (int64_t j = 0; j < c->Tk; j++) {
          float pv = tt_f32(P)[(h * c->Tq + t) * c->Tk + j];
          if (!ref_visible(&p, t, j)) ck_assert_msg(pv == 0.0f, "case %zu: masked prob [%lld, %lld] = %g", n,
                                                     (long long)t, (long long)j, (double)pv);
          s += pv;
        }
        ck_assert_msg(fabs(s - 1) < 1e-5, "case %zu: probs row %lld of head %lld sums to %.9g", n, (long long)t,
                      (long long)h, s);
      }
    ref_free(&r);
    tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v); tt_tensor_unref(q3); tt_tensor_unref(k3);
    tt_tensor_unref(v3); tt_tensor_unref(o1); tt_tensor_unref(o2); tt_tensor_unref(P);
  }
}
END_TEST

/* Causal: a query never depends on later keys or values; n_unmasked: the first
 * n_unmasked queries do. */
START_TEST(test_attention_causal_mask) {
  int64_t T = 10, d = 4, nu = 4;
  tt_tensor *q = th_randn(1000, TT_DIMS(2, T, d), 1.0f), *k = th_randn(1001, TT_DIMS(2, T, d), 1.0f),
            *v = th_randn(1002, TT_DIMS(2, T, d), 1.0f);
  for (int unm = 0; unm < 2; unm++) {
    tt_attention_params p = {.scale = 0.5f, .causal = true, .n_unmasked = unm ? nu : 0};
    tt_tensor *o = tt_attention(q, k, v, &p);
    TH_NN(o);
    for (int64_t s = 0; s < T; s++) {
      /* change key and value s of batch 1 */
      tt_tensor *k2 = tt_clone(k), *v2 = tt_clone(v);
      for (int64_t j = 0; j < d; j++) {
        tt_f32(k2)[(T + s) * d + j] += 3.0f;
        tt_f32(v2)[(T + s) * d + j] -= 2.0f;
      }
      tt_tensor *o2 = tt_attention(q, k2, v2, &p);
      TH_NN(o2);
      for (int64_t t = 0; t < T; t++) {
        bool vis = s <= t || (unm && t < nu && s < nu);
        double diff = 0;
        for (int64_t j = 0; j < d; j++) {
          diff = fmax(diff, fabs(tt_f32(o)[(T + t) * d + j] - tt_f32(o2)[(T + t) * d + j]));
          /* batch 0 untouched */
          ck_assert(tt_f32(o)[t * d + j] == tt_f32(o2)[t * d + j]);
        }
        if (vis) ck_assert_msg(diff > 1e-4, "n_unmasked %d: query %lld ignores visible key %lld", unm ? (int)nu : 0,
                               (long long)t, (long long)s);
        else ck_assert_msg(diff == 0, "n_unmasked %d: query %lld sees masked key %lld (diff %g)", unm ? (int)nu : 0,
                           (long long)t, (long long)s, diff);
      }
      tt_tensor_unref(k2); tt_tensor_unref(v2); tt_tensor_unref(o2);
    }
    tt_tensor_unref(o);
  }
  tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v);
}
END_TEST

/* KV-cache decoding: query t of a full causal pass equals a single query at
 * q_offset = t over keys [0, t] — the GPT's step with past length t. */
START_TEST(test_attention_q_offset_matches_full_pass) {
  int64_t lengths[] = {1, 2, 5, 17, 64, 65, 130};
  int64_t B = 2, H = 3, d = 8;
  for (size_t n = 0; n < sizeof lengths / sizeof *lengths; n++) {
    int64_t T = lengths[n];
    for (int unm = 0; unm < 2; unm++) {
      int64_t nu = unm ? (T + 1) / 2 : 0;
      tt_tensor *q = th_randn(1100 + n, TT_DIMS(B, H, T, d), 1.0f), *k = th_randn(1200 + n, TT_DIMS(B, H, T, d), 1.0f),
                *v = th_randn(1300 + n, TT_DIMS(B, H, T, d), 1.0f);
      tt_attention_params p = {.scale = (float)(1.0 / sqrt((double)d)), .causal = true, .n_unmasked = nu};
      tt_tensor *full = tt_attention(q, k, v, &p);
      TH_NN(full);
      int64_t steps[3] = {T - 1, T / 2, 0};
      for (int si = 0; si < 3; si++) {
        int64_t t = steps[si];
        /* past = keys [0, t), the new token at t: k, v [B, H, t + 1, d], q [B, H, 1, d] */
        tt_tensor *qt = tt_slice(q, 2, t, t + 1, 1), *kt = tt_slice(k, 2, 0, t + 1, 1),
                  *vt = tt_slice(v, 2, 0, t + 1, 1);
        tt_attention_params pd = p;
        pd.q_offset = t;
        tt_tensor *one = tt_attention(qt, kt, vt, &pd);
        TH_NN(one);
        tt_tensor *row = tt_slice(full, 2, t, t + 1, 1);
        char name[80];
        snprintf(name, sizeof name, "T %lld, n_unmasked %lld: query %lld alone vs full pass", (long long)T,
                 (long long)nu, (long long)t);
        if (t < nu) {
          /* inside the unmasked block a query also sees keys after it: compare with all T keys */
          tt_tensor *one_all = tt_attention(qt, k, v, &pd);
          th_assert_close(name, one_all, row, 2e-6);
          tt_tensor_unref(one_all);
        } else {
          th_assert_close(name, one, row, 2e-6);
        }
        /* the last query sees every key: the same as no mask at all */
        if (t == T - 1) {
          tt_attention_params pn = {.scale = p.scale};
          tt_tensor *nomask = tt_attention(qt, kt, vt, &pn);
          th_assert_close("last query vs unmasked", nomask, row, 2e-6);
          tt_tensor_unref(nomask);
        }
        tt_tensor_unref(qt); tt_tensor_unref(kt); tt_tensor_unref(vt); tt_tensor_unref(one); tt_tensor_unref(row);
      }
      tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v); tt_tensor_unref(full);
    }
  }
}
END_TEST

/* Without gradients, K and V that are strided heads (a KV cache [B, H, Tmax, d]
 * sliced to the keys seen so far) are read in place: bit for bit what their
 * contiguous copies give; layouts that are not (a transposed K, heads that do
 * not step evenly) still give the same values through a copy. */
START_TEST(test_attention_strided_kv_in_place) {
  int64_t B = 2, H = 3, Tmax = 40, d = 16;
  tt_tensor *kc = th_randn(1500, TT_DIMS(B, H, Tmax, d), 1.0f), *vc = th_randn(1501, TT_DIMS(B, H, Tmax, d), 1.0f);
  tt_tensor *q = th_randn(1502, TT_DIMS(B, H, 1, d), 1.0f);
  int64_t lens[] = {1, 7, 33, 40};
  for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
    int64_t L = lens[i];
    tt_tensor *k = tt_slice(kc, 2, 0, L, 1), *v = tt_slice(vc, 2, 0, L, 1);
    tt_tensor *k2 = tt_contiguous(k), *v2 = tt_contiguous(v);
    TH_NN(k2);
    TH_NN(v2);
    ck_assert(!tt_tensor_is_contiguous(k) || L == Tmax);
    tt_attention_params p = {.scale = 0.25f, .causal = true, .q_offset = L - 1};
    tt_tensor *a = tt_attention(q, k, v, &p), *b = tt_attention(q, k2, v2, &p);
    TH_NN(a);
    TH_NN(b);
    char name[64];
    snprintf(name, sizeof name, "cache slice of %lld keys in place vs copied", (long long)L);
    th_assert_close(name, a, b, 0);
    tt_tensor_unref(a); tt_tensor_unref(b); tt_tensor_unref(k); tt_tensor_unref(v); tt_tensor_unref(k2);
    tt_tensor_unref(v2);
  }
  /* not strided heads: K as the transpose of a [B, H, d, T] tensor, V with the heads
   * dims swapped ([H, B] -> [B, H]) */
  tt_tensor *kt = th_randn(1503, TT_DIMS(B, H, d, 9), 1.0f), *vs = th_randn(1504, TT_DIMS(H, B, 9, d), 1.0f);
  tt_tensor *k = tt_transpose(kt, 2, 3), *v = tt_transpose(vs, 0, 1);
  tt_tensor *k2 = tt_contiguous(k), *v2 = tt_contiguous(v);
  tt_attention_params p = {.scale = 0.25f};
  tt_tensor *a = tt_attention(q, k, v, &p), *b = tt_attention(q, k2, v2, &p);
  TH_NN(a);
  TH_NN(b);
  th_assert_close("transposed K, swapped heads of V", a, b, 0);
  tt_tensor *all[] = {kc, vc, q, kt, vs, k, v, k2, v2, a, b};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
}
END_TEST

/* With gradients the probabilities are kept on the node; without, nothing of
 * [BH, Tq, Tk] outlives the call. */
START_TEST(test_attention_memory) {
  int64_t BH = 4, T = 256, d = 16;
  tt_tensor *q = th_leaf(1400, TT_DIMS(BH, T, d), 1.0f), *k = th_leaf(1401, TT_DIMS(BH, T, d), 1.0f),
            *v = th_leaf(1402, TT_DIMS(BH, T, d), 1.0f);
  tt_attention_params p = {.scale = 0.25f, .causal = true};
  size_t probs = sizeof(float) * (size_t)(BH * T * T), outb = sizeof(float) * (size_t)(BH * T * d);
  size_t before = tt_memory_in_use(TT_CPU);
  tt_tensor *o = tt_attention(q, k, v, &p);
  size_t with_grad = tt_memory_in_use(TT_CPU) - before;
  tt_tensor_unref(o);
  ck_assert_msg(with_grad >= probs, "grad mode keeps %zu bytes, expected at least the %zu of probs", with_grad, probs);
  ck_assert_int_eq(tt_memory_in_use(TT_CPU), before);
  TT_NO_GRAD_BEGIN;
  o = tt_attention(q, k, v, &p);
  TT_NO_GRAD_END;
  size_t no_grad = tt_memory_in_use(TT_CPU) - before;
  ck_assert_msg(no_grad == outb, "no-grad attention keeps %zu bytes, expected only the output's %zu", no_grad, outb);
  ck_assert_ptr_null(o->grad_fn);
  tt_tensor_unref(o);
  tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v);
}
END_TEST

START_TEST(test_attention_errors) {
  tt_attention_params p = {.scale = 0.5f, .causal = true};
  tt_tensor *q = th_randn(1, TT_DIMS(2, 4, 5, 8), 1.0f), *k = th_randn(2, TT_DIMS(2, 4, 7, 8), 1.0f),
            *v = th_randn(3, TT_DIMS(2, 4, 7, 6), 1.0f);
  tt_tensor *kd = th_randn(4, TT_DIMS(2, 4, 7, 6), 1.0f), *vt = th_randn(5, TT_DIMS(2, 4, 6, 6), 1.0f),
            *kl = th_randn(6, TT_DIMS(2, 3, 7, 8), 1.0f), *k3 = th_randn(7, TT_DIMS(8, 7, 8), 1.0f),
            *q1 = th_randn(8, TT_DIMS(8), 1.0f);
  struct { tt_tensor *q, *k, *v; int64_t q_offset; const char *want[3]; } bad[] = {
      {q, kd, v, 0, {"different head sizes", "[2, 4, 5, 8]", "[2, 4, 7, 6]"}},
      {q, k, vt, 0, {"different lengths", "[2, 4, 7, 8]", "[2, 4, 6, 6]"}},
      {q, kl, v, 0, {"leading dims differ", "[2, 4, 5, 8]", "[2, 3, 7, 8]"}},
      {q, k3, v, 0, {"same number of dims", "[8, 7, 8]", "[2, 4, 5, 8]"}},
      {q1, q1, q1, 0, {"[..., T, d]", "[8]", "q [8]"}},
      {q, k, v, 3, {"beyond the last key", "q_offset 3", "positions 3..7"}},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    tt_attention_params pb = p;
    pb.q_offset = bad[i].q_offset;
    ck_assert_ptr_null(tt_attention(bad[i].q, bad[i].k, bad[i].v, &pb));
    for (int j = 0; j < 3; j++)
      ck_assert_msg(strstr(tt_error_message(), bad[i].want[j]), "case %zu: message \"%s\" lacks \"%s\"", i,
                    tt_error_message(), bad[i].want[j]);
  }
  /* q_offset + Tq == Tk is fine: the queries are the last positions */
  p.q_offset = 2;
  tt_tensor *o = tt_attention(q, k, v, &p);
  TH_NN(o);
  ck_assert_ptr_null(tt_attention(q, k, v, NULL));
  ck_assert_msg(strstr(tt_error_message(), "params"), "message: %s", tt_error_message());
  tt_tensor_unref(o);
  tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v); tt_tensor_unref(kd); tt_tensor_unref(vt);
  tt_tensor_unref(kl); tt_tensor_unref(k3); tt_tensor_unref(q1);
}
END_TEST

/* Against PyTorch (tests/data/gen_norm.py): softmax / log_softmax with -inf
 * entries along a middle dim, minGPT's masked attention with an n_unmasked
 * block, its forward_with_past step, and the VQGAN AttnBlock's formulation. */
START_TEST(test_softmax_vs_pytorch) {
  torch_ref *r = torchref_load();
  for (int log_ = 0; log_ < 2; log_++) {
    tt_tensor *x = torchref_leaf(r, "sm.x");
    tt_tensor *y = log_ ? tt_log_softmax(x, 1) : tt_softmax(x, 1);
    TH_NN(y);
    const char *tag = log_ ? "log_softmax" : "softmax";
    char name[64];
    snprintf(name, sizeof name, "sm.%s.y", tag);
    /* element-wise, so the -inf log-probabilities compare equal */
    const tt_tensor *want = torchref_get(r, name);
    double *ref = th_ref_alloc(tt_tensor_numel(want));
    for (int64_t i = 0; i < tt_tensor_numel(want); i++) ref[i] = tt_f32(want)[i];
    ck_assert_int_eq(isinf(ref[7]) && ref[7] < 0, log_);   /* x[0, 1, 2] = -inf */
    th_assert_ref(log_ ? "log_softmax vs PyTorch" : "softmax vs PyTorch", y, ref, 2e-6, 0);
    free(ref);
    TH_OK(tt_backward(y, torchref_get(r, "sm.gy"), false));
    snprintf(name, sizeof name, "sm.%s.gx", tag);
    th_assert_close(log_ ? "log_softmax grad vs PyTorch" : "softmax grad vs PyTorch", x->grad,
                    torchref_get(r, name), 1e-5);
    tt_tensor_unref(x);
    tt_tensor_unref(y);
  }
  torchref_free(r);
}
END_TEST

START_TEST(test_attention_vs_pytorch) {
  torch_ref *r = torchref_load();
  /* minGPT: [B, nh, T, hs], causal, n_unmasked 3 */
  tt_tensor *q = torchref_leaf(r, "gpt.q"), *k = torchref_leaf(r, "gpt.k"), *v = torchref_leaf(r, "gpt.v");
  tt_attention_params p = {.scale = 0.5f, .causal = true, .n_unmasked = 3};
  tt_tensor *y = tt_attention(q, k, v, &p);
  TH_NN(y);
  th_assert_close("minGPT attention vs PyTorch", y, torchref_get(r, "gpt.y"), 1e-5);
  TH_OK(tt_backward(y, torchref_get(r, "gpt.gy"), false));
  th_assert_close("minGPT attention gq vs PyTorch", q->grad, torchref_get(r, "gpt.gq"), 2e-5);
  th_assert_close("minGPT attention gk vs PyTorch", k->grad, torchref_get(r, "gpt.gk"), 2e-5);
  th_assert_close("minGPT attention gv vs PyTorch", v->grad, torchref_get(r, "gpt.gv"), 2e-5);
  tt_tensor_unref(y);
  /* forward_with_past: the new token is the last position and sees every key */
  tt_tensor *qn = torchref_get(r, "gpt.past.q");
  tt_attention_params pp = {.scale = 0.5f, .causal = true, .q_offset = k->shape[2] - 1};
  y = tt_attention(qn, k, v, &pp);
  TH_NN(y);
  th_assert_close("minGPT past step vs PyTorch", y, torchref_get(r, "gpt.past.y"), 1e-5);
  tt_tensor_unref(y);
  tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v);
  /* VQGAN AttnBlock: q, k, v [B, C, H, W] -> [B, HW, C], one head, scale C^-1/2 */
  q = torchref_leaf(r, "vq.q");
  k = torchref_leaf(r, "vq.k");
  v = torchref_leaf(r, "vq.v");
  int64_t B = q->shape[0], C = q->shape[1], HW = q->shape[2] * q->shape[3];
  tt_tensor *in[3] = {q, k, v}, *t[3];
  for (int i = 0; i < 3; i++) {
    tt_tensor *f = tt_reshape(in[i], TT_DIMS(B, C, HW));
    t[i] = tt_transpose(f, 1, 2);   /* [B, HW, C] */
    tt_tensor_unref(f);
  }
  tt_attention_params pv = {.scale = (float)(1.0 / sqrt((double)C))};
  tt_tensor *o = tt_attention(t[0], t[1], t[2], &pv);   /* [B, HW, C] */
  TH_NN(o);
  tt_tensor *h = tt_transpose(o, 1, 2);                 /* [B, C, HW] */
  th_assert_close("VQGAN attention vs PyTorch", h, torchref_get(r, "vq.h"), 1e-5);
  TH_OK(tt_backward(h, torchref_get(r, "vq.gy"), false));
  th_assert_close("VQGAN attention gq vs PyTorch", q->grad, torchref_get(r, "vq.gq"), 2e-5);
  th_assert_close("VQGAN attention gk vs PyTorch", k->grad, torchref_get(r, "vq.gk"), 2e-5);
  th_assert_close("VQGAN attention gv vs PyTorch", v->grad, torchref_get(r, "vq.gv"), 2e-5);
  for (int i = 0; i < 3; i++) tt_tensor_unref(t[i]);
  tt_tensor_unref(o); tt_tensor_unref(h); tt_tensor_unref(q); tt_tensor_unref(k); tt_tensor_unref(v);
  torchref_free(r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("ops_attention");
  TCase *tc = tcase_create("softmax");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_softmax_values_any_dim);
  tcase_add_test(tc, test_softmax_grads);
  tcase_add_test(tc, test_softmax_neg_inf);
  tcase_add_test(tc, test_softmax_vs_pytorch);
  suite_add_tcase(s, tc);
  TCase *ta = tcase_create("attention");
  tcase_set_timeout(ta, 240);
  tcase_add_test(ta, test_attention_values);
  tcase_add_test(ta, test_attention_grads);
  tcase_add_test(ta, test_attention_probs);
  tcase_add_test(ta, test_attention_causal_mask);
  tcase_add_test(ta, test_attention_q_offset_matches_full_pass);
  tcase_add_test(ta, test_attention_memory);
  tcase_add_test(ta, test_attention_strided_kv_in_place);
  tcase_add_test(ta, test_attention_errors);
  tcase_add_test(ta, test_attention_vs_pytorch);
  suite_add_tcase(s, ta);
  return th_run(s);
}
