/* check_tensor.c — tensors, storages, views, arenas, values, the RNG. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "taming/dtype.h"
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

/* A training step holds a few hundred large activations at once and frees them
 * all before the next step allocates the same sizes again; the next step must find
 * them all in the block cache, not fault fresh pages in (first steps slower). */
START_TEST(test_cpu_allocator_keeps_a_steps_blocks) {
  enum { N = 200 };
  tt_tensor *t[N];
  long faults[2];
  for (int pass = 0; pass < 2; pass++) {
    struct rusage r0, r1;
    getrusage(RUSAGE_SELF, &r0);
    for (int i = 0; i < N; i++) {
      t[i] = tt_zeros(TT_F32, TT_DIMS((64 + i % 5) << 10), TT_CPU);   /* 256 to 272 KiB */
      TH_NN(t[i]);
    }
    getrusage(RUSAGE_SELF, &r1);
    faults[pass] = r1.ru_minflt - r0.ru_minflt;
    for (int i = 0; i < N; i++) tt_tensor_unref(t[i]);
  }
  /* the first pass faults in about 64 pages a block; the second should fault almost none */
  ck_assert_msg(faults[1] * 10 < faults[0], "page faults: %ld allocating %d blocks, %ld allocating them again", faults[0],
                N, faults[1]);
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

/* ---- dtype conversions (taming/dtype.h through the CPU copy kernel) ---- */

static const tt_dtype all_dtypes[] = {TT_F32, TT_I64, TT_U8, TT_I32, TT_BF16, TT_F16, TT_F64};
#define N_DTYPES ((int)(sizeof all_dtypes / sizeof all_dtypes[0]))

static bool dtype_holds(tt_dtype dt, double v) {
  if (dt == TT_U8) return v >= 0 && v <= 255 && v == floor(v);
  if (dt == TT_I32 || dt == TT_I64) return v == floor(v);
  return true; /* the floats hold every value of the list below exactly */
}

/* v written as dtype dt, independently of the code under test: the compiler's
 * own conversions, and bf16 as the top half of an exactly representable f32. */
static void encode(void *p, tt_dtype dt, double v) {
  switch (dt) {
    case TT_F32: { float f = (float)v; memcpy(p, &f, 4); break; }
    case TT_F64: memcpy(p, &v, 8); break;
    case TT_I64: { int64_t x = (int64_t)v; memcpy(p, &x, 8); break; }
    case TT_I32: { int32_t x = (int32_t)v; memcpy(p, &x, 4); break; }
    case TT_U8: *(uint8_t *)p = (uint8_t)v; break;
    case TT_BF16: { float f = (float)v; uint32_t u; memcpy(&u, &f, 4); uint16_t h = (uint16_t)(u >> 16); memcpy(p, &h, 2); break; }
    case TT_F16: { _Float16 h = (_Float16)v; memcpy(p, &h, 2); break; }
    default: ck_abort_msg("dtype %d", (int)dt);
  }
}

/* Every (src, dst) pair: values both dtypes hold exactly survive a cast, from a
 * contiguous source and from a strided one (every other element). */
START_TEST(test_cast_every_dtype_pair) {
  static const double vals[] = {0, 1, 3, 100, 250, -2, -0.5, 1.5, 0.25, -37, 7.75};
  int failures = 0;
  for (int a = 0; a < N_DTYPES; a++) {
    for (int b = 0; b < N_DTYPES; b++) {
      tt_dtype sdt = all_dtypes[a], ddt = all_dtypes[b];
      double keep[16];
      int n = 0;
      for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        if (dtype_holds(sdt, vals[i]) && dtype_holds(ddt, vals[i])) keep[n++] = vals[i];
      size_t es = tt_dtype_size(sdt);
      unsigned char raw[2 * 16 * 8];
      memset(raw, 0x5a, sizeof raw); /* the skipped elements of the strided view */
      for (int i = 0; i < n; i++) encode(raw + (size_t)(2 * i) * es, sdt, keep[i]);
      tt_tensor *src = tt_tensor_from_data(sdt, TT_DIMS(2 * n), raw, TT_CPU);
      TH_NN(src);
      tt_tensor *strided = tt_tensor_view_of(src, 1, (const int64_t[]){n}, (const int64_t[]){2}, 0);
      tt_tensor *dense = tt_contiguous(strided);
      TH_NN(dense);
      tt_tensor *from[2] = {strided, dense};
      for (int k = 0; k < 2; k++) {
        tt_tensor *out = tt_cast(from[k], ddt);
        TH_NN(out);
        ck_assert_int_eq(out->dtype, ddt);
        for (int i = 0; i < n; i++) {
          double got = tt_tensor_get(out, i);
          if (got != keep[i]) {
            printf("cast %s -> %s (%s source): element %d: expected %g, found %g\n", tt_dtype_name(sdt),
                   tt_dtype_name(ddt), k ? "contiguous" : "strided", i, keep[i], got);
            failures++;
          }
        }
        tt_tensor_unref(out);
      }
      tt_tensor_unref(dense);
      tt_tensor_unref(strided);
      tt_tensor_unref(src);
    }
  }
  ck_assert_msg(failures == 0, "%d conversions wrong (listed above)", failures);
}
END_TEST

/* f16 both ways against the compiler's _Float16 (every bit pattern, and
 * f32 values around every rounding boundary); bf16 rounding and NaN. */
START_TEST(test_half_conversions_round_to_nearest_even) {
  int bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    _Float16 ref;
    uint16_t hb = (uint16_t)h;
    memcpy(&ref, &hb, 2);
    float want = (float)ref, got = tt_f16_to_f32(hb);
    if (!(isnan(want) ? isnan(got) : memcmp(&want, &got, 4) == 0)) {
      if (bad++ < 5) printf("f16 0x%04x -> f32: expected %a, found %a\n", h, want, got);
    }
    if (isnan(want)) continue;
    uint16_t back = tt_f32_to_f16(want);
    if (back != hb && bad++ < 5) printf("f16 0x%04x -> f32 -> f16: found 0x%04x\n", h, back);
  }
  /* every f32 whose low 13 bits are near a tie, across the whole exponent range */
  for (uint32_t hi = 0; hi < (1u << 19); hi += 7) {
    static const uint32_t lows[] = {0, 1, 0xfff, 0x1000, 0x1001, 0x1fff};
    for (int k = 0; k < 6; k++) {
      uint32_t u = (hi << 13) | lows[k];
      float f;
      memcpy(&f, &u, 4);
      if (isnan(f)) continue;
      _Float16 r = (_Float16)f;
      uint16_t want, got = tt_f32_to_f16(f);
      memcpy(&want, &r, 2);
      if (want != got && bad++ < 10) printf("f32 %a -> f16: expected 0x%04x, found 0x%04x\n", f, want, got);
    }
  }
  ck_assert_msg(bad == 0, "%d f16 conversions differ from _Float16", bad);
  ck_assert(isnan(tt_f16_to_f32(tt_f32_to_f16(NAN))));
  /* bf16: ties to even, overflow to infinity, NaN stays NaN (it used to round to inf) */
  ck_assert_int_eq(tt_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);        /* tie, even below */
  ck_assert_int_eq(tt_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);    /* tie, even above */
  ck_assert_int_eq(tt_f32_to_bf16(3.4028234e38f), 0x7f80);
  uint32_t snan = 0x7f800001u;
  float fsnan;
  memcpy(&fsnan, &snan, 4);
  ck_assert(isnan(tt_bf16_to_f32(tt_f32_to_bf16(fsnan))));
}
END_TEST

