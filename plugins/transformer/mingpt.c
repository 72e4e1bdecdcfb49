/* transformer/mingpt.c — the official minGPT (REFERENCE §4.1-4.3): token and
 * learned position embeddings, pre-LN blocks (causal self-attention with the
 * n_unmasked block, GELU MLP), ln_f and a bias-free head. Dropout only in
 * training. A KV cache serves incremental decoding for any batch size:
 * reset_cache(B), then forward_cached(tokens) appends tokens and returns their
 * logits; truncate_cache(n) rewinds it (a sliding window that did not move).
 * Parameters relative to `transformer.` carry the official names.
 * set_precision("bf16" | "int8") packs every linear layer's weight (attention,
 * MLP, head) for inference with low-precision weights (taming/ops/qlinear.h);
 * the f32 parameters stay bound, so state_dict, training and "fp32" are intact.
 * bind_int8 takes int8 weights + per-channel scales from a quantized file. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "taming/plugin.h"
#include "taming/scope.h"

/* A linear layer's weight packed for inference (bf16, or i8 + scale), made from
 * `src`, the f32 tensor bound when it was packed: once the parameter is rebound
 * or moved, the pack no longer applies and the f32 path runs. */
typedef struct {
  tt_tensor *w, *scale, *src;
} packed;

enum { PK_KEY, PK_QUERY, PK_VALUE, PK_PROJ, PK_FC, PK_OUT, PK_PER_BLOCK };

typedef struct {
  tt_norm_layer ln1, ln2;
  tt_linear_layer key, query, value, proj, fc, out;
  packed pk[PK_PER_BLOCK];
  tt_param *mask;
  tt_tensor *k_cache, *v_cache;   /* [B, H, block, d]: the selected cache slot */
} block;

/* A KV cache slot that is not selected: its tensors, batch and filled length. */
typedef struct {
  tt_tensor **k, **v;   /* [L] each, NULL until the slot is first used */
  int64_t b, len;
} kv_slot;

typedef struct {
  int64_t V, T, L, H, E;            /* vocab, block size, layers, heads, width */
  int64_t n_unmasked;
  float embd_pdrop, resid_pdrop, attn_pdrop;
  bool training;
  tt_paramset ps;
  tt_param *tok_emb, *pos_emb, *head;
  tt_norm_layer ln_f;
  block *blocks;
  int64_t cache_b, cache_len;       /* batch and filled length of the KV cache */
  kv_slot *slots;                   /* [nslots]; slots[cur] is kept in the blocks, not here */
  int64_t nslots, cur;
  tt_rng rng;
  packed head_pk;
  tt_dtype precision;               /* TT_F32, TT_BF16 or TT_I8 */
} gpt;

static void packed_free(packed *p) {
  tt_tensor_release(&p->w);
  tt_tensor_release(&p->scale);
  tt_tensor_release(&p->src);
}

static void free_packs(gpt *g) {
  for (int64_t l = 0; g->blocks && l < g->L; l++)
    for (int i = 0; i < PK_PER_BLOCK; i++) packed_free(&g->blocks[l].pk[i]);
  packed_free(&g->head_pk);
}

/* every packable weight with its slot, in a fixed order; returns the count (or fills at most max) */
static int linear_slots(gpt *g, int max, tt_param **w, tt_param **bias, packed **pk) {
  int n = 0;
  for (int64_t l = 0; l < g->L; l++) {
    block *b = &g->blocks[l];
    tt_linear_layer *ls[PK_PER_BLOCK] = {&b->key, &b->query, &b->value, &b->proj, &b->fc, &b->out};
    for (int i = 0; i < PK_PER_BLOCK; i++, n++)
      if (n < max) { w[n] = ls[i]->weight; bias[n] = ls[i]->bias; pk[n] = &b->pk[i]; }
  }
  if (n < max) { w[n] = g->head; bias[n] = NULL; pk[n] = &g->head_pk; }
  return n + 1;
}

/* x @ W^T + b through the pack when it is current (and not training), else in f32 */
static tt_tensor *linear_fwd(gpt *g, const tt_linear_layer *l, const packed *p, tt_tensor *x) {
  if (p->w && !g->training && p->src == l->weight->t)
    return tt_qlinear(x, p->w, p->scale, l->bias ? l->bias->t : NULL);
  return tt_linear_layer_forward(l, x);
}

static void free_slot(gpt *g, kv_slot *s) {
  for (int64_t l = 0; s->k && l < g->L; l++) {
    tt_tensor_release(&s->k[l]);
    tt_tensor_release(&s->v[l]);
  }
  free(s->k);
  free(s->v);
  *s = (kv_slot){0};
}

/* frees the selected slot's tensors */
static void free_selected(gpt *g) {
  for (int64_t l = 0; l < g->L; l++) {
    tt_tensor_release(&g->blocks[l].k_cache);
    tt_tensor_release(&g->blocks[l].v_cache);
  }
  g->cache_b = g->cache_len = 0;
}

