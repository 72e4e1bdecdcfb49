/* check_train.c — what a training step is built from beyond the ops' own
 * gradients: the per-op profiler and the fused optimizer over many tensors. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

/* ---- profiler ---- */

typedef struct {
  unsigned long long calls;
  double ms, mb;
  bool found;
} prof_row;

/* The row (op, pass) of a report, read back from its text. */
static prof_row report_row(const char *text, const char *op, const char *pass) {
  prof_row r = {0};
  const char *line = text;
  while (line && *line) {
    char o[64], p[32];
    unsigned long long calls;
    double ms, pct, mb;
    if (sscanf(line, "%63s %31s %llu %lf %lf %lf", o, p, &calls, &ms, &pct, &mb) == 6 && !strcmp(o, op) &&
        !strcmp(p, pass)) {
      r.calls = calls;
      r.ms = ms;
      r.mb = mb;
      r.found = true;
      return r;
    }
    line = strchr(line, '\n');
    if (line) line++;
  }
  return r;
}

static char *report_text(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ck_assert_ptr_nonnull(f);
  tt_profile_report(f, "test");
  fclose(f);
  return buf;
}

START_TEST(test_profile_counts_ops_and_passes) {
  tt_tensor *x = th_leaf(1, TT_DIMS(2, 4, 64, 64), 1.0f), *w = th_leaf(2, TT_DIMS(8, 4, 3, 3), 0.2f);
  ck_assert(!tt_profile_enabled());
  tt_conv2d_params p = {1, 1, 1, 1, 1, 1};
  /* nothing is counted while off */
  tt_tensor *y0 = tt_conv2d(x, w, NULL, &p);
  TH_NN(y0);
  tt_tensor_unref(y0);
  tt_profile_set_enabled(true);
  tt_tensor *y = tt_conv2d(x, w, NULL, &p);                  // [2, 8, 64, 64]
  TH_NN(y);
  tt_tensor *s = tt_silu(y), *l = tt_mean(s);
  TH_NN(l);
  TH_OK(tt_backward(l, NULL, false));
  bool was = tt_profile_set_enabled(false);
  ck_assert(was);
  char *text = report_text();
  prof_row cf = report_row(text, "conv2d", "forward"), cb = report_row(text, "conv2d", "backward");
  prof_row sf = report_row(text, "silu", "forward"), mf = report_row(text, "mean", "forward");
  ck_assert_msg(cf.found && cb.found && sf.found && mf.found, "rows missing from:\n%s", text);
  ck_assert_msg(cf.calls == 1 && cb.calls == 1 && sf.calls == 1, "calls %llu %llu %llu in:\n%s", cf.calls, cb.calls,
                sf.calls, text);
  /* the conv's output (2*8*64*64 floats = 0.25 MiB) is allocated inside its forward */
  ck_assert_msg(cf.mb >= 0.25 - 0.005, "conv2d forward allocated %.3f MB:\n%s", cf.mb, text);
  /* the backward's gradient for x (0.125 MiB) at least */
  ck_assert_msg(cb.mb >= 0.125 - 0.005, "conv2d backward allocated nothing:\n%s", text);
  size_t peak, start;
  tt_profile_memory(&peak, &start);
  ck_assert_msg(peak >= start + 262144, "peak %zu, start %zu", peak, start);
  free(text);
  /* a reset empties the table */
  tt_profile_reset();
  text = report_text();
  ck_assert_msg(!report_row(text, "conv2d", "forward").found, "rows survive a reset:\n%s", text);
  free(text);
  tt_tensor_unref(l); tt_tensor_unref(s); tt_tensor_unref(y); tt_tensor_unref(x); tt_tensor_unref(w);
}
END_TEST

/* Nested ops count once, towards the outermost: linear calls matmul inside. */
START_TEST(test_profile_nested_ops_count_once) {
  tt_tensor *x = th_randn(3, TT_DIMS(4, 8), 1.0f), *w = th_randn(4, TT_DIMS(5, 8), 1.0f), *b = th_randn(5, TT_DIMS(5), 1.0f);
  tt_profile_set_enabled(true);
  int tok = tt_profile_begin("outer", "forward");
  tt_tensor *y = tt_linear(x, w, b);
  TH_NN(y);
  tt_profile_end(tok);
  tt_profile_set_enabled(false);
  char *text = report_text();
  prof_row o = report_row(text, "outer", "forward");
  ck_assert_msg(o.found && o.calls == 1, "outer row missing:\n%s", text);
  ck_assert_msg(!report_row(text, "linear", "forward").found, "a nested op has its own row:\n%s", text);
  free(text);
  tt_tensor_unref(y); tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b);
}
END_TEST

