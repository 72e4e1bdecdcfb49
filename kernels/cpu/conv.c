/* conv.c — CPU kernels of 2-D convolution (NCHW, f32): forward, backward to the
 * input and backward to the weight, all GEMM-shaped work through OpenBLAS sgemm.
 *
 * Threading. The pthread build of OpenBLAS and OpenMP keep separate thread pools.
 * With as many threads as cores, OpenMP workers that spin after a parallel region
 * take the cores OpenBLAS's workers need (a 128x4096x1152 sgemm right after a
 * parallel loop measured 12 ms instead of 7). So each kernel here is one OpenMP
 * region in which every thread runs a single-threaded sgemm on its own items of
 * work, and OpenBLAS is held at one thread for the duration (blas_serial_*).
 * Each thread builds its own scratch tiles, so no phase waits on another thread.
 *
 * Forward plans (chosen per call):
 *  - pointwise (1x1, stride 1, no padding): y[b] = w [Co, Ci] @ x[b] [Ci, H*W], no copy.
 *  - shifted (stride 1, output width >= SHIFT_MIN_WO): a tile of output rows is
 *    computed from one zero-padded copy of the input rows it reads, laid out with
 *    row pitch Wp = W + pad_left + pad_right. Output pixel n = i*Wp + j of the tile
 *    reads xpad[:, n + u*Wp + v] for tap (u, v), so every tap is one GEMM
 *    w_uv [Co, Ci] @ xpad[:, u*Wp+v :] accumulating into a [Co, rows*Wp] tile; the
 *    Wp - Wo columns per row that wrap around are junk and dropped when the tile
 *    is written out. No im2col matrix: 9x less copying than im2col for 3x3.
 *  - im2col: a tile of output rows is expanded into col [Ci*kh*kw, rows*Wo] (a few
 *    MB, so it stays in cache), then one GEMM w [Co, K] @ col per tile.
 * Backward to the input is the forward conv of gy with the flipped, transposed
 * kernel when the stride is 1 and the map wide (so it runs the shifted plan), else
 * a GEMM w^T @ gy per tile followed by col2im. Backward to the weight accumulates
 * gy_tile @ col_tile^T over tiles. In both backward GEMM+col kernels each thread
 * owns a range of input channels, so col2im and the weight columns never race. */
#include "config.h"
#include <cblas.h>
#include <limits.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "cpu.h"
#include "taming/arena.h"

/* Scratch per thread and tile (bytes): the padded rows plus output tile of the shifted
 * plan, or the im2col tile. A few MB: past L2, but shared L3 holds both threads' tiles. */
#define SHIFT_TILE_BYTES (3u << 20)
#define COL_TILE_BYTES (3u << 20)
/* Below this output width the junk columns of the shifted plan (Wp - Wo per row) cost more than im2col. */
#define SHIFT_MIN_WO 24

typedef struct {
  int64_t B, Ci, H, W, Co, kh, kw, Ho, Wo;
  int64_t sh, sw, pt, pb, pl, pr;
} geom;

static geom geom_make(const tt_conv2d_params *p, const int64_t *xs, const int64_t *ws) {
  geom g = {.B = xs[0], .Ci = xs[1], .H = xs[2], .W = xs[3], .Co = ws[0], .kh = ws[2], .kw = ws[3],
            .sh = p->stride_h, .sw = p->stride_w, .pt = p->pad_top, .pb = p->pad_bottom,
            .pl = p->pad_left, .pr = p->pad_right};
  bool ok = g.sh >= 1 && g.sw >= 1 && g.H + g.pt + g.pb >= g.kh && g.W + g.pl + g.pr >= g.kw;
  g.Ho = ok ? (g.H + g.pt + g.pb - g.kh) / g.sh + 1 : 0;
  g.Wo = ok ? (g.W + g.pl + g.pr - g.kw) / g.sw + 1 : 0;
  return g;
}

