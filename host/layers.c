/* layers.c — the common layers built on parameter sets: each declares its
 * parameters under the official state_dict names and reads p->t at forward
 * time, so binding a checkpoint after declaring never invalidates a layer.
 * Initialisation is PyTorch's default unless stated. */
#include "config.h"
#include <math.h>
#include "taming/module.h"

/* nn.Linear: weight and bias uniform in +-1/sqrt(in) (kaiming_uniform with a = sqrt(5)). */
tt_status tt_linear_layer_declare(tt_linear_layer *l, tt_paramset *ps, const char *prefix, int in, int out,
                                  bool bias) {
  l->weight = l->bias = NULL;
  if (in <= 0 || out <= 0)
    return tt_error(TT_ERR_INVALID, "%s: a linear layer needs positive sizes, found in %d, out %d", prefix, in,
                    out);
  double bound = 1.0 / sqrt((double)in);
  l->weight = tt_param_declare(ps, TT_F32, TT_DIMS(out, in), TT_PARAM_TRAINABLE, tt_init_uniform(-bound, bound),
                               "%s.weight", prefix);   // [out, in]
  if (!l->weight) return tt_last_status();
  if (bias) {
    l->bias = tt_param_declare(ps, TT_F32, TT_DIMS(out), TT_PARAM_TRAINABLE, tt_init_uniform(-bound, bound),
                               "%s.bias", prefix);     // [out]
    if (!l->bias) return tt_last_status();
  }
  return TT_OK;
}

// x [..., in] -> [..., out]
tt_tensor *tt_linear_layer_forward(const tt_linear_layer *l, tt_tensor *x) {
  if (!l->weight->t || (l->bias && !l->bias->t)) {
    tt_error(TT_ERR_INVALID, "linear layer '%s': parameters are neither bound nor materialised", l->weight->name);
    return NULL;
  }
  return tt_linear(x, l->weight->t, l->bias ? l->bias->t : NULL);
}
