/* check_train.c — what a training step is built from beyond the ops' own
 * gradients: the per-op profiler and the fused optimizer over many tensors. */
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

int main(void) {
  Suite *s = suite_create("train");
  TCase *tc = tcase_create("profile");
  tcase_add_test(tc, test_profile_counts_ops_and_passes);
  tcase_add_test(tc, test_profile_nested_ops_count_once);
  suite_add_tcase(s, tc);
  return th_run(s);
}