/* Floating values into integers truncate, NaN gives 0, i32/i64 saturate, u8
 * takes the low 8 bits; integers convert through i64 without a double. */
START_TEST(test_integer_conversions) {
  float f[] = {2.9f, -2.9f, NAN, 1e20f, -1e20f, -1.0f, 256.0f, 300.5f};
  int32_t want_i32[] = {2, -2, 0, INT32_MAX, INT32_MIN, -1, 256, 300};
  int64_t want_i64[] = {2, -2, 0, INT64_MAX, INT64_MIN, -1, 256, 300};
  uint8_t want_u8[] = {2, 254, 0, 255, 0, 255, 0, 44};
  tt_tensor *t = tt_tensor_from_data(TT_F32, TT_DIMS(8), f, TT_CPU);
  tt_tensor *i32 = tt_cast(t, TT_I32), *i64 = tt_cast(t, TT_I64), *u8 = tt_cast(t, TT_U8);
  TH_NN(i32);
  TH_NN(i64);
  TH_NN(u8);
  for (int i = 0; i < 8; i++) {
    ck_assert_int_eq(((int32_t *)tt_tensor_data(i32))[i], want_i32[i]);
    ck_assert_int_eq(tt_i64(i64)[i], want_i64[i]);
    ck_assert_int_eq(((uint8_t *)tt_tensor_data(u8))[i], want_u8[i]);
  }
  int64_t big[] = {((int64_t)1 << 62) + 1, -((int64_t)1 << 40) - 3};
  tt_tensor *bt = tt_tensor_from_data(TT_I64, TT_DIMS(2), big, TT_CPU);
  tt_tensor *b32 = tt_cast(bt, TT_I32);
  tt_tensor *bview = tt_tensor_view_of(bt, 1, (const int64_t[]){2}, (const int64_t[]){1}, 0);
  tt_tensor *b64 = tt_contiguous(bview);
  TH_NN(b32);
  TH_NN(b64);
  ck_assert_int_eq(((int32_t *)tt_tensor_data(b32))[0], 1);   /* low 32 bits, as a C cast */
  ck_assert_int_eq(((int32_t *)tt_tensor_data(b32))[1], (int32_t)(-((int64_t)1 << 40) - 3));
  ck_assert_int_eq(tt_i64(b64)[0], big[0]);
  tt_tensor *ts[] = {t, i32, i64, u8, bt, b32, bview, b64};
  for (int i = 0; i < 8; i++) tt_tensor_unref(ts[i]);
}
END_TEST