static tt_status geom_check(const char *k, const geom *g) {
  if (g->Ho < 1 || g->Wo < 1)
    return tt_error(TT_ERR_INVALID, "%s: stride %lldx%lld over the padded input %lldx%lld with kernel %lldx%lld "
                    "gives no output", k, (long long)g->sh, (long long)g->sw, (long long)(g->H + g->pt + g->pb),
                    (long long)(g->W + g->pl + g->pr), (long long)g->kh, (long long)g->kw);
  /* cblas takes int sizes and leading dimensions */
  int64_t big = g->Ci * g->kh * g->kw;
  if (g->H * g->W > big) big = g->H * g->W;
  if (g->Ho * g->Wo > big) big = g->Ho * g->Wo;
  if (big >= INT_MAX / 4 || g->Co >= INT_MAX / 4)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: sizes beyond the 32-bit BLAS interface (Ci*kh*kw %lld, H*W %lld)", k,
                    (long long)(g->Ci * g->kh * g->kw), (long long)(g->H * g->W));
  return TT_OK;
}

/* ---- threads and BLAS ---- */

static int team_size(void) {
#ifdef _OPENMP
  return omp_get_num_threads();
#else
  return 1;
#endif
}

static void split_range(int64_t n, int part, int parts, int64_t align, int64_t *lo, int64_t *hi) {
  int64_t chunks = (n + align - 1) / align;
  int64_t a = chunks * part / parts * align, b = chunks * (part + 1) / parts * align;
  *lo = a < n ? a : n;
  *hi = b < n ? b : n;
}

static void add_bias(const float *bias, float *y, int64_t ld, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  if (!bias) return;
  for (int64_t m = m0; m < m1; m++) {
    float b = bias[m], *row = y + m * ld;
    for (int64_t n = n0; n < n1; n++) row[n] += b;
  }
}

/* Rows per tile so that per_row * rows + fixed stays under budget, at least 1,
 * then evened out over the tiles so the last one is not a sliver. */
static int64_t tile_rows(int64_t total, int64_t per_row, int64_t fixed, size_t budget) {
  int64_t r = per_row > 0 ? ((int64_t)budget - fixed) / per_row : total;
  if (r < 1) r = 1;
  if (r > total) r = total;
  int64_t tiles = (total + r - 1) / r;
  return (total + tiles - 1) / tiles;
}

static void *scratch(tt_arena *a, int64_t floats, const char *k, tt_status *s) {
  void *p = tt_arena_alloc(a, (size_t)(floats > 0 ? floats : 1) * sizeof(float), 64);
  if (!p && *s == TT_OK)
    *s = tt_error(TT_ERR_NOMEM, "%s: out of memory for a %lld-float workspace", k, (long long)floats);
  return p;
}

/* ---- im2col / col2im over output rows [r0, r0 + rr) of one image ---- */

/* Output columns ox whose input column ox*sw - pl + kx lies inside [0, W). */
static inline void valid_cols(const geom *g, int64_t kx, int64_t *lo, int64_t *hi) {
  int64_t a = g->pl - kx, b = g->W - 1 + g->pl - kx;
  *lo = a <= 0 ? 0 : (a + g->sw - 1) / g->sw;
  *hi = b < 0 ? 0 : b / g->sw + 1;
  if (*lo > g->Wo) *lo = g->Wo;
  if (*hi > g->Wo) *hi = g->Wo;
  if (*hi < *lo) *hi = *lo;
}

