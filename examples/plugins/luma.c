/* luma.c — an example condition encoder, built out of tree against the
 * installed SDK only (see Makefile).
 *
 * A coarse luminance condition: an image's luma (ITU-R 601: 0.299 R + 0.587 G
 * + 0.114 B), averaged over down_factor x down_factor blocks and quantised to
 * n_levels tokens. A transformer conditioned on these tokens (cond_stage_key
 * pointing at the image, as the depth and edge tasks do) learns to colour and
 * detail a rough brightness layout.
 *
 *   config: n_levels (16, 2..65536), down_factor (8, >= 1)
 *   encode(x [B, C, H, W] in [-1, 1], C = 1 or 3) -> quant f32 [B, 1, H/f, W/f]
 *           (the levels as values in [-1, 1]), nil, indices i64 [B, (H/f)(W/f)]
 *   decode(quant [B, 1, h, w]) -> gray image [B, 3, h*f, w*f] in [-1, 1]
 *
 * It implements the cond contract of <taming/kinds.h>: encode (required) and
 * decode. */
#include <math.h>
#include <stdlib.h>
#include <taming/kinds.h>

typedef struct {
  int64_t n_levels, f;
} luma;

static tt_status lu_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"n_levels", "down_factor", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  int64_t n, f;
  TT_TRY(tt_cfg_int_opt(cfg, "n_levels", 16, &n));
  TT_TRY(tt_cfg_int_opt(cfg, "down_factor", 8, &f));
  if (n < 2 || n > 65536) return tt_error(TT_ERR_INVALID, "n_levels = %lld must lie in [2, 65536]", (long long)n);
  if (f < 1 || f > 4096) return tt_error(TT_ERR_INVALID, "down_factor = %lld must lie in [1, 4096]", (long long)f);
  luma *l = malloc(sizeof *l);
  if (!l) return tt_error(TT_ERR_NOMEM, "out of memory");
  l->n_levels = n;
  l->f = f;
  *self = l;
  return TT_OK;
}

static void lu_destroy(void *self) { free(self); }

/* a host result moved to the device of the input */
static tt_status on_device(tt_tensor *t, tt_device dev, tt_value *ret) {
  tt_tensor *d = dev == TT_CPU ? t : tt_to_device(t, dev);
  if (d != t) tt_tensor_unref(t);
  if (!d) return tt_last_status();
  *ret = tt_value_tensor_steal(d);
  return TT_OK;
}

static tt_status lu_encode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  luma *l = self;
  tt_tensor *x;
  TT_TRY(tt_args_check("encode", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  char sb[128];
  if (x->dtype != TT_F32 || x->ndim != 4 || (x->shape[1] != 1 && x->shape[1] != 3))
    return tt_error(TT_ERR_INVALID, "x must be f32 [B, 1 or 3, H, W], found %s %s", tt_dtype_name(x->dtype),
                    tt_tensor_shape_str(x, sb, sizeof sb));
  int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3], f = l->f;
  if (H % f || W % f)
    return tt_error(TT_ERR_INVALID, "x is %lldx%lld, not a multiple of down_factor %lld", (long long)H, (long long)W,
                    (long long)f);
  int64_t h = H / f, w = W / f, top = l->n_levels - 1;
  tt_tensor *hx = tt_host_contiguous(x);                             // [B, C, H, W] on the host
  tt_tensor *q = tt_tensor_new(TT_F32, TT_DIMS(B, 1, h, w), TT_CPU);
  tt_tensor *idx = tt_tensor_new(TT_I64, TT_DIMS(B, h * w), TT_CPU);
  if (!hx || !q || !idx) {
    tt_tensor_unref(hx);
    tt_tensor_unref(q);
    tt_tensor_unref(idx);
    return tt_last_status();
  }
  static const double rgb[3] = {0.299, 0.587, 0.114};
  for (int64_t b = 0; b < B; b++)
    for (int64_t i = 0; i < h; i++)
      for (int64_t j = 0; j < w; j++) {
        double sum = 0;   /* the block's mean luma, in [-1, 1] */
        for (int64_t c = 0; c < C; c++) {
          const float *plane = tt_f32(hx) + (b * C + c) * H * W;
          double s = 0;
          for (int64_t y = i * f; y < (i + 1) * f; y++)
            for (int64_t xx = j * f; xx < (j + 1) * f; xx++) s += plane[y * W + xx];
          sum += (C == 3 ? rgb[c] : 1.0) * s;
        }
        double mean = sum / (double)(f * f), t = (mean + 1) / 2 * (double)top;
        int64_t level = (int64_t)floor(t + 0.5);
        level = level < 0 ? 0 : level > top ? top : level;
        tt_i64(idx)[b * h * w + i * w + j] = level;                  // [B, h*w], raster order
        tt_f32(q)[b * h * w + i * w + j] = (float)((double)level / (double)top * 2 - 1);
      }
  tt_tensor_unref(hx);
  tt_status s = on_device(q, x->device, &rets[0]);
  if (s != TT_OK) {
    tt_tensor_unref(idx);
    return s;
  }
  rets[1] = TT_VALUE_NIL;   /* no codebook loss */
  s = on_device(idx, x->device, &rets[2]);
  if (s != TT_OK) {
    tt_value_clear(&rets[0]);
    return s;
  }
  *nrets = 3;
  return TT_OK;
}

static tt_status lu_decode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  luma *l = self;
  tt_tensor *q;
  TT_TRY(tt_args_check("decode", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "quant", &q));
  char sb[128];
  if (q->dtype != TT_F32 || q->ndim != 4 || q->shape[1] != 1)
    return tt_error(TT_ERR_INVALID, "quant must be f32 [B, 1, h, w], found %s %s", tt_dtype_name(q->dtype),
                    tt_tensor_shape_str(q, sb, sizeof sb));
  int64_t B = q->shape[0], h = q->shape[2], w = q->shape[3], f = l->f;
  tt_tensor *hq = tt_host_contiguous(q);
  tt_tensor *img = tt_tensor_new(TT_F32, TT_DIMS(B, 3, h * f, w * f), TT_CPU);   // [B, 3, h*f, w*f]
  if (!hq || !img) {
    tt_tensor_unref(hq);
    tt_tensor_unref(img);
    return tt_last_status();
  }
  int64_t H = h * f, W = w * f;
  for (int64_t b = 0; b < B; b++)
    for (int64_t c = 0; c < 3; c++)
      for (int64_t y = 0; y < H; y++)
        for (int64_t xx = 0; xx < W; xx++)
          tt_f32(img)[((b * 3 + c) * H + y) * W + xx] = tt_f32(hq)[(b * h + y / f) * w + xx / f];
  tt_tensor_unref(hq);
  TT_TRY(on_device(img, q->device, &rets[0]));
  *nrets = 1;
  return TT_OK;
}

static const tt_method lu_methods[] = {
    {"encode", lu_encode, "x [B, 1|3, H, W] in [-1, 1] -> quant [B, 1, H/f, W/f], nil, indices i64 [B, (H/f)(W/f)]"},
    {"decode", lu_decode, "quant [B, 1, h, w] -> gray image [B, 3, h*f, w*f]"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "cond", .name = "luma", .version = "1.0.0",
                 .summary = "coarse luminance: block-mean luma quantised to n_levels tokens", .create = lu_create,
                 .destroy = lu_destroy, .methods = lu_methods);
