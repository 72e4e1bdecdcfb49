/* check_autograd.c — the tape: accumulation, retain_graph, grad-of with pruning,
 * no-grad mode, detach, and that nodes are freed. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "testhelp.h"

START_TEST(test_chain_and_accumulate) {
  long live0 = tt_autograd_live_nodes();
  tt_tensor *x = th_randn(1, TT_DIMS(4), 1.0f);
  tt_tensor_set_requires_grad(x, true);
  /* y = sum(x*x + x) ; dy/dx = 2x + 1 ; x used twice */
  tt_tensor *sq = tt_mul(x, x), *s = tt_add(sq, x), *y = tt_sum(s);
  TH_NN(y);
  TH_OK(tt_backward(y, NULL, false));
  for (int i = 0; i < 4; i++)
    ck_assert_double_eq_tol(tt_tensor_get(x->grad, i), 2 * tt_f32(x)[i] + 1, 1e-5);
  /* a second backward after freeing is an error, not a crash */
  ck_assert_int_ne(tt_backward(y, NULL, false), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "second time"));
  tt_tensor_unref(sq); tt_tensor_unref(s); tt_tensor_unref(y);
  ck_assert_int_eq(tt_autograd_live_nodes(), live0);
  tt_tensor_unref(x);
}
END_TEST

START_TEST(test_retain_graph_accumulates) {
  tt_tensor *x = th_randn(2, TT_DIMS(3), 1.0f);
  tt_tensor_set_requires_grad(x, true);
  tt_tensor *x3 = tt_mul_scalar(x, 3.0), *y = tt_sum(x3);
  tt_tensor_unref(x3);
  TH_OK(tt_backward(y, NULL, true));
  TH_OK(tt_backward(y, NULL, false));
  for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(tt_tensor_get(x->grad, i), 6.0, 1e-6);
  tt_zero_grad(x);
  ck_assert_ptr_null(x->grad);
  tt_tensor_unref(y);
  tt_tensor_unref(x);
}
END_TEST

START_TEST(test_grad_of_prunes_and_leaves_grad) {
  tt_tensor *w = th_randn(3, TT_DIMS(2, 2), 1.0f), *v = th_randn(4, TT_DIMS(2, 2), 1.0f);
  tt_tensor_set_requires_grad(w, true);
  tt_tensor_set_requires_grad(v, true);
  tt_tensor *v2 = tt_square(v);
  tt_tensor *a = tt_mul(w, v), *l1 = tt_sum(a), *l2 = tt_sum(v2);
  tt_tensor_unref(v2);
  tt_tensor *g[1];
  TH_OK(tt_autograd_grad(1, &l1, 1, &w, g, true));
  for (int i = 0; i < 4; i++) ck_assert_double_eq_tol(tt_tensor_get(g[0], i), tt_f32(v)[i], 1e-6);
  ck_assert_ptr_null(w->grad);   /* grad-of does not touch .grad */
  tt_tensor_unref(g[0]);
  /* w does not influence l2: zeros */
  TH_OK(tt_autograd_grad(1, &l2, 1, &w, g, true));
  ck_assert(tt_tensor_get(g[0], 0) == 0.0);
  tt_tensor_unref(g[0]);
  /* the retained graph still supports a full backward */
  TH_OK(tt_backward(l1, NULL, false));
  ck_assert_double_eq_tol(tt_tensor_get(v->grad, 1), tt_f32(w)[1], 1e-6);
  tt_tensor_unref(a); tt_tensor_unref(l1); tt_tensor_unref(l2);
  tt_tensor_unref(w); tt_tensor_unref(v);
}
END_TEST

START_TEST(test_no_grad_and_detach) {
  tt_tensor *x = th_randn(5, TT_DIMS(3), 1.0f);
  tt_tensor_set_requires_grad(x, true);
  tt_tensor *y;
  TT_NO_GRAD_BEGIN;
  y = tt_mul_scalar(x, 2.0);
  TT_NO_GRAD_END;
  ck_assert_ptr_null(y->grad_fn);
  ck_assert(tt_grad_enabled());
  tt_tensor *z = tt_mul_scalar(x, 2.0), *d = tt_detach(z);
  ck_assert_ptr_nonnull(z->grad_fn);
  ck_assert_ptr_null(d->grad_fn);
  tt_tensor *g = tt_tensor_new_like(d);
  ck_assert_int_ne(tt_backward(d, g, false), TT_OK);
  tt_tensor_unref(g);
  tt_tensor_unref(y); tt_tensor_unref(z); tt_tensor_unref(d); tt_tensor_unref(x);
}
END_TEST

START_TEST(test_broadcast_grads_sum_back) {
  tt_tensor *a = th_randn(6, TT_DIMS(2, 3), 1.0f), *b = th_randn(7, TT_DIMS(3), 1.0f);
  tt_tensor_set_requires_grad(a, true);
  tt_tensor_set_requires_grad(b, true);
  tt_tensor *ab = tt_add(a, b), *y = tt_sum(ab);
  tt_tensor_unref(ab);
  TH_OK(tt_backward(y, NULL, false));
  ck_assert_int_eq(b->grad->ndim, 1);
  for (int i = 0; i < 3; i++) ck_assert_double_eq_tol(tt_tensor_get(b->grad, i), 2.0, 1e-6);
  tt_tensor_unref(y); tt_tensor_unref(a); tt_tensor_unref(b);
}
END_TEST

int main(void) {
  Suite *s = suite_create("autograd");
  TCase *tc = tcase_create("tape");
  tcase_add_test(tc, test_chain_and_accumulate);
  tcase_add_test(tc, test_retain_graph_accumulates);
  tcase_add_test(tc, test_grad_of_prunes_and_leaves_grad);
  tcase_add_test(tc, test_no_grad_and_detach);
  tcase_add_test(tc, test_broadcast_grads_sum_back);
  suite_add_tcase(s, tc);
  return th_run(s);
}
