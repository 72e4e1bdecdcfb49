/* layers.c — the common layers built on parameter sets: each declares its
 * parameters under the official state_dict names and reads p->t at forward
 * time, so binding a checkpoint after declaring never invalidates a layer.
 * Initialisation is PyTorch's default unless stated. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "taming/module.h"

static const char *join(char *buf, size_t n, const char *prefix, const char *leaf) {
  if (prefix && *prefix) snprintf(buf, n, "%s.%s", prefix, leaf);
  else snprintf(buf, n, "%s", leaf);
  return buf;
}

/* nn.Linear: weight and bias uniform in +-1/sqrt(in) (kaiming_uniform with a = sqrt(5)). */
tt_status tt_linear_layer_declare(tt_linear_layer *l, tt_paramset *ps, const char *prefix, int in, int out,
                                  bool bias) {
  l->weight = l->bias = NULL;
  if (in <= 0 || out <= 0)
    return tt_error(TT_ERR_INVALID, "%s: a linear layer needs positive sizes, found in %d, out %d",
                    prefix ? prefix : "linear", in, out);
  char name[512];
  double bound = 1.0 / sqrt((double)in);
  l->weight = tt_param_declare(ps, TT_F32, TT_DIMS(out, in), TT_PARAM_TRAINABLE, tt_init_uniform(-bound, bound),
                               "%s", join(name, sizeof name, prefix, "weight"));   // [out, in]
  if (!l->weight) return tt_last_status();
  if (bias) {
    l->bias = tt_param_declare(ps, TT_F32, TT_DIMS(out), TT_PARAM_TRAINABLE, tt_init_uniform(-bound, bound),
                               "%s", join(name, sizeof name, prefix, "bias"));     // [out]
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

/* "prefix.leaf", or just "leaf" for a plugin whose parameters sit at its root */
/* nn.Conv2d: weight and bias uniform in +-1/sqrt(cin * k * k). */
tt_status tt_conv2d_layer_declare(tt_conv2d_layer *l, tt_paramset *ps, const char *prefix, int cin, int cout, int k,
                                  int stride, int pad, bool bias) {
  char name[512];
  l->weight = l->bias = NULL;
  if (cin <= 0 || cout <= 0 || k <= 0 || stride <= 0 || pad < 0)
    return tt_error(TT_ERR_INVALID, "%s: a conv layer needs positive channels, kernel and stride, found %d->%d k%d s%d p%d",
                    prefix, cin, cout, k, stride, pad);
  double bound = 1.0 / sqrt((double)cin * k * k);
  l->weight = tt_param_declare(ps, TT_F32, TT_DIMS(cout, cin, k, k), TT_PARAM_TRAINABLE,
                               tt_init_uniform(-bound, bound), "%s", join(name, sizeof name, prefix, "weight"));
  if (!l->weight) return tt_last_status();
  if (bias) {
    l->bias = tt_param_declare(ps, TT_F32, TT_DIMS(cout), TT_PARAM_TRAINABLE, tt_init_uniform(-bound, bound), "%s",
                               join(name, sizeof name, prefix, "bias"));
    if (!l->bias) return tt_last_status();
  }
  l->p = tt_conv2d_params_make(stride, pad);
  return TT_OK;
}

// x [B, Cin, H, W] -> [B, Cout, Ho, Wo]
tt_tensor *tt_conv2d_layer_forward(const tt_conv2d_layer *l, tt_tensor *x) {
  if (!l->weight->t || (l->bias && !l->bias->t)) {
    tt_error(TT_ERR_INVALID, "conv layer '%s': parameters are neither bound nor materialised", l->weight->name);
    return NULL;
  }
  return tt_conv2d(x, l->weight->t, l->bias ? l->bias->t : NULL, &l->p);
}

/* affine weight (ones) and bias (zeros) of a norm layer */
static tt_status declare_affine(tt_norm_layer *l, tt_paramset *ps, const char *prefix, int c) {
  char name[512];
  l->weight = tt_param_declare(ps, TT_F32, TT_DIMS(c), TT_PARAM_TRAINABLE, tt_init_const(1.0), "%s",
                               join(name, sizeof name, prefix, "weight"));
  if (!l->weight) return tt_last_status();
  l->bias = tt_param_declare(ps, TT_F32, TT_DIMS(c), TT_PARAM_TRAINABLE, tt_init_zeros(), "%s",
                             join(name, sizeof name, prefix, "bias"));
  if (!l->bias) return tt_last_status();
  return TT_OK;
}

static bool norm_ready(const tt_norm_layer *l, const char *kind) {
  if (l->weight->t && l->bias->t) return true;
  tt_error(TT_ERR_INVALID, "%s '%s': parameters are neither bound nor materialised", kind, l->weight->name);
  return false;
}

tt_status tt_group_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix, int groups,
                                      int channels, float eps) {
  memset(l, 0, sizeof *l);
  if (groups <= 0 || channels <= 0 || channels % groups != 0)
    return tt_error(TT_ERR_INVALID, "%s: GroupNorm(%d) needs channels divisible by it, found %d", prefix, groups,
                    channels);
  l->groups = groups;
  l->eps = eps;
  return declare_affine(l, ps, prefix, channels);
}

// x [B, C, ...] -> same
tt_tensor *tt_group_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x) {
  if (!norm_ready(l, "group norm")) return NULL;
  return tt_group_norm(x, l->groups, l->weight->t, l->bias->t, l->eps);
}