/* ---- activation memory ---- */

/* A backward without retain_graph frees the activations it has gone through even
 * while the loss (which owns the graph) is still alive, as PyTorch does: a
 * training loop's loss tensor lives on until the language's collector runs. */
START_TEST(test_backward_frees_activations) {
  tt_tensor *x = th_leaf(60, TT_DIMS(64, 1024), 1.0f);          // 256 KiB
  size_t base = tt_memory_in_use(TT_CPU);
  tt_tensor *h = tt_tensor_ref(x);
  for (int i = 0; i < 8; i++) {                                 // 8 activations of 256 KiB
    tt_tensor *y = tt_silu(h);
    TH_NN(y);
    tt_tensor_unref(h);
    h = y;
  }
  tt_tensor *loss = tt_mean(h);
  tt_tensor_unref(h);
  /* each silu saves its input: x and the first 7 outputs (the last one no backward reads) */
  size_t held = tt_memory_in_use(TT_CPU) - base;
  ck_assert_msg(held >= 7 * 262144, "the graph holds %zu bytes, expected at least 7 activations", held);
  TH_OK(tt_backward(loss, NULL, false));
  /* left: x's gradient (256 KiB) and the loss; the activations are gone */
  size_t after = tt_memory_in_use(TT_CPU) - base;
  ck_assert_msg(after <= 262144 + 4096, "after backward the graph still holds %zu bytes (%zu before)", after, held);
  /* a second backward is refused, not a crash */
  ck_assert_int_ne(tt_backward(loss, NULL, false), TT_OK);
  tt_tensor_unref(loss);
  tt_tensor_unref(x);
}
END_TEST

/* The graph keeps what backward functions saved, not every input: the output of
 * an add (whose backward reads nothing) is freed as soon as the caller drops it,
 * and the gradients still reach the leaves through it. */
START_TEST(test_graph_keeps_only_saved_tensors) {
  tt_tensor *x = th_leaf(62, TT_DIMS(64, 1024), 1.0f), *b = th_leaf(63, TT_DIMS(1024), 1.0f);
  size_t base = tt_memory_in_use(TT_CPU);
  tt_tensor *h = tt_add(x, b);                                  // [64, 1024], 256 KiB
  tt_tensor *l = tt_sum(h);
  TH_NN(l);
  tt_tensor_unref(h);
  size_t held = tt_memory_in_use(TT_CPU) - base;
  ck_assert_msg(held < 262144, "the graph keeps the add's output: %zu bytes held", held);
  TH_OK(tt_backward(l, NULL, false));
  ck_assert_double_eq_tol(tt_tensor_get(b->grad, 0), 64.0, 1e-4);
  ck_assert_double_eq_tol(tt_tensor_get(x->grad, 5), 1.0, 1e-6);
  tt_tensor_unref(l); tt_tensor_unref(x); tt_tensor_unref(b);
}
END_TEST

/* autograd.grad with respect to an intermediate output, reached through the graph's
 * data-less input edges. */
START_TEST(test_grad_of_intermediate) {
  tt_tensor *x = th_leaf(64, TT_DIMS(4, 6), 1.0f);
  tt_tensor *h = tt_mul_scalar(x, 3.0), *y = tt_mul(h, h), *l = tt_sum(y);   // dl/dh = 2h
  tt_tensor *g = NULL;
  TH_OK(tt_autograd_grad(1, &l, 1, &h, &g, false));
  tt_tensor *want = tt_mul_scalar(h, 2.0);
  th_assert_close("d sum(h*h) / dh", g, want, 1e-5);
  tt_tensor_unref(want); tt_tensor_unref(g); tt_tensor_unref(l); tt_tensor_unref(y); tt_tensor_unref(h);
  tt_tensor_unref(x);
}
END_TEST

