/* permuter.h — token orderings (the official permuters, REFERENCE §4.5).
 * Every permuter plugin shares these methods:
 *   forward(idx [B, L])  -> out[:, k] = idx[:, fwd[k]]   (raster -> sequence order)
 *   reverse(idx [B, L])  -> out[:, r] = idx[:, bwd[r]]   (sequence -> raster order)
 *   indices()            -> fwd, bwd (i64 [L])
 * and (except identity) the buffers forward_shuffle_idx / backward_shuffle_idx,
 * which a checkpoint may override. A plugin file only supplies its order. */
#ifndef TAMING_PLUGINS_PERMUTER_H
#define TAMING_PLUGINS_PERMUTER_H

#include "taming/plugin.h"

/* Fills fwd[0 .. H*W) (sequence position -> raster cell); returns a status. */
typedef tt_status (*tt_order_fn)(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);

tt_status tt_permuter_create(const tt_value *cfg, void **self, tt_order_fn order, bool buffers);
void tt_permuter_destroy(void *self);
tt_paramset *tt_permuter_params(void *self);
tt_status tt_permuter_ready(void *self);
extern const tt_method tt_permuter_methods[];

#define TT_PERMUTER_PLUGIN(NAME, SUMMARY, ORDER, BUFFERS)                                         \
  static tt_status perm_create(const tt_value *cfg, void **self) {                                \
    return tt_permuter_create(cfg, self, ORDER, BUFFERS);                                         \
  }                                                                                               \
  TT_PLUGIN_DEFINE(.kind = "permuter", .name = NAME, .version = "1.0.0", .summary = SUMMARY,       \
                   .create = perm_create, .destroy = tt_permuter_destroy,                         \
                   .params = tt_permuter_params, .methods = tt_permuter_methods,                  \
                   .on_params_ready = tt_permuter_ready)

#endif