/* frees every cache slot, leaving one (selected, empty) */
static void free_cache(gpt *g) {
  free_selected(g);
  for (int64_t i = 0; g->slots && i < g->nslots; i++) free_slot(g, &g->slots[i]);
  free(g->slots);
  g->slots = NULL;
  g->nslots = 1;
  g->cur = 0;
  g->cache_b = g->cache_len = 0;
}

static void gpt_destroy(void *self) {
  gpt *g = self;
  if (!g) return;
  if (g->blocks) free_cache(g);
  free_packs(g);
  free(g->blocks);
  tt_paramset_free(&g->ps);
  free(g);
}

static tt_status declare(gpt *g) {
  tt_paramset *ps = &g->ps;
  char n[128];
  g->tok_emb = tt_param_declare(ps, TT_F32, TT_DIMS(g->V, g->E), TT_PARAM_TRAINABLE, tt_init_normal(0, 0.02), "tok_emb.weight");
  g->pos_emb = tt_param_declare(ps, TT_F32, TT_DIMS(1, g->T, g->E), TT_PARAM_TRAINABLE, tt_init_zeros(), "pos_emb");
  if (!g->tok_emb || !g->pos_emb) return tt_last_status();
  for (int64_t l = 0; l < g->L; l++) {
    block *b = &g->blocks[l];
    snprintf(n, sizeof n, "blocks.%lld.ln1", (long long)l);
    TT_TRY(tt_layer_norm_layer_declare(&b->ln1, ps, n, (int)g->E, 1e-5f));
    snprintf(n, sizeof n, "blocks.%lld.ln2", (long long)l);
    TT_TRY(tt_layer_norm_layer_declare(&b->ln2, ps, n, (int)g->E, 1e-5f));
    const char *names[4] = {"key", "query", "value", "proj"};
    tt_linear_layer *ls[4] = {&b->key, &b->query, &b->value, &b->proj};
    for (int i = 0; i < 4; i++) {
      snprintf(n, sizeof n, "blocks.%lld.attn.%s", (long long)l, names[i]);
      TT_TRY(tt_linear_layer_declare(ls[i], ps, n, (int)g->E, (int)g->E, true));
    }
    b->mask = tt_param_declare(ps, TT_F32, TT_DIMS(1, 1, g->T, g->T), TT_PARAM_BUFFER | TT_PARAM_OPTIONAL,
                               tt_init_zeros(), "blocks.%lld.attn.mask", (long long)l);
    if (!b->mask) return tt_last_status();
    snprintf(n, sizeof n, "blocks.%lld.mlp.0", (long long)l);
    TT_TRY(tt_linear_layer_declare(&b->fc, ps, n, (int)g->E, (int)(4 * g->E), true));
    snprintf(n, sizeof n, "blocks.%lld.mlp.2", (long long)l);
    TT_TRY(tt_linear_layer_declare(&b->out, ps, n, (int)(4 * g->E), (int)g->E, true));
  }
  TT_TRY(tt_layer_norm_layer_declare(&g->ln_f, ps, "ln_f", (int)g->E, 1e-5f));
  g->head = tt_param_declare(ps, TT_F32, TT_DIMS(g->V, g->E), TT_PARAM_TRAINABLE, tt_init_normal(0, 0.02), "head.weight");
  if (!g->head) return tt_last_status();
  /* minGPT's init: Linear weights N(0, 0.02), biases 0 (PyTorch defaults elsewhere) */
  for (int i = 0; i < ps->n; i++) {
    tt_param *p = ps->items[i];
    size_t len = strlen(p->name);
    bool is_linear = strstr(p->name, ".attn.") || strstr(p->name, ".mlp.");
    if (is_linear && len > 7 && !strcmp(p->name + len - 7, ".weight")) p->init = tt_init_normal(0, 0.02);
    if (is_linear && len > 5 && !strcmp(p->name + len - 5, ".bias")) p->init = tt_init_zeros();
  }
  return TT_OK;
}

