/* cond.c — the shared shape of condition-encoder plugins: the official
 * "fake VQModel interface" encode(c) -> quant, loss (nil), indices [B, L]. */
#include "config.h"
#include "cond.h"

tt_status tt_cond_return(tt_tensor *quant, tt_tensor *indices, tt_value *rets, int *nrets) {
  tt_tensor *flat = NULL;
  if (indices && indices->ndim != 2) {
    flat = tt_reshape(indices, TT_DIMS(indices->shape[0], -1));   // [B, L] raster order
    if (!flat) return tt_last_status();
  } else {
    flat = tt_tensor_ref(indices);
  }
  rets[0] = quant ? tt_value_tensor(quant) : TT_VALUE_NIL;
  rets[1] = TT_VALUE_NIL;
  rets[2] = tt_value_tensor_steal(flat);
  *nrets = 3;
  return TT_OK;
}