/* col row k = (ci, ky, kx) for the tile: [rr * Wo] values of channel ci's plane. */
static void im2col_row(const geom *g, const float *plane, int64_t ky, int64_t kx, int64_t r0, int64_t rr,
                       float *out) {
  int64_t lo, hi, Wo = g->Wo;
  valid_cols(g, kx, &lo, &hi);
  for (int64_t i = 0; i < rr; i++, out += Wo) {
    int64_t iy = (r0 + i) * g->sh - g->pt + ky;
    if (iy < 0 || iy >= g->H || lo == hi) {
      memset(out, 0, sizeof(float) * (size_t)Wo);
      continue;
    }
    const float *src = plane + iy * g->W - g->pl + kx;
    memset(out, 0, sizeof(float) * (size_t)lo);
    if (g->sw == 1) memcpy(out + lo, src + lo, sizeof(float) * (size_t)(hi - lo));
    else
      for (int64_t ox = lo; ox < hi; ox++) out[ox] = src[ox * g->sw];
    memset(out + hi, 0, sizeof(float) * (size_t)(Wo - hi));
  }
}

/* The adjoint of im2col_row: adds the col row back into channel ci's plane. */
static void col2im_row(const geom *g, float *plane, int64_t ky, int64_t kx, int64_t r0, int64_t rr,
                       const float *in) {
  int64_t lo, hi, Wo = g->Wo;
  valid_cols(g, kx, &lo, &hi);
  for (int64_t i = 0; i < rr; i++, in += Wo) {
    int64_t iy = (r0 + i) * g->sh - g->pt + ky;
    if (iy < 0 || iy >= g->H) continue;
    float *dst = plane + iy * g->W - g->pl + kx;
    if (g->sw == 1) {
      for (int64_t ox = lo; ox < hi; ox++) dst[ox] += in[ox];
    } else {
      for (int64_t ox = lo; ox < hi; ox++) dst[ox * g->sw] += in[ox];
    }
  }
}

/* ---- forward ---- */

static bool is_pointwise(const geom *g) {
  return g->kh == 1 && g->kw == 1 && g->sh == 1 && g->sw == 1 && !g->pt && !g->pb && !g->pl && !g->pr;
}

/* How a forward plan cuts its work into items — (image, tile of R output rows,
 * block of cob output channels) — that the threads take dynamically, each building
 * its own tile scratch, so no phase waits on another thread. Tiles are as large as
 * the scratch budget allows, then cut further (down to MIN_TILE_COLS output
 * columns, then by output channels) until every thread has per_thread items, and
 * evened out so the threads get equal shares. One item per thread measured best:
 * bigger GEMMs, and no tile built twice by two threads. */
typedef struct {
  int64_t R, tiles, cob, blocks, items;
} plan;

#define MIN_TILE_COLS 512

static plan plan_make(const geom *g, int64_t row_cols, int64_t per_row, int64_t fixed, size_t budget, int nt,
                      int64_t per_thread) {
  int64_t Ho = g->Ho, want = per_thread * (int64_t)nt;
  int64_t R = per_row > 0 ? ((int64_t)budget - fixed) / per_row : Ho;
  if (R < 1) R = 1;
  if (R > Ho) R = Ho;
  int64_t tiles = (Ho + R - 1) / R;
  if (g->B * tiles < want) {
    int64_t need = (want + g->B - 1) / g->B;
    int64_t rmin = (MIN_TILE_COLS + row_cols - 1) / row_cols, r2 = (Ho + need - 1) / need;
    if (r2 < rmin) r2 = rmin;
    if (r2 < R) R = r2;
    tiles = (Ho + R - 1) / R;
  }
  plan p = {.R = (Ho + tiles - 1) / tiles, .cob = g->Co, .blocks = 1};
  p.tiles = (Ho + p.R - 1) / p.R;
  if (g->B * p.tiles < want && g->Co > 32) {
    int64_t blocks = (want + g->B * p.tiles - 1) / (g->B * p.tiles);
    int64_t cob = ((g->Co + blocks - 1) / blocks + 15) / 16 * 16;
    if (cob < 32) cob = 32;
    p.cob = cob < g->Co ? cob : g->Co;
    p.blocks = (g->Co + p.cob - 1) / p.cob;
  }
  /* with few items, equal tiles in a count the threads divide evenly beat larger tiles */
  for (int64_t t = p.tiles + 1; t <= 2 * p.tiles && g->B * p.tiles * p.blocks < 4 * nt &&
                                g->B * p.tiles * p.blocks % nt; t++) {
    int64_t r = (Ho + t - 1) / t;
    if ((Ho + r - 1) / r == t && g->B * t * p.blocks % nt == 0) {
      p.R = r;
      p.tiles = t;
    }
  }
  p.items = g->B * p.tiles * p.blocks;
  return p;
}

