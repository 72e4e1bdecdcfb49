/* orders.c — the official orders (REFERENCE §4.5). Each permuter plugin file
 * names one of these; the 4x4 tables of the reference are checked in the tests. */
#include "config.h"
#include "orders.h"

tt_status tt_order_identity(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd) {
  for (int64_t k = 0; k < H * W; k++) fwd[k] = k;
  return TT_OK;
}

static int log2_exact(int64_t n) {
  int m = 0;
  while ((1ll << m) < n) m++;
  return (1ll << m) == n ? m : -1;
}

/* coarse to fine: base-4 digits of k, most significant first, hold the low bits of (i, j) */
tt_status tt_order_subsample(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd) {
  int m = log2_exact(H);
  if (H != W || m < 0) return tt_error(TT_ERR_INVALID, "subsample: needs H = W = 2^m, got %lldx%lld", (long long)H, (long long)W);
  for (int64_t k = 0; k < H * W; k++) {
    int64_t i = 0, j = 0;
    for (int t = 1; t <= m; t++) {
      int64_t d = (k >> (2 * (m - t))) & 3;   /* digit d_t */
      i |= (d >> 1) << (t - 1);
      j |= (d & 1) << (t - 1);
    }
    fwd[k] = i * W + j;
  }
  return TT_OK;
}

tt_status tt_order_zcurve(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd) {
  if (H != W || log2_exact(H) < 0)
    return tt_error(TT_ERR_INVALID, "zcurve: needs a square power-of-two grid, got %lldx%lld", (long long)H, (long long)W);
  for (int64_t i = 0; i < H; i++)
    for (int64_t j = 0; j < W; j++) {
      int64_t z = 0;
      for (int p = 0; p < 32; p++) z |= ((j >> p) & 1) << (2 * p) | ((i >> p) & 1) << (2 * p + 1);
      fwd[z] = i * W + j;   /* bwd[raster] = morton, fwd = its inverse */
    }
  return TT_OK;
}

tt_status tt_order_spiral_out(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd) {
  int64_t S = H;
  if (H != W || S % 2 != 0) return tt_error(TT_ERR_INVALID, "spiral: needs an even square grid, got %lldx%lld", (long long)H, (long long)W);
  int64_t i = S / 2, j = S / 2 - 1, k = 0;
  fwd[k++] = i * S + j;
  for (int64_t r = 1;; r += 2) {
    bool last = r == S - 1;
    for (int64_t s = 0; s < r; s++) fwd[k++] = --i * S + j;              /* up */
    for (int64_t s = 0; s < r; s++) fwd[k++] = i * S + ++j;              /* right */
    int64_t down = last ? r : r + 1;
    for (int64_t s = 0; s < down; s++) fwd[k++] = ++i * S + j;           /* down */
    if (last) break;
    for (int64_t s = 0; s < r + 1; s++) fwd[k++] = i * S + --j;          /* left */
  }
  return TT_OK;
}

tt_status tt_order_spiral_in(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd) {
  TT_TRY(tt_order_spiral_out(H, W, cfg, fwd));
  for (int64_t a = 0, b = H * W - 1; a < b; a++, b--) {
    int64_t t = fwd[a];
    fwd[a] = fwd[b];
    fwd[b] = t;
  }
  return TT_OK;
}

tt_status tt_order_alternate(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd) {
  for (int64_t i = 0; i < H; i++)
    for (int64_t jj = 0; jj < W; jj++) fwd[i * W + jj] = i * W + (i % 2 == 0 ? jj : W - 1 - jj);
  return TT_OK;
}

/* A seeded shuffle (Fisher-Yates on the Philox stream). The reference draws from
 * numpy's RandomState(1); that permutation is read from a checkpoint's buffers. */
tt_status tt_order_random(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd) {
  int64_t seed;
  TT_TRY(tt_cfg_int_opt(cfg, "seed", 1, &seed));
  tt_rng r = tt_rng_make((uint64_t)seed);
  int64_t L = H * W;
  for (int64_t k = 0; k < L; k++) fwd[k] = k;
  for (int64_t k = L - 1; k > 0; k--) {
    int64_t m = (int64_t)(tt_rng_uniform(&r) * (double)(k + 1));
    int64_t t = fwd[k];
    fwd[k] = fwd[m];
    fwd[m] = t;
  }
  return TT_OK;
}
