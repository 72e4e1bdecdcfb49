/* cond/coord.c — CoordStage (FacesHQ): a coordinate map c [B, 1, H, W] in [0, 1]
 * becomes tokens round_half_even(n_embed * clamp(area_pool(c, f), 0, 1)).
 * encode(c) -> quant [B, 1, H/f, W/f] (float), nil, indices i64 [B, (H/f)(W/f)];
 * decode(quant) -> nearest upsampling of quant / n_embed. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "cond.h"
#include "taming/scope.h"

typedef struct { int64_t n_embed, down; tt_paramset ps; } coord;

static tt_status c_create(const tt_value *cfg, void **self) {
  static const char *const known[] = {"n_embed", "down_factor", NULL};
  TT_TRY(tt_cfg_check_keys(cfg, known));
  coord *p = calloc(1, sizeof *p);
  if (!p) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&p->ps);
  tt_status s = tt_cfg_int(cfg, "n_embed", &p->n_embed);
  if (s == TT_OK) s = tt_cfg_int(cfg, "down_factor", &p->down);
  if (s == TT_OK && (p->n_embed <= 0 || p->down <= 0)) s = tt_error(TT_ERR_INVALID, "n_embed and down_factor must be positive");
  if (s != TT_OK) { free(p); return s; }
  *self = p;
  return TT_OK;
}
static void c_destroy(void *self) { coord *p = self; tt_paramset_free(&p->ps); free(p); }
static tt_paramset *c_params(void *self) { return &((coord *)self)->ps; }

static tt_status c_encode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  coord *p = self;
  tt_tensor *c;
  TT_TRY(tt_args_check("encode", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "c", &c));
  if (c->ndim != 4 || c->shape[1] != 1) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "coordinates must be [B, 1, H, W], found %s", tt_tensor_shape_str(c, b, sizeof b));
  }
  int64_t h = c->shape[2] / p->down, w = c->shape[3] / p->down;
  if (h < 1 || w < 1) return tt_error(TT_ERR_INVALID, "coordinate map smaller than down_factor %lld", (long long)p->down);
  tt_scope_begin();
  tt_tensor *a = tt_clamp(tt_interpolate(c, h, w, TT_INTERP_AREA), 0.0f, 1.0f);   // [B, 1, h, w]
  tt_tensor *q = tt_contiguous(tt_to_device(tt_mul_scalar(a, (double)p->n_embed), TT_CPU));
  if (q) {
    float *v = tt_f32(q);
    for (int64_t i = 0; i < tt_tensor_numel(q); i++) v[i] = nearbyintf(v[i]);   /* half to even */
  }
  tt_tensor *ind = tt_cast(q, TT_I64);
  tt_tensor *qd = tt_to_device(q, c->device), *id = tt_to_device(ind, c->device);
  tt_status s = qd && id ? tt_cond_return(qd, id, rets, nrets) : tt_last_status();
  tt_scope_end();
  return s;
}

static tt_status c_decode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  coord *p = self;
  tt_tensor *q;
  TT_TRY(tt_args_check("decode", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "quant", &q));
  tt_scope_begin();
  tt_tensor *u = tt_upsample_nearest(tt_mul_scalar(q, 1.0 / (double)p->n_embed), (int)p->down);
  return tt_scope_return(rets, nrets, u);
}

static const tt_method c_methods[] = {
    {"encode", c_encode, "c [B, 1, H, W] in [0, 1] -> quant, nil, indices [B, (H/f)(W/f)]"},
    {"decode", c_decode, "quant -> coordinates [B, 1, H, W]"},
    {NULL, NULL, NULL}};
TT_PLUGIN_DEFINE(.kind = "cond", .name = "coord", .version = "1.0.0", .summary = "CoordStage (FacesHQ)",
                 .create = c_create, .destroy = c_destroy, .params = c_params, .methods = c_methods);
