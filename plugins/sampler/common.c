/* common.c — shared by the sampler plugins (see sampler.h). */
#include "config.h"
#include "sampler.h"

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
