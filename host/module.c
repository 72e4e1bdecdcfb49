/* module.c — parameter sets (declare, bind, materialise) and the common layers. */
#include "config.h"
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "taming/module.h"

void tt_paramset_init(tt_paramset *ps) { memset(ps, 0, sizeof *ps); }

void tt_paramset_free(tt_paramset *ps) {
  for (int i = 0; i < ps->n; i++) {
    tt_tensor_unref(ps->items[i]->t);
    free(ps->items[i]->name);
    free(ps->items[i]);
  }
  free(ps->items);
  memset(ps, 0, sizeof *ps);
}

tt_param *tt_paramset_find(const tt_paramset *ps, const char *name) {
  for (int i = 0; i < ps->n; i++)
    if (strcmp(ps->items[i]->name, name) == 0) return ps->items[i];
  return NULL;
}

tt_param *tt_param_declare(tt_paramset *ps, tt_dtype dt, int ndim, const int64_t *shape,
                           unsigned flags, tt_init init, const char *fmt, ...) {
  char name[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  if (tt_paramset_find(ps, name)) {
    tt_error(TT_ERR_INTERNAL, "parameter '%s' declared twice", name);
    return NULL;
  }
  if (ndim > TT_MAX_DIMS) {
    tt_error(TT_ERR_INVALID, "parameter '%s': too many dims", name);
    return NULL;
  }
  if (ps->n == ps->cap) {
    int cap = ps->cap ? ps->cap * 2 : 32;
    tt_param **items = realloc(ps->items, sizeof *items * (size_t)cap);
    if (!items) {
      tt_error(TT_ERR_NOMEM, "out of memory declaring '%s'", name);
      return NULL;
    }
    ps->items = items;
    ps->cap = cap;
  }
  tt_param *p = calloc(1, sizeof *p);
  if (!p || !(p->name = strdup(name))) {
    free(p);
    tt_error(TT_ERR_NOMEM, "out of memory declaring '%s'", name);
    return NULL;
  }
  p->dtype = dt;
  p->ndim = ndim;
  for (int i = 0; i < ndim; i++) p->shape[i] = shape[i];
  p->flags = flags;
  p->init = init;
  ps->items[ps->n++] = p;
  return p;
}

static uint64_t mix_name(uint64_t seed, const char *name) {
  uint64_t h = 1469598103934665603ull ^ seed;
  while (*name) h = (h ^ (unsigned char)*name++) * 1099511628211ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}

tt_status tt_paramset_materialize(tt_paramset *ps, uint64_t seed, tt_device dev) {
  for (int i = 0; i < ps->n; i++) {
    tt_param *p = ps->items[i];
    if (p->t) continue;
    tt_tensor *t = tt_tensor_new(p->dtype, p->ndim, p->shape, dev);
    if (!t) return tt_error_prefix(tt_last_status(), "parameter '%s': ", p->name);
    tt_status s = TT_OK;
    tt_rng r = tt_rng_make(mix_name(seed, p->name));
    switch (p->init.kind) {
      case TT_INIT_ZEROS: s = tt_fill_(t, 0.0); break;
      case TT_INIT_CONST: s = tt_fill_(t, p->init.a); break;
      case TT_INIT_UNIFORM: s = tt_random_fill_(t, &r, TT_RANDOM_UNIFORM, p->init.a, p->init.b); break;
      case TT_INIT_NORMAL: s = tt_random_fill_(t, &r, TT_RANDOM_NORMAL, p->init.a, p->init.b); break;
    }
    if (s != TT_OK) {
      tt_tensor_unref(t);
      return tt_error_prefix(s, "initialising '%s': ", p->name);
    }
    t->requires_grad = (p->flags & TT_PARAM_TRAINABLE) != 0;
    tt_tensor_set_name(t, p->name);
    p->t = t;
  }
  return TT_OK;
}

tt_status tt_param_bind(tt_param *p, tt_tensor *t, const char *source) {
  bool ok = t->ndim == p->ndim;
  for (int i = 0; ok && i < p->ndim; i++) ok = t->shape[i] == p->shape[i];
  if (!ok) {
    char a[160], b[160];
    return tt_error(TT_ERR_INVALID, "%s%s'%s': expected shape %s, found %s", source ? source : "",
                    source ? ": " : "", p->name, tt_shape_str(p->ndim, p->shape, a, sizeof a),
                    tt_shape_str(t->ndim, t->shape, b, sizeof b));
  }
  if (t->dtype != p->dtype)
    return tt_error(TT_ERR_INVALID, "%s%s'%s': expected dtype %s, found %s", source ? source : "",
                    source ? ": " : "", p->name, tt_dtype_name(p->dtype), tt_dtype_name(t->dtype));
  tt_tensor *nt = tt_detach(t);   /* our own header: flags and grads are per model */
  if (!nt) return tt_last_status();
  nt->requires_grad = (p->flags & TT_PARAM_TRAINABLE) != 0;
  tt_tensor_set_name(nt, p->name);
  tt_tensor_unref(p->t);
  p->t = nt;
  return TT_OK;
}

int64_t tt_paramset_numel(const tt_paramset *ps, unsigned flags) {
  int64_t n = 0;
  for (int i = 0; i < ps->n; i++) {
    const tt_param *p = ps->items[i];
    if ((p->flags & flags) != flags) continue;
    int64_t k = 1;
    for (int d = 0; d < p->ndim; d++) k *= p->shape[d];
    n += k;
  }
  return n;
}

/* ---- layers ---- */

tt_status tt_conv2d_layer_declare(tt_conv2d_layer *l, tt_paramset *ps, const char *prefix,
                                  int cin, int cout, int k, int stride, int pad, bool bias) {
  double bound = 1.0 / sqrt((double)cin * k * k);
  l->weight = tt_param_declare(ps, TT_F32, TT_DIMS(cout, cin, k, k), TT_PARAM_TRAINABLE,
                               tt_init_uniform(-bound, bound), "%s.weight", prefix);
  if (!l->weight) return tt_last_status();
  l->bias = NULL;
  if (bias) {
    l->bias = tt_param_declare(ps, TT_F32, TT_DIMS(cout), TT_PARAM_TRAINABLE,
                               tt_init_uniform(-bound, bound), "%s.bias", prefix);
    if (!l->bias) return tt_last_status();
  }
  l->p = tt_conv2d_params_make(stride, pad);
  return TT_OK;
}

tt_tensor *tt_conv2d_layer_forward(const tt_conv2d_layer *l, tt_tensor *x) {
  return tt_conv2d(x, l->weight->t, l->bias ? l->bias->t : NULL, &l->p);
}

tt_status tt_linear_layer_declare(tt_linear_layer *l, tt_paramset *ps, const char *prefix, int in,
                                  int out, bool bias) {
  double bound = 1.0 / sqrt((double)in);
  l->weight = tt_param_declare(ps, TT_F32, TT_DIMS(out, in), TT_PARAM_TRAINABLE,
                               tt_init_uniform(-bound, bound), "%s.weight", prefix);
  if (!l->weight) return tt_last_status();
  l->bias = NULL;
  if (bias) {
    l->bias = tt_param_declare(ps, TT_F32, TT_DIMS(out), TT_PARAM_TRAINABLE,
                               tt_init_uniform(-bound, bound), "%s.bias", prefix);
    if (!l->bias) return tt_last_status();
  }
  return TT_OK;
}

tt_tensor *tt_linear_layer_forward(const tt_linear_layer *l, tt_tensor *x) {
  return tt_linear(x, l->weight->t, l->bias ? l->bias->t : NULL);
}

static tt_status declare_affine(tt_norm_layer *l, tt_paramset *ps, const char *prefix, int c) {
  l->weight = tt_param_declare(ps, TT_F32, TT_DIMS(c), TT_PARAM_TRAINABLE, tt_init_const(1.0),
                               "%s.weight", prefix);
  if (!l->weight) return tt_last_status();
  l->bias = tt_param_declare(ps, TT_F32, TT_DIMS(c), TT_PARAM_TRAINABLE, tt_init_zeros(),
                             "%s.bias", prefix);
  if (!l->bias) return tt_last_status();
  return TT_OK;
}

tt_status tt_group_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix,
                                      int groups, int channels, float eps) {
  memset(l, 0, sizeof *l);
  if (groups <= 0 || channels % groups != 0)
    return tt_error(TT_ERR_INVALID, "%s: GroupNorm(%d) needs channels divisible by it, found %d", prefix,
                    groups, channels);
  l->groups = groups;
  l->eps = eps;
  return declare_affine(l, ps, prefix, channels);
}

