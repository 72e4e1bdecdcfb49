/* ops/optim.c — the fused Adam / AdamW update, in place and outside autograd. */
#include "config.h"
#include <math.h>
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

tt_status tt_adam_step(const tt_adam_params *p, tt_tensor *param, tt_tensor *grad, tt_tensor *m,
                       tt_tensor *v) {
  TT_PROFILE_SCOPE("adam_step", "update");
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
  TT_TRY(check_state("gradient", grad, param, false));
  TT_TRY(check_state("first moment", m, param, true));
  TT_TRY(check_state("second moment", v, param, true));
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
