/* sampling.c — see sampling.h. The loops run on the host; every forward pass and
 * every draw happens inside the plugins. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "taming/sampling.h"

static tt_status call1(tt_instance *inst, const char *m, tt_value *args, int n, tt_tensor **out) {
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  TT_TRY(tt_instance_call(inst, m, args, n, rets, &nr));
  tt_status s = TT_OK;
  if (out) {
    if (nr < 1 || rets[0].type != TT_V_TENSOR) s = tt_error(TT_ERR_PLUGIN, "%s did not return a tensor", m);
    else { *out = rets[0].u.t; rets[0].type = TT_V_NIL; }
  }
  for (int i = 0; i < nr; i++) tt_value_clear(&rets[i]);
  return s;
}

static tt_status reset_cache(tt_instance *gpt, int64_t B) {
  tt_value a = tt_value_int(B);
  return call1(gpt, "reset_cache", &a, 1, NULL);
}

/* logits of the last position after feeding tokens (cached or full) */
static tt_status step_logits(tt_instance *gpt, tt_tensor *tokens, bool cached, tt_tensor **logits) {
  tt_value a[2] = {tt_value_tensor(tokens), tt_value_bool(true)};
  tt_tensor *l = NULL;
  tt_status s;
  if (cached) {
    s = call1(gpt, "forward_cached", a, 2, &l);                  // [B, 1, V]
  } else {
    TT_NO_GRAD_BEGIN;
    s = call1(gpt, "forward", a, 1, &l);                         // [B, T, V]
    TT_NO_GRAD_END;
  }
  tt_value_clear(&a[0]);
  if (s != TT_OK) return s;
  tt_tensor *last = tt_select(l, 1, l->shape[1] - 1);           // [B, V]
  tt_tensor_unref(l);
  if (!last) return tt_last_status();
  *logits = last;
  return TT_OK;
}

static tt_tensor *restrict_vocab(tt_tensor *logits, int64_t limit) {
  if (limit <= 0 || limit >= logits->shape[1]) return tt_tensor_ref(logits);
  tt_tensor *s = tt_slice(logits, 1, 0, limit, 1);
  tt_tensor *c = s ? tt_contiguous(s) : NULL;
  tt_tensor_unref(s);
  return c;
}

static tt_status draw(tt_instance *sampler, tt_tensor *logits, int64_t limit, tt_tensor **tok) {
  tt_tensor *l = restrict_vocab(logits, limit);
  if (!l) return tt_last_status();
  tt_value a = tt_value_tensor_steal(l);
  tt_status s = call1(sampler, "sample", &a, 1, tok);             // [B] i64
  tt_value_clear(&a);
  return s;
}

/* guided = u + scale * (c - u), rows [0, B) conditional, [B, 2B) unconditional */
static tt_tensor *guide(tt_tensor *logits2, int64_t B, double scale) {
  tt_tensor *c = tt_slice(logits2, 0, 0, B, 1), *u = tt_slice(logits2, 0, B, 2 * B, 1);
  tt_tensor *d = (c && u) ? tt_sub(c, u) : NULL;
  tt_tensor *ds = d ? tt_mul_scalar(d, scale) : NULL;
  tt_tensor *g = ds ? tt_add(u, ds) : NULL;
  tt_tensor_unref(c); tt_tensor_unref(u); tt_tensor_unref(d); tt_tensor_unref(ds);
  return g;
}

