/* ops/gemm.c — matmul (batched, broadcasting, transposes folded into the GEMM
 * flags) and linear, forward and backward, in f32 or, under the compute
 * precision switch, with bf16 operands and f32 accumulation (mixed-precision
 * training: the tensors stay f32, only the products round). */
#include "config.h"
#include <stdio.h>
#include <string.h>
#include "common.h"

/* ---- compute precision ---- */

static tt_dtype compute_precision = TT_F32;

tt_status tt_set_compute_precision(tt_dtype dt) {
  if (dt != TT_F32 && dt != TT_BF16)
    return tt_error(TT_ERR_INVALID, "compute precision: expected f32 or bf16, found %s", tt_dtype_name(dt));
  /* the CPU's kernels first: the CUDA backend is asked (and so started) only without them */
  if (dt == TT_BF16 && !tt_backend_supports(TT_CPU, "gemm_bf16") && !tt_backend_supports(TT_CUDA, "gemm_bf16")) {
    compute_precision = TT_F32;
    return tt_error(TT_ERR_UNSUPPORTED, "compute precision bf16: no bf16 GEMM on this CPU (%s) and no CUDA device",
                    tt_gemm_bf16_isa());
  }
  compute_precision = dt;
  return TT_OK;
}

tt_dtype tt_compute_precision(void) { return compute_precision; }

const char *tt_gemm_bf16_isa(void) {
  if (!tt_backend_supports(TT_CPU, "gemm_bf16_isa")) return "no bf16 GEMM kernel in this build";
  tt_gemm_bf16_isa_fn f = TT_KERNEL(TT_CPU, gemm_bf16_isa);
  return f ? f() : "no bf16 GEMM kernel in this build";
}

/* whether products on dev run in bf16 now: where dev has the bf16 kernels (the
 * CPU's AMX / AVX512-BF16 ones, cuBLAS on CUDA); a device without them keeps f32, said once */
static bool use_bf16(tt_device dev) {
  if (compute_precision != TT_BF16) return false;
  if (tt_backend_supports(dev, "gemm_bf16")) return true;
  static bool said[TT_DEVICE_COUNT];
  if ((unsigned)dev < TT_DEVICE_COUNT && !said[dev]) {
    said[dev] = true;
    fprintf(stderr, "taming: compute precision bf16: no bf16 GEMM on %s; its GEMMs stay f32\n", tt_device_name(dev));
  }
  return false;
}

/* How one operand feeds the GEMM: the last two dims as a (possibly transposed)
 * matrix with leading dimension ld, the batch dims as one uniform stride. */
typedef struct {
  tt_tensor *t;    /* the tensor actually used (a reference) */
  bool trans;
  int64_t ld, bstride;
} mat_view;

/* t has shape [batch..., r, c] already broadcast to nb batch dims of bshape. */
static tt_status as_matrix(tt_tensor *t, int nb, const int64_t *bshape, mat_view *mv) {
  int nd = t->ndim;
  int64_t r = t->shape[nd - 2], c = t->shape[nd - 1];
  int64_t s0 = t->stride[nd - 2], s1 = t->stride[nd - 1];
  bool ok = true;
  if ((s1 == 1 || c == 1) && s0 >= (c > 1 ? c : 1)) { mv->trans = false; mv->ld = r == 1 ? (c > 1 ? c : 1) : s0; }
  else if ((s0 == 1 || r == 1) && s1 >= (r > 1 ? r : 1)) { mv->trans = true; mv->ld = c == 1 ? (r > 1 ? r : 1) : s1; }
  else ok = false;
  /* batch dims must collapse to one stride (all broadcast, or uniformly spaced) */
  int64_t bs = -1, expect = -1;
  for (int i = nb - 1; ok && i >= 0; i--) {
    if (bshape[i] == 1) continue;
    int64_t st = t->stride[i];
    if (bs < 0) { bs = st; expect = st * bshape[i]; continue; }
    if (bs == 0 && st == 0) continue;
    if (st != expect) ok = false;
    expect = st * bshape[i];
  }
  if (ok) {
    mv->t = tt_tensor_ref(t);
    mv->bstride = bs < 0 ? 0 : bs;
    if (mv->ld == 0) mv->ld = 1;
    return TT_OK;
  }
  tt_tensor *c2 = tt_tensor_new(t->dtype, nd, t->shape, t->device);
  if (!c2) return tt_last_status();
  if (tt_copy_(c2, t) != TT_OK) {
    tt_tensor_unref(c2);
    return tt_last_status();
  }
  mv->t = c2;
  mv->trans = false;
  mv->ld = c > 0 ? c : 1;
  mv->bstride = r * c;
  return TT_OK;
}

