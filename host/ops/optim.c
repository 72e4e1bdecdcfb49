/* ops/optim.c — the fused Adam / AdamW update, in place and outside autograd. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "common.h"

static tt_status check_state(const char *what, const tt_tensor *t, const tt_tensor *param, bool in_place) {
  TT_TRY(tt_check_f32("adam", what, t));
  if (in_place && !tt_tensor_is_contiguous(t))
    return tt_error(TT_ERR_INVALID, "adam: %s must be contiguous", what);
  if (tt_tensor_numel(t) != tt_tensor_numel(param) || t->device != param->device) {
    char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
    return tt_error(TT_ERR_INVALID, "adam: %s %s (%s) does not match the parameter %s (%s)%s%s", what,
                    tt_tensor_shape_str(t, s1, sizeof s1), tt_device_name(t->device),
                    tt_tensor_shape_str(param, s2, sizeof s2), tt_device_name(param->device),
                    param->name ? " named " : "", param->name ? param->name : "");
  }
  return TT_OK;
}

/* The hyperparameters and the four tensors of one update. */
static tt_status check_update(const tt_adam_params *p, tt_tensor *param, const tt_tensor *grad, tt_tensor *m,
                              tt_tensor *v, bool grad_in_place) {
  if (!p) return tt_error(TT_ERR_INVALID, "adam: hyperparameters are missing");
  if (!param) return tt_error(TT_ERR_INVALID, "adam: parameter is missing");
  if (!grad)
    return tt_error(TT_ERR_INVALID, "adam: parameter%s%s has no gradient", param->name ? " " : "",
                    param->name ? param->name : "");
  if (p->step < 1)
    return tt_error(TT_ERR_INVALID, "adam: step must count from 1 (bias correction), found %lld",
                    (long long)p->step);
  if (!(p->lr >= 0) || !(p->eps >= 0) || !(p->weight_decay >= 0) || !(p->beta1 >= 0 && p->beta1 < 1) ||
      !(p->beta2 >= 0 && p->beta2 < 1))
    return tt_error(TT_ERR_INVALID,
                    "adam: invalid hyperparameters lr %g, betas (%g, %g), eps %g, weight decay %g "
                    "(need lr, eps, decay >= 0 and betas in [0, 1))",
                    p->lr, p->beta1, p->beta2, p->eps, p->weight_decay);
  TT_TRY(check_state("parameter", param, param, true));
  TT_TRY(check_state("gradient", grad, param, grad_in_place));
  TT_TRY(check_state("first moment", m, param, true));
  TT_TRY(check_state("second moment", v, param, true));
  return TT_OK;
}

tt_status tt_adam_step(const tt_adam_params *p, tt_tensor *param, tt_tensor *grad, tt_tensor *m,
                       tt_tensor *v) {
  TT_PROFILE_SCOPE("adam_step", "update");
  TT_TRY(check_update(p, param, grad, m, v, false));
  tt_adam_step_fn f = TT_KERNEL(param->device, adam_step);
  if (!f) return tt_last_status();
  tt_tensor *gc = NULL;
  TT_NO_GRAD_BEGIN;
  gc = tt_contiguous(grad);   /* the moments and the parameter are updated in place; the gradient is only read */
  TT_NO_GRAD_END;
  if (!gc) return tt_last_status();
  tt_status s = f(p, param, gc, m, v);
  tt_tensor_unref(gc);
  return s;
}

tt_status tt_adam_step_multi(int n, const tt_adam_params *hp, tt_tensor *const *param, tt_tensor *const *grad,
                             tt_tensor *const *m, tt_tensor *const *v) {
  TT_PROFILE_SCOPE("adam_step_multi", "update");
  if (n < 0 || (n > 0 && (!hp || !param || !grad || !m || !v)))
    return tt_error(TT_ERR_INVALID, "adam: %d parameters but missing arrays", n);
  if (n == 0) return TT_OK;
  for (int i = 0; i < n; i++) {
    tt_status s = check_update(&hp[i], param[i], grad[i], m[i], v[i], false);
    if (s != TT_OK) return tt_error_prefix(s, "parameter %d of %d: ", i + 1, n);
    if (param[i]->device != param[0]->device)
      return tt_error(TT_ERR_INVALID, "adam: parameter %d%s%s is on %s, parameter 1 on %s (one call per device)",
                      i + 1, param[i]->name ? " " : "", param[i]->name ? param[i]->name : "",
                      tt_device_name(param[i]->device), tt_device_name(param[0]->device));
  }
  tt_adam_step_multi_fn f = TT_KERNEL(param[0]->device, adam_step_multi);
  if (!f) return tt_last_status();
  /* gradients are only read: a strided one (rare: a broadcast view) is copied, the rest are references */
  tt_tensor **gc = calloc((size_t)n, sizeof *gc);
  if (!gc) return tt_error(TT_ERR_NOMEM, "adam: out of memory for %d gradients", n);
  tt_status s = TT_OK;
  TT_NO_GRAD_BEGIN;
  for (int i = 0; i < n && s == TT_OK; i++)
    if (!(gc[i] = tt_contiguous(grad[i]))) s = tt_last_status();
  TT_NO_GRAD_END;
  if (s == TT_OK) s = f(n, hp, param, gc, m, v);
  for (int i = 0; i < n; i++) tt_tensor_unref(gc[i]);
  free(gc);
  return s;
}
