/* kind_calls.c — typed calls to plugins by their kind's contract (kinds.h).
 * Each wrapper packs its arguments, calls the method by its contract name and
 * checks the results' types and ranks, so a plugin that breaks its contract
 * is named in the error ("sampler/x:sample returned ...") rather than handed
 * on to code that trusts the shape. */
#include "config.h"
#include <stdio.h>
#include <string.h>
#include "taming/kinds.h"

static void clear_rets(tt_value *rets, int n) {
  for (int i = 0; i < n; i++) tt_value_clear(&rets[i]);
}

static tt_status broke(tt_instance *inst, const char *method, const char *what, const tt_value *got) {
  const tt_plugin_desc *d = tt_instance_desc(inst);
  char b[128] = "";
  if (got && got->type == TT_V_TENSOR)
    snprintf(b, sizeof b, " %s %s", tt_dtype_name(got->u.t->dtype), tt_tensor_shape_str(got->u.t, (char[96]){0}, 96));
  return tt_error(TT_ERR_PLUGIN, "%s/%s:%s returned %s%s where its kind's contract wants %s", d->kind, d->name, method,
                  got ? tt_vtype_name(got->type) : "nothing", b, what);
}

/* Result i as a tensor of rank `ndim` (any rank when < 0), ownership moved to
 * *out; `opt`: nil gives NULL. */
static tt_status take(tt_instance *inst, const char *method, tt_value *rets, int nr, int i, int ndim, bool opt,
                      const char *what, tt_tensor **out) {
  if (!out) return TT_OK;
  *out = NULL;
  const tt_value *v = i < nr ? &rets[i] : NULL;
  if (opt && (!v || v->type == TT_V_NIL)) return TT_OK;
  if (!v || v->type != TT_V_TENSOR || (ndim >= 0 && v->u.t->ndim != ndim)) return broke(inst, method, what, v);
  *out = rets[i].u.t;
  rets[i] = TT_VALUE_NIL;
  return TT_OK;
}

/* Calls `method` and takes result 0 as a tensor of rank ndim. */
static tt_status call_tensor(tt_instance *inst, const char *method, tt_value *args, int nargs, int ndim,
                             const char *what, tt_tensor **out) {
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  TT_TRY(tt_instance_call(inst, method, args, nargs, rets, &nr));
  tt_status s = take(inst, method, rets, nr, 0, ndim, false, what, out);
  clear_rets(rets, nr);
  return s;
}

static tt_status call_none(tt_instance *inst, const char *method, tt_value *args, int nargs) {
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  TT_TRY(tt_instance_call(inst, method, args, nargs, rets, &nr));
  clear_rets(rets, nr);
  return TT_OK;
}

/* ---- sampler ---- */

tt_status tt_sampler_sample(tt_instance *s, tt_tensor *logits, tt_tensor **tokens) {
  int64_t B = logits->shape[0];
  char what[64];
  snprintf(what, sizeof what, "i64 tokens [%lld]", (long long)B);
  tt_value a = tt_value_tensor(logits);
  tt_tensor *t = NULL;
  tt_status st = call_tensor(s, "sample", &a, 1, -1, what, &t);
  tt_value_clear(&a);
  if (st != TT_OK) return st;
  if (t->dtype != TT_I64 || t->ndim < 1 || t->ndim > 2 || tt_tensor_numel(t) != B) {
    tt_value v = tt_value_tensor_steal(t);
    st = broke(s, "sample", what, &v);
    tt_value_clear(&v);
    return st;
  }
  *tokens = t;
  return TT_OK;
}

tt_status tt_sampler_probs(tt_instance *s, tt_tensor *logits, tt_tensor **probs) {
  tt_value a = tt_value_tensor(logits);
  tt_tensor *p = NULL;
  tt_status st = call_tensor(s, "probs", &a, 1, 2, "f32 probabilities [B, V]", &p);
  tt_value_clear(&a);
  if (st != TT_OK) return st;
  if (p->dtype != TT_F32 || p->shape[0] != logits->shape[0]) {
    tt_value v = tt_value_tensor_steal(p);
    st = broke(s, "probs", "f32 probabilities [B, V]", &v);
    tt_value_clear(&v);
    return st;
  }
  *probs = p;
  return TT_OK;
}

tt_status tt_sampler_state(tt_instance *s, uint64_t *seed, uint64_t *counter) {
  *seed = *counter = 0;
  if (!tt_instance_method(s, "state")) return TT_OK;
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  TT_TRY(tt_instance_call(s, "state", NULL, 0, rets, &nr));
  int64_t a = 0, b = 0;
  tt_status st = nr == 2 && tt_value_as_int(&rets[0], "seed", &a) == TT_OK &&
                         tt_value_as_int(&rets[1], "counter", &b) == TT_OK
                     ? TT_OK
                     : broke(s, "state", "two integers (seed, counter)", nr ? &rets[0] : NULL);
  clear_rets(rets, nr);
  *seed = (uint64_t)a;
  *counter = (uint64_t)b;
  return st;
}

