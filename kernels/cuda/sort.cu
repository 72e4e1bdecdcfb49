/* sort.cu — CUDA kernel of sort and top-k, the twin of kernels/cpu/sort.c.
 *
 * Every line (outer x inner of them, n long, stride inner) is gathered into one
 * contiguous segment of keys with the positions 0..n-1 as values, the segments
 * are sorted by CUB's segmented radix sort, and the first k of each are
 * scattered back. The radix sort is stable in both directions and treats -0 and
 * +0 as equal, which is the CPU kernel's order (value, then index); a NaN of
 * either sign becomes the positive quiet NaN in the keys, so it sorts as the
 * largest value as on the CPU, and the values written are the input's own bits
 * (read back through the sorted positions). */
#include "config.h"
#include <limits.h>
#include <cub/device/device_segmented_radix_sort.cuh>
#include "cuda_backend.h"

__global__ void k_sort_gather(const float *x, int64_t n, int64_t inner, int64_t total, float *keys, int *pos) {
  TT_CUDA_LOOP(i, total) {
    int64_t line = i / n, j = i % n, o = line / inner, q = line % inner;
    float v = x[(o * n + j) * inner + q];
    keys[i] = isnan(v) ? __int_as_float(0x7fc00000) : v;
    pos[i] = (int)j;
  }
}

__global__ void k_sort_offsets(int64_t lines, int64_t n, int *offsets) {
  TT_CUDA_LOOP(l, lines + 1) offsets[l] = (int)(l * n);
}

__global__ void k_sort_scatter(const float *x, const int *pos, int64_t n, int64_t inner, int64_t k, int64_t count,
                               float *vs, int64_t *is) {
  TT_CUDA_LOOP(i, count) {
    int64_t line = i / k, j = i % k, o = line / inner, q = line % inner;
    int64_t p = pos[line * n + j], dst = (o * k + j) * inner + q;
    vs[dst] = x[(o * n + p) * inner + q];
    is[dst] = p;
  }
}

static tt_status cu_sort(const tt_tensor *x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool descending,
                         tt_tensor *values, tt_tensor *indices) {
  int64_t lines = outer * inner, total = lines * n;
  if (total == 0) return TT_OK;
  if (n > INT_MAX || lines >= INT_MAX || total > INT_MAX)
    return tt_error(TT_ERR_UNSUPPORTED, "sort: %lld lines of %lld exceed the 32-bit item count of the CUDA sort",
                    (long long)lines, (long long)n);
  tt_cuda_buf keys, keys_out, pos, pos_out, offsets, temp;
  TT_TRY(keys.alloc(sizeof(float) * (size_t)total, "sort"));
  TT_TRY(keys_out.alloc(sizeof(float) * (size_t)total, "sort"));
  TT_TRY(pos.alloc(sizeof(int) * (size_t)total, "sort"));
  TT_TRY(pos_out.alloc(sizeof(int) * (size_t)total, "sort"));
  TT_TRY(offsets.alloc(sizeof(int) * (size_t)(lines + 1), "sort"));
  cudaStream_t st = tt_cuda_stream();
  const float *xs = tt_cuda_ptr<float>(x);
  k_sort_gather<<<tt_cuda_grid(total), TT_CUDA_THREADS, 0, st>>>(xs, n, inner, total, keys.as<float>(), pos.as<int>());
  TT_TRY(tt_cuda_check_launch("sort gather"));
  k_sort_offsets<<<tt_cuda_grid(lines + 1), TT_CUDA_THREADS, 0, st>>>(lines, n, offsets.as<int>());
  TT_TRY(tt_cuda_check_launch("sort offsets"));
  const int *off = offsets.as<int>();
  size_t temp_bytes = 0;
  for (int pass = 0; pass < 2; pass++) { /* pass 0 asks for the workspace size, pass 1 sorts */
    cudaError_t e = descending
                        ? cub::DeviceSegmentedRadixSort::SortPairsDescending(
                              temp.p, temp_bytes, keys.as<float>(), keys_out.as<float>(), pos.as<int>(),
                              pos_out.as<int>(), (int)total, (int)lines, off, off + 1, 0, 32, st)
                        : cub::DeviceSegmentedRadixSort::SortPairs(temp.p, temp_bytes, keys.as<float>(),
                                                                   keys_out.as<float>(), pos.as<int>(),
                                                                   pos_out.as<int>(), (int)total, (int)lines, off,
                                                                   off + 1, 0, 32, st);
    if (e != cudaSuccess) return tt_cuda_error(e, "sort (cub segmented radix sort)");
    if (pass == 0) TT_TRY(temp.alloc(temp_bytes, "sort"));
  }
  int64_t count = lines * k;
  k_sort_scatter<<<tt_cuda_grid(count), TT_CUDA_THREADS, 0, st>>>(xs, pos_out.as<int>(), n, inner, k, count,
                                                                 tt_cuda_ptr<float>(values),
                                                                 tt_cuda_ptr<int64_t>(indices));
  return tt_cuda_check_launch("sort scatter");
}

tt_status tt_cuda_register_sort(tt_backend *b) {
  TT_REGISTER_KERNEL(b, sort, cu_sort);
  return TT_OK;
}