/* C[b] = A[b] @ B[b] with a, b already broadcast to batch shape (views). */
static tt_tensor *matmul_raw(tt_tensor *a, tt_tensor *b, int nb, const int64_t *bshape, bool bf) {
  int64_t M = a->shape[a->ndim - 2], K = a->shape[a->ndim - 1], N = b->shape[b->ndim - 1];
  int64_t shape[TT_MAX_DIMS], batch = 1;
  for (int i = 0; i < nb; i++) { shape[i] = bshape[i]; batch *= bshape[i]; }
  shape[nb] = M;
  shape[nb + 1] = N;
  tt_tensor *out = tt_tensor_new(TT_F32, nb + 2, shape, a->device);
  if (!out) return NULL;
  mat_view va = {0}, vb = {0};
  tt_status s = as_matrix(a, nb, bshape, &va);
  if (s == TT_OK) s = as_matrix(b, nb, bshape, &vb);
  if (s == TT_OK) {
    const float *pa = tt_f32(va.t), *pb = tt_f32(vb.t);
    float *pc = tt_f32(out);
    if (batch == 1) {
      tt_gemm_fn f = bf ? TT_KERNEL(a->device, gemm_bf16) : TT_KERNEL(a->device, gemm);
      s = f ? f(va.trans, vb.trans, M, N, K, 1.0f, pa, va.ld, pb, vb.ld, 0.0f, pc, N) : tt_last_status();
    } else if (vb.bstride == 0 && !va.trans && va.bstride == M * va.ld && va.ld == K) {
      /* every batch shares B and A is densely packed: one tall GEMM */
      tt_gemm_fn f = bf ? TT_KERNEL(a->device, gemm_bf16) : TT_KERNEL(a->device, gemm);
      s = f ? f(false, vb.trans, batch * M, N, K, 1.0f, pa, K, pb, vb.ld, 0.0f, pc, N) : tt_last_status();
    } else {
      tt_gemm_batched_fn f = bf ? TT_KERNEL(a->device, gemm_bf16_batched) : TT_KERNEL(a->device, gemm_batched);
      s = f ? f(va.trans, vb.trans, M, N, K, 1.0f, pa, va.ld, va.bstride, pb, vb.ld, vb.bstride, 0.0f, pc, N,
                M * N, batch)
            : tt_last_status();
    }
  }
  tt_tensor_unref(va.t);
  tt_tensor_unref(vb.t);
  if (s != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  return out;
}

typedef struct {
  tt_tensor *a, *b;   /* the 2+-D operands as used (after 1-D promotion) */
  int nda, ndb;       /* original ranks */
  int64_t sa[TT_MAX_DIMS], sb[TT_MAX_DIMS];
  bool bf16;          /* the forward ran in bf16: so do the gradients' products */
} matmul_ctx;

static void matmul_release(tt_node *n) {
  matmul_ctx *c = n->ctx;
  tt_tensor_release(&c->a);
  tt_tensor_release(&c->b);
}

static tt_status matmul_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  matmul_ctx *c = n->ctx;
  if (!gy[0]) return TT_OK;
  tt_tensor *g = gy[0];   /* [..., M, N] */
  tt_status s = TT_OK;
  tt_dtype prec = compute_precision;
  compute_precision = c->bf16 ? TT_BF16 : TT_F32;
  if (tt_node_wants(n, 0)) {
    tt_tensor *bt = tt_transpose(c->b, -1, -2);
    tt_tensor *ga = bt ? tt_matmul(g, bt) : NULL;   /* [..., M, K] */
    tt_tensor *r = ga ? tt_sum_to(ga, c->nda, c->sa) : NULL;
    tt_tensor_unref(bt);
    tt_tensor_unref(ga);
    if (!r) s = tt_last_status();
    gx[0] = r;
  }
  if (s == TT_OK && tt_node_wants(n, 1)) {
    tt_tensor *at = tt_transpose(c->a, -1, -2);
    tt_tensor *gb = at ? tt_matmul(at, g) : NULL;   /* [..., K, N] */
    tt_tensor *r = gb ? tt_sum_to(gb, c->ndb, c->sb) : NULL;
    tt_tensor_unref(at);
    tt_tensor_unref(gb);
    if (!r) s = tt_last_status();
    gx[1] = r;
  }
  compute_precision = prec;
  return s;
}

