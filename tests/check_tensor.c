/* check_tensor.c — tensors, storages, views, arenas, values, the RNG. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

START_TEST(test_new_and_refcount) {
  tt_tensor *t = tt_tensor_new(TT_F32, TT_DIMS(2, 3, 4), TT_CPU);
  TH_NN(t);
  ck_assert_int_eq(tt_tensor_numel(t), 24);
  ck_assert_int_eq(t->stride[0], 12);
  ck_assert_int_eq(t->stride[2], 1);
  ck_assert(tt_tensor_is_contiguous(t));
  tt_tensor_ref(t);
  ck_assert_int_eq(t->refcount, 2);
  tt_tensor_unref(t);
  tt_tensor_unref(t);
}
END_TEST

START_TEST(test_zeros_full_item) {
  tt_tensor *z = tt_zeros(TT_F32, TT_DIMS(5), TT_CPU);
  TH_NN(z);
  for (int i = 0; i < 5; i++) ck_assert(tt_f32(z)[i] == 0.0f);
  tt_tensor *f = tt_full(TT_I64, TT_DIMS(3), 7, TT_CPU);
  ck_assert_int_eq(tt_i64(f)[2], 7);
  double v;
  tt_tensor *s = tt_scalar(2.5, TT_CPU);
  TH_OK(tt_tensor_item(s, &v));
  ck_assert(v == 2.5);
  ck_assert_int_ne(tt_tensor_item(z, &v), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "one-element"));
  tt_tensor_unref(z);
  tt_tensor_unref(f);
  tt_tensor_unref(s);
}
END_TEST

START_TEST(test_bad_shape_is_error) {
  ck_assert_ptr_null(tt_tensor_new(TT_F32, TT_DIMS(2, -1), TT_CPU));
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "negative"));
  ck_assert_ptr_null(tt_tensor_new(TT_F32, 9, (int64_t[9]){1}, TT_CPU));
}
END_TEST

START_TEST(test_storage_bounds) {
  tt_storage *s = tt_storage_new(16, TT_CPU);
  TH_NN(s);
  tt_tensor *ok = tt_tensor_from_storage(s, TT_F32, TT_DIMS(4), NULL, 0);
  TH_NN(ok);
  ck_assert_ptr_null(tt_tensor_from_storage(s, TT_F32, TT_DIMS(4), NULL, 1));
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "past its storage"));
  tt_tensor_unref(ok);
  tt_storage_unref(s);
}
END_TEST

START_TEST(test_views_share_storage) {
  float data[6] = {0, 1, 2, 3, 4, 5};
  tt_tensor *t = tt_tensor_from_data(TT_F32, TT_DIMS(2, 3), data, TT_CPU);
  tt_tensor *tr = tt_transpose(t, 0, 1);
  TH_NN(tr);
  ck_assert_int_eq(tr->shape[0], 3);
  ck_assert(!tt_tensor_is_contiguous(tr));
  ck_assert(tt_tensor_get(tr, 1) == 3.0);     /* tr[0][1] = t[1][0] */
  tt_tensor *c = tt_contiguous(tr);
  ck_assert(tt_tensor_is_contiguous(c));
  float want[6] = {0, 3, 1, 4, 2, 5};
  for (int i = 0; i < 6; i++) ck_assert(tt_f32(c)[i] == want[i]);
  tt_tensor *sl = tt_slice(t, 1, 1, 3, 1);
  ck_assert_int_eq(sl->shape[1], 2);
  ck_assert(tt_tensor_get(sl, 2) == 4.0);
  tt_tensor *sel = tt_select(t, 0, 1);
  ck_assert_int_eq(sel->ndim, 1);
  ck_assert(tt_tensor_get(sel, 0) == 3.0);
  tt_tensor *neg = tt_slice(t, -1, -2, 3, 1);
  ck_assert(tt_tensor_get(neg, 0) == 1.0);
  tt_tensor *st = tt_slice(t, 1, 0, 3, 2);
  ck_assert_int_eq(st->shape[1], 2);
  ck_assert(tt_tensor_get(st, 1) == 2.0);
  tt_tensor_unref(t); tt_tensor_unref(tr); tt_tensor_unref(c); tt_tensor_unref(sl);
  tt_tensor_unref(sel); tt_tensor_unref(neg); tt_tensor_unref(st);
}
END_TEST

