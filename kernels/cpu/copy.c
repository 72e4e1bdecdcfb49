/* copy.c — CPU kernels of the copy family: strided copy with dtype conversion, fill. */
#include "config.h"
#include <math.h>
#include <string.h>
#include "cpu.h"

int tt_cpu_collapse_dims(int ndim, int64_t *shape, int nops, int64_t **strides) {
  if (ndim == 0) {
    shape[0] = 1;
    for (int k = 0; k < nops; k++) strides[k][0] = 0;
    return 1;
  }
  /* drop size-1 dims */
  int nd = 0;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] == 1) continue;
    shape[nd] = shape[i];
    for (int k = 0; k < nops; k++) strides[k][nd] = strides[k][i];
    nd++;
  }
  if (nd == 0) {
    shape[0] = 1;
    for (int k = 0; k < nops; k++) strides[k][0] = 0;
    return 1;
  }
  /* merge i into i+1 when stride[i] == stride[i+1]*shape[i+1] for every operand */
  int out = 0;
  for (int i = 1; i < nd; i++) {
    bool merge = true;
    for (int k = 0; k < nops; k++)
      if (strides[k][out] != strides[k][i] * shape[i]) merge = false;
    if (merge) {
      shape[out] *= shape[i];
      for (int k = 0; k < nops; k++) strides[k][out] = strides[k][i];
    } else {
      out++;
      shape[out] = shape[i];
      for (int k = 0; k < nops; k++) strides[k][out] = strides[k][i];
    }
  }
  return out + 1;
}

static inline double ld(const char *p, tt_dtype dt) {
  switch (dt) {
    case TT_F32: return *(const float *)p;
    case TT_I64: return (double)*(const int64_t *)p;
    case TT_U8: return *(const uint8_t *)p;
    case TT_I8: return *(const int8_t *)p;
    case TT_I32: return *(const int32_t *)p;
    case TT_F64: return *(const double *)p;
    case TT_BF16: {
      uint32_t u = (uint32_t)(*(const uint16_t *)p) << 16;
      float f;
      memcpy(&f, &u, 4);
      return f;
    }
    default: return 0;
  }
}

static inline void st(char *p, tt_dtype dt, double v) {
  switch (dt) {
    case TT_F32: *(float *)p = (float)v; break;
    case TT_I64: *(int64_t *)p = (int64_t)v; break;
    case TT_U8: *(uint8_t *)p = (uint8_t)v; break;
    case TT_I8: *(int8_t *)p = (int8_t)v; break;
    case TT_I32: *(int32_t *)p = (int32_t)v; break;
    case TT_F64: *(double *)p = v; break;
    case TT_BF16: {
      float f = (float)v;
      uint32_t u;
      memcpy(&u, &f, 4);
      u += 0x7fff + ((u >> 16) & 1); /* round to nearest even */
      *(uint16_t *)p = (uint16_t)(u >> 16);
      break;
    }
    default: break;
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
  nd = tt_cpu_collapse_dims(nd, shape, 2, strides);
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
      for (int64_t i = 0; i < inner; i++) st(dp + i * isd * (int64_t)es, dst->dtype, ld(sp + i * iss * (int64_t)esrc, src->dtype));
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
  for (int64_t i = 0; i < n; i++) st(d + i * (int64_t)es, t->dtype, value);
  return TT_OK;
}

tt_status tt_cpu_register_copy(tt_backend *b) {
  TT_REGISTER_KERNEL(b, copy_strided, cpu_copy_strided);
  TT_REGISTER_KERNEL(b, fill, cpu_fill);
  return TT_OK;
}