/* Group norm composed of elementary ops: the oracle of its gradients. x [B, C, S]. */
static tt_tensor *group_norm_by_ops(tt_tensor *x, int G, tt_tensor *w, tt_tensor *b, double eps) {
  int64_t B = x->shape[0], C = x->shape[1], S = x->shape[2];
  tt_tensor *xr = tt_reshape(x, TT_DIMS(B, G, C / G * S));                 // [B, G, C/G*S]
  tt_tensor *mu = tt_mean_dim(xr, 2, true), *d = tt_sub(xr, mu), *d2 = tt_mul(d, d);
  tt_tensor *var = tt_mean_dim(d2, 2, true), *ve = tt_add_scalar(var, eps), *r = tt_pow_scalar(ve, -0.5);
  tt_tensor *xh = tt_mul(d, r), *xh3 = tt_reshape(xh, TT_DIMS(B, C, S));
  tt_tensor *w3 = tt_reshape(w, TT_DIMS(1, C, 1)), *b3 = tt_reshape(b, TT_DIMS(1, C, 1));
  tt_tensor *yw = tt_mul(xh3, w3), *y = tt_add(yw, b3);
  tt_tensor *tmp[] = {xr, mu, d, d2, var, ve, r, xh, xh3, w3, b3, yw};
  for (size_t i = 0; i < sizeof tmp / sizeof *tmp; i++) tt_tensor_unref(tmp[i]);
  return y;
}

/* Group norm saves its output where the weights allow inverting it (backward
 * from y): its gradients match the composed oracle's, for inputs far from zero
 * mean too, and its input is freed as soon as the caller drops it. */
START_TEST(test_group_norm_backward_from_output) {
  int64_t C = 8;
  tt_tensor *x0 = th_randn(70, TT_DIMS(2, C, 30), 2.0f), *x = tt_add_scalar(x0, 5.0);   // mean 5, sd 2
  tt_tensor *w = th_uniform(71, TT_DIMS(C), 0.5f, 1.5f), *b = th_uniform(72, TT_DIMS(C), -1.0f, 1.0f);
  tt_tensor *R = th_randn(73, TT_DIMS(2, C, 30), 1.0f);
  tt_tensor_set_requires_grad(x, true);
  tt_tensor_set_requires_grad(w, true);
  tt_tensor_set_requires_grad(b, true);
  tt_tensor *g[2][3];
  for (int k = 0; k < 2; k++) {
    tt_tensor *y = k == 0 ? tt_group_norm(x, 4, w, b, 1e-6f) : group_norm_by_ops(x, 4, w, b, 1e-6);
    TH_NN(y);
    tt_tensor *yr = tt_mul(y, R), *l = tt_sum(yr);
    TH_OK(tt_backward(l, NULL, false));
    g[k][0] = tt_tensor_ref(x->grad);
    g[k][1] = tt_tensor_ref(w->grad);
    g[k][2] = tt_tensor_ref(b->grad);
    tt_zero_grad(x); tt_zero_grad(w); tt_zero_grad(b);
    tt_tensor_unref(l); tt_tensor_unref(yr); tt_tensor_unref(y);
  }
  th_assert_close("group norm d/dx, from its output", g[0][0], g[1][0], 2e-5);
  th_assert_close("group norm d/dw, from its output", g[0][1], g[1][1], 2e-4);
  th_assert_close("group norm d/db, from its output", g[0][2], g[1][2], 2e-4);
  for (int k = 0; k < 2; k++) for (int i = 0; i < 3; i++) tt_tensor_unref(g[k][i]);
  /* memory: h -> group norm -> silu keeps y (saved by both) and not h */
  tt_tensor *big = th_randn(74, TT_DIMS(4, C, 8192), 1.0f);      // 1 MiB
  tt_tensor_set_requires_grad(big, true);
  size_t base = tt_memory_in_use(TT_CPU);
  tt_tensor *h = tt_mul_scalar(big, 2.0), *y = tt_group_norm(h, 4, w, b, 1e-6f), *sy = tt_silu(y);
  TH_NN(sy);
  tt_tensor_unref(h);
  tt_tensor_unref(y);
  size_t held = tt_memory_in_use(TT_CPU) - base;   /* y and silu(y): 2 MiB, not 3 */
  ck_assert_msg(held < (size_t)5 << 19, "h -> group norm -> silu holds %zu bytes", held);
  tt_tensor_unref(sy); tt_tensor_unref(big);
  tt_tensor_unref(x0); tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(R);
}
END_TEST

/* A tensor used by 8 ops gets 8 gradients: they add into one buffer in place
 * (the slot's tensor is seen by nothing else), not into 7 new ones, and the sum
 * is the same. */
