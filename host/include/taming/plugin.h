/* plugin.h — the plugin ABI: what a plugin .so exports and how the host loads it.
 *
 * A plugin is a shared object that exports exactly one symbol,
 * `tt_plugin_descriptor`, a const tt_plugin_desc made by TT_PLUGIN_DEFINE:
 *
 *   static const tt_method methods[] = {
 *     {"forward", my_forward, "z [B, D, h, w] -> zq, loss, indices"},
 *     {"get_codebook_entry", my_entry, "indices [N], {B, h, w, D} -> zq"},
 *     {NULL, NULL, NULL}};
 *   TT_PLUGIN_DEFINE(.kind = "quantizer", .name = "vq", .version = "1.0.0",
 *                    .summary = "VectorQuantizer2", .create = my_create,
 *                    .destroy = my_destroy, .params = my_params, .methods = methods);
 *
 * What each kind's methods are (here: forward and get_codebook_entry, both
 * required of a quantizer) is the contract in taming/kinds.h.
 *
 * The host refuses, naming the file and both versions, a descriptor with
 * another ABI major, one larger than the host's (a newer minor with fields the
 * host cannot know), one missing a required callback (create, destroy,
 * methods), or one built with other sizes of the public structs
 * (TT_PLUGIN_STRUCT_SIZES, from ABI 1.1). Minor versions only append fields at
 * the end or relax a requirement; the host reads a field only when the
 * plugin's desc_size covers it. ABI 1.2: `params` is optional (a plugin
 * without weights leaves it out), and a plugin of a kind listed in kinds.h
 * must provide that kind's required methods — the host refuses it, naming the
 * file and the missing method. `taming plugins` applies the same checks, and
 * lists a file whose name is not KIND_NAME.so of its descriptor as refused.
 * Files are named KIND_NAME.so and searched in $TAMING_PLUGIN_PATH (':'-
 * separated), then the build tree when the host runs uninstalled, then the
 * install directory. (GStreamer's GST_PLUGIN_DEFINE, OBS's module checks.) */
#ifndef TAMING_PLUGIN_H
#define TAMING_PLUGIN_H

#include "taming/module.h"
#include "taming/value.h"
#include "taming/version.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A method: args are borrowed; results are owned by the caller (set *nrets, at
 * most TT_MAX_RETS). Names follow the official Python: encode, decode,
 * decode_code, forward, sample. */
#define TT_MAX_RETS 8
typedef tt_status (*tt_method_fn)(void *self, const tt_value *args, int nargs, tt_value *rets,
                                  int *nrets);

typedef struct tt_method {
  const char *name;
  tt_method_fn fn;
  const char *doc;     /* "x [B,3,H,W] -> zq, loss, indices" */
} tt_method;

typedef struct tt_plugin_desc {
  /* ---- ABI 1.0 ---- */
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t desc_size;                 /* sizeof(tt_plugin_desc) the plugin was built with */
  const char *kind;                   /* "encoder", "quantizer", "sampler", ... */
  const char *name;                   /* "vqgan", "vq", "top_k" */
  const char *version;                /* the plugin's own version */
  const char *summary;
  /* Builds an instance from its config (a map; may be nil). Declares parameters but
   * need not allocate them: the host binds or initialises them after create. */
  tt_status (*create)(const tt_value *config, void **self);
  void (*destroy)(void *self);
  /* optional (from ABI 1.2; required before): the instance's parameters (names
   * relative to the plugin's place in a model). Without it, an empty set. */
  tt_paramset *(*params)(void *self);
  const tt_method *methods;           /* terminated by {NULL, NULL, NULL} */
  /* optional: switches train/eval behaviour (dropout, batch norm). */
  tt_status (*set_training)(void *self, bool training);
  /* optional: called after parameters were bound or initialised (derived caches). */
  tt_status (*on_params_ready)(void *self);
  /* ---- ABI 1.1 ---- */
  /* TT_PLUGIN_STRUCT_SIZES of the SDK the plugin was built with (set by
   * TT_PLUGIN_DEFINE; a 1.0 plugin has none and is not checked). */
  uint64_t struct_sizes;
} tt_plugin_desc;