tt_status tt_sample_sequence(tt_instance *gpt, tt_instance *sampler, tt_tensor *prefix, int64_t steps,
                             const tt_sample_opts *opts, tt_tensor **out) {
  tt_sample_opts o = opts ? *opts : (tt_sample_opts){.use_cache = true};
  if (prefix->dtype != TT_I64 || prefix->ndim != 2 || prefix->shape[1] < 1)
    return tt_error(TT_ERR_INVALID, "sample: the prefix must be i64 [B, L0] with L0 >= 1");
  if (steps < 1) return tt_error(TT_ERR_INVALID, "sample: steps must be positive");
  int64_t B = prefix->shape[0];
  tt_tensor *seq = NULL;
  if (o.uncond) {
    if (!tt_tensor_same_shape(o.uncond, prefix))
      return tt_error(TT_ERR_INVALID, "sample: the unconditional prefix must have the prefix's shape");
    tt_tensor *parts[2] = {prefix, o.uncond};
    seq = tt_cat(2, parts, 0);                                     // [2B, L0]
  } else {
    seq = tt_tensor_ref(prefix);
  }
  if (!seq) return tt_last_status();
  int64_t rows = seq->shape[0];
  tt_tensor *result = tt_tensor_new(TT_I64, TT_DIMS(B, steps), TT_CPU);
  tt_status s = result ? TT_OK : tt_last_status();
  if (s == TT_OK && o.use_cache) s = reset_cache(gpt, rows);
  tt_tensor *feed = tt_tensor_ref(seq);                           // what the next forward sees
  for (int64_t n = 0; s == TT_OK && n < steps; n++) {
    tt_tensor *logits = NULL, *tok = NULL;
    s = step_logits(gpt, feed, o.use_cache, &logits);
    if (s == TT_OK && o.uncond) {
      tt_tensor *g = guide(logits, B, o.cfg_scale);
      tt_tensor_unref(logits);
      logits = g;
      if (!g) s = tt_last_status();
    }
    if (s == TT_OK) s = draw(sampler, logits, o.vocab_limit, &tok);
    tt_tensor_unref(logits);
    if (s != TT_OK) break;
    tt_tensor *tc = tt_to_device(tok, TT_CPU);
    if (!tc) {
      tt_tensor_unref(tok);
      s = tt_last_status();
      break;
    }
    for (int64_t b = 0; b < B; b++) tt_i64(result)[b * steps + n] = (int64_t)tt_tensor_get(tc, b);
    tt_tensor_unref(tc);
    /* the new token column, duplicated for the unconditional half */
    tt_tensor *col = tt_reshape(tok, TT_DIMS(B, 1));
    tt_tensor_unref(tok);
    if (col && o.uncond) {
      tt_tensor *parts[2] = {col, col};
      tt_tensor *c2 = tt_cat(2, parts, 0);
      tt_tensor_unref(col);
      col = c2;
    }
    tt_tensor *cd = col ? tt_to_device(col, seq->device) : NULL;
    tt_tensor_unref(col);
    if (!cd) { s = tt_last_status(); break; }
    tt_tensor_unref(feed);
    if (o.use_cache) {
      feed = cd;
    } else {
      tt_tensor *parts[2] = {seq, cd};
      tt_tensor *ns = tt_cat(2, parts, 1);
      tt_tensor_unref(cd);
      if (!ns) { feed = NULL; s = tt_last_status(); break; }
      tt_tensor_unref(seq);
      seq = ns;
      feed = tt_tensor_ref(seq);
    }
  }
  tt_tensor_unref(feed);
  tt_tensor_unref(seq);
  if (s != TT_OK) {
    tt_tensor_unref(result);
    return s;
  }
  if (prefix->device != TT_CPU) {
    tt_tensor *d = tt_to_device(result, prefix->device);
    tt_tensor_unref(result);
    if (!d) return tt_last_status();
    result = d;
  }
  *out = result;
  return TT_OK;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi) { return v < lo ? lo : v > hi ? hi : v; }

/* tokens of a [B, H, W] grid in a window ww wide at (i0, j0), raster order, positions [k0, k0 + n) -> [B, n] */
static tt_tensor *window_tokens(const tt_tensor *grid, int64_t i0, int64_t j0, int64_t ww, int64_t k0, int64_t n) {
  int64_t B = grid->shape[0], W = grid->shape[2];
  tt_tensor *t = tt_tensor_new(TT_I64, TT_DIMS(B, n), TT_CPU);
  if (!t) return NULL;
  for (int64_t b = 0; b < B; b++)
    for (int64_t k = 0; k < n; k++) {
      int64_t i = i0 + (k0 + k) / ww, j = j0 + (k0 + k) % ww;
      tt_i64(t)[b * n + k] = tt_i64(grid)[(b * grid->shape[1] + i) * W + j];
    }
  return t;
}