START_TEST(test_gradients_accumulate_in_place) {
  tt_tensor *x = th_leaf(80, TT_DIMS(256, 1024), 1.0f);         // 1 MiB
  tt_tensor *l = NULL;
  for (int k = 1; k <= 8; k++) {
    tt_tensor *a = tt_mul_scalar(x, (double)k), *m = tt_mean(a);
    tt_tensor *nl = l ? tt_add(l, m) : tt_tensor_ref(m);
    tt_tensor_unref(l); tt_tensor_unref(a); tt_tensor_unref(m);
    l = nl;
  }
  tt_profile_set_enabled(true);
  TH_OK(tt_backward(l, NULL, false));
  tt_profile_set_enabled(false);
  char *text = report_text();
  prof_row acc = report_row(text, "grad_accumulate", "backward");
  ck_assert_msg(acc.found && acc.calls >= 8, "no accumulation row:\n%s", text);
  ck_assert_msg(acc.mb < 0.5, "accumulating 8 gradients of 1 MiB allocated %.2f MB:\n%s", acc.mb, text);
  free(text);
  /* d/dx sum_k mean(k x) = 36 / numel */
  double want = 36.0 / (256.0 * 1024.0);
  ck_assert_double_eq_tol(tt_tensor_get(x->grad, 0), want, want * 1e-5);
  ck_assert_double_eq_tol(tt_tensor_get(x->grad, 256 * 1024 - 1), want, want * 1e-5);
  tt_tensor_unref(l); tt_tensor_unref(x);
}
END_TEST

/* With retain_graph the same graph runs backward twice and the gradients add. */
START_TEST(test_retained_graph_keeps_activations) {
  tt_tensor *x = th_leaf(61, TT_DIMS(3, 5), 1.0f);
  tt_tensor *a = tt_silu(x), *b = tt_mul(a, a), *loss = tt_sum(b);
  tt_tensor_unref(a);
  tt_tensor_unref(b);
  TH_OK(tt_backward(loss, NULL, true));
  tt_tensor *g1 = tt_clone(x->grad);
  TH_OK(tt_backward(loss, NULL, false));
  tt_tensor *twice = tt_mul_scalar(g1, 2.0);
  th_assert_close("gradient after two backward passes", x->grad, twice, 1e-6);
  tt_tensor_unref(twice); tt_tensor_unref(g1); tt_tensor_unref(loss); tt_tensor_unref(x);
}
END_TEST

/* ---- fused Adam over many tensors ---- */

#define N_PARAMS 7

/* Largest |a - b| / max(|b|, 1e-30) over all elements. */
static double max_rel_diff(const tt_tensor *a, const tt_tensor *b) {
  const float *x = tt_f32(a), *y = tt_f32(b);
  double worst = 0;
  for (int64_t i = 0; i < tt_tensor_numel(a); i++) {
    double d = fabs((double)x[i] - (double)y[i]) / fmax(fabs((double)y[i]), 1e-30);
    if (d > worst) worst = d;
  }
  return worst;
}

/* Ten steps of tt_adam_step_multi against the per-tensor tt_adam_step on copies:
 * sizes from 1 element to more than the threads' split (ragged ends), three
 * groups (plain Adam, L2 decay, AdamW with another lr) and a parameter that
 * joins late (its own step count). */
START_TEST(test_adam_multi_matches_per_tensor) {
  const int64_t sizes[N_PARAMS] = {1, 17, 4096, 100003, 333, 70001, 65};
  tt_tensor *w[2][N_PARAMS], *m[2][N_PARAMS], *v[2][N_PARAMS];
  for (int i = 0; i < N_PARAMS; i++) {
    tt_tensor *w0 = th_randn(10 + i, TT_DIMS(sizes[i]), 1.0f);
    for (int k = 0; k < 2; k++) {
      w[k][i] = tt_clone(w0);
      m[k][i] = tt_zeros(TT_F32, 1, &sizes[i], TT_CPU);
      v[k][i] = tt_zeros(TT_F32, 1, &sizes[i], TT_CPU);
      TH_NN(w[k][i]);
    }
    tt_tensor_unref(w0);
  }
  int64_t steps[N_PARAMS] = {0};
  for (int step = 1; step <= 10; step++) {
    tt_adam_params hp[N_PARAMS];
    tt_tensor *pw[N_PARAMS], *pg[N_PARAMS], *pm[N_PARAMS], *pv[N_PARAMS];
    int n = 0;
    for (int i = 0; i < N_PARAMS; i++) {
      if (i == 6 && step < 4) continue;   /* no gradient yet: skipped, as PyTorch skips it */
      steps[i]++;
      tt_adam_params p = {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, false, steps[i]};
      if (i % 3 == 1) p.weight_decay = 0.05f;
      if (i % 3 == 2) { p.weight_decay = 0.01f; p.decoupled = true; p.lr = 3e-3f; p.beta1 = 0.5f; p.beta2 = 0.9f; }
      tt_tensor *g = th_randn(1000 * step + i, TT_DIMS(sizes[i]), 0.1f);
      TH_OK(tt_adam_step(&p, w[0][i], g, m[0][i], v[0][i]));
      hp[n] = p;
      pw[n] = w[1][i];
      pg[n] = g;
      pm[n] = m[1][i];
      pv[n] = v[1][i];
      n++;
    }
    TH_OK(tt_adam_step_multi(n, hp, pw, pg, pm, pv));
    for (int k = 0; k < n; k++) tt_tensor_unref(pg[k]);
  }
  double worst = 0;
  for (int i = 0; i < N_PARAMS; i++) {
    worst = fmax(worst, max_rel_diff(w[1][i], w[0][i]));
    worst = fmax(worst, max_rel_diff(m[1][i], m[0][i]));
    worst = fmax(worst, max_rel_diff(v[1][i], v[0][i]));
  }
  ck_assert_msg(worst <= 1e-7, "fused vs per-tensor Adam after 10 steps: max relative difference %.3g", worst);
  /* and the parameters did move */
  tt_tensor *w0 = th_randn(13, TT_DIMS(sizes[3]), 1.0f);
  ck_assert_msg(th_max_abs_diff(w[1][3], w0) > 1e-3, "the fused update left parameter 4 unchanged");
  tt_tensor_unref(w0);
  for (int k = 0; k < 2; k++)
    for (int i = 0; i < N_PARAMS; i++) {
      tt_tensor_unref(w[k][i]); tt_tensor_unref(m[k][i]); tt_tensor_unref(v[k][i]);
    }
}
END_TEST