/* Item i of a plan: image b, output rows [r0, r0 + rr), output channels [c0, c1). */
typedef struct {
  int64_t b, t, r0, rr, c0, c1;
} item;

static item item_at(const geom *g, const plan *p, int64_t i) {
  item it;
  int64_t blk = i % p->blocks;
  it.t = i / p->blocks % p->tiles;
  it.b = i / (p->blocks * p->tiles);
  it.r0 = it.t * p->R;
  it.rr = g->Ho - it.r0 < p->R ? g->Ho - it.r0 : p->R;
  it.c0 = blk * p->cob;
  it.c1 = it.c0 + p->cob < g->Co ? it.c0 + p->cob : g->Co;
  return it;
}

/* The shifted plan runs either on w [Co, Ci, kh, kw] as given, or — for the input
 * gradient of a stride-1 conv — on the flipped, transposed kernel
 * w'[o, i, u, v] = w[i, o, kh-1-u, kw-1-v], read straight from the stored w [Ci, Co, kh, kw]
 * while it builds its per-tap matrices anyway. */
static inline int64_t w_index(const geom *g, bool flip, int64_t co, int64_t ci, int64_t t) {
  int64_t taps = g->kh * g->kw;
  return flip ? (ci * g->Co + co) * taps + (taps - 1 - t) : (co * g->Ci + ci) * taps + t;
}

// x [B, Ci, H, W], w [Co, Ci] -> y [B, Co, H, W]
static void fwd_pointwise(const geom *g, const float *x, const float *w, const float *bias, float *y, int nt) {
  int64_t HW = g->H * g->W;
  plan p = plan_make(g, g->W, 0, 0, 0, nt, 1);
#pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
  for (int64_t i = 0; i < p.items; i++) {
    item it = item_at(g, &p, i);
    int64_t n0 = it.r0 * g->W, N = it.rr * g->W;
    float *yb = y + it.b * g->Co * HW;
    tt_cpu_sgemm(false, false, it.c1 - it.c0, N, g->Ci, 1.0f, w + it.c0 * g->Ci, g->Ci, x + it.b * g->Ci * HW + n0, HW, 0.0f,
          yb + it.c0 * HW + n0, HW);
    add_bias(bias, yb, HW, it.c0, it.c1, n0, n0 + N);
  }
}