static tt_tensor *matmul_nd(tt_tensor *a, tt_tensor *b) {
  tt_tensor *args[2] = {a, b};
  int64_t K = a->shape[a->ndim - 1];
  if (b->shape[b->ndim - 2] != K) {
    char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
    tt_error(TT_ERR_INVALID, "matmul: inner dims differ: %s @ %s", tt_tensor_shape_str(a, s1, sizeof s1),
             tt_tensor_shape_str(b, s2, sizeof s2));
    return NULL;
  }
  int nba = a->ndim - 2, nbb = b->ndim - 2, nb = nba > nbb ? nba : nbb;
  int64_t bshape[TT_MAX_DIMS];
  for (int i = 0; i < nb; i++) {
    int ia = i - (nb - nba), ib = i - (nb - nbb);
    int64_t x = ia >= 0 ? a->shape[ia] : 1, y = ib >= 0 ? b->shape[ib] : 1;
    if (x != y && x != 1 && y != 1) {
      char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
      tt_error(TT_ERR_INVALID, "matmul: batch dims of %s and %s do not broadcast",
               tt_tensor_shape_str(a, s1, sizeof s1), tt_tensor_shape_str(b, s2, sizeof s2));
      return NULL;
    }
    bshape[i] = x == 1 ? y : x;
  }
  bool bf = use_bf16(a->device);
  bool prev = tt_grad_set_enabled(false);
  int64_t esh[TT_MAX_DIMS];
  memcpy(esh, bshape, sizeof(int64_t) * (size_t)nb);
  esh[nb] = a->shape[a->ndim - 2];
  esh[nb + 1] = K;
  tt_tensor *ea = tt_expand(a, nb + 2, esh);
  esh[nb] = K;
  esh[nb + 1] = b->shape[b->ndim - 1];
  tt_tensor *eb = ea ? tt_expand(b, nb + 2, esh) : NULL;
  tt_tensor *out = eb ? matmul_raw(ea, eb, nb, bshape, bf) : NULL;
  tt_tensor_unref(ea);
  tt_tensor_unref(eb);
  tt_grad_set_enabled(prev);
  if (!out) return NULL;
  tt_node *n = tt_node_new("matmul", matmul_backward, matmul_release, 2, args, 1, sizeof(matmul_ctx));
  if (n) {
    matmul_ctx *c = n->ctx;
    c->a = tt_detach(a);
    c->b = tt_detach(b);
    c->nda = a->ndim;
    c->ndb = b->ndim;
    memcpy(c->sa, a->shape, sizeof c->sa);
    memcpy(c->sb, b->shape, sizeof c->sb);
    c->bf16 = bf;
    tt_node_attach(n, 0, out);
    tt_node_unref(n);
  }
  return out;
}

tt_tensor *tt_matmul(tt_tensor *a, tt_tensor *b) {
  TT_PROFILE_OP("matmul");
  tt_tensor *args[2] = {a, b};
  if (tt_check_f32("matmul", "a", a) || tt_check_f32("matmul", "b", b) || tt_check_same_device("matmul", 2, args))
    return NULL;
  if (a->ndim == 0 || b->ndim == 0) {
    tt_error(TT_ERR_INVALID, "matmul: operands must have at least 1 dim");
    return NULL;
  }
  if (a->ndim >= 2 && b->ndim >= 2) return matmul_nd(a, b);
  /* numpy promotion of 1-D operands, through differentiable views */
  tt_tensor *A = a->ndim == 1 ? tt_unsqueeze(a, 0) : tt_tensor_ref(a);
  tt_tensor *B = b->ndim == 1 ? tt_unsqueeze(b, 1) : tt_tensor_ref(b);
  tt_tensor *r = (A && B) ? matmul_nd(A, B) : NULL, *out = NULL;
  if (r) {
    int64_t sh[TT_MAX_DIMS];
    int nd = 0;
    for (int i = 0; i < r->ndim - 2; i++) sh[nd++] = r->shape[i];
    if (a->ndim != 1) sh[nd++] = r->shape[r->ndim - 2];
    if (b->ndim != 1) sh[nd++] = r->shape[r->ndim - 1];
    out = tt_reshape(r, nd, sh);
  }
  tt_tensor_unref(A);
  tt_tensor_unref(B);
  tt_tensor_unref(r);
  return out;
}

/* ---- linear ---- */

typedef struct {
  tt_tensor *x, *w;   /* x as [rows, in] */
  bool has_bias;
  bool bf16;          /* the forward ran in bf16: so do the gradients' products */
} linear_ctx;

static void linear_release(tt_node *n) {
  linear_ctx *c = n->ctx;
  tt_tensor_release(&c->x);
  tt_tensor_release(&c->w);
}