static tt_status gpt_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"vocab_size", "block_size", "n_layer", "n_head", "n_embd", "embd_pdrop",
                                      "resid_pdrop", "attn_pdrop", "n_unmasked", "seed", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  gpt *g = calloc(1, sizeof *g);
  if (!g) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&g->ps);
  tt_status s;
  double ep, rp, ap;
  int64_t seed;
  if ((s = tt_cfg_int(cfg, "vocab_size", &g->V)) || (s = tt_cfg_int(cfg, "block_size", &g->T)) ||
      (s = tt_cfg_int_opt(cfg, "n_layer", 12, &g->L)) || (s = tt_cfg_int_opt(cfg, "n_head", 8, &g->H)) ||
      (s = tt_cfg_int_opt(cfg, "n_embd", 256, &g->E)) || (s = tt_cfg_num_opt(cfg, "embd_pdrop", 0.0, &ep)) ||
      (s = tt_cfg_num_opt(cfg, "resid_pdrop", 0.0, &rp)) || (s = tt_cfg_num_opt(cfg, "attn_pdrop", 0.0, &ap)) ||
      (s = tt_cfg_int_opt(cfg, "n_unmasked", 0, &g->n_unmasked)) || (s = tt_cfg_int_opt(cfg, "seed", 0, &seed)))
    goto fail;
  if (g->V <= 0 || g->T <= 0 || g->L <= 0 || g->H <= 0 || g->E <= 0 || g->E % g->H != 0) {
    s = tt_error(TT_ERR_INVALID, "GPT: vocab_size, block_size, n_layer, n_head, n_embd must be positive and "
                 "n_embd (%lld) divisible by n_head (%lld)", (long long)g->E, (long long)g->H);
    goto fail;
  }
  g->embd_pdrop = (float)ep;
  g->resid_pdrop = (float)rp;
  g->attn_pdrop = (float)ap;
  g->blocks = calloc((size_t)g->L, sizeof *g->blocks);
  if (!g->blocks) { s = tt_error(TT_ERR_NOMEM, "out of memory"); goto fail; }
  if ((s = declare(g)) != TT_OK) goto fail;
  g->rng = tt_rng_make((uint64_t)seed ^ 0x677074ull);
  g->nslots = 1;
  *self = g;
  return TT_OK;
fail:
  gpt_destroy(g);
  return s;
}

static tt_paramset *gpt_params(void *self) { return &((gpt *)self)->ps; }

static tt_status gpt_set_training(void *self, bool training) {
  ((gpt *)self)->training = training;
  return TT_OK;
}

/* the mask buffer as the reference stores it: lower triangle + the n_unmasked block */
static tt_status gpt_params_ready(void *self) {
  gpt *g = self;
  free_cache(g);
  for (int64_t l = 0; l < g->L; l++) {
    tt_tensor *m = g->blocks[l].mask->t;
    /* a mask loaded from a checkpoint is kept; a fresh (zero) one is filled in */
    if (!m || m->device != TT_CPU || !tt_tensor_is_contiguous(m) || tt_f32(m)[0] != 0.0f) continue;
    float *p = tt_f32(m);
    for (int64_t i = 0; i < g->T; i++)
      for (int64_t j = 0; j < g->T; j++)
        p[i * g->T + j] = (j <= i || (i < g->n_unmasked && j < g->n_unmasked)) ? 1.0f : 0.0f;
  }
  return TT_OK;
}

/* [B, T, E] -> [B, H, T, d] contiguous (in the caller's scope) */
static tt_tensor *split_heads(gpt *g, tt_tensor *x) {
  if (!x) return NULL;
  int64_t B = x->shape[0], T = x->shape[1];
  tt_tensor *r = tt_reshape(x, TT_DIMS(B, T, g->H, g->E / g->H));
  return tt_contiguous(tt_permute(r, (int[]){0, 2, 1, 3}));
}

/* [B, H, T, d] -> [B, T, E] (in the caller's scope) */
static tt_tensor *merge_heads(gpt *g, tt_tensor *y) {
  if (!y) return NULL;
  int64_t B = y->shape[0], T = y->shape[2];
  tt_tensor *c = tt_contiguous(tt_permute(y, (int[]){0, 2, 1, 3}));
  return tt_reshape(c, TT_DIMS(B, T, g->E));
}

/* attention with dropout on the probabilities (training with attn_pdrop > 0), in the caller's scope */
static tt_tensor *attention_dropout(gpt *g, tt_tensor *q, tt_tensor *k, tt_tensor *v, const tt_attention_params *ap) {
  if (!q) return NULL;
  int64_t T = q->shape[2];
  tt_tensor *s = tt_mul_scalar(tt_matmul(q, tt_transpose(k, -1, -2)), ap->scale);   // [B, H, T, T]
  /* the additive mask, 0 where visible and -inf elsewhere, filled on the host */
  tt_tensor *mc = tt_tensor_new(TT_F32, TT_DIMS(T, T), TT_CPU);
  if (!mc) return NULL;
  for (int64_t i = 0; i < T; i++)
    for (int64_t j = 0; j < T; j++) {
      bool ok = j <= i || (i < ap->n_unmasked && j < ap->n_unmasked);
      tt_f32(mc)[i * T + j] = ok ? 0.0f : -INFINITY;
    }
  tt_tensor *p = tt_softmax(tt_add(s, tt_to_device(mc, q->device)), -1);
  return tt_matmul(tt_dropout(p, g->attn_pdrop, true, &g->rng), v);
}

/* y [B, H, Tq, d] over the keys and values cached so far, after writing this step's
 * k, v [B, H, T, d] at positions [offset, offset + T) of the layer's cache; q holds
 * the last Tq <= T of those positions (caller's scope) */