// x [B, Ci, H, W], w [Co, Ci, kh, kw] -> y [B, Co, Ho, Wo]; stride 1
static tt_status fwd_shifted(const geom *g, const float *x, const float *w, bool flip, const float *bias, float *y,
                             int nt) {
  int64_t taps = g->kh * g->kw, Wp = g->W + g->pl + g->pr, Ci = g->Ci, Co = g->Co;
  plan p = plan_make(g, Wp, (Ci + Co) * Wp * 4, Ci * ((g->kh - 1) * Wp + g->kw) * 4, SHIFT_TILE_BYTES, nt, 1);
  int64_t cs = (p.R + g->kh - 1) * Wp + g->kw - 1; /* channel pitch of the padded tile */
  int64_t ldy = p.R * Wp;
  tt_arena *a = tt_thread_arena();
  size_t mark = tt_arena_mark(a);
  tt_status s = TT_OK;
  float *wt = scratch(a, taps * Co * Ci, "conv2d_fwd", &s);        // [taps, Co, Ci]
  float *xps = scratch(a, nt * Ci * cs, "conv2d_fwd", &s);         // per thread [Ci, R + kh - 1, Wp] (+ slack)
  float *yts = scratch(a, nt * p.cob * ldy, "conv2d_fwd", &s);     // per thread [cob, R, Wp]
  if (s != TT_OK) {
    tt_arena_reset(a, mark);
    return s;
  }
#pragma omp parallel num_threads(nt)
  {
#pragma omp for schedule(static)
    for (int64_t co = 0; co < Co; co++)
      for (int64_t ci = 0; ci < Ci; ci++)
        for (int64_t t = 0; t < taps; t++) wt[(t * Co + co) * Ci + ci] = w[w_index(g, flip, co, ci, t)];
    float *xp = xps + tt_cpu_thread_id() * Ci * cs, *yt = yts + tt_cpu_thread_id() * p.cob * ldy;
    int64_t built = -1; /* the (image, tile) whose padded rows xp holds */
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < p.items; i++) {
      item it = item_at(g, &p, i);
      int64_t N = it.rr * Wp;
      if (built != it.b * p.tiles + it.t) {
        built = it.b * p.tiles + it.t;
        for (int64_t ci = 0; ci < Ci; ci++) {
          const float *plane = x + (it.b * Ci + ci) * g->H * g->W;
          float *d = xp + ci * cs;
          for (int64_t r = 0; r < it.rr + g->kh - 1; r++, d += Wp) {
            int64_t iy = it.r0 + r - g->pt;
            if (iy < 0 || iy >= g->H) {
              memset(d, 0, sizeof(float) * (size_t)Wp);
              continue;
            }
            memset(d, 0, sizeof(float) * (size_t)g->pl);
            memcpy(d + g->pl, plane + iy * g->W, sizeof(float) * (size_t)g->W);
            memset(d + g->pl + g->W, 0, sizeof(float) * (size_t)g->pr);
          }
          /* read only by the junk columns that wrap around past the last row */
          memset(d, 0, sizeof(float) * (size_t)(g->kw - 1));
        }
      }
      int64_t M = it.c1 - it.c0;
      for (int64_t t = 0; t < taps; t++)
        tt_cpu_sgemm(false, false, M, N, Ci, 1.0f, wt + (t * Co + it.c0) * Ci, Ci, xp + t / g->kw * Wp + t % g->kw, cs,
              t ? 1.0f : 0.0f, yt, ldy);
      for (int64_t co = it.c0; co < it.c1; co++) {
        float bv = bias ? bias[co] : 0.0f;
        for (int64_t r = 0; r < it.rr; r++) {
          const float *src = yt + (co - it.c0) * ldy + r * Wp;
          float *dst = y + ((it.b * Co + co) * g->Ho + it.r0 + r) * g->Wo;
          for (int64_t j = 0; j < g->Wo; j++) dst[j] = src[j] + bv;
        }
      }
    }
  }
  tt_arena_reset(a, mark);
  return TT_OK;
}

// x [B, Ci, H, W], w [Co, Ci*kh*kw] -> y [B, Co, Ho, Wo], any stride
static tt_status fwd_im2col(const geom *g, const float *x, const float *w, const float *bias, float *y, int nt) {
  int64_t kk = g->kh * g->kw, K = g->Ci * kk, HoWo = g->Ho * g->Wo;
  plan p = plan_make(g, g->Wo, K * g->Wo * 4, 0, COL_TILE_BYTES, nt, 1);
  tt_arena *a = tt_thread_arena();
  size_t mark = tt_arena_mark(a);
  tt_status s = TT_OK;
  float *cols = scratch(a, nt * K * p.R * g->Wo, "conv2d_fwd", &s);   // per thread [K, R*Wo]
  if (s != TT_OK) {
    tt_arena_reset(a, mark);
    return s;
  }
#pragma omp parallel num_threads(nt)
  {
    float *col = cols + tt_cpu_thread_id() * K * p.R * g->Wo;
    int64_t built = -1;
#pragma omp for schedule(dynamic, 1)
    for (int64_t i = 0; i < p.items; i++) {
      item it = item_at(g, &p, i);
      int64_t N = it.rr * g->Wo;
      if (built != it.b * p.tiles + it.t) {
        built = it.b * p.tiles + it.t;
        for (int64_t k = 0; k < K; k++)
          im2col_row(g, x + (it.b * g->Ci + k / kk) * g->H * g->W, k % kk / g->kw, k % g->kw, it.r0, it.rr,
                     col + k * N);
      }
      float *yt = y + it.b * g->Co * HoWo + it.r0 * g->Wo;
      tt_cpu_sgemm(false, false, it.c1 - it.c0, N, K, 1.0f, w + it.c0 * K, K, col, N, 0.0f, yt + it.c0 * HoWo, HoWo);
      add_bias(bias, yt, HoWo, it.c0, it.c1, 0, N);
    }
  }
  tt_arena_reset(a, mark);
  return TT_OK;
}