START_TEST(test_reshape_expand_cat_pad) {
  tt_tensor *t = th_randn(1, TT_DIMS(2, 6), 1.0f);
  tt_tensor *r = tt_reshape(t, TT_DIMS(3, -1));
  TH_NN(r);
  ck_assert_int_eq(r->shape[1], 4);
  ck_assert_ptr_null(tt_reshape(t, TT_DIMS(5, -1)));
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "cannot view"));
  tt_tensor *one = th_randn(2, TT_DIMS(1, 3), 1.0f);
  tt_tensor *e = tt_expand(one, TT_DIMS(4, 3));
  TH_NN(e);
  ck_assert_int_eq(e->stride[0], 0);
  ck_assert(tt_tensor_get(e, 7) == tt_tensor_get(one, 1));
  tt_tensor *parts[2] = {t, t};
  tt_tensor *c = tt_cat(2, parts, 1);
  ck_assert_int_eq(c->shape[1], 12);
  ck_assert(tt_tensor_get(c, 6) == tt_tensor_get(t, 0));
  tt_tensor *p = tt_pad2d(t, (int64_t[4]){0, 1, 0, 1}, 0.0);
  ck_assert_int_eq(p->shape[0], 3);
  ck_assert_int_eq(p->shape[1], 7);
  ck_assert(tt_tensor_get(p, 6) == 0.0);
  ck_assert(tt_tensor_get(p, 7) == tt_tensor_get(t, 6));
  tt_tensor *rep = tt_repeat(one, TT_DIMS(2, 2));
  ck_assert_int_eq(rep->shape[0], 2);
  ck_assert_int_eq(rep->shape[1], 6);
  ck_assert(tt_tensor_get(rep, 4) == tt_tensor_get(one, 1));
  tt_tensor_unref(t); tt_tensor_unref(r); tt_tensor_unref(one); tt_tensor_unref(e);
  tt_tensor_unref(c); tt_tensor_unref(p); tt_tensor_unref(rep);
}
END_TEST

START_TEST(test_cast_and_copy) {
  float data[3] = {1.7f, -2.2f, 3.0f};
  tt_tensor *t = tt_tensor_from_data(TT_F32, TT_DIMS(3), data, TT_CPU);
  tt_tensor *i = tt_cast(t, TT_I64);
  ck_assert_int_eq(tt_i64(i)[0], 1);
  ck_assert_int_eq(tt_i64(i)[1], -2);
  tt_tensor *b = tt_cast(t, TT_BF16);
  ck_assert(fabs(tt_tensor_get(b, 0) - 1.7) < 0.01);
  tt_tensor *dst = tt_zeros(TT_F32, TT_DIMS(2, 3), TT_CPU);
  TH_OK(tt_copy_(dst, t));  /* broadcast over rows */
  ck_assert(tt_tensor_get(dst, 5) == 3.0f);
  tt_tensor_unref(t); tt_tensor_unref(i); tt_tensor_unref(b); tt_tensor_unref(dst);
}
END_TEST

START_TEST(test_arena) {
  tt_arena *a = tt_arena_new(1024);
  void *p = tt_arena_alloc(a, 100, 64);
  ck_assert_ptr_nonnull(p);
  ck_assert_int_eq((uintptr_t)p % 64, 0);
  size_t m = tt_arena_mark(a);
  void *q = tt_arena_alloc(a, 5000, 64);   /* new chunk */
  ck_assert_ptr_nonnull(q);
  memset(q, 1, 5000);
  tt_arena_reset(a, m);
  void *r = tt_arena_alloc(a, 50, 16);
  ck_assert_ptr_nonnull(r);
  ck_assert_ptr_ne(r, p);
  tt_arena_free(a);
  ck_assert_ptr_nonnull(tt_thread_arena());
}
END_TEST

