/* sampling.c — see sampling.h. The loops run on the host; every forward pass and
 * every draw happens inside the plugins. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "taming/kinds.h"
#include "taming/sampling.h"

/* logits of the last position after feeding tokens (cached or full) */
static tt_status step_logits(tt_instance *gpt, tt_tensor *tokens, bool cached, tt_tensor **logits) {
  tt_tensor *l = NULL;
  tt_status s;
  if (cached) {
    s = tt_transformer_forward_cached(gpt, tokens, true, &l);   // [B, 1, V]
  } else {
    TT_NO_GRAD_BEGIN;
    s = tt_transformer_forward(gpt, tokens, NULL, &l);           // [B, T, V]
    TT_NO_GRAD_END;
  }
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

/* The caller's sampler: a plugin, or the callback when the plugin is NULL. */
typedef struct {
  tt_instance *plugin;
  tt_draw_fn fn;
  void *ctx;
} token_sampler;

/* logits [B, V'] -> tokens on the host, i64 [B], each checked to lie in [0, V) */
static tt_status draw(const token_sampler *ts, tt_tensor *logits, int64_t limit, tt_tensor **tok) {
  tt_tensor *l = restrict_vocab(logits, limit);
  if (!l) return tt_last_status();
  int64_t B = l->shape[0], V = l->shape[1];
  tt_tensor *t = NULL;
  tt_status s;
  if (ts->plugin) {
    s = tt_sampler_sample(ts->plugin, l, &t);                    // [B] i64
  } else {
    s = ts->fn(ts->ctx, l, &t);
  }
  tt_tensor_unref(l);
  if (s != TT_OK) return s;
  const char *who = ts->plugin ? "the sampler plugin" : "the sampler function";
  char sb[128];
  if (!t || t->dtype != TT_I64 || tt_tensor_numel(t) != B || t->ndim > 2) {
    s = tt_error(TT_ERR_INVALID, "sample: %s must return i64 tokens [%lld], found %s %s", who, (long long)B,
                 t ? tt_dtype_name(t->dtype) : "nothing", t ? tt_tensor_shape_str(t, sb, sizeof sb) : "");
    tt_tensor_unref(t);
    return s;
  }
  tt_tensor *h = tt_host_contiguous(t);
  tt_tensor_unref(t);
  if (!h) return tt_last_status();
  for (int64_t b = 0; b < B; b++)
    if (tt_i64(h)[b] < 0 || tt_i64(h)[b] >= V) {
      s = tt_error(TT_ERR_INVALID, "sample: %s returned token %lld for row %lld, outside the vocabulary [0, %lld)", who,
                   (long long)tt_i64(h)[b], (long long)b, (long long)V);
      tt_tensor_unref(h);
      return s;
    }
  *tok = h;
  return TT_OK;
}

static token_sampler make_sampler(tt_instance *plugin, tt_draw_fn fn, void *ctx) {
  return (token_sampler){plugin, fn, ctx};
}

static tt_status check_sampler(const char *op, const token_sampler *ts) {
  if (ts->plugin || ts->fn) return TT_OK;
  return tt_error(TT_ERR_INVALID, "%s: give a sampler (a plugin or a function)", op);
}

/* A host copy of a mask as i64 0/1 values of the expected shape (u8 or i64 input). */
static tt_status host_mask(const char *op, tt_tensor *m, int nd, const int64_t *shape, tt_tensor **out) {
  char a[128], b[128];
  bool ok = (m->dtype == TT_U8 || m->dtype == TT_I64) && m->ndim == nd;
  for (int i = 0; ok && i < nd; i++) ok = m->shape[i] == shape[i];
  if (!ok)
    return tt_error(TT_ERR_INVALID, "%s: the mask must be u8 or i64 %s, found %s %s", op,
                    tt_shape_str(nd, shape, a, sizeof a), tt_dtype_name(m->dtype), tt_tensor_shape_str(m, b, sizeof b));
  tt_tensor *c = tt_cast(m, TT_I64);
  tt_tensor *h = c ? tt_host_contiguous(c) : NULL;
  tt_tensor_unref(c);
  if (!h) return tt_last_status();
  *out = h;
  return TT_OK;
}

/* true when every row keeps its token at column k of a [B, n] host mask */
static bool all_kept(const tt_tensor *mask, int64_t B, int64_t n, int64_t k) {
  if (!mask) return false;
  for (int64_t b = 0; b < B; b++)
    if (tt_i64(mask)[b * n + k]) return false;
  return true;
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

/* A [B, 1] column of tokens on dev, duplicated to [2B, 1] for guidance. */
static tt_tensor *token_column(const int64_t *toks, int64_t B, bool dup, tt_device dev) {
  tt_tensor *col = tt_tensor_from_data(TT_I64, TT_DIMS(B, 1), toks, TT_CPU);
  if (col && dup) {
    tt_tensor *parts[2] = {col, col};
    tt_tensor *c2 = tt_cat(2, parts, 0);
    tt_tensor_unref(col);
    col = c2;
  }
  tt_tensor *cd = col ? tt_to_device(col, dev) : NULL;
  tt_tensor_unref(col);
  return cd;
}

/* a + b along dim 1 (a may be NULL) */
static tt_tensor *append(tt_tensor *a, tt_tensor *b) {
  if (!a) return tt_tensor_ref(b);
  tt_tensor *parts[2] = {a, b};
  return tt_cat(2, parts, 1);
}

tt_status tt_sample_sequence(tt_instance *gpt, tt_instance *sampler, tt_tensor *prefix, int64_t steps,
                             const tt_sample_opts *opts, tt_tensor **out) {
  tt_sample_opts o = opts ? *opts : (tt_sample_opts){.use_cache = true};
  token_sampler ts = make_sampler(sampler, o.draw, o.draw_ctx);
  TT_TRY(check_sampler("sample", &ts));
  if (prefix->dtype != TT_I64 || prefix->ndim != 2 || prefix->shape[1] < 1)
    return tt_error(TT_ERR_INVALID, "sample: the prefix must be i64 [B, L0] with L0 >= 1");
  if (steps < 1) return tt_error(TT_ERR_INVALID, "sample: steps must be positive");
  int64_t B = prefix->shape[0];
  if (!o.known != !o.mask) return tt_error(TT_ERR_INVALID, "sample: known= and mask= go together");
  tt_tensor *known = NULL, *mask = NULL;
  if (o.known) {
    int64_t want[2] = {B, steps};
    char a[128];
    if (o.known->dtype != TT_I64 || o.known->ndim != 2 || o.known->shape[0] != B || o.known->shape[1] != steps)
      return tt_error(TT_ERR_INVALID, "sample: the known tokens must be i64 %s (one per sampled step), found %s %s",
                      tt_shape_str(2, want, a, sizeof a), tt_dtype_name(o.known->dtype),
                      tt_tensor_shape_str(o.known, (char[128]){0}, 128));
    TT_TRY(host_mask("sample", o.mask, 2, want, &mask));
    known = tt_host_contiguous(o.known);
    if (!known) { tt_tensor_unref(mask); return tt_last_status(); }
    for (int64_t i = 0; i < B * steps; i++) {
      int64_t v = tt_i64(known)[i];
      if (!tt_i64(mask)[i] && (v < 0 || (o.vocab_limit > 0 && v >= o.vocab_limit))) {
        tt_status e = tt_error(TT_ERR_INVALID, "sample: known token %lld at row %lld, step %lld lies outside [0, %lld)",
                               (long long)v, (long long)(i / steps), (long long)(i % steps), (long long)o.vocab_limit);
        tt_tensor_unref(known); tt_tensor_unref(mask);
        return e;
      }
    }
  }
  tt_tensor *seq = NULL;
  if (o.uncond) {
    if (!tt_tensor_same_shape(o.uncond, prefix)) {
      tt_tensor_unref(known); tt_tensor_unref(mask);
      return tt_error(TT_ERR_INVALID, "sample: the unconditional prefix must have the prefix's shape");
    }
  }
  if (o.uncond && o.cfg_scale == 1.0) o.uncond = NULL;   /* u + 1 (c - u) is c: plain sampling, bit for bit */
  if (o.uncond) {
    tt_tensor *parts[2] = {prefix, o.uncond};
    seq = tt_cat(2, parts, 0);                                     // [2B, L0]
  } else {
    seq = tt_tensor_ref(prefix);
  }
  int64_t *col_toks = malloc(sizeof *col_toks * (size_t)B);
  tt_tensor *result = tt_tensor_new(TT_I64, TT_DIMS(B, steps), TT_CPU);
  tt_status s = (seq && result && col_toks) ? TT_OK : tt_error(TT_ERR_NOMEM, "sample: out of memory");
  if (s == TT_OK && o.use_cache) s = tt_transformer_reset_cache(gpt, seq->shape[0]);
  /* cached: tokens not yet fed to the model; uncached: the whole sequence */
  tt_tensor *feed = seq ? tt_tensor_ref(seq) : NULL;
  for (int64_t n = 0; s == TT_OK && n < steps; n++) {
    bool keep_all = all_kept(mask, B, steps, n);
    if (!keep_all) {
      tt_tensor *logits = NULL, *tok = NULL;
      s = step_logits(gpt, feed, o.use_cache, &logits);
      if (s == TT_OK && o.uncond) {
        tt_tensor *g = guide(logits, B, o.cfg_scale);
        tt_tensor_unref(logits);
        logits = g;
        if (!g) s = tt_last_status();
      }
      if (s == TT_OK) s = draw(&ts, logits, o.vocab_limit, &tok);
      tt_tensor_unref(logits);
      if (s != TT_OK) break;
      for (int64_t b = 0; b < B; b++)
        col_toks[b] = (mask && !tt_i64(mask)[b * steps + n]) ? tt_i64(known)[b * steps + n] : tt_i64(tok)[b];
      tt_tensor_unref(tok);
    } else {
      for (int64_t b = 0; b < B; b++) col_toks[b] = tt_i64(known)[b * steps + n];
    }
    for (int64_t b = 0; b < B; b++) tt_i64(result)[b * steps + n] = col_toks[b];
    if (n == steps - 1) break;   /* the last token is never fed */
    tt_tensor *col = token_column(col_toks, B, o.uncond != NULL, seq->device);
    if (!col) { s = tt_last_status(); break; }
    tt_tensor *next;
    if (o.use_cache) {
      /* a sampling step consumed the pending tokens; a kept step adds to them */
      next = keep_all ? append(feed, col) : tt_tensor_ref(col);
    } else {
      next = append(seq, col);
      if (next) { tt_tensor_unref(seq); seq = tt_tensor_ref(next); }
    }
    tt_tensor_unref(col);
    tt_tensor_unref(feed);
    feed = next;
    if (!feed) { s = tt_last_status(); break; }
  }
  tt_tensor_unref(feed);
  tt_tensor_unref(seq);
  tt_tensor_unref(known);
  tt_tensor_unref(mask);
  free(col_toks);
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
  token_sampler ts = make_sampler(sampler, o->draw, o->draw_ctx);
  TT_TRY(check_sampler("sample_window", &ts));
  if (grid->dtype != TT_I64 || grid->ndim != 3 || grid->device != TT_CPU || !tt_tensor_is_contiguous(grid))
    return tt_error(TT_ERR_INVALID, "sample_window: the grid must be a contiguous CPU i64 [B, H, W]");
  int64_t B = grid->shape[0], H = grid->shape[1], W = grid->shape[2];
  int64_t wh = o->win_h, ww = o->win_w;
  if (wh < 1 || ww < 1) return tt_error(TT_ERR_INVALID, "sample_window: the window must be at least 1x1");
  if (H < wh || W < ww)
    return tt_error(TT_ERR_INVALID, "sample_window: the grid %lldx%lld is smaller than the %lldx%lld window",
                    (long long)H, (long long)W, (long long)wh, (long long)ww);
  if (!cond_grid && !cond_tokens) return tt_error(TT_ERR_INVALID, "sample_window: give a cond grid or cond tokens");
  tt_tensor *mask = NULL;
  if (o->mask) TT_TRY(host_mask("sample_window", o->mask, 3, grid->shape, &mask));
  tt_tensor *cg = NULL;
  if (cond_grid) {
    if (cond_grid->dtype != TT_I64 || cond_grid->ndim != 3 || cond_grid->shape[0] != B || cond_grid->shape[1] != H ||
        cond_grid->shape[2] != W) {
      tt_tensor_unref(mask);
      return tt_error(TT_ERR_INVALID, "sample_window: the cond grid must be i64 [%lld, %lld, %lld] like the image grid",
                      (long long)B, (long long)H, (long long)W);
    }
    cg = tt_host_contiguous(cond_grid);
    if (!cg) { tt_tensor_unref(mask); return tt_last_status(); }
  }
  tt_tensor *ct = NULL;
  if (cond_tokens) {
    ct = tt_host_contiguous(cond_tokens);
    if (!ct) { tt_tensor_unref(cg); tt_tensor_unref(mask); return tt_last_status(); }
  }
  tt_status s = TT_OK;
  if (o->use_cache) s = tt_transformer_reset_cache(gpt, B);
  /* One KV cache per window column position j0 (as many as the model keeps):
   * rows of cells that share the window's top row i0 come back to the same
   * windows, whose prefixes (condition crop, then the image tokens before the
   * new one, all filled earlier in raster order and never changed) are still
   * cached; only the window row sampled since is new, not the whole prefix. */
  int64_t nslots = 1, want = o->cache_slots > 0 ? o->cache_slots : W - ww + 1;
  if (s == TT_OK && o->use_cache && want > 1) s = tt_transformer_cache_slots(gpt, want, &nslots);
  /* per slot: the window it holds and how many of its image tokens are cached */
  int64_t *slot_i0 = malloc(sizeof(int64_t) * 3 * (size_t)nslots);
  int64_t *slot_j0 = slot_i0 + nslots, *slot_fed = slot_j0 + nslots;
  if (s == TT_OK && !slot_i0) s = tt_error(TT_ERR_NOMEM, "sample_window: out of memory");
  for (int64_t k = 0; slot_i0 && k < nslots; k++) slot_i0[k] = slot_j0[k] = slot_fed[k] = -1;
  int64_t cur = 0, nfed = 0;   /* the selected slot; tokens fed so far */
  int64_t start = o->start < 0 ? 0 : o->start;
  for (int64_t cell = start; s == TT_OK && cell < H * W; cell++) {
    if (all_kept(mask, B, H * W, cell)) continue;        /* fed with the next sampled cell of this window */
    int64_t i = cell / W, j = cell % W;
    int64_t i0 = clamp64(i - o->anchor_h, 0, H - wh), j0 = clamp64(j - o->anchor_w, 0, W - ww);
    int64_t pos = (i - i0) * ww + (j - j0);              /* window position of the new token */
    int64_t slot = j0 % nslots;
    if (slot != cur) {
      s = tt_transformer_select_cache(gpt, slot);
      if (s != TT_OK) break;
      cur = slot;
    }
    tt_tensor *feed = NULL, *logits = NULL, *tok = NULL;
    bool cached = o->use_cache && i0 == slot_i0[slot] && j0 == slot_j0[slot] && slot_fed[slot] < pos;
    if (cached) {
      /* a window held in this slot: the tokens filled since its last forward are new */
      feed = window_tokens(grid, i0, j0, ww, slot_fed[slot], pos - slot_fed[slot]);
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
      if (feed && o->use_cache) s = tt_transformer_reset_cache(gpt, B);
    }
    if (!feed) s = tt_last_status();
    if (s == TT_OK) s = step_logits(gpt, feed, o->use_cache, &logits);
    if (s == TT_OK) nfed += feed->shape[1];
    tt_tensor_unref(feed);
    if (s == TT_OK) s = draw(&ts, logits, o->vocab_limit, &tok);
    tt_tensor_unref(logits);
    if (s != TT_OK) break;
    for (int64_t b = 0; b < B; b++)
      if (!mask || tt_i64(mask)[b * H * W + cell]) tt_i64(grid)[(b * H + i) * W + j] = tt_i64(tok)[b];
    tt_tensor_unref(tok);
    slot_i0[slot] = i0;
    slot_j0[slot] = j0;
    slot_fed[slot] = pos;   /* tokens up to pos-1 are in the cache; pos is filled but not fed yet */
  }
  /* the extra caches go; the model keeps one */
  if (nslots > 1) {
    int64_t one;
    tt_status s2 = tt_transformer_cache_slots(gpt, 1, &one);
    if (s == TT_OK) s = s2;
  }
  free(slot_i0);
  if (o->tokens_fed) *o->tokens_fed = nfed;
  tt_tensor_unref(cg);
  tt_tensor_unref(ct);
  tt_tensor_unref(mask);
  return s;
}