/* The case users met: an f16 .npy [1.5, -2, 3.25] read right with :get, but
 * :float() gave 0, 0, 0. The file is written byte by byte here. */
START_TEST(test_f16_npy_float_from_lua) {
  char dir[] = "/tmp/taming-f16-XXXXXX";
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char npy[256], lua[256], cmd[1024];
  snprintf(npy, sizeof npy, "%s/half.npy", dir);
  snprintf(lua, sizeof lua, "%s/half.lua", dir);
  char header[128 - 10]; /* the preamble and header fill 128 bytes, as numpy pads them */
  memset(header, ' ', sizeof header);
  const char *dict = "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }";
  memcpy(header, dict, strlen(dict));
  header[sizeof header - 1] = '\n';
  const unsigned char halves[6] = {0x00, 0x3e, 0x00, 0xc0, 0x80, 0x42}; /* 1.5, -2, 3.25 */
  FILE *f = fopen(npy, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite("\x93NUMPY\x01\x00", 1, 8, f);
  unsigned char hl[2] = {(unsigned char)sizeof header, 0};
  fwrite(hl, 1, 2, f);
  fwrite(header, 1, sizeof header, f);
  fwrite(halves, 1, sizeof halves, f);
  ck_assert_int_eq(fclose(f), 0);
  f = fopen(lua, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f,
          "local tt = require 'taming'\n"
          "local t = tt.npy.load('%s')\n"
          "assert(t:dtype() == 'f16', 'dtype ' .. t:dtype())\n"
          "local want = {1.5, -2, 3.25}\n"
          "local x = t:float()\n"
          "for i = 1, 3 do\n"
          "  assert(t:get(i - 1) == want[i], ('get(%%d) = %%g'):format(i - 1, t:get(i - 1)))\n"
          "  assert(x:get(i - 1) == want[i], (':float()[%%d] = %%g, expected %%g'):format(i - 1, x:get(i - 1), want[i]))\n"
          "end\n"
          "print('f16 npy :float() ok')\n",
          npy);
  ck_assert_int_eq(fclose(f), 0);
  snprintf(cmd, sizeof cmd, "'%s/host/taming' run '%s'", TT_ABS_BUILDDIR, lua);
  int rc = system(cmd);
  unlink(npy);
  unlink(lua);
  rmdir(dir);
  ck_assert_msg(rc == 0, "%s: exit status %d", cmd, rc);
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
  tcase_add_test(tc, test_cast_every_dtype_pair);
  tcase_add_test(tc, test_half_conversions_round_to_nearest_even);
  tcase_add_test(tc, test_integer_conversions);
  tcase_add_test(tc, test_f16_npy_float_from_lua);
  tcase_add_test(tc, test_arena);
  tcase_add_test(tc, test_rng_counter_based);
  tcase_add_test(tc, test_values);
  tcase_add_test(tc, test_cpu_allocator_reuse);
  tcase_add_test(tc, test_cpu_allocator_keeps_a_steps_blocks);
  tcase_add_test(tc, test_unknown_kernel_and_cuda_message);
  suite_add_tcase(s, tc);
  return th_run(s);
}
