/* ops/qlinear.c — low-precision linear layers for inference: packing f32
 * weights to bf16 or per-channel int8, the file form of int8 weights, and the
 * forward op that dispatches to the backend's kernel (taming/ops/qlinear.h). */
#include "config.h"
#include <math.h>
#include <string.h>
#include "common.h"

static int64_t kpad(int64_t K) { return (K + TT_QLINEAR_KALIGN - 1) / TT_QLINEAR_KALIGN * TT_QLINEAR_KALIGN; }

bool tt_qlinear_supported(tt_device dev, tt_dtype dt, const char **isa) {
  const char *kname = dt == TT_BF16 ? "qlinear_bf16" : dt == TT_I8 ? "qlinear_i8" : NULL;
  bool ok = kname && tt_backend_supports(dev, kname);
  if (isa) {
    tt_qlinear_isa_fn f = tt_backend_supports(dev, "qlinear_isa") ? TT_KERNEL(dev, qlinear_isa) : NULL;
    *isa = f ? f(dt) : "no low-precision linear kernels on this device";
  }
  return ok;
}

/* t as a contiguous host tensor (a reference, or a copy) */
static tt_tensor *host_contiguous(tt_tensor *t) {
  if (t->device == TT_CPU) return tt_contiguous(t);
  tt_tensor *h = tt_to_device(t, TT_CPU);
  tt_tensor *c = h ? tt_contiguous(h) : NULL;
  tt_tensor_unref(h);
  return c;
}

static tt_tensor *to_device_of(tt_tensor *h, tt_device dev) {
  if (!h || dev == TT_CPU) return h;
  tt_tensor *d = tt_to_device(h, dev);
  tt_tensor_unref(h);
  return d;
}

static tt_status check_matrix(const char *op, const char *what, const tt_tensor *t, tt_dtype dt) {
  if (t->dtype != dt || t->ndim != 2) {
    char b[TT_SHAPE_BUF];
    return tt_error(TT_ERR_INVALID, "%s: %s must be %s [N, K], found %s %s", op, what, tt_dtype_name(dt),
                    tt_dtype_name(t->dtype), tt_tensor_shape_str(t, b, sizeof b));
  }
  return TT_OK;
}

static uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);   /* NaN stays NaN */
  u += 0x7fffu + ((u >> 16) & 1u);                                            /* round to nearest even */
  return (uint16_t)(u >> 16);
}

/* one row w[K] -> q[K] and its scale (max |w| / 127; rows of zeros get scale 0) */
static float quantize_row(const float *w, int64_t K, int8_t *q) {
  float amax = 0.0f;
  for (int64_t k = 0; k < K; k++) amax = fmaxf(amax, fabsf(w[k]));
  float s = amax / 127.0f, inv = s > 0.0f ? 1.0f / s : 0.0f;
  for (int64_t k = 0; k < K; k++) {
    float v = nearbyintf(w[k] * inv);
    q[k] = (int8_t)(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
  }
  return s;
}

tt_status tt_quantize_i8_rows(tt_tensor *w, tt_tensor **q, tt_tensor **scale) {
  *q = *scale = NULL;
  TT_TRY(check_matrix("quantize_i8_rows", "weight", w, TT_F32));
  int64_t N = w->shape[0], K = w->shape[1];
  tt_tensor *wc = host_contiguous(w);
  tt_tensor *qq = wc ? tt_tensor_new(TT_I8, TT_DIMS(N, K), TT_CPU) : NULL;
  tt_tensor *ss = qq ? tt_tensor_new(TT_F32, TT_DIMS(N), TT_CPU) : NULL;
  if (!ss) {
    tt_tensor_unref(wc);
    tt_tensor_unref(qq);
    return tt_last_status();
  }
  const float *pw = tt_f32(wc);
  int8_t *pq = tt_tensor_data(qq);
  for (int64_t n = 0; n < N; n++) tt_f32(ss)[n] = quantize_row(pw + n * K, K, pq + n * K);
  tt_tensor_unref(wc);
  *q = to_device_of(qq, w->device);
  *scale = to_device_of(ss, w->device);
  if (!*q || !*scale) {
    tt_tensor_release(q);
    tt_tensor_release(scale);
    return tt_last_status();
  }
  return TT_OK;
}

static tt_status check_scale(const char *op, const tt_tensor *scale, int64_t N) {
  if (scale->dtype != TT_F32 || scale->ndim != 1 || scale->shape[0] != N) {
    char b[TT_SHAPE_BUF];
    return tt_error(TT_ERR_INVALID, "%s: scale must be f32 [%lld], found %s %s", op, (long long)N,
                    tt_dtype_name(scale->dtype), tt_tensor_shape_str(scale, b, sizeof b));
  }
  return TT_OK;
}

tt_tensor *tt_dequantize_i8_rows(tt_tensor *q, tt_tensor *scale) {
  if (check_matrix("dequantize_i8_rows", "weight", q, TT_I8) || check_scale("dequantize_i8_rows", scale, q->shape[0]))
    return NULL;
  int64_t N = q->shape[0], K = q->shape[1];
  tt_tensor *qc = host_contiguous(q), *sc = qc ? host_contiguous(scale) : NULL;
  tt_tensor *w = sc ? tt_tensor_new(TT_F32, TT_DIMS(N, K), TT_CPU) : NULL;
  if (w) {
    const int8_t *pq = tt_tensor_data(qc);
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < K; k++) tt_f32(w)[n * K + k] = (float)pq[n * K + k] * tt_f32(sc)[n];
  }
  tt_tensor_unref(qc);
  tt_tensor_unref(sc);
  return to_device_of(w, q->device);
}