static tt_tensor *cached_attention(block *b, tt_tensor *q, tt_tensor *k, tt_tensor *v, tt_attention_params *ap,
                                   int64_t offset) {
  if (!q || !k || !v) return NULL;
  int64_t T = k->shape[2];
  tt_tensor *ks = tt_slice(b->k_cache, 2, offset, offset + T, 1), *vs = tt_slice(b->v_cache, 2, offset, offset + T, 1);
  if (!ks || !vs || tt_copy_(ks, k) != TT_OK || tt_copy_(vs, v) != TT_OK) return NULL;
  ap->q_offset = offset + T - q->shape[2];
  return tt_attention(q, tt_slice(b->k_cache, 2, 0, offset + T, 1), tt_slice(b->v_cache, 2, 0, offset + T, 1), ap);
}

/* One block on x [B, T, E]. With `cached`, keys/values of these T tokens are written
 * at positions [offset, offset + T) of the layer's cache and attention runs over
 * everything cached so far; with `last` too, only the last token goes on past
 * the keys and values (the last block when only the last logits are wanted):
 * -> [B, 1, E]. */
static tt_tensor *block_forward(gpt *g, block *b, tt_tensor *x, bool cached, bool last, int64_t offset) {
  bool drop = g->training && g->resid_pdrop > 0;
  tt_attention_params ap = {(float)(1.0 / sqrt((double)(g->E / g->H))), true, 0, g->n_unmasked};
  tt_scope_begin();
  tt_tensor *h = tt_layer_norm_layer_forward(&b->ln1, x);                       // [B, T, E]
  if (cached && last && x && x->shape[1] > 1) {
    int64_t T = x->shape[1];
    x = tt_slice(x, 1, T - 1, T, 1);                                             // [B, 1, E]
    tt_tensor *k = split_heads(g, linear_fwd(g, &b->key, &b->pk[PK_KEY], h));     // [B, H, T, d]
    tt_tensor *v = split_heads(g, linear_fwd(g, &b->value, &b->pk[PK_VALUE], h));
    h = h ? tt_slice(h, 1, T - 1, T, 1) : NULL;                                  // [B, 1, E]
    tt_tensor *q = split_heads(g, linear_fwd(g, &b->query, &b->pk[PK_QUERY], h)); // [B, H, 1, d]
    tt_tensor *y = cached_attention(b, q, k, v, &ap, offset);                    // [B, H, 1, d]
    tt_tensor *x1 = tt_add(x, linear_fwd(g, &b->proj, &b->pk[PK_PROJ], merge_heads(g, y)));   // [B, 1, E]
    tt_tensor *f = linear_fwd(g, &b->fc, &b->pk[PK_FC], tt_layer_norm_layer_forward(&b->ln2, x1));
    return tt_scope_end(tt_add(x1, linear_fwd(g, &b->out, &b->pk[PK_OUT], tt_gelu(f))));
  }
  tt_tensor *q = split_heads(g, linear_fwd(g, &b->query, &b->pk[PK_QUERY], h));  // [B, H, T, d]
  tt_tensor *k = split_heads(g, linear_fwd(g, &b->key, &b->pk[PK_KEY], h));
  tt_tensor *v = split_heads(g, linear_fwd(g, &b->value, &b->pk[PK_VALUE], h));
  tt_tensor *y = cached ? cached_attention(b, q, k, v, &ap, offset)              // [B, H, T, d]
                 : g->training && g->attn_pdrop > 0 ? attention_dropout(g, q, k, v, &ap)
                 : tt_attention(q, k, v, &ap);
  tt_tensor *a = linear_fwd(g, &b->proj, &b->pk[PK_PROJ], merge_heads(g, y));    // [B, T, E]
  if (drop) a = tt_dropout(a, g->resid_pdrop, true, &g->rng);
  tt_tensor *x1 = tt_add(x, a);                                                  // x + attn(ln1(x))
  tt_tensor *f = linear_fwd(g, &b->fc, &b->pk[PK_FC], tt_layer_norm_layer_forward(&b->ln2, x1));   // [B, T, 4E]
  tt_tensor *o = linear_fwd(g, &b->out, &b->pk[PK_OUT], tt_gelu(f));             // [B, T, E]
  if (drop) o = tt_dropout(o, g->resid_pdrop, true, &g->rng);
  return tt_scope_end(tt_add(x1, o));                                            // x1 + mlp(ln2(x1))
}

/* idx [B, T] i64 (+ embeddings [B, T0, E] prepended) at positions from `offset`
 * -> logits [B, T0+T, V] (only the last position's with last_only) */
