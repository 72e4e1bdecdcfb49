/* copy.c — CPU kernels of the copy family: strided copy with dtype conversion
 * (every pair of dtypes, by the rules of taming/dtype.h), fill. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "taming/dtype.h"
#include "cpu.h"

/* n elements, dst[i * sd] = src[i * ss], converting. The common conversions of
 * weights and images have their own loops; the rest go element by element. */
static void convert_row(char *d, tt_dtype ddt, int64_t sd, const char *s, tt_dtype sdt, int64_t ss, int64_t n) {
  if (ddt == TT_F32 && sdt == TT_F16) {
    float *df = (float *)d;
    const uint16_t *sh = (const uint16_t *)s;
    for (int64_t i = 0; i < n; i++) df[i * sd] = tt_f16_to_f32(sh[i * ss]);
  } else if (ddt == TT_F32 && sdt == TT_BF16) {
    float *df = (float *)d;
    const uint16_t *sh = (const uint16_t *)s;
    for (int64_t i = 0; i < n; i++) df[i * sd] = tt_bf16_to_f32(sh[i * ss]);
  } else if (ddt == TT_BF16 && sdt == TT_F32) {
    uint16_t *dh = (uint16_t *)d;
    const float *sf = (const float *)s;
    for (int64_t i = 0; i < n; i++) dh[i * sd] = tt_f32_to_bf16(sf[i * ss]);
  } else if (ddt == TT_F16 && sdt == TT_F32) {
    uint16_t *dh = (uint16_t *)d;
    const float *sf = (const float *)s;
    for (int64_t i = 0; i < n; i++) dh[i * sd] = tt_f32_to_f16(sf[i * ss]);
  } else {
    int64_t des = (int64_t)tt_dtype_size(ddt), ses = (int64_t)tt_dtype_size(sdt);
    for (int64_t i = 0; i < n; i++) tt_dtype_convert(d + i * sd * des, ddt, s + i * ss * ses, sdt);
  }
}

static tt_status cpu_copy_strided(tt_tensor *dst, const tt_tensor *src) {
  int64_t shape[TT_MAX_DIMS], sd[TT_MAX_DIMS], ss[TT_MAX_DIMS];
  int nd = dst->ndim;
  for (int i = 0; i < nd; i++) {
    shape[i] = dst->shape[i];
    sd[i] = dst->stride[i];
    ss[i] = src->stride[i];
  }
  int64_t *strides[2] = {sd, ss};
  nd = tt_collapse_dims(nd, shape, 2, strides);
  char *d = tt_tensor_data(dst);
  const char *s = tt_tensor_data(src);
  size_t es = tt_dtype_size(dst->dtype), esrc = tt_dtype_size(src->dtype);
  int64_t inner = shape[nd - 1], isd = sd[nd - 1], iss = ss[nd - 1];
  int64_t outer = 1;
  for (int i = 0; i < nd - 1; i++) outer *= shape[i];
  bool same = dst->dtype == src->dtype;
  if (outer == 1 && same && isd == 1 && iss == 1) {
    memcpy(d, s, (size_t)inner * es);
    return TT_OK;
  }
#pragma omp parallel for schedule(static) if (outer * inner > TT_CPU_PAR_MIN && outer > 1)
  for (int64_t o = 0; o < outer; o++) {
    int64_t od = 0, os = 0, r = o;
    for (int i = nd - 2; i >= 0; i--) {
      int64_t c = r % shape[i];
      r /= shape[i];
      od += c * sd[i];
      os += c * ss[i];
    }
    char *dp = d + od * (int64_t)es;
    const char *sp = s + os * (int64_t)esrc;
    if (same && es == 4) {
      float *df = (float *)dp;
      const float *sf = (const float *)sp;
      if (isd == 1 && iss == 1) memcpy(df, sf, (size_t)inner * 4);
      else if (iss == 0) { float v = sf[0]; for (int64_t i = 0; i < inner; i++) df[i * isd] = v; }
      else for (int64_t i = 0; i < inner; i++) df[i * isd] = sf[i * iss];
    } else if (same && es == 8) {
      int64_t *df = (int64_t *)dp;
      const int64_t *sf = (const int64_t *)sp;
      for (int64_t i = 0; i < inner; i++) df[i * isd] = sf[i * iss];
    } else if (same) {
      for (int64_t i = 0; i < inner; i++) memcpy(dp + i * isd * (int64_t)es, sp + i * iss * (int64_t)es, es);
    } else {
      convert_row(dp, dst->dtype, isd, sp, src->dtype, iss, inner);
    }
  }
  return TT_OK;
}

static tt_status cpu_fill(tt_tensor *t, double value) {
  int64_t n = tt_tensor_numel(t);
  char *d = tt_tensor_data(t);
  if (t->dtype == TT_F32) {
    float v = (float)value, *f = (float *)d;
    if (v == 0.0f && !signbit(v)) {
      memset(f, 0, (size_t)n * 4);
      return TT_OK;
    }
#pragma omp parallel for schedule(static) if (n > TT_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) f[i] = v;
    return TT_OK;
  }
  size_t es = tt_dtype_size(t->dtype);
  for (int64_t i = 0; i < n; i++) tt_dtype_store_f64(d + i * (int64_t)es, t->dtype, value);
  return TT_OK;
}

tt_status tt_cpu_register_copy(tt_backend *b) {
  TT_REGISTER_KERNEL(b, copy_strided, cpu_copy_strided);
  TT_REGISTER_KERNEL(b, fill, cpu_fill);
  return TT_OK;
}