/* A bad entry anywhere refuses the whole call before any parameter moves. */
START_TEST(test_adam_multi_checks_all_first) {
  tt_tensor *w[2], *g[2], *m[2], *v[2];
  for (int i = 0; i < 2; i++) {
    w[i] = th_randn(40 + i, TT_DIMS(8), 1.0f);
    g[i] = th_randn(50 + i, TT_DIMS(8), 1.0f);
    m[i] = tt_zeros(TT_F32, TT_DIMS(8), TT_CPU);
    v[i] = tt_zeros(TT_F32, TT_DIMS(i == 1 ? 9 : 8), TT_CPU);   /* the second moment of parameter 2 is wrong */
  }
  tt_tensor *before = tt_clone(w[0]);
  tt_adam_params hp[2] = {{1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, false, 1}, {1e-2f, 0.9f, 0.999f, 1e-8f, 0.0f, false, 1}};
  ck_assert_int_ne(tt_adam_step_multi(2, hp, w, g, m, v), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "parameter 2 of 2") && strstr(tt_error_message(), "second moment"),
                "message: %s", tt_error_message());
  th_assert_close("parameter 1 after a refused call", w[0], before, 0.0);
  hp[1].step = 0;
  tt_tensor_unref(v[1]);
  v[1] = tt_zeros(TT_F32, TT_DIMS(8), TT_CPU);
  ck_assert_int_ne(tt_adam_step_multi(2, hp, w, g, m, v), TT_OK);
  ck_assert_msg(strstr(tt_error_message(), "step must count from 1"), "message: %s", tt_error_message());
  th_assert_close("parameter 1 after a refused call", w[0], before, 0.0);
  tt_tensor_unref(before);
  for (int i = 0; i < 2; i++) {
    tt_tensor_unref(w[i]); tt_tensor_unref(g[i]); tt_tensor_unref(m[i]); tt_tensor_unref(v[i]);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("train");
  TCase *tc = tcase_create("profile");
  tcase_add_test(tc, test_profile_counts_ops_and_passes);
  tcase_add_test(tc, test_profile_nested_ops_count_once);
  suite_add_tcase(s, tc);
  TCase *tm = tcase_create("memory");
  tcase_add_test(tm, test_backward_frees_activations);
  tcase_add_test(tm, test_retained_graph_keeps_activations);
  tcase_add_test(tm, test_graph_keeps_only_saved_tensors);
  tcase_add_test(tm, test_grad_of_intermediate);
  tcase_add_test(tm, test_group_norm_backward_from_output);
  tcase_add_test(tm, test_gradients_accumulate_in_place);
  suite_add_tcase(s, tm);
  TCase *to = tcase_create("optim");
  tcase_add_test(to, test_adam_multi_matches_per_tensor);
  tcase_add_test(to, test_adam_multi_checks_all_first);
  suite_add_tcase(s, to);
  return th_run(s);
}