static tt_tensor *gpt_run(gpt *g, tt_tensor *idx, tt_tensor *emb, bool cached, int64_t offset, bool last_only) {
  if (idx->dtype != TT_I64 || idx->ndim != 2) {
    char b[128];
    tt_error(TT_ERR_INVALID, "GPT: tokens must be i64 [B, T], found %s %s", tt_dtype_name(idx->dtype),
             tt_tensor_shape_str(idx, b, sizeof b));
    return NULL;
  }
  int64_t T = idx->shape[1] + (emb ? emb->shape[1] : 0);
  if (offset + T > g->T) {
    tt_error(TT_ERR_INVALID, "GPT: %lld tokens at position %lld exceed block_size %lld", (long long)T,
             (long long)offset, (long long)g->T);
    return NULL;
  }
  tt_scope_begin();
  /* tokens are small: follow the weights to their device */
  tt_tensor *x = tt_embedding(g->tok_emb->t, tt_to_device(idx, g->tok_emb->t->device));   // [B, T, E]
  if (emb) x = tt_cat(2, (tt_tensor *[]){emb, x}, 1);                                    // [B, T0+T, E]
  x = tt_add(x, tt_slice(g->pos_emb->t, 1, offset, offset + T, 1));                       // + pos_emb [1, T, E]
  if (g->training && g->embd_pdrop > 0) x = tt_dropout(x, g->embd_pdrop, true, &g->rng);
  for (int64_t l = 0; l < g->L; l++) {
    bool last = last_only && l == g->L - 1;
    x = tt_scope_replace(x, tt_scope_own(block_forward(g, &g->blocks[l], x, cached, last, offset)));
  }
  if (last_only && x && x->shape[1] > 1) x = tt_slice(x, 1, x->shape[1] - 1, x->shape[1], 1);   // [B, 1, E]
  tt_tensor *h = tt_layer_norm_layer_forward(&g->ln_f, x);
  tt_linear_layer head = {g->head, NULL};
  return tt_scope_end(linear_fwd(g, &head, &g->head_pk, h));                            // [B, T, V]
}

static tt_status gpt_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  tt_tensor *idx, *emb;
  TT_TRY(tt_args_check("forward", nargs, 1, 2));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "tokens", &idx));
  TT_TRY(tt_arg_tensor_opt(args, nargs, 1, &emb));
  tt_tensor *logits = gpt_run(g, idx, emb, false, 0, false);
  if (!logits) return tt_last_status();
  rets[0] = tt_value_tensor_steal(logits);
  *nrets = 1;
  return TT_OK;
}

/* reset_cache(B): an empty KV cache for B sequences */
static tt_status gpt_reset_cache(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  int64_t B;
  TT_TRY(tt_args_check("reset_cache", nargs, 1, 1));
  TT_TRY(tt_value_as_int(&args[0], "batch", &B));
  if (B <= 0) return tt_error(TT_ERR_INVALID, "reset_cache: batch must be positive");
  tt_device dev = g->tok_emb->t ? g->tok_emb->t->device : TT_CPU;
  if (g->cache_b != B || !g->blocks[0].k_cache || g->blocks[0].k_cache->device != dev) {
    free_selected(g);
    for (int64_t l = 0; l < g->L; l++) {
      g->blocks[l].k_cache = tt_tensor_new(TT_F32, TT_DIMS(B, g->H, g->T, g->E / g->H), dev);
      g->blocks[l].v_cache = tt_tensor_new(TT_F32, TT_DIMS(B, g->H, g->T, g->E / g->H), dev);
      if (!g->blocks[l].k_cache || !g->blocks[l].v_cache) {
        free_selected(g);
        return tt_error_prefix(tt_last_status(), "reset_cache: ");
      }
    }
    g->cache_b = B;
  }
  g->cache_len = 0;
  return TT_OK;
}

/* forward_cached(tokens [B, T] [, last_only]) -> logits for the new tokens */
static tt_status gpt_forward_cached(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  tt_tensor *idx;
  TT_TRY(tt_args_check("forward_cached", nargs, 1, 2));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "tokens", &idx));
  bool last_only = nargs > 1 && args[1].type == TT_V_BOOL && args[1].u.b;
  if (!g->cache_b) return tt_error(TT_ERR_INVALID, "forward_cached: call reset_cache(batch) first");
  if (idx->ndim != 2 || idx->shape[0] != g->cache_b)
    return tt_error(TT_ERR_INVALID, "forward_cached: tokens must be [%lld, T] (the cache's batch)", (long long)g->cache_b);
  tt_tensor *logits;
  TT_NO_GRAD_BEGIN;
  logits = gpt_run(g, idx, NULL, true, g->cache_len, last_only);
  TT_NO_GRAD_END;
  if (!logits) return tt_last_status();
  g->cache_len += idx->shape[1];
  rets[0] = tt_value_tensor_steal(logits);
  *nrets = 1;
  return TT_OK;
}

static tt_status gpt_cache_len(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  rets[0] = tt_value_int(((gpt *)self)->cache_len);
  *nrets = 1;
  return TT_OK;
}

/* truncate_cache(n): keep the first n cached positions */
static tt_status gpt_truncate_cache(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  int64_t n;
  TT_TRY(tt_args_check("truncate_cache", nargs, 1, 1));
  TT_TRY(tt_value_as_int(&args[0], "length", &n));
  if (n < 0 || n > g->cache_len)
    return tt_error(TT_ERR_INVALID, "truncate_cache(%lld): the cache holds %lld positions", (long long)n, (long long)g->cache_len);
  g->cache_len = n;
  return TT_OK;
}