/* The sizes of the public structs a plugin reads, fills or embeds, packed ten
 * bits each (as Lua's LUAL_NUMSIZES packs its number sizes): tt_tensor,
 * tt_storage, tt_value, tt_method, tt_param, tt_paramset. A plugin built with
 * other sizes would read another layout, so the host refuses it, naming both. */
#define TT_PLUGIN_STRUCT_SIZES                                                             \
  ((uint64_t)sizeof(tt_tensor) | (uint64_t)sizeof(tt_storage) << 10 |                     \
   (uint64_t)sizeof(tt_value) << 20 | (uint64_t)sizeof(tt_method) << 30 |                  \
   (uint64_t)sizeof(tt_param) << 40 | (uint64_t)sizeof(tt_paramset) << 50)

#define TT_PLUGIN_SYMBOL "tt_plugin_descriptor"
#define TT_PLUGIN_DEFINE(...)                                                   \
  TT_PLUGIN_EXPORT const tt_plugin_desc tt_plugin_descriptor = {               \
      .abi_major = TT_PLUGIN_ABI_MAJOR, .abi_minor = TT_PLUGIN_ABI_MINOR,       \
      .desc_size = (uint32_t)sizeof(tt_plugin_desc), .struct_sizes = TT_PLUGIN_STRUCT_SIZES, __VA_ARGS__}

/* ---- host side ---- */

typedef struct tt_plugin tt_plugin;       /* a loaded .so */
typedef struct tt_instance tt_instance;   /* a created plugin object */

/* Loads (once) and checks KIND_NAME.so from the search path. */
TT_API tt_status tt_plugin_find(const char *kind, const char *name, tt_plugin **out);
/* Loads and checks one file (for tests and `taming plugins`). */
TT_API tt_status tt_plugin_open_file(const char *path, tt_plugin **out);
TT_API const tt_plugin_desc *tt_plugin_descriptor_of(const tt_plugin *p);
TT_API const char *tt_plugin_path(const tt_plugin *p);
/* The directories searched, in order, ':'-joined (static buffer per thread). */
TT_API const char *tt_plugin_search_path(void);
/* Calls fn for each plugin file found on the search path (first occurrence of each name). */
typedef void (*tt_plugin_visit_fn)(const char *path, const tt_plugin_desc *d, const char *refusal,
                                   void *ud);
TT_API void tt_plugin_scan(tt_plugin_visit_fn fn, void *ud);

TT_API tt_status tt_instance_create(tt_plugin *p, const tt_value *config, tt_instance **out);
TT_API void tt_instance_free(tt_instance *inst);
TT_API void *tt_instance_self(const tt_instance *inst);
TT_API const tt_plugin_desc *tt_instance_desc(const tt_instance *inst);
/* The instance's parameters: never NULL (empty for a plugin without params). */
TT_API tt_paramset *tt_instance_params(tt_instance *inst);
TT_API const tt_method *tt_instance_method(const tt_instance *inst, const char *name);
/* Calls a method; on failure the message is prefixed with "kind/name:method: ". */
TT_API tt_status tt_instance_call(tt_instance *inst, const char *method, const tt_value *args,
                                  int nargs, tt_value *rets, int *nrets);
TT_API tt_status tt_instance_set_training(tt_instance *inst, bool training);
TT_API tt_status tt_instance_params_ready(tt_instance *inst);

/* Helpers for method implementations. */
TT_API tt_status tt_args_check(const char *method, int nargs, int min, int max);
TT_API tt_status tt_arg_tensor(const tt_value *args, int nargs, int i, const char *what,
                               tt_tensor **out);
TT_API tt_status tt_arg_tensor_opt(const tt_value *args, int nargs, int i, tt_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