// x [B, C, ...] -> silu(group_norm(x)), same shape
tt_tensor *tt_group_norm_silu_layer_forward(const tt_norm_layer *l, tt_tensor *x) {
  if (!norm_ready(l, "group norm")) return NULL;
  return tt_group_norm_silu(x, l->groups, l->weight->t, l->bias->t, l->eps);
}

tt_status tt_layer_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix, int dim, float eps) {
  memset(l, 0, sizeof *l);
  if (dim <= 0) return tt_error(TT_ERR_INVALID, "%s: LayerNorm needs a positive width, found %d", prefix, dim);
  l->eps = eps;
  return declare_affine(l, ps, prefix, dim);
}

// x [..., E] -> same
tt_tensor *tt_layer_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x) {
  if (!norm_ready(l, "layer norm")) return NULL;
  return tt_layer_norm(x, l->weight->t, l->bias->t, l->eps);
}

/* BatchNorm2d: affine weight/bias plus running_mean, running_var and
 * num_batches_tracked (an i64 scalar, optional in older checkpoints). */
tt_status tt_batch_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix, int channels, float eps,
                                      float momentum) {
  char name[512];
  memset(l, 0, sizeof *l);
  if (channels <= 0) return tt_error(TT_ERR_INVALID, "%s: BatchNorm needs positive channels, found %d", prefix, channels);
  l->eps = eps;
  l->momentum = momentum;
  TT_TRY(declare_affine(l, ps, prefix, channels));
  l->running_mean = tt_param_declare(ps, TT_F32, TT_DIMS(channels), TT_PARAM_BUFFER, tt_init_zeros(), "%s",
                                     join(name, sizeof name, prefix, "running_mean"));
  if (!l->running_mean) return tt_last_status();
  l->running_var = tt_param_declare(ps, TT_F32, TT_DIMS(channels), TT_PARAM_BUFFER, tt_init_const(1.0), "%s",
                                    join(name, sizeof name, prefix, "running_var"));
  if (!l->running_var) return tt_last_status();
  l->num_batches_tracked = tt_param_declare(ps, TT_I64, 0, NULL, TT_PARAM_BUFFER | TT_PARAM_OPTIONAL,
                                            tt_init_zeros(), "%s", join(name, sizeof name, prefix, "num_batches_tracked"));
  if (!l->num_batches_tracked) return tt_last_status();
  return TT_OK;
}

/* num_batches_tracked += 1 after a training-mode call (the checkpoint counter). */
static tt_tensor *count_batch(const tt_norm_layer *l, tt_tensor *y, bool training) {
  if (y && training && l->num_batches_tracked->t) {
    tt_tensor *nb = l->num_batches_tracked->t;
    if (tt_fill_(nb, tt_tensor_get(nb, 0) + 1) != TT_OK) {
      tt_tensor_unref(y);
      return NULL;
    }
  }
  return y;
}

// x [B, C, ...] -> same; training: batch statistics, running stats updated in place
tt_tensor *tt_batch_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x, bool training) {
  if (!norm_ready(l, "batch norm")) return NULL;
  return count_batch(l, tt_batch_norm(x, l->weight->t, l->bias->t, l->running_mean->t, l->running_var->t, training,
                                      l->momentum, l->eps), training);
}

// x [B, C, ...] -> leaky_relu(batch_norm(x), slope), same shape; as tt_batch_norm_layer_forward
tt_tensor *tt_batch_norm_lrelu_layer_forward(const tt_norm_layer *l, tt_tensor *x, bool training, float slope) {
  if (!norm_ready(l, "batch norm")) return NULL;
  return count_batch(l, tt_batch_norm_leaky_relu(x, l->weight->t, l->bias->t, l->running_mean->t, l->running_var->t,
                                                 training, l->momentum, l->eps, slope), training);
}