static tt_status fwd_raw(const geom *g, const float *x, const float *w, bool flip, const float *bias, float *y) {
  tt_status s = TT_OK;
  int nt = tt_cpu_max_threads();
  int blas_prev = tt_cpu_blas_serial_begin();
  if (flip) s = fwd_shifted(g, x, w, true, bias, y, nt);   /* only chosen where the shifted plan applies */
  else if (is_pointwise(g)) fwd_pointwise(g, x, w, bias, y, nt);
  else if (g->sh == 1 && g->sw == 1 && g->Wo >= SHIFT_MIN_WO) s = fwd_shifted(g, x, w, false, bias, y, nt);
  else s = fwd_im2col(g, x, w, bias, y, nt);
  tt_cpu_blas_serial_end(blas_prev);
  return s;
}

static tt_status cpu_conv2d_fwd(const tt_conv2d_params *p, const tt_tensor *x, const tt_tensor *w,
                                const tt_tensor *b, tt_tensor *y) {
  geom g = geom_make(p, x->shape, w->shape);
  TT_TRY(geom_check("conv2d_fwd", &g));
  return fwd_raw(&g, tt_f32(x), tt_f32(w), false, b ? tt_f32(b) : NULL, tt_f32(y));
}

/* ---- backward to the input ---- */

// gy [B, Co, Ho, Wo], w [Co, Ci, kh, kw] -> gx [B, Ci, H, W] via w^T @ gy and col2im
static tt_status bwd_data_col2im(const geom *g, const float *gy, const float *w, float *gx) {
  int64_t kk = g->kh * g->kw, K = g->Ci * kk, HoWo = g->Ho * g->Wo, HW = g->H * g->W;
  int nt = tt_cpu_max_threads();
  int64_t own = (g->Ci + nt - 1) / nt; /* channels per thread, at most */
  int64_t R = tile_rows(g->Ho, own * kk * g->Wo * 4, 0, COL_TILE_BYTES);
  int64_t tiles = (g->Ho + R - 1) / R;
  bool pw = is_pointwise(g);
  tt_arena *a = tt_thread_arena();
  size_t mark = tt_arena_mark(a);
  tt_status s = TT_OK;
  float *cols = pw ? NULL : scratch(a, nt * own * kk * R * g->Wo, "conv2d_bwd_data", &s);
  if (s != TT_OK) {
    tt_arena_reset(a, mark);
    return s;
  }
  int blas_prev = tt_cpu_blas_serial_begin();
#pragma omp parallel num_threads(nt)
  for (int part = tt_cpu_thread_id(); part < nt; part += team_size()) {
    int64_t c0, c1;
    split_range(g->Ci, part, nt, 1, &c0, &c1);
    float *col = pw ? NULL : cols + part * own * kk * R * g->Wo;
    for (int64_t b = 0; b < g->B && c1 > c0; b++) {
      const float *gyb = gy + b * g->Co * HoWo;
      float *gxb = gx + b * g->Ci * HW;
      if (pw) {   // gx[b][c0:c1] [c, HW] = w[:, c0:c1]^T @ gy[b]
        tt_cpu_sgemm(true, false, c1 - c0, HW, g->Co, 1.0f, w + c0, K, gyb, HW, 0.0f, gxb + c0 * HW, HW);
        continue;
      }
      memset(gxb + c0 * HW, 0, sizeof(float) * (size_t)((c1 - c0) * HW));
      for (int64_t t = 0; t < tiles; t++) {
        int64_t r0 = t * R, rr = g->Ho - r0 < R ? g->Ho - r0 : R, N = rr * g->Wo;
        // col [(c1-c0)*kk, N] = w[:, c0*kk : c1*kk]^T @ gy[b][:, tile]
        tt_cpu_sgemm(true, false, (c1 - c0) * kk, N, g->Co, 1.0f, w + c0 * kk, K, gyb + r0 * g->Wo, HoWo, 0.0f, col, N);
        for (int64_t k = 0; k < (c1 - c0) * kk; k++)
          col2im_row(g, gxb + (c0 + k / kk) * HW, k % kk / g->kw, k % g->kw, r0, rr, col + k * N);
      }
    }
  }
  tt_cpu_blas_serial_end(blas_prev);
  tt_arena_reset(a, mark);
  return TT_OK;
}

