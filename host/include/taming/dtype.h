/* dtype.h — loading and storing one element of every tt_dtype: the one copy of
 * the conversion rules, shared by the host (tensor.c), the CPU copy kernel and
 * the CUDA copy kernel (the functions are __host__ __device__ under nvcc).
 *
 * The rules, as PyTorch's `tensor.to(dtype)` converts on the CPU:
 * - f16 and bf16 round to nearest even from the f32 value; values past the
 *   largest finite f16 become infinities; NaN stays NaN (sign and top payload
 *   bits kept, quiet bit set).
 * - A floating value stored into an integer dtype truncates toward zero; NaN
 *   becomes 0 and values outside i32/i64 saturate at the type's limits; u8
 *   and i8 take the low 8 bits of the i64 value (u8: -1.0 -> 255, 256.0 -> 0).
 * - Between integer dtypes the value goes through i64 (so i64 -> i64 and
 *   i64 -> i32 do not lose bits to a double); a narrower integer keeps the low
 *   bits, as a C cast does.
 * - Everything else goes through double, which holds every f32, f16, bf16,
 *   i32 and u8 exactly; f64 -> f16/bf16 rounds to f32 first. */
#ifndef TAMING_DTYPE_H
#define TAMING_DTYPE_H

#include <stdint.h>
#include <string.h>
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifdef __CUDACC__
#define TT_DTYPE_FN static __forceinline__ __host__ __device__
#else
#define TT_DTYPE_FN static inline
#endif

TT_DTYPE_FN uint32_t tt_f32_bits(float f) {
#ifdef __CUDA_ARCH__
  return __float_as_uint(f);
#else
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
#endif
}

TT_DTYPE_FN float tt_f32_from_bits(uint32_t u) {
#ifdef __CUDA_ARCH__
  return __uint_as_float(u);
#else
  float f;
  memcpy(&f, &u, 4);
  return f;
#endif
}

/* ---- the 16-bit floats ---- */

TT_DTYPE_FN float tt_bf16_to_f32(uint16_t h) { return tt_f32_from_bits((uint32_t)h << 16); }

TT_DTYPE_FN uint16_t tt_f32_to_bf16(float f) {
  uint32_t u = tt_f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* NaN stays NaN */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

TT_DTYPE_FN float tt_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 31u, m = h & 1023u;
  if (e == 0) { /* zero or subnormal: m * 2^-24, exact in f32 */
    float v = (float)m * 5.9604644775390625e-8f;
    return sign ? -v : v;
  }
  if (e == 31) return tt_f32_from_bits(sign | 0x7f800000u | (m << 13));
  return tt_f32_from_bits(sign | ((e + 112u) << 23) | (m << 13));
}

TT_DTYPE_FN uint16_t tt_f32_to_f16(float f) {
  uint32_t u = tt_f32_bits(f);
  uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a >= 0x7f800000u) /* inf, NaN */
    return (uint16_t)(sign | 0x7c00u | (a > 0x7f800000u ? 0x200u | ((a >> 13) & 0x3ffu) : 0u));
  if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds past 65504 */
  uint32_t r, rem, half;
  if (a < 0x38800000u) { /* below 2^-14: a subnormal f16 counts units of 2^-24 */
    if (a < 0x33000000u) return sign; /* below 2^-25: rounds to zero */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126u - e; /* 14..24 */
    r = m >> shift;
    rem = m & ((1u << shift) - 1u);
    half = 1u << (shift - 1u);
  } else {
    r = (a >> 13) - (112u << 10); /* rebias the exponent 127 -> 15 */
    rem = a & 0x1fffu;
    half = 0x1000u;
  }
  if (rem > half || (rem == half && (r & 1u))) r++; /* a carry into the exponent is right */
  return (uint16_t)(sign | r);
}

/* ---- integers from floating values ---- */

