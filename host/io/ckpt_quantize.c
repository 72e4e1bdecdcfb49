/* ckpt_quantize.c — `taming convert --quantize int8`: a checkpoint rewritten as
 * safetensors with the transformer's linear weights in int8.
 *
 * Key naming (what tt.load reads back, lua/taming/model.lua):
 *   <name>.weight        I8  [out, in]   round(w / scale), in [-127, 127]
 *   <name>.weight_scale  F32 [out]       max |w[o, :]| / 127 (one per output channel)
 *   so that w[o, i] = weight[o, i] * weight_scale[o].
 * Quantized: the 2-D weights of minGPT's linear layers (attn.key, attn.query,
 * attn.value, attn.proj, mlp.0, mlp.2 and head), under any prefix
 * ("transformer." in a Net2Net checkpoint). Everything else (embeddings, norms,
 * biases, the VQGAN) is copied unchanged. The metadata records the scheme under
 * "quantization". */
#include "config.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "taming/io.h"
#include "taming/ops.h"

static bool ends_with(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && !strcmp(s + a - b, suffix);
}

/* a minGPT linear weight, by its official name */
static bool is_gpt_linear_weight(const char *name, const tt_tensor *t) {
  static const char *const layers[] = {".attn.key.weight", ".attn.query.weight", ".attn.value.weight",
                                       ".attn.proj.weight", ".mlp.0.weight", ".mlp.2.weight"};
  if (t->ndim != 2) return false;
  if (!strcmp(name, "head.weight") || ends_with(name, ".head.weight")) return true;
  if (!strstr(name, "blocks.")) return false;
  for (size_t i = 0; i < sizeof layers / sizeof *layers; i++)
    if (ends_with(name, layers[i])) return true;
  return false;
}

static tt_status meta_str(tt_value *meta, const char *key, const char *v) {
  tt_value x = tt_value_str(v);
  return tt_value_set(meta, key, &x);
}

tt_status tt_ckpt_quantize(const char *in, const char *out, const char *scheme, bool inference) {
  if (!scheme || strcmp(scheme, "int8"))
    return tt_error(TT_ERR_INVALID, "convert: --quantize takes int8, found '%s'", scheme ? scheme : "");
  tt_ckpt *c;
  TT_TRY(tt_ckpt_open(in, &c));
  int n_in = tt_ckpt_count(c), cap = 2 * (n_in ? n_in : 1);
  const char **names = calloc((size_t)cap, sizeof *names);
  char **owned = calloc((size_t)cap, sizeof *owned);   /* the "_scale" names */
  tt_tensor **ts = calloc((size_t)cap, sizeof *ts);    /* references held here */
  tt_value meta = tt_value_map();
  tt_status s = names && owned && ts ? TT_OK : tt_error(TT_ERR_NOMEM, "%s: out of memory", in);
  int n = 0, quantized = 0;
  for (int i = 0; s == TT_OK && i < n_in; i++) {
    const char *name = tt_ckpt_name(c, i);
    tt_tensor *t = tt_ckpt_tensor(c, i);
    if (inference && !strncmp(name, "loss.", 5)) continue;
    if (!is_gpt_linear_weight(name, t)) {
      names[n] = name;
      ts[n++] = tt_tensor_ref(t);
      continue;
    }
    tt_tensor *w = t->dtype == TT_F32 ? tt_tensor_ref(t) : tt_tensor_new(TT_F32, t->ndim, t->shape, TT_CPU);
    if (w && w != t && tt_copy_(w, t) != TT_OK) tt_tensor_release(&w);
    tt_tensor *q = NULL, *sc = NULL;
    s = w ? tt_quantize_i8_rows(w, &q, &sc) : tt_last_status();
    tt_tensor_unref(w);
    if (s != TT_OK) {
      s = tt_error_prefix(s, "%s: '%s': ", in, name);
      break;
    }
    size_t len = strlen(name) + sizeof "_scale";
    owned[n + 1] = malloc(len);
    if (!owned[n + 1]) {
      tt_tensor_unref(q);
      tt_tensor_unref(sc);
      s = tt_error(TT_ERR_NOMEM, "%s: out of memory", in);
      break;
    }
    snprintf(owned[n + 1], len, "%s_scale", name);
    names[n] = name;
    ts[n] = q;
    names[n + 1] = owned[n + 1];
    ts[n + 1] = sc;
    n += 2;
    quantized++;
  }
  if (s == TT_OK && quantized == 0)
    s = tt_error(TT_ERR_INVALID, "%s: no minGPT linear weights to quantize (blocks.N.attn.*, blocks.N.mlp.*, head)", in);
  const char *base = strrchr(in, '/');
  base = base ? base + 1 : in;
  if (s == TT_OK) s = meta_str(&meta, "format", "pt");
  if (s == TT_OK) s = meta_str(&meta, "source", base);
  if (s == TT_OK)
    s = meta_str(&meta, "quantization",
                 "int8 per output channel: <name>.weight i8 [out, in], <name>.weight_scale f32 [out], "
                 "w = weight * weight_scale");
  const tt_value *gs = tt_value_get(tt_ckpt_meta(c), "global_step");
  if (s == TT_OK && gs && (gs->type == TT_V_INT || gs->type == TT_V_STR)) {
    char num[32];
    if (gs->type == TT_V_INT) snprintf(num, sizeof num, "%" PRId64, gs->u.i);
    s = meta_str(&meta, "global_step", gs->type == TT_V_INT ? num : gs->u.s);
  }
  if (s == TT_OK) s = tt_safetensors_save(out, n, names, ts, &meta);
  tt_value_clear(&meta);
  for (int i = 0; ts && i < n; i++) tt_tensor_unref(ts[i]);
  for (int i = 0; owned && i < cap; i++) free(owned[i]);
  free(names);
  free(owned);
  free(ts);
  tt_ckpt_close(c);
  return s;
}