START_TEST(test_rng_counter_based) {
  tt_rng a = tt_rng_make(42), b = tt_rng_make(42);
  tt_tensor *x = tt_rand(&a, TT_DIMS(1000), TT_CPU);
  /* the same numbers drawn in two halves */
  tt_tensor *y1 = tt_rand(&b, TT_DIMS(400), TT_CPU);
  tt_tensor *y2 = tt_rand(&b, TT_DIMS(600), TT_CPU);
  for (int i = 0; i < 400; i++) ck_assert(tt_f32(x)[i] == tt_f32(y1)[i]);
  for (int i = 0; i < 600; i++) ck_assert(tt_f32(x)[400 + i] == tt_f32(y2)[i]);
  double mean = 0;
  for (int i = 0; i < 1000; i++) {
    ck_assert(tt_f32(x)[i] >= 0 && tt_f32(x)[i] < 1);
    mean += tt_f32(x)[i];
  }
  mean /= 1000;
  ck_assert_msg(fabs(mean - 0.5) < 0.05, "uniform mean %.3f", mean);
  tt_rng c = tt_rng_make(7);
  tt_tensor *n = tt_randn(&c, TT_DIMS(20000), TT_CPU);
  double m2 = 0, v = 0;
  for (int i = 0; i < 20000; i++) m2 += tt_f32(n)[i];
  m2 /= 20000;
  for (int i = 0; i < 20000; i++) v += (tt_f32(n)[i] - m2) * (tt_f32(n)[i] - m2);
  v /= 20000;
  ck_assert_msg(fabs(m2) < 0.03 && fabs(v - 1) < 0.05, "normal mean %.3f var %.3f", m2, v);
  tt_tensor_unref(x); tt_tensor_unref(y1); tt_tensor_unref(y2); tt_tensor_unref(n);
}
END_TEST

START_TEST(test_values) {
  tt_value m = tt_value_map(), item = tt_value_int(3);
  TH_OK(tt_value_set(&m, "ch", &item));
  item = tt_value_str("hello");
  TH_OK(tt_value_set(&m, "name", &item));
  tt_value l = tt_value_list();
  for (int i = 1; i <= 3; i++) { item = tt_value_int(i); TH_OK(tt_value_push(&l, &item)); }
  TH_OK(tt_value_set(&m, "ch_mult", &l));
  int64_t ch, mult[4];
  int nm;
  TH_OK(tt_cfg_int(&m, "ch", &ch));
  ck_assert_int_eq(ch, 3);
  TH_OK(tt_cfg_int_list(&m, "ch_mult", mult, 4, &nm));
  ck_assert_int_eq(nm, 3);
  ck_assert_int_eq(mult[2], 3);
  ck_assert_int_eq(tt_cfg_int(&m, "z_channels", &ch), TT_ERR_NOT_FOUND);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "z_channels"));
  ck_assert_int_eq(tt_cfg_int(&m, "name", &ch), TT_ERR_INVALID);
  int64_t d;
  TH_OK(tt_cfg_int_opt(&m, "absent", 9, &d));
  ck_assert_int_eq(d, 9);
  tt_value copy;
  TH_OK(tt_value_copy(&copy, &m));
  ck_assert_int_eq(tt_value_len(tt_value_get(&copy, "ch_mult")), 3);
  tt_value_clear(&copy);
  tt_value_clear(&m);
}
END_TEST

START_TEST(test_cpu_allocator_reuse) {
  size_t before = tt_memory_in_use(TT_CPU);
  for (int i = 0; i < 20; i++) {
    tt_tensor *t = tt_zeros(TT_F32, TT_DIMS(1 << 20), TT_CPU);
    TH_NN(t);
    ck_assert(tt_f32(t)[12345] == 0.0f);
    tt_tensor_unref(t);
  }
  ck_assert_uint_eq(tt_memory_in_use(TT_CPU), before);
}
END_TEST

START_TEST(test_unknown_kernel_and_cuda_message) {
  ck_assert_ptr_null(tt_backend_kernel(TT_CPU, "no_such_kernel"));
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "no kernel 'no_such_kernel'"));
  if (!tt_device_available(TT_CUDA)) {
    ck_assert_ptr_null(tt_tensor_new(TT_F32, TT_DIMS(2), TT_CUDA));
    ck_assert_ptr_nonnull(strstr(tt_error_message(), "cuda"));
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("tensor");
  TCase *tc = tcase_create("core");
  tcase_add_test(tc, test_new_and_refcount);
  tcase_add_test(tc, test_zeros_full_item);
  tcase_add_test(tc, test_bad_shape_is_error);
  tcase_add_test(tc, test_storage_bounds);
  tcase_add_test(tc, test_views_share_storage);
  tcase_add_test(tc, test_reshape_expand_cat_pad);
  tcase_add_test(tc, test_cast_and_copy);
  tcase_add_test(tc, test_arena);
  tcase_add_test(tc, test_rng_counter_based);
  tcase_add_test(tc, test_values);
  tcase_add_test(tc, test_cpu_allocator_reuse);
  tcase_add_test(tc, test_unknown_kernel_and_cuda_message);
  suite_add_tcase(s, tc);
  return th_run(s);
}
