/* check_scope.c — scopes that own temporaries (taming/scope.h): nesting, keep,
 * drop and replace, NULL pass-through with the first error kept, autograd
 * through a scope, per-thread stacks, and no bytes left behind (the suite also
 * runs under ASan in CI, where a leaked reference fails it). */
#include "config.h"
#include <pthread.h>
#include <string.h>
#include "testhelp.h"
#include "taming/scope.h"

/* every test starts and ends with no scope open and the same bytes in use */
static size_t mem0;
static long nodes0;
static void setup(void) {
  mem0 = tt_memory_in_use(TT_CPU);
  nodes0 = tt_autograd_live_nodes();
}
static void teardown(void) {
  ck_assert_int_eq(tt_scope_depth(), 0);
  ck_assert_uint_eq(tt_scope_owned(), 0);
  ck_assert_uint_eq(tt_memory_in_use(TT_CPU), mem0);
  ck_assert_int_eq(tt_autograd_live_nodes(), nodes0);
}

START_TEST(test_nesting_and_keep) {
  tt_scope_begin();
  tt_tensor *a = tt_full(TT_F32, TT_DIMS(2, 3), 2.0, TT_CPU), *b = tt_full(TT_F32, TT_DIMS(2, 3), 3.0, TT_CPU);
  TH_NN(a);
  TH_NN(b);
  ck_assert_int_eq(tt_scope_depth(), 1);
  ck_assert_uint_eq(tt_scope_owned(), 2);
  tt_scope_begin();
  tt_tensor *c = tt_add(a, b);                      // 5
  tt_tensor *d = tt_mul(c, c);                      // 25
  ck_assert_int_eq(tt_scope_depth(), 2);
  ck_assert_uint_eq(tt_scope_owned(), 4);
  ck_assert_ptr_eq(tt_scope_end(d), d);
  /* the kept tensor left the inner scope as the caller's only reference; c is gone */
  ck_assert_int_eq(tt_scope_depth(), 1);
  ck_assert_uint_eq(tt_scope_owned(), 2);
  ck_assert_int_eq(d->refcount, 1);
  ck_assert_double_eq(tt_tensor_get(d, 5), 25.0);
  ck_assert_ptr_eq(tt_scope_own(d), d);
  ck_assert_uint_eq(tt_scope_owned(), 3);
  /* end with nothing kept releases all three */
  ck_assert_ptr_null(tt_scope_end());
}
END_TEST

START_TEST(test_keep_what_the_scope_does_not_own) {
  tt_tensor *x = tt_full(TT_F32, TT_DIMS(4), 1.0, TT_CPU);   // no scope open: the caller's
  TH_NN(x);
  ck_assert_int_eq(x->refcount, 1);
  tt_scope_begin();
  tt_tensor *v = tt_reshape(x, TT_DIMS(2, 2));
  /* an argument kept gets a new reference; a tensor kept twice, two */
  tt_tensor *keep[3] = {x, v, v};
  ck_assert_ptr_eq(tt_scope_end_n(3, keep), x);
  ck_assert_int_eq(x->refcount, 2);
  ck_assert_int_eq(v->refcount, 2);
  tt_tensor_unref(v);
  tt_tensor_unref(v);
  tt_tensor_unref(x);
  tt_tensor_unref(x);
}
END_TEST

START_TEST(test_null_passes_through_with_the_first_error) {
  tt_scope_begin();
  tt_tensor *x = tt_full(TT_F32, TT_DIMS(2, 3), 1.0, TT_CPU);
  tt_tensor *bad = tt_reshape(x, TT_DIMS(7));      // 6 elements cannot be 7
  ck_assert_ptr_null(bad);
  tt_status first = tt_last_status();
  char msg[512];
  snprintf(msg, sizeof msg, "%s", tt_error_message());
  ck_assert_int_ne(first, TT_OK);
  ck_assert_ptr_nonnull(strstr(msg, "7"));
  /* a chain after the failure does nothing and reports the first error */
  tt_tensor *y = tt_relu(tt_mul(tt_add(bad, x), tt_transpose(bad, 0, 1)));
  tt_tensor *parts[2] = {x, y};
  tt_tensor *z = tt_cat(2, parts, 0);
  tt_linear_layer l = {NULL, NULL};
  tt_tensor *w = tt_linear_layer_forward(&l, z);   // skipped: it would read the missing weight
  ck_assert_ptr_null(y);
  ck_assert_ptr_null(z);
  ck_assert_ptr_null(w);
  ck_assert_int_eq(tt_last_status(), first);
  ck_assert_str_eq(tt_error_message(), msg);
  ck_assert_uint_eq(tt_scope_owned(), 1);          // only x: nothing else was made
  ck_assert_ptr_null(tt_scope_end(w));
  /* a NULL argument with no error recorded is a bug, and says so */
  tt_error_clear();
  tt_scope_begin();
  ck_assert_ptr_null(tt_add(NULL, tt_full(TT_F32, TT_DIMS(1), 1.0, TT_CPU)));
  ck_assert_int_eq(tt_last_status(), TT_ERR_INVALID);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "tt_add: an input tensor is NULL"));
  tt_scope_end();
}
END_TEST

START_TEST(test_optional_arguments_may_be_null) {
  tt_scope_begin();
  tt_tensor *x = tt_full(TT_F32, TT_DIMS(2, 3), 1.0, TT_CPU), *w = tt_full(TT_F32, TT_DIMS(4, 3), 0.5, TT_CPU);
  tt_tensor *y = tt_linear(x, w, NULL);            // no bias
  TH_NN(y);
  ck_assert_double_eq(tt_tensor_get(y, 0), 1.5);
  tt_tensor *g = tt_group_norm(tt_reshape(x, TT_DIMS(1, 2, 3)), 1, NULL, NULL, 1e-5f);   // no affine
  TH_NN(g);
  tt_scope_end();
}
END_TEST

