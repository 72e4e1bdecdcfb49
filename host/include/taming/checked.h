/* checked.h — overflow-checked size arithmetic for shapes, strides, spans and
 * byte counts.
 *
 * Every size read from a file is hostile until checked: a wrapped product can
 * make a 2^61-element tensor look like 16 bytes. The file readers and the
 * tensor core do all such arithmetic through these helpers. Each returns true
 * when the exact result fits and stores it in *out; on overflow it returns
 * false and *out is unspecified. Plugins that compute sizes from user input may
 * use them too. */
#ifndef TAMING_CHECKED_H
#define TAMING_CHECKED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

static inline bool tt_size_mul(size_t a, size_t b, size_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool tt_size_add(size_t a, size_t b, size_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool tt_u64_mul(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool tt_u64_add(uint64_t a, uint64_t b, uint64_t *out) { return !__builtin_add_overflow(a, b, out); }
static inline bool tt_i64_mul(int64_t a, int64_t b, int64_t *out) { return !__builtin_mul_overflow(a, b, out); }
static inline bool tt_i64_add(int64_t a, int64_t b, int64_t *out) { return !__builtin_add_overflow(a, b, out); }

/* The element count of a shape. False for a negative dim, or when the product
 * of the non-zero dims overflows int64: a zero dim makes the count 0 but must
 * not hide dims whose product could never be strided, so [0, 2^40, 2^40] is
 * refused while [0, 3] gives 0. */
static inline bool tt_shape_numel(int ndim, const int64_t *shape, int64_t *out) {
  int64_t n = 1, nonzero = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return false;
    if (shape[i] == 0) n = 0;
    else if (!tt_i64_mul(nonzero, shape[i], &nonzero)) return false;
  }
  *out = n ? nonzero : 0;
  return true;
}

/* Bytes of a contiguous tensor of that shape with elements of `elem` bytes;
 * the byte count of the non-zero dims must fit int64 as well (so strides in
 * bytes never overflow either). */
static inline bool tt_shape_nbytes(int ndim, const int64_t *shape, size_t elem, size_t *out) {
  int64_t n = 1, nonzero = 1, bytes;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return false;
    if (shape[i] == 0) n = 0;
    else if (!tt_i64_mul(nonzero, shape[i], &nonzero)) return false;
  }
  if (elem > (size_t)INT64_MAX || !tt_i64_mul(nonzero, (int64_t)elem, &bytes)) return false;
  *out = n ? (size_t)bytes : 0;
  return true;
}

/* The elements a strided view touches, relative to element 0 of its storage:
 * [*lo, *hi] for a view of `shape` with element `strides` from `offset`. Sets
 * *empty (and *lo = *hi = offset) when a dim is 0, since no element is touched.
 * False on a negative dim or when a span overflows int64. */
static inline bool tt_view_span(int ndim, const int64_t *shape, const int64_t *strides, int64_t offset,
                                int64_t *lo, int64_t *hi, bool *empty) {
  *lo = *hi = offset;
  *empty = false;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return false;
    if (shape[i] == 0) *empty = true;
  }
  if (*empty) return true;
  for (int i = 0; i < ndim; i++) {
    int64_t span;
    if (!tt_i64_mul(shape[i] - 1, strides[i], &span)) return false;
    if (!(span > 0 ? tt_i64_add(*hi, span, hi) : tt_i64_add(*lo, span, lo))) return false;
  }
  return true;
}

#ifdef __cplusplus
}
#endif
#endif