static tt_status cpu_conv2d_bwd_data(const tt_conv2d_params *p, const tt_tensor *gy, const tt_tensor *w,
                                     tt_tensor *gx) {
  geom g = geom_make(p, gx->shape, w->shape);
  TT_TRY(geom_check("conv2d_bwd_data", &g));
  int64_t kk = g.kh * g.kw;
  /* the flipped forward pays off where it runs the shifted plan (its output is [H, W]);
   * on narrow maps w^T @ gy + col2im needs no weight transform and wins */
  bool flip = g.sh == 1 && g.sw == 1 && kk > 1 && g.pt < g.kh && g.pb < g.kh && g.pl < g.kw && g.pr < g.kw &&
              g.W >= SHIFT_MIN_WO;
  if (!flip) return bwd_data_col2im(&g, tt_f32(gy), tt_f32(w), tt_f32(gx));
  /* stride 1: gx = conv(gy, w') with w'[ci, co, u, v] = w[co, ci, kh-1-u, kw-1-v] and
   * the complementary padding kh-1-pad on each side. */
  geom f = {.B = g.B, .Ci = g.Co, .H = g.Ho, .W = g.Wo, .Co = g.Ci, .kh = g.kh, .kw = g.kw, .sh = 1, .sw = 1,
            .pt = g.kh - 1 - g.pt, .pb = g.kh - 1 - g.pb, .pl = g.kw - 1 - g.pl, .pr = g.kw - 1 - g.pr,
            .Ho = g.H, .Wo = g.W};
  return fwd_raw(&f, tt_f32(gy), tt_f32(w), true, NULL, tt_f32(gx));
}

/* ---- backward to the weight ---- */

