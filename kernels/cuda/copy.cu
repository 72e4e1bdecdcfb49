/* copy.cu — CUDA kernels of the copy family: strided copy with broadcasting and
 * dtype conversion between every pair of dtypes, and fill.
 *
 * Conversions are the host's own (taming/dtype.h, compiled for the device), so
 * a CUDA copy gives the CPU kernel's bits. Same-dtype copies move raw bits. */
#include "config.h"
#include <string.h>
#include "taming/dtype.h"
#include "cuda_backend.h"

/* Same dtype: elements of type T (by size) moved as bits. */
template <class T, class I>
__global__ void k_copy_same(tt_cuda_iter<2> it, int64_t n, T *dst, const T *src) {
  TT_CUDA_LOOP(i, n) {
    int64_t off[2];
    tt_cuda_offsets<2, I>(it, (I)i, off);
    dst[off[0]] = src[off[1]];
  }
}

template <class I>
__global__ void k_copy_convert(tt_cuda_iter<2> it, int64_t n, char *dst, tt_dtype ddt, int dsz, const char *src,
                               tt_dtype sdt, int ssz) {
  TT_CUDA_LOOP(i, n) {
    int64_t off[2];
    tt_cuda_offsets<2, I>(it, (I)i, off);
    tt_dtype_convert(dst + off[0] * dsz, ddt, src + off[1] * ssz, sdt);
  }
}

template <class T>
static void launch_same(const tt_cuda_iter<2> &it, int64_t n, void *dst, const void *src, bool small) {
  if (small)
    k_copy_same<T, uint32_t><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(it, n, (T *)dst,
                                                                                       (const T *)src);
  else
    k_copy_same<T, int64_t><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(it, n, (T *)dst,
                                                                                      (const T *)src);
}

static bool dtype_ok(tt_dtype dt) { return (unsigned)dt < TT_DTYPE_COUNT && tt_dtype_size(dt) > 0; }

// dst [...] = (dst dtype) src [...] (src strides may be 0: broadcast)
static tt_status cu_copy_strided(tt_tensor *dst, const tt_tensor *src) {
  if (!dtype_ok(dst->dtype) || !dtype_ok(src->dtype))
    return tt_error(TT_ERR_UNSUPPORTED, "copy_strided: dtype %s -> %s", tt_dtype_name(src->dtype),
                    tt_dtype_name(dst->dtype));
  int64_t n = tt_tensor_numel(dst);
  if (n == 0) return TT_OK;
  tt_cuda_iter<2> it;
  int64_t st[2][TT_MAX_DIMS];
  for (int i = 0; i < dst->ndim; i++) {
    it.shape[i] = dst->shape[i];
    st[0][i] = dst->stride[i];
    st[1][i] = src->stride[i];
  }
  int64_t *stp[2] = {st[0], st[1]};
  it.nd = tt_collapse_dims(dst->ndim, it.shape, 2, stp);
  memcpy(it.stride, st, sizeof st);
  size_t dsz = tt_dtype_size(dst->dtype), ssz = tt_dtype_size(src->dtype);
  char *d = tt_cuda_ptr<char>(dst);
  const char *s = tt_cuda_ptr<const char>(src);
  bool same = dst->dtype == src->dtype;
  if (same && it.nd == 1 && it.stride[0][0] == 1 && it.stride[1][0] == 1) {
    TT_CUDA_TRY(cudaMemcpyAsync(d, s, (size_t)n * dsz, cudaMemcpyDeviceToDevice, tt_cuda_stream()),
                "copy_strided");
    return TT_OK;
  }
  bool small = n < ((int64_t)1 << 31);
  if (same) {
    switch (dsz) {
      case 1: launch_same<uint8_t>(it, n, d, s, small); break;
      case 2: launch_same<uint16_t>(it, n, d, s, small); break;
      case 4: launch_same<uint32_t>(it, n, d, s, small); break;
      default: launch_same<unsigned long long>(it, n, d, s, small); break;
    }
  } else if (small) {
    k_copy_convert<uint32_t><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
        it, n, d, dst->dtype, (int)dsz, s, src->dtype, (int)ssz);
  } else {
    k_copy_convert<int64_t><<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(
        it, n, d, dst->dtype, (int)dsz, s, src->dtype, (int)ssz);
  }
  return tt_cuda_check_launch("copy_strided");
}

template <class T>
__global__ void k_fill(T *p, int64_t n, T v) {
  TT_CUDA_LOOP(i, n) p[i] = v;
}

// every element of contiguous t = value
static tt_status cu_fill(tt_tensor *t, double value) {
  if (!dtype_ok(t->dtype)) return tt_error(TT_ERR_UNSUPPORTED, "fill: dtype %s", tt_dtype_name(t->dtype));
  int64_t n = tt_tensor_numel(t);
  if (n == 0) return TT_OK;
  size_t es = tt_dtype_size(t->dtype);
  uint64_t bits = 0; /* aligned for every dtype's store */
  tt_dtype_store_f64(&bits, t->dtype, value);
  unsigned char pat[8];
  memcpy(pat, &bits, sizeof pat);
  bool zero = true;
  for (size_t i = 0; i < es; i++) zero = zero && pat[i] == 0;
  void *p = tt_tensor_data(t);
  if (zero || es == 1) {
    TT_CUDA_TRY(cudaMemsetAsync(p, pat[0], (size_t)n * es, tt_cuda_stream()), "fill");
    return TT_OK;
  }
  unsigned g = tt_cuda_grid(n);
  cudaStream_t st = tt_cuda_stream();
  if (es == 2) {
    uint16_t v;
    memcpy(&v, pat, 2);
    k_fill<uint16_t><<<g, TT_CUDA_THREADS, 0, st>>>((uint16_t *)p, n, v);
  } else if (es == 4) {
    uint32_t v;
    memcpy(&v, pat, 4);
    k_fill<uint32_t><<<g, TT_CUDA_THREADS, 0, st>>>((uint32_t *)p, n, v);
  } else {
    unsigned long long v;
    memcpy(&v, pat, 8);
    k_fill<unsigned long long><<<g, TT_CUDA_THREADS, 0, st>>>((unsigned long long *)p, n, v);
  }
  return tt_cuda_check_launch("fill");
}

tt_status tt_cuda_register_copy(tt_backend *b) {
  TT_REGISTER_KERNEL(b, copy_strided, cu_copy_strided);
  TT_REGISTER_KERNEL(b, fill, cu_fill);
  return TT_OK;
}
