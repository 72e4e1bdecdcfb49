/* compare.c — CPU kernels of the compare family: comparisons into a u8 mask and
 * where. The host makes every operand contiguous, so these are flat loops. */
#include "config.h"
#include "cpu.h"

#define CMP_LOOP(T, EXPR)                                                       \
  do {                                                                          \
    const T *x = tt_tensor_data(a), *y = tt_tensor_data(b);                     \
    _Pragma("omp parallel for schedule(static) if (n > TT_CPU_PAR_MIN)")        \
    for (int64_t i = 0; i < n; i++) o[i] = (uint8_t)(EXPR);                     \
  } while (0)

#define CMP_DTYPE(T)                                     \
  switch (op) {                                          \
    case TT_CMP_LT: CMP_LOOP(T, x[i] < y[i]); break;     \
    case TT_CMP_LE: CMP_LOOP(T, x[i] <= y[i]); break;    \
    case TT_CMP_GT: CMP_LOOP(T, x[i] > y[i]); break;     \
    case TT_CMP_GE: CMP_LOOP(T, x[i] >= y[i]); break;    \
    case TT_CMP_EQ: CMP_LOOP(T, x[i] == y[i]); break;    \
    case TT_CMP_NE: CMP_LOOP(T, x[i] != y[i]); break;    \
    default: return tt_error(TT_ERR_INVALID, "compare: unknown op %d", (int)op); \
  }

static tt_status cpu_compare(tt_compare_op op, const tt_tensor *a, const tt_tensor *b, tt_tensor *out) {
  int64_t n = tt_tensor_numel(out);
  uint8_t *o = tt_tensor_data(out);
  if (a->dtype == TT_F32) {
    CMP_DTYPE(float)
  } else if (a->dtype == TT_I64) {
    CMP_DTYPE(int64_t)
  } else if (a->dtype == TT_U8) {
    CMP_DTYPE(uint8_t)
  } else {
    return tt_error(TT_ERR_INVALID, "compare: unsupported dtype %s", tt_dtype_name(a->dtype));
  }
  return TT_OK;
}

static tt_status cpu_where(const tt_tensor *cond, const tt_tensor *a, const tt_tensor *b, tt_tensor *out) {
  int64_t n = tt_tensor_numel(out);
  const uint8_t *c = tt_tensor_data(cond);
  if (out->dtype == TT_F32) {
    const float *x = tt_f32(a), *y = tt_f32(b);
    float *o = tt_f32(out);
#pragma omp parallel for schedule(static) if (n > TT_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];
  } else if (out->dtype == TT_I64) {
    const int64_t *x = tt_i64(a), *y = tt_i64(b);
    int64_t *o = tt_i64(out);
#pragma omp parallel for schedule(static) if (n > TT_CPU_PAR_MIN)
    for (int64_t i = 0; i < n; i++) o[i] = c[i] ? x[i] : y[i];
  } else {
    return tt_error(TT_ERR_INVALID, "where: unsupported dtype %s", tt_dtype_name(out->dtype));
  }
  return TT_OK;
}

tt_status tt_cpu_register_compare(tt_backend *b) {
  TT_REGISTER_KERNEL(b, compare, cpu_compare);
  TT_REGISTER_KERNEL(b, where, cpu_where);
  return TT_OK;
}