// x [B, Ci, H, W], gy [B, Co, Ho, Wo] -> gw [Co, Ci*kh*kw] = sum over tiles gy_tile @ col_tile^T
static tt_status bwd_weight_gemm(const geom *g, const float *x, const float *gy, float *gw) {
  int64_t kk = g->kh * g->kw, K = g->Ci * kk, HoWo = g->Ho * g->Wo, HW = g->H * g->W;
  int nt = tt_cpu_max_threads();
  int64_t own = (g->Ci + nt - 1) / nt;
  int64_t R = tile_rows(g->Ho, own * kk * g->Wo * 4, 0, COL_TILE_BYTES);
  int64_t tiles = (g->Ho + R - 1) / R;
  bool pw = is_pointwise(g);
  tt_arena *a = tt_thread_arena();
  size_t mark = tt_arena_mark(a);
  tt_status s = TT_OK;
  float *cols = pw ? NULL : scratch(a, nt * own * kk * R * g->Wo, "conv2d_bwd_weight", &s);
  if (s != TT_OK) {
    tt_arena_reset(a, mark);
    return s;
  }
  int blas_prev = tt_cpu_blas_serial_begin();
#pragma omp parallel num_threads(nt)
  for (int part = tt_cpu_thread_id(); part < nt; part += team_size()) {
    int64_t c0, c1;
    split_range(g->Ci, part, nt, 1, &c0, &c1);
    float *col = pw ? NULL : cols + part * own * kk * R * g->Wo;
    int64_t nk = (c1 - c0) * kk;
    float beta = 0.0f;
    if (pw && nk > 0) {   // gw[:, c0:c1] = sum_b gy[b] [Co, HW] @ x[b][c0:c1]^T
      for (int64_t b = 0; b < g->B; b++, beta = 1.0f)
        tt_cpu_sgemm(false, true, g->Co, nk, HW, 1.0f, gy + b * g->Co * HoWo, HoWo, x + (b * g->Ci + c0) * HW, HW, beta,
              gw + c0, K);
    }
    for (int64_t bt = 0; !pw && nk > 0 && bt < g->B * tiles; bt++, beta = 1.0f) {
      int64_t b = bt / tiles, r0 = bt % tiles * R, rr = g->Ho - r0 < R ? g->Ho - r0 : R, N = rr * g->Wo;
      for (int64_t k = 0; k < nk; k++)
        im2col_row(g, x + (b * g->Ci + c0 + k / kk) * HW, k % kk / g->kw, k % g->kw, r0, rr, col + k * N);
      tt_cpu_sgemm(false, true, g->Co, nk, N, 1.0f, gy + b * g->Co * HoWo + r0 * g->Wo, HoWo, col, N, beta, gw + c0 * kk, K);
    }
  }
  tt_cpu_blas_serial_end(blas_prev);
  tt_arena_reset(a, mark);
  return TT_OK;
}

static tt_status cpu_conv2d_bwd_weight(const tt_conv2d_params *p, const tt_tensor *x, const tt_tensor *gy,
                                       tt_tensor *gw, tt_tensor *gb) {
  if (gw) {
    geom g = geom_make(p, x->shape, gw->shape);
    TT_TRY(geom_check("conv2d_bwd_weight", &g));
    TT_TRY(bwd_weight_gemm(&g, tt_f32(x), tt_f32(gy), tt_f32(gw)));
  }
  if (gb) {   // gb[co] = sum over b, y, x of gy
    const float *gys = tt_f32(gy);
    float *gbs = tt_f32(gb);
    int64_t B = gy->shape[0], Co = gy->shape[1], n = gy->shape[2] * gy->shape[3];
#pragma omp parallel for schedule(static) if (B * Co * n > TT_CPU_PAR_MIN)
    for (int64_t co = 0; co < Co; co++) {
      double acc = 0;
      for (int64_t b = 0; b < B; b++) {
        const float *row = gys + (b * Co + co) * n;
        for (int64_t i0 = 0; i0 < n; i0 += 4096) {   /* float lanes per block, double across blocks */
          float part[16] = {0};
          int64_t i1 = i0 + 4096 < n ? i0 + 4096 : n, i = i0;
          for (; i + 16 <= i1; i += 16)
            for (int l = 0; l < 16; l++) part[l] += row[i + l];
          for (; i < i1; i++) part[0] += row[i];
          for (int l = 0; l < 16; l++) acc += part[l];
        }
      }
      gbs[co] = (float)acc;
    }
  }
  return TT_OK;
}

tt_status tt_cpu_register_conv(tt_backend *b) {
  TT_REGISTER_KERNEL(b, conv2d_fwd, cpu_conv2d_fwd);
  TT_REGISTER_KERNEL(b, conv2d_bwd_data, cpu_conv2d_bwd_data);
  TT_REGISTER_KERNEL(b, conv2d_bwd_weight, cpu_conv2d_bwd_weight);
  return TT_OK;
}