/* Bytes of one KV cache slot for B sequences (keys and values of every layer). */
static double slot_bytes(const gpt *g, int64_t B) {
  return 2.0 * (double)g->L * (double)B * (double)g->T * (double)g->E * 4.0;
}

/* The memory all cache slots together may take, in MB: TAMING_KV_CACHE_MB, else 4096. */
static tt_status slot_budget_mb(double *mb) {
  const char *e = getenv("TAMING_KV_CACHE_MB");
  *mb = 4096.0;
  if (!e || !*e) return TT_OK;
  char *end = NULL;
  double v = strtod(e, &end);
  if (!end || *end || !(v > 0) || !isfinite(v))
    return tt_error(TT_ERR_INVALID, "cache_slots: TAMING_KV_CACHE_MB must be a positive number of MB, found '%s'", e);
  *mb = v;
  return TT_OK;
}

/* makes slot i the selected one: the blocks' caches go into the old slot's record */
static tt_status select_slot(gpt *g, int64_t i) {
  if (i == g->cur) return TT_OK;
  kv_slot *to = &g->slots[i], *from = &g->slots[g->cur];
  if (!from->k) {
    from->k = calloc((size_t)g->L, sizeof *from->k);
    from->v = calloc((size_t)g->L, sizeof *from->v);
    if (!from->k || !from->v) {
      free(from->k);
      free(from->v);
      from->k = from->v = NULL;
      return tt_error(TT_ERR_NOMEM, "select_cache: out of memory");
    }
  }
  for (int64_t l = 0; l < g->L; l++) {
    from->k[l] = g->blocks[l].k_cache;
    from->v[l] = g->blocks[l].v_cache;
    g->blocks[l].k_cache = to->k ? to->k[l] : NULL;
    g->blocks[l].v_cache = to->v ? to->v[l] : NULL;
    if (to->k) to->k[l] = to->v[l] = NULL;
  }
  from->b = g->cache_b;
  from->len = g->cache_len;
  g->cache_b = to->k ? to->b : 0;
  g->cache_len = to->k ? to->len : 0;
  g->cur = i;
  return TT_OK;
}

/* cache_slots(n) -> kept: up to n KV caches, as many as the budget allows for the
 * current batch (at least 1). Slots past the new count are freed; where the
 * selected slot is one of them, slot 0 is selected first. */
static tt_status gpt_cache_slots(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  int64_t n;
  TT_TRY(tt_args_check("cache_slots", nargs, 1, 1));
  TT_TRY(tt_value_as_int(&args[0], "count", &n));
  if (n < 1) return tt_error(TT_ERR_INVALID, "cache_slots(%lld): need at least 1 slot", (long long)n);
  double mb;
  TT_TRY(slot_budget_mb(&mb));
  double fit = floor(mb * 1e6 / slot_bytes(g, g->cache_b > 0 ? g->cache_b : 1));
  if ((double)n > fit) n = fit < 1.0 ? 1 : (int64_t)fit;
  if (n > g->nslots) {
    kv_slot *s = realloc(g->slots, sizeof *s * (size_t)n);
    if (!s) return tt_error(TT_ERR_NOMEM, "cache_slots: out of memory");
    for (int64_t i = g->slots ? g->nslots : 0; i < n; i++) s[i] = (kv_slot){0};
    g->slots = s;
    g->nslots = n;
  } else if (n < g->nslots) {
    if (g->cur >= n) TT_TRY(select_slot(g, 0));
    for (int64_t i = n; i < g->nslots; i++) free_slot(g, &g->slots[i]);
    g->nslots = n;
  }
  rets[0] = tt_value_int(n);
  *nrets = 1;
  return TT_OK;
}

/* select_cache(i): the KV cache slot the next reset_cache, forward_cached,
 * cache_len and truncate_cache act on; each slot keeps its batch and length */
static tt_status gpt_select_cache(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  int64_t i;
  TT_TRY(tt_args_check("select_cache", nargs, 1, 1));
  TT_TRY(tt_value_as_int(&args[0], "slot", &i));
  if (i < 0 || i >= g->nslots)
    return tt_error(TT_ERR_INVALID, "select_cache(%lld): there are %lld cache slots (cache_slots(n) sets them)",
                    (long long)i, (long long)g->nslots);
  *nrets = 0;
  return select_slot(g, i);
}

static const char *precision_name(tt_dtype dt) { return dt == TT_BF16 ? "bf16" : dt == TT_I8 ? "int8" : "fp32"; }

static tt_status set_str(tt_value *map, const char *key, const char *v) {
  tt_value x = tt_value_str(v);
  return tt_value_set(map, key, &x);
}

/* Bytes of parameters one decoding step reads at batch 1: every trainable tensor
 * once (a linear layer's pack where one is current, else its f32 weight) and one
 * row of each embedding; the KV cache is not counted. What a memory-bound decoder
 * streams per token. -1 when out of memory. */
