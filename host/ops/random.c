/* ops/random.c — the counter-based generator (Philox-4x32-10) and random tensors. */
#include "config.h"
#include <math.h>
#include "common.h"

void tt_philox4x32(uint64_t seed, uint64_t counter, uint32_t out[4]) {
  uint32_t c0 = (uint32_t)counter, c1 = (uint32_t)(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

tt_rng tt_rng_make(uint64_t seed) { return (tt_rng){seed, 0}; }

uint32_t tt_rng_u32(tt_rng *r) {
  uint32_t w[4];
  tt_philox4x32(r->seed, r->counter++, w);
  return w[0];
}

double tt_rng_uniform(tt_rng *r) {
  uint32_t w[4];
  tt_philox4x32(r->seed, r->counter++, w);
  return (double)(((uint64_t)w[0] << 21) ^ (w[1] >> 11)) * (1.0 / 9007199254740992.0);
}

double tt_rng_normal(tt_rng *r) {
  uint32_t w[4];
  tt_philox4x32(r->seed, r->counter++, w);
  double u1 = ((double)w[0] + 1.0) * (1.0 / 4294967296.0), u2 = (double)w[1] * (1.0 / 4294967296.0);
  return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

tt_status tt_random_fill_(tt_tensor *t, tt_rng *r, tt_random_kind kind, double a, double b) {
  TT_PROFILE_OP("random_fill_");
  if (!tt_tensor_is_contiguous(t) || t->dtype != TT_F32)
    return tt_error(TT_ERR_INVALID, "random fill: needs a contiguous f32 tensor, found %s%s",
                    tt_dtype_name(t->dtype), tt_tensor_is_contiguous(t) ? "" : " (strided)");
  tt_random_fill_fn f = TT_KERNEL(t->device, random_fill);
  if (!f) return tt_last_status();
  TT_TRY(f(kind, a, b, r->seed, r->counter, t));
  r->counter += (uint64_t)tt_tensor_numel(t);
  return TT_OK;
}

static tt_tensor *random_new(tt_rng *r, int ndim, const int64_t *shape, tt_device dev, tt_random_kind k,
                             double a, double b) {
  tt_tensor *t = tt_tensor_new(TT_F32, ndim, shape, dev);
  if (t && tt_random_fill_(t, r, k, a, b) != TT_OK) {
    tt_tensor_unref(t);
    return NULL;
  }
  return t;
}

tt_tensor *tt_rand(tt_rng *r, int ndim, const int64_t *shape, tt_device dev) {
  return random_new(r, ndim, shape, dev, TT_RANDOM_UNIFORM, 0.0, 1.0);
}

tt_tensor *tt_randn(tt_rng *r, int ndim, const int64_t *shape, tt_device dev) {
  return random_new(r, ndim, shape, dev, TT_RANDOM_NORMAL, 0.0, 1.0);
}

tt_tensor *tt_multinomial(tt_tensor *probs, int64_t n, tt_rng *r) {
  if (tt_check_f32("multinomial", "probs", probs)) return NULL;
  char sb[TT_SHAPE_BUF];
  if ((probs->ndim != 1 && probs->ndim != 2) || probs->shape[probs->ndim - 1] < 1) {
    tt_error(TT_ERR_INVALID, "multinomial: probs must be [V] or [B, V] with V >= 1, found %s",
             tt_tensor_shape_str(probs, sb, sizeof sb));
    return NULL;
  }
  if (n < 1) {
    tt_error(TT_ERR_INVALID, "multinomial: the number of draws n = %lld must be positive", (long long)n);
    return NULL;
  }
  tt_multinomial_fn f = (tt_multinomial_fn)tt_kernel_cpu_only("multinomial", probs->device, "multinomial");
  if (!f) return NULL;
  int64_t B = probs->ndim == 2 ? probs->shape[0] : 1, V = probs->shape[probs->ndim - 1];
  int64_t draws;
  if (__builtin_mul_overflow(B, n, &draws)) {
    tt_error(TT_ERR_INVALID, "multinomial: %lld rows x %lld draws overflows", (long long)B, (long long)n);
    return NULL;
  }
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *pc = tt_contiguous(probs);
  tt_tensor p2 = pc ? *pc : (tt_tensor){0};
  p2.ndim = 2;
  p2.shape[0] = B;
  p2.shape[1] = V;
  p2.stride[0] = V;
  p2.stride[1] = 1;
  int64_t oshape[2] = {B, n};
  tt_tensor *out = pc ? tt_tensor_new(TT_I64, 2, oshape, probs->device) : NULL;
  tt_status s = out ? f(&p2, n, r->seed, r->counter, out) : tt_last_status();
  tt_grad_set_enabled(prev);
  tt_tensor_unref(pc);
  if (s != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  r->counter += (uint64_t)draws;
  if (probs->ndim == 2) return out;
  tt_tensor *o1 = tt_reshape(out, 1, &n);
  tt_tensor_unref(out);
  return o1;
}

tt_tensor *tt_dropout(tt_tensor *x, float p, bool training, tt_rng *r) {
  TT_PROFILE_OP("dropout");
  if (!training || p <= 0.0f) return tt_tensor_ref(x);
  if (p >= 1.0f) {
    tt_tensor *z = tt_zeros_like(x);
    tt_tensor *y = z ? tt_mul(x, z) : NULL;
    tt_tensor_unref(z);
    return y;
  }
  tt_tensor *m = random_new(r, x->ndim, x->shape, x->device, TT_RANDOM_BERNOULLI, 1.0 - p, 0.0);
  if (!m) return NULL;
  tt_tensor *ms = tt_mul_scalar(m, 1.0 / (1.0 - p));
  tt_tensor *y = ms ? tt_mul(x, ms) : NULL;
  tt_tensor_unref(m);
  tt_tensor_unref(ms);
  return y;
}