tt_status tt_sampler_set_state(tt_instance *s, uint64_t seed, uint64_t counter) {
  if (!tt_instance_method(s, "set_state")) return TT_OK;
  tt_value a[2] = {tt_value_int((int64_t)seed), tt_value_int((int64_t)counter)};
  return call_none(s, "set_state", a, 2);
}

/* ---- transformer ---- */

tt_status tt_transformer_forward(tt_instance *t, tt_tensor *tokens, tt_tensor *embeddings, tt_tensor **logits) {
  tt_value a[2] = {tt_value_tensor(tokens), embeddings ? tt_value_tensor(embeddings) : TT_VALUE_NIL};
  tt_status s = call_tensor(t, "forward", a, embeddings ? 2 : 1, 3, "logits [B, T, V]", logits);
  tt_value_clear(&a[0]);
  tt_value_clear(&a[1]);
  return s;
}

tt_status tt_transformer_reset_cache(tt_instance *t, int64_t batch) {
  tt_value a = tt_value_int(batch);
  return call_none(t, "reset_cache", &a, 1);
}

tt_status tt_transformer_forward_cached(tt_instance *t, tt_tensor *tokens, bool last_only, tt_tensor **logits) {
  tt_value a[2] = {tt_value_tensor(tokens), tt_value_bool(last_only)};
  tt_status s = call_tensor(t, "forward_cached", a, 2, 3, "logits [B, T, V]", logits);
  tt_value_clear(&a[0]);
  return s;
}

tt_status tt_transformer_cache_len(tt_instance *t, int64_t *n) {
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  TT_TRY(tt_instance_call(t, "cache_len", NULL, 0, rets, &nr));
  tt_status s = nr >= 1 && tt_value_as_int(&rets[0], "cache_len", n) == TT_OK
                    ? TT_OK
                    : broke(t, "cache_len", "an integer", nr ? &rets[0] : NULL);
  clear_rets(rets, nr);
  return s;
}

tt_status tt_transformer_truncate_cache(tt_instance *t, int64_t n) {
  tt_value a = tt_value_int(n);
  return call_none(t, "truncate_cache", &a, 1);
}

tt_status tt_transformer_cache_slots(tt_instance *t, int64_t n, int64_t *kept) {
  *kept = 1;
  if (!tt_instance_method(t, "cache_slots")) return TT_OK;
  tt_value a = tt_value_int(n), rets[TT_MAX_RETS];
  int nr = 0;
  TT_TRY(tt_instance_call(t, "cache_slots", &a, 1, rets, &nr));
  tt_status s = nr >= 1 && tt_value_as_int(&rets[0], "kept", kept) == TT_OK && *kept >= 1 && *kept <= n
                    ? TT_OK
                    : broke(t, "cache_slots", "an integer in [1, n]", nr ? &rets[0] : NULL);
  clear_rets(rets, nr);
  return s;
}

tt_status tt_transformer_select_cache(tt_instance *t, int64_t i) {
  tt_value a = tt_value_int(i);
  return call_none(t, "select_cache", &a, 1);
}

/* ---- cond, permuter, quantizer ---- */

tt_status tt_cond_encode(tt_instance *c, const tt_value *input, tt_tensor **quant, tt_tensor **indices) {
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  TT_TRY(tt_instance_call(c, "encode", input, 1, rets, &nr));
  tt_status s = take(c, "encode", rets, nr, 2, 2, false, "indices i64 [B, L] as its third result", indices);
  if (s == TT_OK && indices && (*indices)->dtype != TT_I64) {
    tt_value v = tt_value_tensor_steal(*indices);
    *indices = NULL;
    s = broke(c, "encode", "indices i64 [B, L] as its third result", &v);
    tt_value_clear(&v);
  }
  if (s == TT_OK) s = take(c, "encode", rets, nr, 0, -1, true, "quant (a tensor or nil) as its first result", quant);
  if (s != TT_OK && indices) {
    tt_tensor_unref(*indices);
    *indices = NULL;
  }
  clear_rets(rets, nr);
  return s;
}

static tt_status permute(tt_instance *p, const char *method, tt_tensor *idx, tt_tensor **out) {
  tt_value a = tt_value_tensor(idx);
  tt_status s = call_tensor(p, method, &a, 1, -1, "indices i64 of the argument's shape", out);
  tt_value_clear(&a);
  if (s == TT_OK && (!tt_tensor_same_shape(*out, idx) || (*out)->dtype != TT_I64)) {
    tt_value v = tt_value_tensor_steal(*out);
    *out = NULL;
    s = broke(p, method, "indices i64 of the argument's shape", &v);
    tt_value_clear(&v);
  }
  return s;
}