static int64_t weight_bytes_per_token(gpt *g) {
  int64_t total = 0;
  for (int i = 0; i < g->ps.n; i++) {
    const tt_param *p = g->ps.items[i];
    if (!p->t || !(p->flags & TT_PARAM_TRAINABLE)) continue;
    if (p == g->tok_emb || p == g->pos_emb) total += g->E * (int64_t)tt_dtype_size(p->t->dtype);
    else total += (int64_t)tt_tensor_nbytes(p->t);
  }
  int n = linear_slots(g, 0, NULL, NULL, NULL);
  tt_param **w = malloc(sizeof *w * (size_t)n), **bias = malloc(sizeof *bias * (size_t)n);
  packed **pk = malloc(sizeof *pk * (size_t)n);
  if (w && bias && pk) linear_slots(g, n, w, bias, pk);
  else total = -1;
  for (int i = 0; total >= 0 && i < n; i++) {
    const packed *p = pk[i];
    if (!p->w || g->training || !w[i]->t || p->src != w[i]->t) continue;   /* runs in f32 */
    total += (int64_t)tt_tensor_nbytes(p->w) - (int64_t)tt_tensor_nbytes(w[i]->t);
    if (p->scale) total += (int64_t)tt_tensor_nbytes(p->scale);
  }
  free(w);
  free(bias);
  free(pk);
  return total;
}

static tt_status gpt_info(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  rets[0] = tt_value_map();
  const char *k[6] = {"vocab_size", "block_size", "n_layer", "n_head", "n_embd", "n_unmasked"};
  int64_t v[6] = {g->V, g->T, g->L, g->H, g->E, g->n_unmasked};
  for (int i = 0; i < 6; i++) {
    tt_value x = tt_value_int(v[i]);
    TT_TRY(tt_value_set(&rets[0], k[i], &x));
  }
  TT_TRY(set_str(&rets[0], "precision", precision_name(g->precision)));
  int64_t wb = g->tok_emb->t ? weight_bytes_per_token(g) : -1;
  if (wb >= 0) {
    tt_value x = tt_value_int(wb);
    TT_TRY(tt_value_set(&rets[0], "weight_bytes_per_token", &x));
  }
  *nrets = 1;
  return TT_OK;
}

/* set_precision("fp32" | "bf16" | "int8") -> {precision, isa[, fallback]}: packs every
 * linear weight; where the device has no kernel for it, stays fp32 and says why */
static tt_status gpt_set_precision(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  TT_TRY(tt_args_check("set_precision", nargs, 1, 1));
  const char *mode = args[0].type == TT_V_STR ? args[0].u.s : "";
  tt_dtype dt = !strcmp(mode, "fp32") ? TT_F32 : !strcmp(mode, "bf16") ? TT_BF16 : !strcmp(mode, "int8") ? TT_I8 : TT_DTYPE_COUNT;
  if (dt == TT_DTYPE_COUNT)
    return tt_error(TT_ERR_INVALID, "set_precision: expected fp32, bf16 or int8, found '%s'",
                    args[0].type == TT_V_STR ? mode : tt_vtype_name(args[0].type));
  if (!g->tok_emb->t) return tt_error(TT_ERR_INVALID, "set_precision: parameters are neither bound nor materialised");
  tt_device dev = g->tok_emb->t->device;
  const char *isa = "openblas", *fallback = NULL;
  if (dt != TT_F32 && !tt_qlinear_supported(dev, dt, &isa)) {
    fallback = isa;
    isa = "openblas";
    dt = TT_F32;
  }
  int n = linear_slots(g, 0, NULL, NULL, NULL);
  tt_param **w = malloc(sizeof *w * (size_t)n), **bias = malloc(sizeof *bias * (size_t)n);
  packed **pk = malloc(sizeof *pk * (size_t)n);
  tt_status s = w && bias && pk ? TT_OK : tt_error(TT_ERR_NOMEM, "set_precision: out of memory");
  if (s == TT_OK) linear_slots(g, n, w, bias, pk);
  for (int i = 0; s == TT_OK && i < n; i++) {
    packed *p = pk[i];
    if (dt == TT_F32) { packed_free(p); continue; }
    if (!w[i]->t) { s = tt_error(TT_ERR_INVALID, "set_precision: '%s' is not bound", w[i]->name); break; }
    /* keep a current pack of the same kind (int8 weights read from a quantized file) */
    if (p->w && p->w->dtype == dt && p->src == w[i]->t) continue;
    packed_free(p);
    p->w = tt_qlinear_pack(w[i]->t, dt, dt == TT_I8 ? &p->scale : NULL);
    if (!p->w) s = tt_error_prefix(tt_last_status(), "set_precision: '%s': ", w[i]->name);
    else p->src = tt_tensor_ref(w[i]->t);
  }
  free(w);
  free(bias);
  free(pk);
  if (s != TT_OK) {
    free_packs(g);
    g->precision = TT_F32;
    return s;
  }
  g->precision = dt;
  rets[0] = tt_value_map();
  TT_TRY(set_str(&rets[0], "precision", precision_name(dt)));
  TT_TRY(set_str(&rets[0], "isa", isa));
  if (fallback) TT_TRY(set_str(&rets[0], "fallback", fallback));
  *nrets = 1;
  return TT_OK;
}