TT_DTYPE_FN int64_t tt_i64_from_f64(double v) {
  if (!(v == v)) return 0;
  if (v >= 9223372036854775808.0) return INT64_MAX;
  if (v <= -9223372036854775808.0) return INT64_MIN;
  return (int64_t)v;
}

TT_DTYPE_FN int32_t tt_i32_from_f64(double v) {
  if (!(v == v)) return 0;
  if (v >= 2147483647.0) return INT32_MAX;
  if (v <= -2147483648.0) return INT32_MIN;
  return (int32_t)v;
}

/* ---- one element of any dtype ---- */

TT_DTYPE_FN bool tt_dtype_is_integer(tt_dtype dt) {
  return dt == TT_I64 || dt == TT_I32 || dt == TT_U8 || dt == TT_I8;
}
TT_DTYPE_FN bool tt_dtype_is_float(tt_dtype dt) {
  return dt == TT_F32 || dt == TT_F16 || dt == TT_BF16 || dt == TT_F64;
}

TT_DTYPE_FN double tt_dtype_load_f64(const void *p, tt_dtype dt) {
  switch (dt) {
    case TT_F32: return *(const float *)p;
    case TT_I64: return (double)*(const int64_t *)p;
    case TT_U8: return *(const uint8_t *)p;
    case TT_I8: return *(const int8_t *)p;
    case TT_I32: return *(const int32_t *)p;
    case TT_BF16: return tt_bf16_to_f32(*(const uint16_t *)p);
    case TT_F16: return tt_f16_to_f32(*(const uint16_t *)p);
    case TT_F64: return *(const double *)p;
    default: return 0;
  }
}

TT_DTYPE_FN int64_t tt_dtype_load_i64(const void *p, tt_dtype dt) {
  switch (dt) {
    case TT_I64: return *(const int64_t *)p;
    case TT_I32: return *(const int32_t *)p;
    case TT_U8: return *(const uint8_t *)p;
    case TT_I8: return *(const int8_t *)p;
    default: return tt_i64_from_f64(tt_dtype_load_f64(p, dt));
  }
}

TT_DTYPE_FN void tt_dtype_store_f64(void *p, tt_dtype dt, double v) {
  switch (dt) {
    case TT_F32: *(float *)p = (float)v; break;
    case TT_I64: *(int64_t *)p = tt_i64_from_f64(v); break;
    case TT_U8: *(uint8_t *)p = (uint8_t)tt_i64_from_f64(v); break;
    case TT_I8: *(int8_t *)p = (int8_t)(uint8_t)tt_i64_from_f64(v); break;
    case TT_I32: *(int32_t *)p = tt_i32_from_f64(v); break;
    case TT_BF16: *(uint16_t *)p = tt_f32_to_bf16((float)v); break;
    case TT_F16: *(uint16_t *)p = tt_f32_to_f16((float)v); break;
    case TT_F64: *(double *)p = v; break;
    default: break;
  }
}

TT_DTYPE_FN void tt_dtype_store_i64(void *p, tt_dtype dt, int64_t v) {
  switch (dt) {
    case TT_I64: *(int64_t *)p = v; break;
    case TT_I32: *(int32_t *)p = (int32_t)v; break;
    case TT_U8: *(uint8_t *)p = (uint8_t)v; break;
    case TT_I8: *(int8_t *)p = (int8_t)(uint8_t)v; break;
    default: tt_dtype_store_f64(p, dt, (double)v); break;
  }
}

/* *dst (dtype ddt) = *src (dtype sdt), by the rules at the top of this file. */
TT_DTYPE_FN void tt_dtype_convert(void *dst, tt_dtype ddt, const void *src, tt_dtype sdt) {
  if (tt_dtype_is_integer(ddt) && tt_dtype_is_integer(sdt)) tt_dtype_store_i64(dst, ddt, tt_dtype_load_i64(src, sdt));
  else tt_dtype_store_f64(dst, ddt, tt_dtype_load_f64(src, sdt));
}

#ifdef __cplusplus
}
#endif
#endif