tt_status tt_permuter_forward(tt_instance *p, tt_tensor *idx, tt_tensor **out) { return permute(p, "forward", idx, out); }
tt_status tt_permuter_reverse(tt_instance *p, tt_tensor *idx, tt_tensor **out) { return permute(p, "reverse", idx, out); }

tt_status tt_quantizer_forward(tt_instance *q, tt_tensor *z, tt_tensor **zq, tt_tensor **loss, tt_tensor **indices) {
  tt_value a = tt_value_tensor(z);
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  tt_status s = tt_instance_call(q, "forward", &a, 1, rets, &nr);
  tt_value_clear(&a);
  if (s != TT_OK) return s;
  tt_tensor *got[3] = {NULL, NULL, NULL};
  s = take(q, "forward", rets, nr, 0, 4, false, "zq [B, D, h, w] as its first result", &got[0]);
  if (s == TT_OK) s = take(q, "forward", rets, nr, 1, -1, true, "a loss (tensor or nil) as its second result", &got[1]);
  if (s == TT_OK) s = take(q, "forward", rets, nr, 2, -1, false, "indices as its third result", &got[2]);
  clear_rets(rets, nr);
  tt_tensor **outs[3] = {zq, loss, indices};
  for (int i = 0; i < 3; i++) {
    if (s == TT_OK && outs[i]) *outs[i] = got[i];
    else tt_tensor_unref(got[i]);
  }
  return s;
}

tt_status tt_quantizer_get_codebook_entry(tt_instance *q, tt_tensor *indices, const int64_t shape[4], tt_tensor **zq) {
  tt_value a[2] = {tt_value_tensor(indices), TT_VALUE_NIL};
  tt_status s = TT_OK;
  if (shape) {
    a[1] = tt_value_list();
    for (int i = 0; s == TT_OK && i < 4; i++) {
      tt_value v = tt_value_int(shape[i]);
      s = tt_value_push(&a[1], &v);
    }
  }
  if (s == TT_OK) s = call_tensor(q, "get_codebook_entry", a, shape ? 2 : 1, 4, "zq [B, D, h, w]", zq);
  tt_value_clear(&a[0]);
  tt_value_clear(&a[1]);
  return s;
}

/* ---- one tensor in, one out ---- */

static tt_status forward1(tt_instance *inst, tt_tensor *x, const char *what, tt_tensor **y) {
  tt_value a = tt_value_tensor(x);
  tt_status s = call_tensor(inst, "forward", &a, 1, -1, what, y);
  tt_value_clear(&a);
  return s;
}

tt_status tt_encoder_forward(tt_instance *e, tt_tensor *x, tt_tensor **h) { return forward1(e, x, "h [B, z, h, w]", h); }
tt_status tt_decoder_forward(tt_instance *d, tt_tensor *z, tt_tensor **x) { return forward1(d, z, "x [B, C, H, W]", x); }
tt_status tt_discriminator_forward(tt_instance *d, tt_tensor *x, tt_tensor **logits) {
  return forward1(d, x, "logits [B, 1, h, w]", logits);
}
tt_status tt_layer_forward(tt_instance *l, tt_tensor *x, tt_tensor **y) { return forward1(l, x, "a tensor", y); }

tt_status tt_loss_forward(tt_instance *l, tt_tensor *x, tt_tensor *y, tt_tensor **distance) {
  tt_value a[2] = {tt_value_tensor(x), tt_value_tensor(y)};
  tt_status s = call_tensor(l, "forward", a, 2, -1, "a distance tensor", distance);
  tt_value_clear(&a[0]);
  tt_value_clear(&a[1]);
  return s;
}

tt_status tt_feature_forward(tt_instance *f, tt_tensor *x, tt_tensor **features, tt_tensor **logits) {
  tt_value a = tt_value_tensor(x);
  tt_value rets[TT_MAX_RETS];
  int nr = 0;
  tt_status s = tt_instance_call(f, "forward", &a, 1, rets, &nr);
  tt_value_clear(&a);
  if (s != TT_OK) return s;
  tt_tensor *lg = NULL;
  s = take(f, "forward", rets, nr, 0, 2, false, "features [B, F] as its first result", features);
  if (s == TT_OK) s = take(f, "forward", rets, nr, 1, 2, true, "logits [B, K] (or nil) as its second result", &lg);
  if (s != TT_OK && features) {
    tt_tensor_unref(*features);
    *features = NULL;
  }
  if (logits) *logits = lg;
  else tt_tensor_unref(lg);
  clear_rets(rets, nr);
  return s;
}
