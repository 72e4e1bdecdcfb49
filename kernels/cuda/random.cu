/* random.cu — CUDA kernel filling tensors from the Philox-4x32-10 stream.
 *
 * Element i uses the block for (seed, counter + i), exactly as host/ops/random.c
 * defines it, and turns it into a number with the CPU kernel's formulas (uniform
 * from the top 24 bits of word 0; normal by Box-Muller from words 0 and 1 in
 * double), so the CPU and the GPU draw the same numbers for the same seed. */
#include "config.h"
#include "cuda_backend.h"

#define TT_PI 3.14159265358979323846

__host__ __device__ __forceinline__ void philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

__global__ void k_random_fill(tt_random_kind kind, double a, double b, uint64_t seed, uint64_t counter, float *p,
                              int64_t n) {
  TT_CUDA_LOOP(i, n) {
    uint32_t w[4];
    philox4x32(seed, counter + (uint64_t)i, w);
    float u = (float)(w[0] >> 8) * (1.0f / 16777216.0f); /* [0, 1) */
    switch (kind) {
      case TT_RANDOM_UNIFORM: p[i] = (float)(a + (b - a) * u); break;
      case TT_RANDOM_NORMAL: {
        double u1 = ((double)w[0] + 1.0) * (1.0 / 4294967296.0), u2 = (double)w[1] * (1.0 / 4294967296.0);
        p[i] = (float)(a + b * sqrt(-2.0 * log(u1)) * cos(2.0 * TT_PI * u2));
        break;
      }
      default: p[i] = u < (float)a ? 1.0f : 0.0f; break; /* TT_RANDOM_BERNOULLI */
    }
  }
}

// t [n] (contiguous f32): element i from Philox(seed, counter + i)
static tt_status cu_random_fill(tt_random_kind kind, double a, double b, uint64_t seed, uint64_t counter,
                                tt_tensor *t) {
  if ((unsigned)kind > TT_RANDOM_BERNOULLI)
    return tt_error(TT_ERR_INVALID, "random fill: unknown kind %d", (int)kind);
  int64_t n = tt_tensor_numel(t);
  if (n == 0) return TT_OK;
  k_random_fill<<<tt_cuda_grid(n), TT_CUDA_THREADS, 0, tt_cuda_stream()>>>(kind, a, b, seed, counter,
                                                                           tt_cuda_ptr<float>(t), n);
  return tt_cuda_check_launch("random_fill");
}

/* multinomial with replacement, one thread a draw (row b, draw j): the row's total
 * and the running sum in double in the CPU kernel's order, the uniform from
 * Philox(seed, counter + b*n + j) as kernels/cpu/random.c forms it, so both pick
 * the same categories. A row with a negative, NaN or infinite weight, or with
 * no positive one, is recorded in *bad (the smallest such row wins). */
__global__ void k_multinomial(const float *p, int64_t B, int64_t V, int64_t n, uint64_t seed, uint64_t counter,
                              int64_t *out, unsigned long long *bad) {
  TT_CUDA_LOOP(i, B * n) {
    int64_t b = i / n, j = i % n;
    const float *row = p + b * V;
    double total = 0;
    int64_t last = -1;
    for (int64_t v = 0; v < V; v++) {
      if (!(row[v] >= 0) || isinf(row[v])) { total = -1; break; }
      if (row[v] > 0) { total += row[v]; last = v; }
    }
    if (!(total > 0)) {
      atomicMin(bad, (unsigned long long)b);
      out[i] = 0;
      continue;
    }
    uint32_t w[4];
    philox4x32(seed, counter + (uint64_t)(b * n + j), w);
    double u = (double)(((uint64_t)w[0] << 21) ^ (w[1] >> 11)) * (1.0 / 9007199254740992.0) * total;
    double cum = 0;
    int64_t pick = last;
    for (int64_t v = 0; v < V; v++) {
      if (row[v] <= 0) continue;
      cum += row[v];
      if (u < cum) { pick = v; break; }
    }
    out[i] = pick;
  }
}

/* Synchronises: the draws are read on the host next (the sampler's tokens), and a
 * bad row must be reported by this call. */
static tt_status cu_multinomial(const tt_tensor *p, int64_t n, uint64_t seed, uint64_t counter, tt_tensor *out) {
  int64_t B = p->shape[0], V = p->shape[1];
  if (B * n == 0) return TT_OK;
  tt_cuda_buf flag;
  TT_TRY(flag.alloc(sizeof(unsigned long long), "multinomial"));
  cudaStream_t st = tt_cuda_stream();
  TT_CUDA_TRY(cudaMemsetAsync(flag.p, 0xff, sizeof(unsigned long long), st), "multinomial");
  k_multinomial<<<tt_cuda_grid(B * n, 128), 128, 0, st>>>(tt_cuda_ptr<float>(p), B, V, n, seed, counter,
                                                         tt_cuda_ptr<int64_t>(out), flag.as<unsigned long long>());
  TT_TRY(tt_cuda_check_launch("multinomial"));
  unsigned long long bad = 0;
  TT_CUDA_TRY(cudaMemcpyAsync(&bad, flag.p, sizeof bad, cudaMemcpyDeviceToHost, st), "multinomial");
  TT_CUDA_TRY(cudaStreamSynchronize(st), "multinomial");
  if (bad != ~0ull)
    return tt_error(TT_ERR_INVALID, "multinomial: row %lld has a negative, NaN or infinite weight or no positive one",
                    (long long)bad);
  return TT_OK;
}

tt_status tt_cuda_register_random(tt_backend *b) {
  TT_REGISTER_KERNEL(b, random_fill, cu_random_fill);
  TT_REGISTER_KERNEL(b, multinomial, cu_multinomial);
  return TT_OK;
}
