/* module.c — parameter sets: declare parameters under their state_dict names,
 * then bind them to checkpoint tensors or materialise them from their inits.
 * The layer helpers built on top live in layers.c. */
#include "config.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "taming/autograd.h"
#include "taming/dtype.h"
#include "taming/module.h"
#include "taming/ops.h"

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
  int len = vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  if (len < 0 || (size_t)len >= sizeof name) {
    tt_error(TT_ERR_INVALID, "parameter name '%.64s...' is longer than %zu bytes", name, sizeof name - 1);
    return NULL;
  }
  if (tt_paramset_find(ps, name)) {
    tt_error(TT_ERR_INVALID, "parameter '%s' is declared twice", name);
    return NULL;
  }
  if (ndim < 0 || ndim > TT_MAX_DIMS || (unsigned)dt >= TT_DTYPE_COUNT) {
    tt_error(TT_ERR_INVALID, "parameter '%s': %d dims (at most %d) of dtype %d", name, ndim, TT_MAX_DIMS,
             (int)dt);
    return NULL;
  }
  for (int i = 0; i < ndim; i++)
    if (shape[i] < 0) {
      tt_error(TT_ERR_INVALID, "parameter '%s': dim %d has negative size %lld", name, i, (long long)shape[i]);
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

/* A 64-bit key per (seed, name): FNV-1a over the name from a seeded basis,
 * then a murmur finaliser so that similar names get unrelated Philox keys. */
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
      default: s = tt_error(TT_ERR_INVALID, "unknown init kind %d", (int)p->init.kind); break;
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
  char what[512];
  snprintf(what, sizeof what, "%s%s'%s'", source ? source : "", source ? ": " : "", p->name);
  if (!t) return tt_error(TT_ERR_INVALID, "%s: no tensor to bind", what);
  TT_TRY(tt_tensor_check_shape(t, what, p->ndim, p->shape));
  bool convert = t->dtype != p->dtype;
  if (convert && !(tt_dtype_is_float(t->dtype) && tt_dtype_is_float(p->dtype)))
    return tt_error(TT_ERR_INVALID, "%s: expected dtype %s, found %s", what, tt_dtype_name(p->dtype),
                    tt_dtype_name(t->dtype));
  /* Our own header on the same storage: requires_grad, ->grad and the name
   * belong to this model, so two models may share one checkpoint's bytes. A
   * floating tensor of another precision (an f16, bf16 or f64 checkpoint) is
   * converted to the parameter's dtype instead, as PyTorch's load_state_dict
   * converts on copy. */
  tt_tensor *nt = NULL;
  if (convert) {
    bool prev = tt_grad_set_enabled(false);
    nt = tt_cast(t, p->dtype);
    tt_grad_set_enabled(prev);
  } else {
    nt = tt_detach(t);
  }
  if (!nt) return tt_error_prefix(tt_last_status(), "%s: ", what);
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