static tt_status linear_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  linear_ctx *c = n->ctx;
  if (!gy[0]) return TT_OK;
  int64_t rows = c->x->shape[0], in = c->x->shape[1], out = c->w->shape[0];
  tt_tensor *g = tt_contiguous(gy[0]);
  if (!g) return tt_last_status();
  tt_gemm_fn gemm = c->bf16 ? TT_KERNEL(g->device, gemm_bf16) : TT_KERNEL(g->device, gemm);
  tt_status s = gemm ? TT_OK : tt_last_status();
  if (s == TT_OK && tt_node_wants(n, 0)) {   /* gx [rows, in] = gy [rows, out] @ w [out, in] */
    tt_tensor *r = tt_tensor_new(TT_F32, n->in[0]->ndim, n->in[0]->shape, g->device);
    s = r ? gemm(false, false, rows, in, out, 1.0f, tt_f32(g), out, tt_f32(c->w), in, 0.0f, tt_f32(r), in)
          : tt_last_status();
    if (s == TT_OK) gx[0] = r; else tt_tensor_unref(r);
  }
  if (s == TT_OK && tt_node_wants(n, 1)) {   /* gw [out, in] = gy^T @ x */
    tt_tensor *r = tt_tensor_new(TT_F32, TT_DIMS(out, in), g->device);
    s = r ? gemm(true, false, out, in, rows, 1.0f, tt_f32(g), out, tt_f32(c->x), in, 0.0f, tt_f32(r), in)
          : tt_last_status();
    if (s == TT_OK) gx[1] = r; else tt_tensor_unref(r);
  }
  if (s == TT_OK && c->has_bias && tt_node_wants(n, 2)) {
    tt_tensor *g2 = tt_reshape(g, 2, (int64_t[]){rows, out});
    gx[2] = g2 ? tt_sum_dim(g2, 0, false) : NULL;
    tt_tensor_unref(g2);
    if (!gx[2]) s = tt_last_status();
  }
  tt_tensor_unref(g);
  return s;
}

tt_tensor *tt_linear(tt_tensor *x, tt_tensor *w, tt_tensor *bias) {
  TT_PROFILE_OP("linear");
  tt_tensor *args[3] = {x, w, bias};
  if (tt_check_f32("linear", "input", x) || tt_check_f32("linear", "weight", w) ||
      (bias && tt_check_f32("linear", "bias", bias)) || tt_check_same_device("linear", 3, args))
    return NULL;
  char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
  if (w->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != w->shape[1] ||
      (bias && (bias->ndim != 1 || bias->shape[0] != w->shape[0]))) {
    tt_error(TT_ERR_INVALID, "linear: input %s does not fit weight %s%s", tt_tensor_shape_str(x, s1, sizeof s1),
             tt_tensor_shape_str(w, s2, sizeof s2), bias ? " (or its bias)" : "");
    return NULL;
  }
  int64_t in = w->shape[1], out = w->shape[0], rows = tt_tensor_numel(x) / (in ? in : 1);
  bool bf = use_bf16(x->device);
  tt_gemm_fn gemm = bf ? TT_KERNEL(x->device, gemm_bf16) : TT_KERNEL(x->device, gemm);
  if (!gemm) return NULL;
  tt_tensor *xc = tt_contiguous(x), *wc = tt_contiguous(w);
  int64_t sh[TT_MAX_DIMS];
  memcpy(sh, x->shape, sizeof sh);
  sh[x->ndim - 1] = out;
  tt_tensor *y = (xc && wc) ? tt_tensor_new(TT_F32, x->ndim, sh, x->device) : NULL;
  tt_status s = y ? TT_OK : tt_last_status();
  if (s == TT_OK && bias) {
    bool prev = tt_grad_set_enabled(false);
    s = tt_copy_(y, bias);   /* broadcast the bias into every row, then accumulate */
    tt_grad_set_enabled(prev);
  }
  if (s == TT_OK)
    s = gemm(false, true, rows, out, in, 1.0f, tt_f32(xc), in, tt_f32(wc), in, bias ? 1.0f : 0.0f, tt_f32(y), out);
  if (s != TT_OK) {
    tt_tensor_unref(y);
    tt_tensor_unref(xc);
    tt_tensor_unref(wc);
    return NULL;
  }
  tt_node *n = tt_node_new("linear", linear_backward, linear_release, 3, args, 1, sizeof(linear_ctx));
  if (n) {
    linear_ctx *c = n->ctx;
    c->x = tt_tensor_view_of(xc, 2, (int64_t[]){rows, in}, NULL, xc->offset);
    c->w = tt_detach(wc);
    c->has_bias = bias != NULL;
    c->bf16 = bf;
    tt_node_attach(n, 0, y);
    tt_node_unref(n);
  }
  tt_tensor_unref(xc);
  tt_tensor_unref(wc);
  return y;
}
