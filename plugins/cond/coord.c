/* cond/coord.c — CoordStage (FacesHQ): a coordinate map c [B, 1, H, W] in [0, 1]
 * becomes tokens round_half_even(n_embed * clamp(area_pool(c, f), 0, 1)).
 * encode(c) -> quant [B, 1, H/f, W/f] (float), nil, indices i64 [B, (H/f)(W/f)];
 * decode(quant) -> nearest upsampling of quant / n_embed. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include "cond.h"

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
  tt_tensor *a = tt_interpolate(c, h, w, TT_INTERP_AREA);
  tt_tensor *cl = a ? tt_clamp(a, 0.0f, 1.0f) : NULL;
  tt_tensor *sc = cl ? tt_mul_scalar(cl, (double)p->n_embed) : NULL;
  tt_tensor *hq = sc ? tt_to_device(sc, TT_CPU) : NULL;
  tt_tensor *q = hq ? tt_contiguous(hq) : NULL;
  tt_status s = q ? TT_OK : tt_last_status();
  if (s == TT_OK) {
    float *v = tt_f32(q);
    for (int64_t i = 0; i < tt_tensor_numel(q); i++) v[i] = nearbyintf(v[i]);   /* half to even */
  }
  tt_tensor *ind = s == TT_OK ? tt_cast(q, TT_I64) : NULL;
  tt_tensor *qd = ind ? tt_to_device(q, c->device) : NULL, *id = qd ? tt_to_device(ind, c->device) : NULL;
  if (s == TT_OK) s = id ? tt_cond_return(qd, id, rets, nrets) : tt_last_status();
  tt_tensor *all[] = {a, cl, sc, hq, q, ind, qd, id};
  for (size_t i = 0; i < sizeof all / sizeof *all; i++) tt_tensor_unref(all[i]);
  return s;
}

static tt_status c_decode(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  coord *p = self;
  tt_tensor *q;
  TT_TRY(tt_args_check("decode", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "quant", &q));
  tt_tensor *d = tt_mul_scalar(q, 1.0 / (double)p->n_embed);
  tt_tensor *u = d ? tt_upsample_nearest(d, (int)p->down) : NULL;
  tt_tensor_unref(d);
  if (!u) return tt_last_status();
  rets[0] = tt_value_tensor_steal(u);
  *nrets = 1;
  return TT_OK;
}

static const tt_method c_methods[] = {
    {"encode", c_encode, "c [B, 1, H, W] in [0, 1] -> quant, nil, indices [B, (H/f)(W/f)]"},
    {"decode", c_decode, "quant -> coordinates [B, 1, H, W]"},
    {NULL, NULL, NULL}};
TT_PLUGIN_DEFINE(.kind = "cond", .name = "coord", .version = "1.0.0", .summary = "CoordStage (FacesHQ)",
                 .create = c_create, .destroy = c_destroy, .params = c_params, .methods = c_methods);
