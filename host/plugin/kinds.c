/* kinds.c — the contract of each plugin kind as data (kinds.h), the load-time
 * check against it, and the helpers sampler plugins share.
 *
 * A new kind is one row in `kinds` below (and its paragraph in kinds.h): the
 * loader, `taming plugins -v` and p:methods() read nothing else. */
#include "config.h"
#include <stdio.h>
#include <string.h>
#include "taming/kinds.h"

#define REQ TT_KIND_REQUIRED
#define OPT TT_KIND_OPTIONAL
#define END {NULL, 0, NULL}

static const tt_kind_method sampler_m[] = {
    {"sample", REQ, "logits [B, V] | [B, T, V] (cut to vocab_limit) -> tokens i64 [B]"},
    {"probs", OPT, "logits -> the distribution sample draws from, f32 [B, V]"},
    {"state", 1, "-> seed, counter"},
    {"set_state", 1, "seed, counter"},
    END};
static const tt_kind_method cond_m[] = {
    {"encode", REQ, "c (tensor or batch size) -> quant, loss (nil), indices i64 [B, L]"},
    {"decode", OPT, "quant -> the condition as an image"},
    END};
static const tt_kind_method permuter_m[] = {
    {"forward", REQ, "idx i64 [B, H*W] raster -> sequence order"},
    {"reverse", REQ, "idx i64 [B, H*W] sequence -> raster order"},
    {"indices", OPT, "-> fwd, bwd i64 [H*W]"},
    END};
static const tt_kind_method quantizer_m[] = {
    {"forward", REQ, "z [B, D, h, w] -> zq [B, D, h, w], loss, indices"},
    {"get_codebook_entry", REQ, "indices [N] [, {B, h, w, D}] -> zq [B, D, h, w]"},
    {"info", OPT, "-> {n_e, e_dim, ...}"},
    {"set_temperature", OPT, "tau"},
    END};
static const tt_kind_method encoder_m[] = {{"forward", REQ, "x [B, C, H, W] -> h [B, z, H/f, W/f]"}, END};
static const tt_kind_method decoder_m[] = {
    {"forward", REQ, "z [B, z, h, w] -> x [B, C, h*f, w*f]"},
    {"get_last_layer", OPT, "-> the last conv weight (adaptive GAN weight)"},
    END};
static const tt_kind_method transformer_m[] = {
    {"forward", REQ, "tokens i64 [B, T] [, embeddings [B, T0, E]] -> logits [B, T0+T, V]"},
    {"reset_cache", 1, "B: an empty KV cache for B sequences"},
    {"forward_cached", 1, "tokens [B, T] [, last_only] -> logits [B, 1|T, V]"},
    {"cache_len", OPT, "-> positions in the KV cache"},
    {"truncate_cache", OPT, "n: keep the first n cached positions"},
    {"cache_slots", 2, "n: keep up to n KV caches -> how many are kept"},
    {"select_cache", 2, "i: the KV cache slot the cached calls use"},
    {"info", OPT, "-> {vocab_size, block_size, ...}"},
    END};
static const tt_kind_method discriminator_m[] = {{"forward", REQ, "x [B, C, H, W] -> logits [B, 1, h, w]"}, END};
static const tt_kind_method loss_m[] = {{"forward", REQ, "x, y [B, C, H, W] -> distance [B, 1, 1, 1]"}, END};
static const tt_kind_method layer_m[] = {{"forward", REQ, "x -> y"}, END};
static const tt_kind_method feature_m[] = {
    {"forward", REQ, "x [B, 3, H, W] in [0, 1] -> features [B, F] [, logits [B, K]]"}, END};

static const tt_kind kinds[] = {
    {"sampler", "logits in, tokens out, with its own random state", sampler_m},
    {"cond", "condition stage: labels, SOS, images -> tokens", cond_m},
    {"permuter", "the order of a latent grid as a sequence", permuter_m},
    {"quantizer", "the VQGAN bottleneck", quantizer_m},
    {"encoder", "image -> latent", encoder_m},
    {"decoder", "latent -> image", decoder_m},
    {"transformer", "autoregressive model over tokens", transformer_m},
    {"discriminator", "adversarial critic", discriminator_m},
    {"loss", "a distance between images", loss_m},
    {"layer", "a single layer", layer_m},
    {"feature", "image features for metrics (FID, IS)", feature_m},
};

#define NKINDS ((int)(sizeof kinds / sizeof kinds[0]))

const tt_kind *tt_kind_at(int i) { return i >= 0 && i < NKINDS ? &kinds[i] : NULL; }

const tt_kind *tt_kind_find(const char *kind) {
  for (int i = 0; kind && i < NKINDS; i++)
    if (strcmp(kinds[i].kind, kind) == 0) return &kinds[i];
  return NULL;
}

static const tt_method *provided(const tt_plugin_desc *d, const char *name) {
  for (const tt_method *m = d->methods; m->name; m++)
    if (strcmp(m->name, name) == 0) return m;
  return NULL;
}

tt_status tt_kind_check(const char *path, const tt_plugin_desc *d) {
  /* every kind: each listed method has a function and a name given once */
  for (const tt_method *m = d->methods; m->name; m++) {
    if (!m->fn)
      return tt_error(TT_ERR_PLUGIN, "%s: plugin %s/%s lists method '%s' without a function", path, d->kind, d->name,
                      m->name);
    if (provided(d, m->name) != m)
      return tt_error(TT_ERR_PLUGIN, "%s: plugin %s/%s lists method '%s' twice", path, d->kind, d->name, m->name);
  }
  const tt_kind *k = tt_kind_find(d->kind);
  if (!k) return TT_OK;
  for (const tt_kind_method *km = k->methods; km->name; km++) {
    if (km->group == TT_KIND_REQUIRED && !provided(d, km->name))
      return tt_error(TT_ERR_PLUGIN, "%s: plugin %s/%s lacks the method '%s' every %s provides (%s: %s)", path, d->kind,
                      d->name, km->name, k->kind, km->name, km->doc);
    if (km->group > 0 && provided(d, km->name)) {
      /* a group is all or nothing: name the first member that is missing */
      for (const tt_kind_method *o = k->methods; o->name; o++)
        if (o->group == km->group && !provided(d, o->name))
          return tt_error(TT_ERR_PLUGIN, "%s: plugin %s/%s provides '%s' but lacks '%s' (a %s provides both or neither)",
                          path, d->kind, d->name, km->name, o->name, k->kind);
    }
  }
  return TT_OK;
}

/* ---- helpers for sampler plugins ---- */

tt_status tt_sampler_host_logits(const tt_value *args, int nargs, tt_tensor **out) {
  tt_tensor *x;
  TT_TRY(tt_args_check("sample", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "logits", &x));
  if (x->dtype != TT_F32 || (x->ndim != 2 && x->ndim != 3)) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "logits must be f32 [B, V] or [B, T, V], found %s %s", tt_dtype_name(x->dtype),
                    tt_tensor_shape_str(x, b, sizeof b));
  }
  tt_tensor *last = x->ndim == 3 ? tt_select(x, 1, x->shape[1] - 1) : tt_tensor_ref(x);   // [B, V]
  tt_tensor *c = last ? tt_host_contiguous(last) : NULL;
  tt_tensor_unref(last);
  if (!c) return tt_last_status();
  *out = c;
  return TT_OK;
}

int64_t tt_sampler_argmax(const float *row, int64_t V) {
  int64_t best = 0;
  for (int64_t v = 1; v < V; v++)
    if (row[v] > row[best]) best = v;
  return best;
}