tt_tensor *tt_group_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x) {
  return tt_group_norm(x, l->groups, l->weight->t, l->bias->t, l->eps);
}

tt_status tt_layer_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix, int dim,
                                      float eps) {
  memset(l, 0, sizeof *l);
  l->eps = eps;
  return declare_affine(l, ps, prefix, dim);
}

tt_tensor *tt_layer_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x) {
  return tt_layer_norm(x, l->weight->t, l->bias->t, l->eps);
}

tt_status tt_batch_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix,
                                      int channels, float eps, float momentum) {
  memset(l, 0, sizeof *l);
  l->eps = eps;
  l->momentum = momentum;
  TT_TRY(declare_affine(l, ps, prefix, channels));
  l->running_mean = tt_param_declare(ps, TT_F32, TT_DIMS(channels), TT_PARAM_BUFFER, tt_init_zeros(),
                                     "%s.running_mean", prefix);
  l->running_var = tt_param_declare(ps, TT_F32, TT_DIMS(channels), TT_PARAM_BUFFER, tt_init_const(1.0),
                                    "%s.running_var", prefix);
  l->num_batches_tracked = tt_param_declare(ps, TT_I64, 0, NULL, TT_PARAM_BUFFER | TT_PARAM_OPTIONAL,
                                            tt_init_zeros(), "%s.num_batches_tracked", prefix);
  if (!l->running_mean || !l->running_var || !l->num_batches_tracked) return tt_last_status();
  return TT_OK;
}

tt_tensor *tt_batch_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x, bool training) {
  tt_tensor *y = tt_batch_norm(x, l->weight->t, l->bias->t, l->running_mean->t, l->running_var->t,
                               training, l->momentum, l->eps);
  if (y && training && l->num_batches_tracked->t) {
    tt_tensor *nb = l->num_batches_tracked->t;
    tt_fill_(nb, tt_tensor_get(nb, 0) + 1);
  }
  return y;
}