/* a method that returns a scope's tensors */
START_TEST(test_return_to_method_results) {
  tt_value rets[TT_MAX_RETS];
  int n = 0;
  tt_scope_begin();
  tt_tensor *a = tt_full(TT_F32, TT_DIMS(2), 4.0, TT_CPU);
  TH_OK(tt_scope_return(rets, &n, tt_sqrt(a), a));
  ck_assert_int_eq(n, 2);
  ck_assert_int_eq(rets[0].type, TT_V_TENSOR);
  ck_assert_double_eq(tt_tensor_get(rets[0].u.t, 1), 2.0);
  ck_assert_int_eq(rets[1].u.t->refcount, 1);
  tt_value_clear(&rets[0]);
  tt_value_clear(&rets[1]);
  /* one NULL result: nothing is returned, everything released, the first error reported */
  n = 0;
  tt_scope_begin();
  tt_tensor *b = tt_full(TT_F32, TT_DIMS(2), 4.0, TT_CPU);
  tt_status s = tt_scope_return(rets, &n, b, tt_reshape(b, TT_DIMS(3)));
  ck_assert_int_eq(s, TT_ERR_INVALID);
  ck_assert_int_eq(n, 0);
}
END_TEST

START_TEST(test_drop_and_replace_free_at_once) {
  const int64_t N = 1 << 18;   // 1 MiB of f32
  tt_scope_begin();
  tt_tensor *h = tt_zeros(TT_F32, TT_DIMS(N), TT_CPU);
  size_t one = tt_memory_in_use(TT_CPU) - mem0;
  ck_assert_uint_ge(one, (size_t)N * 4);
  for (int i = 0; i < 10; i++) h = tt_scope_replace(h, tt_add_scalar(h, 1.0));
  /* ten steps later only the last map is alive (without the replace: eleven) */
  ck_assert_uint_eq(tt_memory_in_use(TT_CPU) - mem0, one);
  ck_assert_uint_eq(tt_scope_owned(), 1);
  ck_assert_double_eq(tt_tensor_get(h, N - 1), 10.0);
  /* an inner scope cannot release what an outer one owns */
  tt_scope_begin();
  tt_scope_drop(h);
  ck_assert_ptr_eq(tt_scope_replace(h, NULL), NULL);
  tt_scope_end();
  ck_assert_uint_eq(tt_scope_owned(), 1);
  ck_assert_double_eq(tt_tensor_get(h, 0), 10.0);
  tt_scope_drop(h);
  ck_assert_uint_eq(tt_scope_owned(), 0);
  ck_assert_uint_eq(tt_memory_in_use(TT_CPU), mem0);
  /* a detached tensor outlives its scope as the caller's */
  tt_tensor *cache = tt_scope_detach(tt_zeros(TT_F32, TT_DIMS(3), TT_CPU));
  tt_scope_end();
  ck_assert_int_eq(cache->refcount, 1);
  tt_tensor_unref(cache);
}
END_TEST

/* loss = sum((2x)^2) in a scope: the graph survives the scope's end, dx = 8x */
START_TEST(test_autograd_through_a_scope) {
  tt_tensor *x = th_leaf(5, TT_DIMS(3, 4), 1.0f);
  tt_scope_begin();
  tt_tensor *loss = tt_sum(tt_square(tt_mul_scalar(x, 2.0)));
  ck_assert_ptr_eq(tt_scope_end(loss), loss);
  TH_OK(tt_backward(loss, NULL, false));
  TH_NN(x->grad);
  for (int64_t i = 0; i < 12; i++) ck_assert_double_eq_tol(tt_tensor_get(x->grad, i), 8.0 * tt_tensor_get(x, i), 1e-5);
  tt_tensor_unref(loss);
  tt_tensor_unref(x);
}
END_TEST

/* a scope belongs to the thread that opened it */
static void *other_thread(void *arg) {
  size_t *seen = arg;
  seen[0] = (size_t)tt_scope_depth();
  tt_tensor *t = tt_full(TT_F32, TT_DIMS(2), 1.0, TT_CPU);   // no scope here: the caller's
  seen[1] = tt_scope_owned();
  seen[2] = t ? (size_t)t->refcount : 0;
  tt_tensor_unref(t);
  return NULL;
}

START_TEST(test_scopes_are_per_thread) {
  tt_scope_begin();
  tt_scope_begin();
  TH_NN(tt_full(TT_F32, TT_DIMS(2), 1.0, TT_CPU));
  size_t seen[3] = {99, 99, 99};
  pthread_t th;
  ck_assert_int_eq(pthread_create(&th, NULL, other_thread, seen), 0);
  ck_assert_int_eq(pthread_join(th, NULL), 0);
  ck_assert_uint_eq(seen[0], 0);
  ck_assert_uint_eq(seen[1], 0);
  ck_assert_uint_eq(seen[2], 1);
  ck_assert_uint_eq(tt_scope_owned(), 1);
  tt_scope_end();
  tt_scope_end();
}
END_TEST

int main(void) {
  Suite *s = suite_create("scope");
  TCase *tc = tcase_create("scope");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_nesting_and_keep);
  tcase_add_test(tc, test_keep_what_the_scope_does_not_own);
  tcase_add_test(tc, test_null_passes_through_with_the_first_error);
  tcase_add_test(tc, test_optional_arguments_may_be_null);
  tcase_add_test(tc, test_return_to_method_results);
  tcase_add_test(tc, test_drop_and_replace_free_at_once);
  tcase_add_test(tc, test_autograd_through_a_scope);
  tcase_add_test(tc, test_scopes_are_per_thread);
  suite_add_tcase(s, tc);
  return th_run(s);
}