tt_status tt_sample_window(tt_instance *gpt, tt_instance *sampler, tt_tensor *grid, tt_tensor *cond_grid,
                           tt_tensor *cond_tokens, const tt_window_opts *o) {
  if (grid->dtype != TT_I64 || grid->ndim != 3 || grid->device != TT_CPU || !tt_tensor_is_contiguous(grid))
    return tt_error(TT_ERR_INVALID, "sample_window: the grid must be a contiguous CPU i64 [B, H, W]");
  int64_t B = grid->shape[0], H = grid->shape[1], W = grid->shape[2];
  int64_t wh = o->win_h, ww = o->win_w;
  if (H < wh || W < ww)
    return tt_error(TT_ERR_INVALID, "sample_window: the grid %lldx%lld is smaller than the %lldx%lld window",
                    (long long)H, (long long)W, (long long)wh, (long long)ww);
  if (!cond_grid && !cond_tokens) return tt_error(TT_ERR_INVALID, "sample_window: give a cond grid or cond tokens");
  tt_tensor *cg = NULL;
  if (cond_grid) {
    if (cond_grid->dtype != TT_I64 || cond_grid->ndim != 3 || cond_grid->shape[0] != B || cond_grid->shape[1] != H ||
        cond_grid->shape[2] != W)
      return tt_error(TT_ERR_INVALID, "sample_window: the cond grid must be i64 [%lld, %lld, %lld] like the image grid",
                      (long long)B, (long long)H, (long long)W);
    cg = tt_host_contiguous(cond_grid);
    if (!cg) return tt_last_status();
  }
  tt_tensor *ct = NULL;
  if (cond_tokens) {
    ct = tt_host_contiguous(cond_tokens);
    if (!ct) { tt_tensor_unref(cg); return tt_last_status(); }
  }
  tt_status s = TT_OK;
  if (o->use_cache) s = reset_cache(gpt, B);
  int64_t cur_i0 = -1, cur_j0 = -1, cached_pos = -1;   /* window and image tokens already in the cache */
  int64_t start = o->start < 0 ? 0 : o->start;
  for (int64_t cell = start; s == TT_OK && cell < H * W; cell++) {
    int64_t i = cell / W, j = cell % W;
    int64_t i0 = clamp64(i - o->anchor_h, 0, H - wh), j0 = clamp64(j - o->anchor_w, 0, W - ww);
    int64_t pos = (i - i0) * ww + (j - j0);              /* window position of the new token */
    tt_tensor *feed = NULL, *logits = NULL, *tok = NULL;
    bool cached = o->use_cache && i0 == cur_i0 && j0 == cur_j0 && cached_pos == pos - 1;
    if (cached) {
      /* the window did not move: only the last sampled token is new */
      feed = window_tokens(grid, i0, j0, ww, pos - 1, 1);
    } else {
      /* a new window: condition crop (and fixed prefix), then the image tokens before pos */
      tt_tensor *img = pos > 0 ? window_tokens(grid, i0, j0, ww, 0, pos) : NULL;
      tt_tensor *cw = cg ? window_tokens(cg, i0, j0, ww, 0, wh * ww) : NULL;
      tt_tensor *parts[3];
      int np = 0;
      if (ct) parts[np++] = ct;
      if (cw) parts[np++] = cw;
      if (img) parts[np++] = img;
      feed = tt_cat(np, parts, 1);                           // [B, Lc + pos]
      tt_tensor_unref(img);
      tt_tensor_unref(cw);
      if (feed && o->use_cache) s = reset_cache(gpt, B);
    }
    if (!feed) s = tt_last_status();
    if (s == TT_OK) s = step_logits(gpt, feed, o->use_cache, &logits);
    tt_tensor_unref(feed);
    if (s == TT_OK) s = draw(sampler, logits, o->vocab_limit, &tok);
    tt_tensor_unref(logits);
    if (s != TT_OK) break;
    tt_tensor *tc = tt_to_device(tok, TT_CPU);
    tt_tensor_unref(tok);
    if (!tc) { s = tt_last_status(); break; }
    for (int64_t b = 0; b < B; b++) tt_i64(grid)[(b * H + i) * W + j] = (int64_t)tt_tensor_get(tc, b);
    tt_tensor_unref(tc);
    cur_i0 = i0;
    cur_j0 = j0;
    cached_pos = pos;   /* tokens up to pos-1 are in the cache; pos is sampled but not fed yet */
  }
  tt_tensor_unref(cg);
  tt_tensor_unref(ct);
  return s;
}