/* Kp for a [N, K] weight, or 0 with an error when it cannot be packed */
static int64_t packed_width(int64_t N, int64_t K) {
  int64_t Kp = kpad(K), bytes;
  if (K <= 0 || N <= 0 || __builtin_mul_overflow(N, Kp, &bytes) || __builtin_mul_overflow(bytes, 2, &bytes)) {
    tt_error(TT_ERR_INVALID, "qlinear_pack: cannot pack a [%lld, %lld] weight", (long long)N, (long long)K);
    return 0;
  }
  return Kp;
}

/* the packed [N, Kp] tensor, zero-filled */
static tt_tensor *new_packed(tt_dtype dt, int64_t N, int64_t K) {
  int64_t Kp = packed_width(N, K);
  tt_tensor *p = Kp ? tt_tensor_new(dt, TT_DIMS(N, Kp), TT_CPU) : NULL;
  if (p) memset(tt_tensor_data(p), 0, (size_t)(N * Kp) * tt_dtype_size(dt));
  return p;
}

/* w [N, K] (f32 or i8) packed to dt by its own device's kernel, with the scales
 * when scale is not NULL; NULL + error on failure. */
static tt_tensor *pack_on_device(tt_tensor *w, tt_dtype dt, tt_tensor **scale) {
  int64_t N = w->shape[0], K = w->shape[1], Kp = packed_width(N, K);
  tt_qlinear_pack_fn f = Kp ? TT_KERNEL(w->device, qlinear_pack) : NULL;
  tt_tensor *wc = f ? tt_contiguous(w) : NULL;
  tt_tensor *p = wc ? tt_tensor_new(dt, TT_DIMS(N, Kp), w->device) : NULL;
  tt_tensor *s = p && scale ? tt_tensor_new(TT_F32, TT_DIMS(N), w->device) : NULL;
  tt_status st = p && (!scale || s) ? f(N, K, tt_tensor_data(wc), w->dtype, tt_tensor_data(p), dt, Kp,
                                        s ? tt_f32(s) : NULL)
                                    : tt_last_status();
  tt_tensor_unref(wc);
  if (st != TT_OK) {
    tt_tensor_unref(p);
    tt_tensor_unref(s);
    return NULL;
  }
  if (scale) *scale = s;
  return p;
}

static bool packs_on_device(const tt_tensor *w) {
  return w->device != TT_CPU && tt_backend_supports(w->device, "qlinear_pack");
}

tt_tensor *tt_qlinear_pack(tt_tensor *w, tt_dtype dt, tt_tensor **scale) {
  if (scale) *scale = NULL;
  if (check_matrix("qlinear_pack", "weight", w, TT_F32)) return NULL;
  if (dt != TT_BF16 && dt != TT_I8) {
    tt_error(TT_ERR_INVALID, "qlinear_pack: packs to bf16 or i8, not %s", tt_dtype_name(dt));
    return NULL;
  }
  if (dt == TT_I8 && !scale) {
    tt_error(TT_ERR_INVALID, "qlinear_pack: i8 weights need somewhere to put their scales");
    return NULL;
  }
  if (packs_on_device(w)) return pack_on_device(w, dt, scale);
  int64_t N = w->shape[0], K = w->shape[1], Kp = kpad(K);
  tt_tensor *wc = host_contiguous(w);
  tt_tensor *p = wc ? new_packed(dt, N, K) : NULL;
  tt_tensor *s = p && dt == TT_I8 ? tt_tensor_new(TT_F32, TT_DIMS(N), TT_CPU) : NULL;
  if (!p || (dt == TT_I8 && !s)) {
    tt_tensor_unref(wc);
    tt_tensor_unref(p);
    return NULL;
  }
  const float *pw = tt_f32(wc);
  if (dt == TT_BF16) {
    uint16_t *pp = tt_tensor_data(p);
    for (int64_t n = 0; n < N; n++)
      for (int64_t k = 0; k < K; k++) pp[n * Kp + k] = f32_to_bf16(pw[n * K + k]);
  } else {
    int8_t *pp = tt_tensor_data(p);
    for (int64_t n = 0; n < N; n++) tt_f32(s)[n] = quantize_row(pw + n * K, K, pp + n * Kp);
  }
  tt_tensor_unref(wc);
  if (s) {
    *scale = to_device_of(s, w->device);
    if (!*scale) {
      tt_tensor_unref(p);
      return NULL;
    }
  }
  return to_device_of(p, w->device);
}

