/* ops/loss.c — the losses of both stages. L1, MSE and BCE-with-logits are
 * compositions of elementwise and reduce ops (their gradients come from those
 * ops); cross-entropy is one fused kernel pair because the transformer's
 * [B*T, V] logits are the largest tensor of a training step and a composed
 * softmax would keep several copies of them alive for the backward pass. */
#include "config.h"
#include "common.h"

static tt_status check_pair(const char *op, const char *na, const tt_tensor *a, const char *nb,
                            const tt_tensor *b) {
  TT_TRY(tt_check_f32(op, na, a));
  TT_TRY(tt_check_f32(op, nb, b));
  tt_tensor *args[2] = {(tt_tensor *)a, (tt_tensor *)b};
  TT_TRY(tt_check_same_device(op, 2, args));
  if (!tt_tensor_same_shape(a, b)) {
    char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
    return tt_error(TT_ERR_INVALID, "%s: %s %s and %s %s must have the same shape", op, na,
                    tt_tensor_shape_str(a, s1, sizeof s1), nb, tt_tensor_shape_str(b, s2, sizeof s2));
  }
  return TT_OK;
}

/* mean(f(a - b)) for f = |.| or (.)^2 */
static tt_tensor *mean_of_diff(const char *op, tt_unary_op f, tt_tensor *a, tt_tensor *b) {
  TT_PROFILE_OP(op);
  if (check_pair(op, "input", a, "target", b)) return NULL;
  tt_tensor *d = tt_sub(a, b);
  tt_tensor *e = d ? tt_unary(f, 0, 0, d) : NULL;
  tt_tensor *m = e ? tt_mean(e) : NULL;
  tt_tensor_unref(d);
  tt_tensor_unref(e);
  return m;
}

tt_tensor *tt_l1_loss(tt_tensor *a, tt_tensor *b) { return mean_of_diff("l1_loss", TT_UNARY_ABS, a, b); }

tt_tensor *tt_mse_loss(tt_tensor *a, tt_tensor *b) { return mean_of_diff("mse_loss", TT_UNARY_SQUARE, a, b); }

/* max(x,0) - x*t + log(1 + exp(-|x|)) equals softplus(x) - x*t; the softplus
 * kernel is the stable form, and its derivative sigmoid(x) - t is exact at
 * x = 0 too, where the max/abs spelling has two kinks. */
tt_tensor *tt_bce_with_logits(tt_tensor *logits, tt_tensor *target) {
  TT_PROFILE_OP("bce_with_logits");
  if (check_pair("bce_with_logits", "logits", logits, "target", target)) return NULL;
  tt_tensor *sp = tt_softplus(logits);
  tt_tensor *xt = sp ? tt_mul(logits, target) : NULL;
  tt_tensor *d = xt ? tt_sub(sp, xt) : NULL;
  tt_tensor *m = d ? tt_mean(d) : NULL;
  tt_tensor_unref(sp);
  tt_tensor_unref(xt);
  tt_tensor_unref(d);
  return m;
}

/* ---- cross-entropy ---- */

typedef struct {
  tt_tensor *logits;   /* [N, V] contiguous, detached */
  tt_tensor *target;   /* [N] i64 contiguous */
  tt_tensor *lse;      /* [N] */
} ce_ctx;

static void ce_release(tt_node *n) {
  ce_ctx *c = n->ctx;
  tt_tensor_release(&c->logits);
  tt_tensor_release(&c->target);
  tt_tensor_release(&c->lse);
}

static tt_status ce_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  ce_ctx *c = n->ctx;
  if (!gy[0] || !tt_node_wants(n, 0)) return TT_OK;
  int64_t N = c->logits->shape[0];
  /* every row carries d(mean)/d(row) = g / N; built on the device, no host round trip */
  tt_tensor *g1 = tt_reshape(gy[0], TT_DIMS(1));
  tt_tensor *ge = g1 ? tt_expand(g1, TT_DIMS(N)) : NULL;
  tt_tensor *scale = ge ? tt_mul_scalar(ge, 1.0 / (double)N) : NULL;   // [N]
  tt_tensor *gl = scale ? tt_tensor_new_like(c->logits) : NULL;       // [N, V]
  tt_cross_entropy_bwd_fn f = TT_KERNEL(c->logits->device, cross_entropy_bwd);
  tt_status s = (!gl || !f) ? tt_last_status() : f(c->logits, c->target, c->lse, scale, gl);
  tt_tensor_unref(g1);
  tt_tensor_unref(ge);
  tt_tensor_unref(scale);
  if (s != TT_OK) {
    tt_tensor_unref(gl);
    return s;
  }
  gx[0] = gl;
  return TT_OK;
}

// logits [N, V], target [N] -> 0-dim mean over rows
tt_tensor *tt_cross_entropy(tt_tensor *logits, tt_tensor *target) {
  TT_PROFILE_OP("cross_entropy");
  const char *op = "cross_entropy";
  tt_tensor *args[2] = {logits, target};
  if (tt_check_f32(op, "logits", logits) || tt_check_ndim(op, "logits", logits, 2)) return NULL;
  if (!target) {
    tt_error(TT_ERR_INVALID, "%s: target is missing", op);
    return NULL;
  }
  if (target->dtype != TT_I64) {
    tt_error(TT_ERR_INVALID, "%s: target must be i64, found %s", op, tt_dtype_name(target->dtype));
    return NULL;
  }
  if (tt_check_same_device(op, 2, args)) return NULL;
  int64_t N = logits->shape[0], V = logits->shape[1];
  if (target->ndim != 1 || target->shape[0] != N || N == 0 || V == 0) {
    char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
    tt_error(TT_ERR_INVALID, "%s: expected logits [N, V] with N, V > 0 and target [N], found logits %s, target %s",
             op, tt_tensor_shape_str(logits, s1, sizeof s1), tt_tensor_shape_str(target, s2, sizeof s2));
    return NULL;
  }
  tt_cross_entropy_fwd_fn f = TT_KERNEL(logits->device, cross_entropy_fwd);
  if (!f) return NULL;
  tt_tensor *lc = NULL, *tc = NULL, *rows = NULL, *lse = NULL, *loss = NULL;
  TT_NO_GRAD_BEGIN;
  lc = tt_contiguous(logits);
  tc = tt_contiguous(target);
  rows = tt_tensor_new(TT_F32, TT_DIMS(N), logits->device);   // [N]
  lse = tt_tensor_new(TT_F32, TT_DIMS(N), logits->device);    // [N]
  if (lc && tc && rows && lse && f(lc, tc, rows, lse) == TT_OK) loss = tt_mean(rows);   // []
  TT_NO_GRAD_END;
  if (loss) {
    tt_node *n = tt_node_new(op, ce_backward, ce_release, 1, &logits, 1, sizeof(ce_ctx));
    if (n) {
      ce_ctx *c = n->ctx;
      c->logits = tt_detach(lc);
      c->target = tt_tensor_ref(tc);
      c->lse = tt_tensor_ref(lse);
      tt_node_attach(n, 0, loss);
      tt_node_unref(n);
    }
  }
  tt_tensor_unref(lc);
  tt_tensor_unref(tc);
  tt_tensor_unref(rows);
  tt_tensor_unref(lse);
  return loss;
}
