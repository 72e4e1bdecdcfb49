/* conv.c — times conv2d (forward, and both backward kernels) on the shapes of the
 * f16 VQGAN at 256x256, and plain sgemm as the ceiling a GEMM-based conv can reach.
 * Prints one JSON object per line:
 *   {"op":"conv2d","cin":128,"cout":128,"k":3,"stride":1,"h":64,"w":64,"batch":1,"ms":6.7,"gflops":180.1}
 * --train times the three kernels on the shapes one VQGAN 64x64 training step runs
 * (the reference harness's vqgan64.yaml, batch 8: autoencoder, LPIPS VGG16, PatchGAN).
 * --prec=f32|bf16 times each kernel twice, back to back: the default f32 kernels
 * ("impl":"default") and the conv2d_*_prec kernels with products in that dtype
 * (taming/ops/conv_prec.h, oneDNN on the CPU: "impl":"onednn-f32" or "onednn-bf16"),
 * each call counting its layout changes; TAMING_DNNL_LAYOUT=any lets oneDNN pick
 * its blocked activation layouts and reorder into them.
 * Usage: bench_conv [reps] [--quick | --train] [--op=NAME] [--prec=f32|bf16]   (median of reps timed runs after
 * one warm-up; ms is wall time, cpu_ms the CPU time of all threads) */
#include "config.h"
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "taming/taming.h"

typedef struct {
  int cin, cout, k, stride, pt, pb, pl, pr, h, w, batch;
  bool backward;   /* also time the two backward kernels */
  bool quick;      /* part of the --quick list */
} shape;

static const shape shapes[] = {
    {128, 128, 3, 1, 1, 1, 1, 1, 64, 64, 1, true, true},      /* the reference case */
    {128, 128, 3, 1, 1, 1, 1, 1, 256, 256, 1, true, false},   /* enc down.0 / dec up.0 */
    {128, 128, 3, 1, 1, 1, 1, 1, 128, 128, 1, false, false},
    {256, 256, 3, 1, 1, 1, 1, 1, 64, 64, 1, true, true},
    {256, 256, 3, 1, 1, 1, 1, 1, 32, 32, 1, false, true},
    {512, 512, 3, 1, 1, 1, 1, 1, 16, 16, 1, true, true},      /* mid blocks */
    {3, 128, 3, 1, 1, 1, 1, 1, 256, 256, 1, false, false},    /* conv_in */
    {128, 3, 3, 1, 1, 1, 1, 1, 256, 256, 1, false, false},    /* conv_out */
    {128, 128, 3, 2, 0, 1, 0, 1, 256, 256, 1, true, false},   /* Downsample */
    {256, 256, 3, 2, 0, 1, 0, 1, 64, 64, 1, false, true},
    {128, 256, 1, 1, 0, 0, 0, 0, 64, 64, 1, true, true},      /* nin_shortcut */
    {512, 512, 1, 1, 0, 0, 0, 0, 16, 16, 1, false, true},     /* attention q/k/v/proj_out */
    {3, 64, 4, 2, 1, 1, 1, 1, 256, 256, 1, false, false},     /* PatchGAN first layer */
    {256, 512, 4, 1, 1, 1, 1, 1, 31, 31, 1, false, false},    /* PatchGAN last-but-one */
};

/* One VQGAN 64x64 training step at batch 8 (ch 64, ch_mult 1,1,2,2): every distinct
 * conv shape whose weight or input gradient the step computes. */
