/* cuda_parity.h — the helpers of check_cuda.c: copies between devices, the
 * max-difference comparison with its tolerance rule, and parity(), which runs an
 * op on CPU tensors and on their CUDA copies, forward and backward. Test-only;
 * included by check_cuda.c alone (static functions). */
#ifndef TAMING_TESTS_CUDA_PARITY_H
#define TAMING_TESTS_CUDA_PARITY_H

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

#define MAX_IN 16

/* ---- helpers ---- */

/* A copy of t on dev with no history; requires_grad as t. */
static tt_tensor *copy_to(tt_tensor *t, tt_device dev) {
  if (!t) return NULL;
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *c = tt_tensor_new(t->dtype, t->ndim, t->shape, dev);
  TH_NN(c);
  TH_OK(tt_copy_(c, t));
  tt_grad_set_enabled(prev);
  if (t->requires_grad) tt_tensor_set_requires_grad(c, true);
  return c;
}

/* The values of t (any device, dtype, layout) as a host double array. */
static double *host_values(tt_tensor *t, int64_t *n) {
  tt_tensor *h = copy_to(t, TT_CPU);
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *d = tt_cast(h, TT_F64);
  tt_grad_set_enabled(prev);
  TH_NN(d);
  *n = tt_tensor_numel(d);
  double *v = malloc(sizeof(double) * (size_t)(*n ? *n : 1));
  ck_assert_ptr_nonnull(v);
  TH_OK(tt_tensor_read(d, v));
  tt_tensor_unref(d);
  tt_tensor_unref(h);
  return v;
}

/* max |a - b| (NaN in both counts as equal, in one as infinite); *ref = max |a|. */
static double max_diff(const char *what, tt_tensor *a, tt_tensor *b, double *ref) {
  char s1[128], s2[128];
  ck_assert_msg(tt_tensor_same_shape(a, b), "%s: shapes differ: %s vs %s", what, tt_tensor_shape_str(a, s1, sizeof s1),
                tt_tensor_shape_str(b, s2, sizeof s2));
  int64_t n, m;
  double *va = host_values(a, &n), *vb = host_values(b, &m), worst = 0, r = 0;
  for (int64_t i = 0; i < n; i++) {
    double x = va[i], y = vb[i], d;
    if (isnan(x) || isnan(y)) d = isnan(x) && isnan(y) ? 0 : INFINITY;
    else if (isinf(x) || isinf(y)) d = x == y ? 0 : INFINITY;
    else d = fabs(x - y);
    if (d > worst) worst = d;
    if (isfinite(x) && fabs(x) > r) r = fabs(x);
  }
  free(va);
  free(vb);
  *ref = r;
  return worst;
}

static void expect_close(const char *label, const char *what, tt_tensor *cpu, tt_tensor *gpu, double tol,
                         double *out) {
  double ref, d = max_diff(what, cpu, gpu, &ref);
  if (d > *out) *out = d;
  ck_assert_msg(d <= tol * (1 + ref), "%s: %s differs: max |cpu - cuda| = %.3g > %.3g (max |cpu| %.3g)", label, what,
                d, tol * (1 + ref), ref);
}

static void print_row(const char *label, double fwd, double bwd, bool has_bwd) {
  if (has_bwd) printf("PARITY %-52s %10.3e %10.3e\n", label, fwd, bwd);
  else printf("PARITY %-52s %10.3e %10s\n", label, fwd, "-");
  fflush(stdout);
}

typedef tt_tensor *(*op_fn)(tt_tensor *const *in, void *ud);

/* Runs f on the CPU inputs and on their CUDA copies; compares the output and the
 * gradients of every input that requires one. */
static void parity(const char *label, op_fn f, void *ud, int n, tt_tensor *const *in, double tol_fwd,
                   double tol_bwd) {
  tt_tensor *gin[MAX_IN] = {0};
  ck_assert_int_le(n, MAX_IN);
  for (int i = 0; i < n; i++) {
    gin[i] = copy_to(in[i], TT_CUDA);
    if (in[i]) tt_zero_grad(in[i]);
  }
  tt_tensor *yc = f(in, ud);
  ck_assert_msg(yc != NULL, "%s: cpu op failed: %s", label, tt_error_message());
  tt_tensor *yg = f(gin, ud);
  ck_assert_msg(yg != NULL, "%s: cuda op failed: %s", label, tt_error_message());
  ck_assert_int_eq(yg->device, TT_CUDA);
  double dfwd = 0, dbwd = 0;
  expect_close(label, "output", yc, yg, tol_fwd, &dfwd);
  bool grads = yc->dtype == TT_F32 && tt_requires_grad(yc);
  if (grads) {
    tt_tensor *R = th_randn(4242, yc->ndim, yc->shape, 1.0f), *Rg = copy_to(R, TT_CUDA);
    tt_tensor *pc = tt_mul(yc, R), *pg = tt_mul(yg, Rg);
    tt_tensor *lc = pc ? tt_sum(pc) : NULL, *lg = pg ? tt_sum(pg) : NULL;
    TH_NN(lc);
    TH_NN(lg);
    TH_OK(tt_backward(lc, NULL, false));
    TH_OK(tt_backward(lg, NULL, false));
    for (int i = 0; i < n; i++) {
      if (!in[i] || !in[i]->requires_grad) continue;
      char what[64];
      snprintf(what, sizeof what, "gradient of input %d", i);
      ck_assert_msg(in[i]->grad && gin[i]->grad, "%s: %s missing on %s", label, what, in[i]->grad ? "cuda" : "cpu");
      ck_assert_int_eq(gin[i]->grad->device, TT_CUDA);
      expect_close(label, what, in[i]->grad, gin[i]->grad, tol_bwd, &dbwd);
    }
    tt_tensor_unref(R);
    tt_tensor_unref(Rg);
    tt_tensor_unref(pc);
    tt_tensor_unref(pg);
    tt_tensor_unref(lc);
    tt_tensor_unref(lg);
  }
  print_row(label, dfwd, dbwd, grads);
  tt_tensor_unref(yc);
  tt_tensor_unref(yg);
  for (int i = 0; i < n; i++) {
    if (in[i]) tt_zero_grad(in[i]);
    tt_tensor_unref(gin[i]);
  }
}

static tt_tensor *index_tensor(int nd, const int64_t *sh, const int64_t *v) {
  tt_tensor *t = tt_tensor_from_data(TT_I64, nd, sh, v, TT_CPU);
  TH_NN(t);
  return t;
}

static void release(int n, tt_tensor **ts) {
  for (int i = 0; i < n; i++) tt_tensor_release(&ts[i]);
}

/* True when the op is linked; a linked-in family without its op is a failure. */
static bool have_op(const char *op, bool linked, const char *kernel) {
  if (linked) return true;
  ck_assert_msg(!tt_backend_supports(TT_CPU, kernel), "%s: the cpu backend has '%s' but %s is not linked", op, kernel,
                op);
  printf("PARITY %-52s (family not in this build)\n", op);
  return false;
}

#endif
