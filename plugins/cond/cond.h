/* cond.h — helpers shared by the condition-encoder plugins (kind "cond").
 * Each implements encode(c) -> quant, loss (nil), indices i64 [B, L] and
 * decode(quant) where the reference has one. */
#ifndef TAMING_PLUGINS_COND_H
#define TAMING_PLUGINS_COND_H
#include "taming/plugin.h"
/* Sets rets to (quant or nil, nil, indices reshaped to [B, L]); borrows both tensors. */
tt_status tt_cond_return(tt_tensor *quant, tt_tensor *indices, tt_value *rets, int *nrets);
#endif