static const shape train_shapes[] = {
    {3, 64, 3, 1, 1, 1, 1, 1, 64, 64, 8, true, true},       /* enc conv_in */
    {64, 64, 3, 1, 1, 1, 1, 1, 64, 64, 8, true, true},      /* res blocks at 64, LPIPS conv1_2 */
    {64, 64, 3, 2, 0, 1, 0, 1, 64, 64, 8, true, true},      /* Downsample 64 -> 32 */
    {64, 64, 3, 1, 1, 1, 1, 1, 32, 32, 8, true, true},
    {64, 128, 3, 1, 1, 1, 1, 1, 16, 16, 8, true, true},
    {128, 128, 3, 1, 1, 1, 1, 1, 16, 16, 8, true, true},
    {128, 128, 3, 1, 1, 1, 1, 1, 8, 8, 8, true, true},      /* mid */
    {64, 128, 1, 1, 0, 0, 0, 0, 16, 16, 8, true, true},     /* nin_shortcut */
    {128, 128, 1, 1, 0, 0, 0, 0, 8, 8, 8, true, true},      /* attention q/k/v/proj_out */
    {64, 3, 3, 1, 1, 1, 1, 1, 64, 64, 8, true, true},       /* dec conv_out */
    {64, 128, 3, 1, 1, 1, 1, 1, 32, 32, 16, true, true},    /* LPIPS conv2_1 (input and reconstruction) */
    {256, 256, 3, 1, 1, 1, 1, 1, 16, 16, 16, true, true},   /* LPIPS conv3_2 */
    {512, 512, 3, 1, 1, 1, 1, 1, 8, 8, 16, true, true},     /* LPIPS conv4_2 */
    {3, 64, 4, 2, 1, 1, 1, 1, 64, 64, 8, true, true},       /* PatchGAN layer 1 */
    {64, 128, 4, 2, 1, 1, 1, 1, 32, 32, 8, true, true},
    {256, 512, 4, 1, 1, 1, 1, 1, 8, 8, 8, true, true},      /* PatchGAN last-but-one */
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

/* CPU time of all threads: on a shared machine steadier than wall time (spinning included) */
static double cpu_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
  qsort(v, (size_t)n, sizeof *v, cmp_double);
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void fill(tt_tensor *t, uint64_t seed, float scale) {
  tt_rng r = tt_rng_make(seed);
  tt_random_fill_(t, &r, TT_RANDOM_NORMAL, 0.0f, scale);
}

typedef enum { FWD, BWD_DATA, BWD_WEIGHT } which;

/* prec: run the conv2d_*_prec kernels with products in dt instead of the default ones */
static double time_conv(const shape *s, which what, int reps, bool prec, tt_dtype dt, double *ms_out,
                        double *min_out, double *cpu_out) {
  tt_conv2d_params p = {s->stride, s->stride, s->pt, s->pb, s->pl, s->pr};
  int ho = (s->h + s->pt + s->pb - s->k) / s->stride + 1, wo = (s->w + s->pl + s->pr - s->k) / s->stride + 1;
  tt_tensor *x = tt_tensor_new(TT_F32, TT_DIMS(s->batch, s->cin, s->h, s->w), TT_CPU);
  tt_tensor *w = tt_tensor_new(TT_F32, TT_DIMS(s->cout, s->cin, s->k, s->k), TT_CPU);
  tt_tensor *b = tt_tensor_new(TT_F32, TT_DIMS(s->cout), TT_CPU);
  tt_tensor *gy = tt_tensor_new(TT_F32, TT_DIMS(s->batch, s->cout, ho, wo), TT_CPU);
  tt_tensor *gw = tt_tensor_new(TT_F32, TT_DIMS(s->cout, s->cin, s->k, s->k), TT_CPU);
  tt_tensor *gb = tt_tensor_new(TT_F32, TT_DIMS(s->cout), TT_CPU);
  tt_tensor *gx = tt_tensor_new(TT_F32, TT_DIMS(s->batch, s->cin, s->h, s->w), TT_CPU);
  tt_tensor *y = tt_tensor_new(TT_F32, TT_DIMS(s->batch, s->cout, ho, wo), TT_CPU);
  if (!x || !w || !b || !gy || !gw || !gb || !gx || !y) {
    fprintf(stderr, "bench_conv: %s\n", tt_error_message());
    exit(1);
  }
  fill(x, 1, 1.0f);
  fill(w, 2, 0.05f);
  fill(b, 3, 0.1f);
  fill(gy, 4, 1.0f);
  tt_conv2d_bwd_data_fn bd = TT_KERNEL(TT_CPU, conv2d_bwd_data);
  tt_conv2d_bwd_weight_fn bw = TT_KERNEL(TT_CPU, conv2d_bwd_weight);
  tt_conv2d_fwd_prec_fn pf = prec ? TT_KERNEL(TT_CPU, conv2d_fwd_prec) : NULL;
  tt_conv2d_bwd_data_prec_fn pd = prec ? TT_KERNEL(TT_CPU, conv2d_bwd_data_prec) : NULL;
  tt_conv2d_bwd_weight_prec_fn pw = prec ? TT_KERNEL(TT_CPU, conv2d_bwd_weight_prec) : NULL;
  if (prec && (!pf || !pd || !pw)) {
    fprintf(stderr, "bench_conv: %s\n", tt_error_message());
    exit(1);
  }
  double *t = calloc((size_t)reps + 1, sizeof(double)), *c = calloc((size_t)reps + 1, sizeof(double));
  bool prev = tt_grad_set_enabled(false);
  for (int r = -1; r < reps; r++) {   /* r = -1: warm-up */
    double t0 = now_ms(), c0 = cpu_ms();
    tt_status st = TT_OK;
    if (prec) {
      st = what == FWD ? pf(dt, &p, x, w, b, y) : what == BWD_DATA ? pd(dt, &p, gy, w, gx) : pw(dt, &p, x, gy, gw, gb);
    } else if (what == FWD) {
      tt_tensor *yy = tt_conv2d(x, w, b, &p);
      if (!yy) st = tt_last_status();
      tt_tensor_unref(yy);
    } else if (what == BWD_DATA) {
      st = bd(&p, gy, w, gx);
    } else {
      st = bw(&p, x, gy, gw, gb);
    }
    if (st != TT_OK) {
      fprintf(stderr, "bench_conv: %s\n", tt_error_message());
      exit(1);
    }
    if (r >= 0) {
      t[r] = now_ms() - t0;
      c[r] = cpu_ms() - c0;
    }
  }
  tt_grad_set_enabled(prev);
  *ms_out = median(t, reps);
  *min_out = t[0];   /* sorted by median(): on a loaded machine closer to the kernel's own time */
  *cpu_out = median(c, reps);
  free(t);
  free(c);
  tt_tensor_unref(x); tt_tensor_unref(w); tt_tensor_unref(b); tt_tensor_unref(gy);
  tt_tensor_unref(gw); tt_tensor_unref(gb); tt_tensor_unref(gx); tt_tensor_unref(y);
  return 2.0 * s->batch * s->cout * s->cin * s->k * s->k * (double)ho * wo;
}

static void time_sgemm(int m, int n, int k, int reps) {
  float *a = malloc(sizeof(float) * (size_t)m * k), *b = malloc(sizeof(float) * (size_t)k * n);
  float *c = malloc(sizeof(float) * (size_t)m * n);
  for (size_t i = 0; i < (size_t)m * k; i++) a[i] = (float)(i % 7) * 0.1f;
  for (size_t i = 0; i < (size_t)k * n; i++) b[i] = (float)(i % 5) * 0.1f;
  double *t = calloc((size_t)reps, sizeof(double));
  for (int r = -1; r < reps; r++) {
    double t0 = now_ms();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    if (r >= 0) t[r] = now_ms() - t0;
  }
  double ms = median(t, reps);
  printf("{\"op\":\"sgemm\",\"m\":%d,\"n\":%d,\"k\":%d,\"ms\":%.3f,\"gflops\":%.1f}\n", m, n, k, ms,
         2.0 * m * n * k / ms * 1e-6);
  free(t);
  free(a);
  free(b);
  free(c);
}

int main(int argc, char **argv) {
  int reps = 10;
  bool quick = false, train = false;
  const char *only = NULL;
  bool prec = false;
  tt_dtype dt = TT_F32;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick")) quick = true;
    else if (!strncmp(argv[i], "--op=", 5)) only = argv[i] + 5;
    else if (!strcmp(argv[i], "--train")) train = true;
    else if (!strcmp(argv[i], "--prec=f32") || !strcmp(argv[i], "--prec=bf16")) {
      prec = true;
      dt = !strcmp(argv[i], "--prec=bf16") ? TT_BF16 : TT_F32;
    }
    else if (atoi(argv[i]) > 0) reps = atoi(argv[i]);
    else {
      fprintf(stderr, "usage: %s [reps] [--quick | --train] [--op=conv2d|conv2d_bwd_data|conv2d_bwd_weight] "
              "[--prec=f32|bf16]\n", argv[0]);
      return 2;
    }
  }
  const char *isa = prec ? tt_conv2d_prec_isa(TT_CPU, dt) : "default";
  if (!isa) {
    fprintf(stderr, "bench_conv: no conv2d_*_prec kernels for %s on this CPU\n", tt_dtype_name(dt));
    return 1;
  }
  /* the GEMM of the 128->128 3x3 conv at 64x64, and a large square one */
  if (!train && !prec) {
    time_sgemm(128, 4096, 1152, reps);
    time_sgemm(2048, 2048, 2048, reps < 5 ? reps : 5);
  }
  static const char *names[] = {"conv2d", "conv2d_bwd_data", "conv2d_bwd_weight"};
  const shape *list = train ? train_shapes : shapes;
  size_t count = train ? sizeof train_shapes / sizeof *train_shapes : sizeof shapes / sizeof *shapes;
  for (size_t i = 0; i < count; i++) {
    const shape *s = &list[i];
    if (quick && !s->quick) continue;
    for (int k = FWD; k <= BWD_WEIGHT; k++) {
      if ((k != FWD && !s->backward) || (only && strcmp(only, names[k]))) continue;
      for (int alt = 0; alt <= (prec ? 1 : 0); alt++) {
        double ms, mn, cms, flops = time_conv(s, (which)k, reps, alt == 1, dt, &ms, &mn, &cms);
        const char *impl = alt == 0 ? "default" : dt == TT_BF16 ? "onednn-bf16" : "onednn-f32";
        printf("{\"op\":\"%s\",\"impl\":\"%s\",\"cin\":%d,\"cout\":%d,\"k\":%d,\"stride\":%d,\"pad\":[%d,%d,%d,%d],"
               "\"h\":%d,\"w\":%d,\"batch\":%d,\"ms\":%.3f,\"ms_min\":%.3f,\"cpu_ms\":%.3f,\"gflops\":%.1f}\n",
               names[k], impl, s->cin, s->cout, s->k, s->stride, s->pt, s->pb, s->pl, s->pr, s->h, s->w, s->batch,
               ms, mn, cms, flops / ms * 1e-6);
        fflush(stdout);
      }
    }
  }
  return 0;
}
