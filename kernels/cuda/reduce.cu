/* reduce.cu — CUDA reduction kernel over the middle axis of [outer, n, inner]:
 * sum and mean (accumulated in double, like the CPU kernel), max, min and the
 * first argmax/argmin (NaN wins, as in PyTorch). Rows (inner == 1) reduce one
 * block per row; otherwise 32 adjacent columns per block keep reads coalesced
 * (see reduce.cuh). */
#include "config.h"
#include "reduce.cuh"

/* sum / mean */
struct red_sum {
  typedef tt_red_dsum acc;
  const float *x;
  float *y;
  int64_t n, inner;
  double scale;
  __device__ acc identity() const { return {0.0}; }
  __device__ acc combine(acc a, acc b) const { return {a.s + b.s}; }
  __device__ acc load(int64_t j, int64_t e) const { return {(double)x[j * n + e]}; }           /* rows */
  __device__ acc load(int64_t o, int64_t i, int64_t k) const { return {(double)x[(o * n + i) * inner + k]}; }
  __device__ void store(int64_t j, acc a) const { y[j] = (float)(a.s * scale); }
};

/* max / min / argmax / argmin */
struct red_arg {
  typedef tt_red_arg acc;
  const float *x;
  float *yv;   /* values (MAX, MIN) or NULL */
  int64_t *yi; /* indices (ARGMAX, ARGMIN) or NULL */
  int64_t n, inner;
  bool want_max;
  __device__ acc identity() const { return {0.0f, -1}; }
  __device__ acc combine(acc a, acc b) const { return tt_red_arg_combine(a, b, want_max); }
  __device__ acc load(int64_t j, int64_t e) const { return {x[j * n + e], e}; }
  __device__ acc load(int64_t o, int64_t i, int64_t k) const { return {x[(o * n + i) * inner + k], i}; }
  __device__ void store(int64_t j, acc a) const {
    /* an empty axis gives NaN and index 0, like the CPU kernel */
    if (yv) yv[j] = a.i < 0 ? __int_as_float(0x7fc00000) : a.v;
    if (yi) yi[j] = a.i < 0 ? 0 : a.i;
  }
};

template <class R>
static tt_status run(const R &r, int64_t outer, int64_t n, int64_t inner) {
  if (inner == 1) return tt_cuda_set_reduce("reduce", r, outer, n);
  return tt_cuda_col_reduce("reduce", r, outer, n, inner);
}

// x [outer, n, inner] -> y [outer, inner] (f32, or i64 for ARG*)
static tt_status cu_reduce(tt_reduce_op op, const tt_tensor *x, int64_t outer, int64_t n, int64_t inner,
                           tt_tensor *y) {
  if ((unsigned)op >= TT_REDUCE_COUNT) return tt_error(TT_ERR_INVALID, "reduce: unknown op %d", (int)op);
  if (outer * inner == 0) return TT_OK;
  const float *xs = tt_cuda_ptr<float>(x);
  if (op == TT_REDUCE_SUM || op == TT_REDUCE_MEAN) {
    red_sum r = {xs, tt_cuda_ptr<float>(y), n, inner, op == TT_REDUCE_MEAN ? 1.0 / (double)(n ? n : 1) : 1.0};
    return run(r, outer, n, inner);
  }
  bool idx = op == TT_REDUCE_ARGMAX || op == TT_REDUCE_ARGMIN;
  red_arg r = {xs, idx ? nullptr : tt_cuda_ptr<float>(y), idx ? tt_cuda_ptr<int64_t>(y) : nullptr, n, inner,
               op == TT_REDUCE_MAX || op == TT_REDUCE_ARGMAX};
  return run(r, outer, n, inner);
}

/* cumsum along lines of n (stride inner): one thread a line, summing in double in
 * the CPU kernel's order, so both give the same bits. */
__global__ void k_cumsum(const float *x, int64_t n, int64_t inner, int64_t lines, bool reverse, float *y) {
  TT_CUDA_LOOP(line, lines) {
    int64_t o = line / inner, q = line % inner;
    double acc = 0;
    for (int64_t t = 0; t < n; t++) {
      int64_t j = reverse ? n - 1 - t : t, at = (o * n + j) * inner + q;
      acc += x[at];
      y[at] = (float)acc;
    }
  }
}

static tt_status cu_cumsum(const tt_tensor *x, int64_t outer, int64_t n, int64_t inner, bool reverse, tt_tensor *y) {
  int64_t lines = outer * inner;
  if (lines == 0 || n == 0) return TT_OK;
  k_cumsum<<<tt_cuda_grid(lines, 128), 128, 0, tt_cuda_stream()>>>(tt_cuda_ptr<float>(x), n, inner, lines, reverse,
                                                                  tt_cuda_ptr<float>(y));
  return tt_cuda_check_launch("cumsum");
}

tt_status tt_cuda_register_reduce(tt_backend *b) {
  TT_REGISTER_KERNEL(b, reduce, cu_reduce);
  TT_REGISTER_KERNEL(b, cumsum, cu_cumsum);
  return TT_OK;
}