tt_tensor *tt_qlinear_pack_i8(tt_tensor *q, tt_tensor *scale) {
  if (check_matrix("qlinear_pack_i8", "weight", q, TT_I8) || check_scale("qlinear_pack_i8", scale, q->shape[0]))
    return NULL;
  if (packs_on_device(q)) return pack_on_device(q, TT_I8, NULL);
  int64_t N = q->shape[0], K = q->shape[1], Kp = kpad(K);
  tt_tensor *qc = host_contiguous(q);
  tt_tensor *p = qc ? new_packed(TT_I8, N, K) : NULL;
  if (p) {
    const int8_t *src = tt_tensor_data(qc);
    int8_t *dst = tt_tensor_data(p);
    for (int64_t n = 0; n < N; n++) memcpy(dst + n * Kp, src + n * K, (size_t)K);
  }
  tt_tensor_unref(qc);
  return to_device_of(p, q->device);
}

tt_tensor *tt_qlinear(tt_tensor *x, tt_tensor *w, tt_tensor *scale, tt_tensor *bias) {
  TT_PROFILE_OP("qlinear");
  tt_tensor *args[4] = {x, w, scale ? scale : x, bias ? bias : x};
  if (tt_check_f32("qlinear", "input", x) || tt_check_same_device("qlinear", 4, args)) return NULL;
  char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
  if ((w->dtype != TT_BF16 && w->dtype != TT_I8) || w->ndim != 2 || w->shape[1] % TT_QLINEAR_KALIGN) {
    tt_error(TT_ERR_INVALID, "qlinear: weight must be packed bf16 or i8 [N, Kp] (Kp a multiple of %d), found %s %s",
             TT_QLINEAR_KALIGN, tt_dtype_name(w->dtype), tt_tensor_shape_str(w, s1, sizeof s1));
    return NULL;
  }
  int64_t N = w->shape[0], Kp = w->shape[1], K = x->ndim ? x->shape[x->ndim - 1] : 0;
  if (x->ndim < 1 || kpad(K) != Kp) {
    tt_error(TT_ERR_INVALID, "qlinear: input %s does not fit packed weight %s", tt_tensor_shape_str(x, s1, sizeof s1),
             tt_tensor_shape_str(w, s2, sizeof s2));
    return NULL;
  }
  if (w->dtype == TT_I8 && (!scale || check_scale("qlinear", scale, N))) {
    if (!scale) tt_error(TT_ERR_INVALID, "qlinear: i8 weights %s need their scales", tt_tensor_shape_str(w, s1, sizeof s1));
    return NULL;
  }
  if (bias && (bias->dtype != TT_F32 || bias->ndim != 1 || bias->shape[0] != N)) {
    tt_error(TT_ERR_INVALID, "qlinear: bias must be f32 [%lld], found %s %s", (long long)N, tt_dtype_name(bias->dtype),
             tt_tensor_shape_str(bias, s1, sizeof s1));
    return NULL;
  }
  int64_t rows = K ? tt_tensor_numel(x) / K : 0;
  tt_tensor *xc = tt_contiguous(x), *wc = xc ? tt_contiguous(w) : NULL;
  tt_tensor *sc = wc && scale ? tt_contiguous(scale) : NULL, *bc = wc && bias ? tt_contiguous(bias) : NULL;
  int64_t sh[TT_MAX_DIMS];
  memcpy(sh, x->shape, sizeof sh);
  sh[x->ndim - 1] = N;
  tt_tensor *y = wc && (!scale || sc) && (!bias || bc) ? tt_tensor_new(TT_F32, x->ndim, sh, x->device) : NULL;
  tt_status s = y ? TT_OK : tt_last_status();
  if (s == TT_OK && w->dtype == TT_BF16) {
    tt_qlinear_bf16_fn f = TT_KERNEL(x->device, qlinear_bf16);
    s = f ? f(rows, N, K, tt_f32(xc), K, tt_tensor_data(wc), Kp, bc ? tt_f32(bc) : NULL, tt_f32(y), N)
          : tt_last_status();
  } else if (s == TT_OK) {
    tt_qlinear_i8_fn f = TT_KERNEL(x->device, qlinear_i8);
    s = f ? f(rows, N, K, tt_f32(xc), K, tt_tensor_data(wc), Kp, tt_f32(sc), bc ? tt_f32(bc) : NULL, tt_f32(y), N)
          : tt_last_status();
  }
  tt_tensor_unref(xc);
  tt_tensor_unref(wc);
  tt_tensor_unref(sc);
  tt_tensor_unref(bc);
  if (s != TT_OK) tt_tensor_release(&y);
  return y;
}