/* bind_int8(name, q i8 [out, in], scale f32 [out]): a linear weight as a quantized
 * file stores it. The f32 parameter is bound to q * scale (exactly what the int8
 * kernel computes with), and q is kept packed for set_precision("int8"). */
static tt_status gpt_bind_int8(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  gpt *g = self;
  tt_tensor *q, *scale;
  TT_TRY(tt_args_check("bind_int8", nargs, 3, 3));
  if (args[0].type != TT_V_STR) return tt_error(TT_ERR_INVALID, "bind_int8: the first argument is a parameter name");
  TT_TRY(tt_arg_tensor(args, nargs, 1, "q", &q));
  TT_TRY(tt_arg_tensor(args, nargs, 2, "scale", &scale));
  int n = linear_slots(g, 0, NULL, NULL, NULL);
  tt_param **w = malloc(sizeof *w * (size_t)n), **bias = malloc(sizeof *bias * (size_t)n);
  packed **pk = malloc(sizeof *pk * (size_t)n);
  tt_status s = w && bias && pk ? TT_OK : tt_error(TT_ERR_NOMEM, "bind_int8: out of memory");
  int at = -1;
  if (s == TT_OK) {
    linear_slots(g, n, w, bias, pk);
    for (int i = 0; i < n && at < 0; i++)
      if (!strcmp(w[i]->name, args[0].u.s)) at = i;
    if (at < 0) s = tt_error(TT_ERR_INVALID, "bind_int8: '%s' is not a linear weight of this GPT", args[0].u.s);
  }
  if (s == TT_OK && (q->dtype != TT_I8 || q->ndim != 2 || q->shape[0] != w[at]->shape[0] || q->shape[1] != w[at]->shape[1])) {
    char b[128];
    s = tt_error(TT_ERR_INVALID, "bind_int8: '%s': expected i8 [%lld, %lld], found %s %s", w[at]->name,
                 (long long)w[at]->shape[0], (long long)w[at]->shape[1], tt_dtype_name(q->dtype),
                 tt_tensor_shape_str(q, b, sizeof b));
  }
  tt_tensor *deq = s == TT_OK ? tt_dequantize_i8_rows(q, scale) : NULL;
  if (s == TT_OK && !deq) s = tt_error_prefix(tt_last_status(), "bind_int8: '%s': ", w[at]->name);
  if (s == TT_OK) s = tt_param_bind(w[at], deq, "quantized weights");
  tt_tensor *packed_q = s == TT_OK ? tt_qlinear_pack_i8(q, scale) : NULL;
  tt_tensor *sc = packed_q ? tt_contiguous(scale) : NULL;
  if (s == TT_OK && !sc) s = tt_last_status();
  if (s == TT_OK) {
    packed *p = pk[at];
    packed_free(p);
    p->w = packed_q;
    p->scale = sc;
    p->src = tt_tensor_ref(w[at]->t);
  } else {
    tt_tensor_unref(packed_q);
    tt_tensor_unref(sc);
  }
  tt_tensor_unref(deq);
  free(w);
  free(bias);
  free(pk);
  *nrets = 0;
  return s;
}

static const tt_method gpt_methods[] = {
    {"forward", gpt_forward, "tokens [B, T] i64 [, embeddings [B, T0, E]] -> logits [B, T0+T, V]"},
    {"reset_cache", gpt_reset_cache, "B: an empty KV cache for B sequences"},
    {"forward_cached", gpt_forward_cached, "tokens [B, T] [, last_only] -> logits of the new tokens"},
    {"cache_len", gpt_cache_len, "-> positions held in the KV cache"},
    {"truncate_cache", gpt_truncate_cache, "n: keep the first n cached positions"},
    {"cache_slots", gpt_cache_slots, "n: keep up to n KV caches (within TAMING_KV_CACHE_MB) -> how many are kept"},
    {"select_cache", gpt_select_cache, "i: the KV cache slot the cached calls use"},
    {"info", gpt_info, "-> {vocab_size, block_size, n_layer, n_head, n_embd, n_unmasked, precision, weight_bytes_per_token}"},
    {"set_precision", gpt_set_precision, "fp32|bf16|int8: weights of the linear layers -> {precision, isa[, fallback]}"},
    {"bind_int8", gpt_bind_int8, "name, q i8 [out, in], scale f32 [out]: a weight from a quantized file"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "transformer", .name = "mingpt", .version = "1.0.0",
                 .summary = "official minGPT with a KV cache", .create = gpt_create, .destroy = gpt_destroy,
                 .params = gpt_params, .methods = gpt_methods, .set_training = gpt_set_training,
                 .on_params_ready = gpt_params_ready);
