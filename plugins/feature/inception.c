/* feature/inception.c — the FID variant of InceptionV3 that pytorch-fid and
 * torch-fidelity use to measure sample sets (the network behind the weights file
 * pt_inception-2015-12-05-6726825d.pth, ported from TensorFlow's 2015 graph):
 * torchvision's inception_v3 with 1008 classes and no auxiliary head, its
 * Mixed_5b..d, 6b..e, 7b and 7c replaced by FIDInceptionA, C, E_1 and E_2 (the
 * 3x3 average pools ignore the padded zeros; Mixed_7c pools with a max).
 * BasicConv2d = conv (no bias) + BatchNorm (eps 0.001, running statistics) + ReLU.
 *
 * forward(x): x [B, 3 (or 1), H, W] in [0, 1] (an 8-bit image / 255), resized
 * bilinearly to 299x299 (align_corners = False) and scaled to 2x - 1, exactly as
 * pytorch-fid's InceptionV3(resize_input=True, normalize_input=True) does; a
 * 1-channel input is repeated to RGB as PIL's convert('RGB') does. Returns
 *   pool   [B, 2048]  the final average pool ("pool3"), the FID features;
 *   logits [B, 1008]  pool3 . fc.weight^T without the bias: the logits the
 *                     Inception Score of the TensorFlow reference (and
 *                     torch-fidelity's logits_unbiased) takes its softmax over.
 *
 * Parameter names are the weights file's state_dict keys. Never trained; built
 * from scratch the parameters get a deterministic random initialisation (He
 * normal convolutions, batch-norm statistics near the identity), which the
 * parity fixture relies on: the same seed gives the same network anywhere. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "taming/plugin.h"
#include "taming/scope.h"

#define INCEPTION_SIZE 299
#define POOL_DIM 2048
#define N_LOGITS 1008
#define BN_EPS 1e-3f

/* BasicConv2d: conv [Co, Ci, kh, kw] without bias, batch norm, ReLU */
typedef struct {
  tt_param *w;                                       /* conv.weight [Co, Ci, kh, kw] */
  tt_param *gamma, *beta, *mean, *var, *count;        /* bn.* [Co]; num_batches_tracked (optional) */
  tt_conv2d_params p;
} bconv;

typedef struct { bconv b1x1, b5x5_1, b5x5_2, b3dbl_1, b3dbl_2, b3dbl_3, pool; } block_a;
typedef struct { bconv b3x3, b3dbl_1, b3dbl_2, b3dbl_3; } block_b;
typedef struct { bconv b1x1, b7_1, b7_2, b7_3, b7dbl_1, b7dbl_2, b7dbl_3, b7dbl_4, b7dbl_5, pool; } block_c;
typedef struct { bconv b3_1, b3_2, b7x3_1, b7x3_2, b7x3_3, b7x3_4; } block_d;
typedef struct { bconv b1x1, b3_1, b3_2a, b3_2b, b3dbl_1, b3dbl_2, b3dbl_3a, b3dbl_3b, pool; } block_e;

typedef struct {
  tt_paramset ps;
  bconv c1a, c2a, c2b, c3b, c4a;
  block_a m5b, m5c, m5d;
  block_b m6a;
  block_c m6b, m6c, m6d, m6e;
  block_d m7a;
  block_e m7b, m7c;
  tt_param *fc_w, *fc_b;   /* [1008, 2048], [1008] */
  bool resize, normalize;
} inception;

/* ---- building ---- */

static tt_status bconv_declare(bconv *c, tt_paramset *ps, const char *prefix, const char *name, int cin, int cout,
                               int kh, int kw, int stride, int ph, int pw) {
  char pre[96];
  snprintf(pre, sizeof pre, "%s%s%s", prefix, *prefix ? "." : "", name);
  const unsigned fz = TT_PARAM_FROZEN, buf = TT_PARAM_BUFFER;
  double fan_in = (double)cin * kh * kw;
  c->w = tt_param_declare(ps, TT_F32, TT_DIMS(cout, cin, kh, kw), fz, tt_init_normal(0, sqrt(2.0 / fan_in)),
                          "%s.conv.weight", pre);
  c->gamma = tt_param_declare(ps, TT_F32, TT_DIMS(cout), fz, tt_init_uniform(0.8, 1.2), "%s.bn.weight", pre);
  c->beta = tt_param_declare(ps, TT_F32, TT_DIMS(cout), fz, tt_init_normal(0, 0.1), "%s.bn.bias", pre);
  c->mean = tt_param_declare(ps, TT_F32, TT_DIMS(cout), buf, tt_init_normal(0, 0.1), "%s.bn.running_mean", pre);
  c->var = tt_param_declare(ps, TT_F32, TT_DIMS(cout), buf, tt_init_uniform(0.5, 1.5), "%s.bn.running_var", pre);
  /* files saved by newer PyTorch carry the counter; the 2015 weights file does not */
  c->count = tt_param_declare(ps, TT_I64, 0, NULL, buf | TT_PARAM_OPTIONAL, tt_init_zeros(),
                              "%s.bn.num_batches_tracked", pre);
  if (!c->w || !c->gamma || !c->beta || !c->mean || !c->var || !c->count) return tt_last_status();
  c->p = (tt_conv2d_params){stride, stride, ph, ph, pw, pw};
  return TT_OK;
}

#define CONV(blk, field, name, ci, co, kh, kw, s, ph, pw) \
  TT_TRY(bconv_declare(&(blk)->field, ps, pre, name, ci, co, kh, kw, s, ph, pw))

static tt_status block_a_declare(block_a *b, tt_paramset *ps, const char *pre, int cin, int pool_features) {
  CONV(b, b1x1, "branch1x1", cin, 64, 1, 1, 1, 0, 0);
  CONV(b, b5x5_1, "branch5x5_1", cin, 48, 1, 1, 1, 0, 0);
  CONV(b, b5x5_2, "branch5x5_2", 48, 64, 5, 5, 1, 2, 2);
  CONV(b, b3dbl_1, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0);
  CONV(b, b3dbl_2, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
  CONV(b, b3dbl_3, "branch3x3dbl_3", 96, 96, 3, 3, 1, 1, 1);
  CONV(b, pool, "branch_pool", cin, pool_features, 1, 1, 1, 0, 0);
  return TT_OK;
}

static tt_status block_b_declare(block_b *b, tt_paramset *ps, const char *pre, int cin) {
  CONV(b, b3x3, "branch3x3", cin, 384, 3, 3, 2, 0, 0);
  CONV(b, b3dbl_1, "branch3x3dbl_1", cin, 64, 1, 1, 1, 0, 0);
  CONV(b, b3dbl_2, "branch3x3dbl_2", 64, 96, 3, 3, 1, 1, 1);
  CONV(b, b3dbl_3, "branch3x3dbl_3", 96, 96, 3, 3, 2, 0, 0);
  return TT_OK;
}

static tt_status block_c_declare(block_c *b, tt_paramset *ps, const char *pre, int cin, int c7) {
  CONV(b, b1x1, "branch1x1", cin, 192, 1, 1, 1, 0, 0);
  CONV(b, b7_1, "branch7x7_1", cin, c7, 1, 1, 1, 0, 0);
  CONV(b, b7_2, "branch7x7_2", c7, c7, 1, 7, 1, 0, 3);
  CONV(b, b7_3, "branch7x7_3", c7, 192, 7, 1, 1, 3, 0);
  CONV(b, b7dbl_1, "branch7x7dbl_1", cin, c7, 1, 1, 1, 0, 0);
  CONV(b, b7dbl_2, "branch7x7dbl_2", c7, c7, 7, 1, 1, 3, 0);
  CONV(b, b7dbl_3, "branch7x7dbl_3", c7, c7, 1, 7, 1, 0, 3);
  CONV(b, b7dbl_4, "branch7x7dbl_4", c7, c7, 7, 1, 1, 3, 0);
  CONV(b, b7dbl_5, "branch7x7dbl_5", c7, 192, 1, 7, 1, 0, 3);
  CONV(b, pool, "branch_pool", cin, 192, 1, 1, 1, 0, 0);
  return TT_OK;
}

static tt_status block_d_declare(block_d *b, tt_paramset *ps, const char *pre, int cin) {
  CONV(b, b3_1, "branch3x3_1", cin, 192, 1, 1, 1, 0, 0);
  CONV(b, b3_2, "branch3x3_2", 192, 320, 3, 3, 2, 0, 0);
  CONV(b, b7x3_1, "branch7x7x3_1", cin, 192, 1, 1, 1, 0, 0);
  CONV(b, b7x3_2, "branch7x7x3_2", 192, 192, 1, 7, 1, 0, 3);
  CONV(b, b7x3_3, "branch7x7x3_3", 192, 192, 7, 1, 1, 3, 0);
  CONV(b, b7x3_4, "branch7x7x3_4", 192, 192, 3, 3, 2, 0, 0);
  return TT_OK;
}

static tt_status block_e_declare(block_e *b, tt_paramset *ps, const char *pre, int cin) {
  CONV(b, b1x1, "branch1x1", cin, 320, 1, 1, 1, 0, 0);
  CONV(b, b3_1, "branch3x3_1", cin, 384, 1, 1, 1, 0, 0);
  CONV(b, b3_2a, "branch3x3_2a", 384, 384, 1, 3, 1, 0, 1);
  CONV(b, b3_2b, "branch3x3_2b", 384, 384, 3, 1, 1, 1, 0);
  CONV(b, b3dbl_1, "branch3x3dbl_1", cin, 448, 1, 1, 1, 0, 0);
  CONV(b, b3dbl_2, "branch3x3dbl_2", 448, 384, 3, 3, 1, 1, 1);
  CONV(b, b3dbl_3a, "branch3x3dbl_3a", 384, 384, 1, 3, 1, 0, 1);
  CONV(b, b3dbl_3b, "branch3x3dbl_3b", 384, 384, 3, 1, 1, 1, 0);
  CONV(b, pool, "branch_pool", cin, 192, 1, 1, 1, 0, 0);
  return TT_OK;
}

static tt_status build(inception *n) {
  tt_paramset *ps = &n->ps;
  const char *pre = "";
  CONV(n, c1a, "Conv2d_1a_3x3", 3, 32, 3, 3, 2, 0, 0);
  CONV(n, c2a, "Conv2d_2a_3x3", 32, 32, 3, 3, 1, 0, 0);
  CONV(n, c2b, "Conv2d_2b_3x3", 32, 64, 3, 3, 1, 1, 1);
  CONV(n, c3b, "Conv2d_3b_1x1", 64, 80, 1, 1, 1, 0, 0);
  CONV(n, c4a, "Conv2d_4a_3x3", 80, 192, 3, 3, 1, 0, 0);
  TT_TRY(block_a_declare(&n->m5b, ps, "Mixed_5b", 192, 32));
  TT_TRY(block_a_declare(&n->m5c, ps, "Mixed_5c", 256, 64));
  TT_TRY(block_a_declare(&n->m5d, ps, "Mixed_5d", 288, 64));
  TT_TRY(block_b_declare(&n->m6a, ps, "Mixed_6a", 288));
  TT_TRY(block_c_declare(&n->m6b, ps, "Mixed_6b", 768, 128));
  TT_TRY(block_c_declare(&n->m6c, ps, "Mixed_6c", 768, 160));
  TT_TRY(block_c_declare(&n->m6d, ps, "Mixed_6d", 768, 160));
  TT_TRY(block_c_declare(&n->m6e, ps, "Mixed_6e", 768, 192));
  TT_TRY(block_d_declare(&n->m7a, ps, "Mixed_7a", 768));
  TT_TRY(block_e_declare(&n->m7b, ps, "Mixed_7b", 1280));
  TT_TRY(block_e_declare(&n->m7c, ps, "Mixed_7c", 2048));
  /* the logits must spread for the Inception Score to be more than 1 with random weights */
  n->fc_w = tt_param_declare(ps, TT_F32, TT_DIMS(N_LOGITS, POOL_DIM), TT_PARAM_FROZEN, tt_init_normal(0, 0.05),
                             "fc.weight");
  n->fc_b = tt_param_declare(ps, TT_F32, TT_DIMS(N_LOGITS), TT_PARAM_FROZEN, tt_init_zeros(), "fc.bias");
  if (!n->fc_w || !n->fc_b) return tt_last_status();
  return TT_OK;
}

static void inc_destroy(void *self) {
  inception *n = self;
  if (!n) return;
  tt_paramset_free(&n->ps);
  free(n);
}

static tt_status inc_create(const tt_value *cfg, void **self) {
  inception *n = calloc(1, sizeof *n);
  if (!n) return tt_error(TT_ERR_NOMEM, "out of memory");
  tt_paramset_init(&n->ps);
  tt_status s;
  if ((s = tt_cfg_bool_opt(cfg, "resize", true, &n->resize)) ||
      (s = tt_cfg_bool_opt(cfg, "normalize", true, &n->normalize)) || (s = build(n))) {
    inc_destroy(n);
    return s;
  }
  *self = n;
  return TT_OK;
}

static tt_paramset *inc_params(void *self) { return &((inception *)self)->ps; }

/* ---- forward: bconv_forward, chain and pool_branch run in their caller's scope;
 * each block has a scope of its own and returns a new reference ---- */

// [B, Ci, H, W] -> [B, Co, Ho, Wo]
static tt_tensor *bconv_forward(const bconv *c, tt_tensor *x) {
  tt_tensor *y = tt_conv2d(x, c->w->t, NULL, &c->p);
  y = tt_batch_norm(y, c->gamma->t, c->beta->t, c->mean->t, c->var->t, false, 0.1f, BN_EPS);
  return tt_relu(y);
}

/* a chain of BasicConv2d: x -> c[0] -> ... -> c[n-1] */
static tt_tensor *chain(tt_tensor *x, int n, const bconv *const *c) {
  tt_tensor *h = x;
  for (int i = 0; i < n; i++) h = tt_scope_replace(h, bconv_forward(c[i], h));
  return h;
}
#define CHAIN(x, ...) chain(x, (int)(sizeof((const bconv *[]){__VA_ARGS__}) / sizeof(bconv *)), \
                            (const bconv *[]){__VA_ARGS__})

static const tt_pool2d_params AVG_3x3_PAD = {TT_POOL_AVG, 3, 3, 1, 1, 1, 1, false};   /* count_include_pad=False */
static const tt_pool2d_params MAX_3x3_PAD = {TT_POOL_MAX, 3, 3, 1, 1, 1, 1, false};

/* pool (3x3 stride 1 pad 1) then the branch_pool conv */
static tt_tensor *pool_branch(const bconv *c, tt_tensor *x, const tt_pool2d_params *pp) {
  return bconv_forward(c, tt_pool2d(x, pp));
}

// FIDInceptionA: [B, Cin, 35, 35] -> [B, 224 + pool_features, 35, 35]
static tt_tensor *block_a_forward(const block_a *b, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *br[4] = {bconv_forward(&b->b1x1, x), CHAIN(x, &b->b5x5_1, &b->b5x5_2),
                      CHAIN(x, &b->b3dbl_1, &b->b3dbl_2, &b->b3dbl_3), pool_branch(&b->pool, x, &AVG_3x3_PAD)};
  return tt_scope_end(tt_cat(4, br, 1));
}

// InceptionB: [B, 288, 35, 35] -> [B, 768, 17, 17]
static tt_tensor *block_b_forward(const block_b *b, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *br[3] = {bconv_forward(&b->b3x3, x), CHAIN(x, &b->b3dbl_1, &b->b3dbl_2, &b->b3dbl_3),
                      tt_max_pool2d(x, 3, 2)};
  return tt_scope_end(tt_cat(3, br, 1));
}

// FIDInceptionC: [B, 768, 17, 17] -> [B, 768, 17, 17]
static tt_tensor *block_c_forward(const block_c *b, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *br[4] = {bconv_forward(&b->b1x1, x), CHAIN(x, &b->b7_1, &b->b7_2, &b->b7_3),
                      CHAIN(x, &b->b7dbl_1, &b->b7dbl_2, &b->b7dbl_3, &b->b7dbl_4, &b->b7dbl_5),
                      pool_branch(&b->pool, x, &AVG_3x3_PAD)};
  return tt_scope_end(tt_cat(4, br, 1));
}

// InceptionD: [B, 768, 17, 17] -> [B, 1280, 8, 8]
static tt_tensor *block_d_forward(const block_d *b, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *br[3] = {CHAIN(x, &b->b3_1, &b->b3_2), CHAIN(x, &b->b7x3_1, &b->b7x3_2, &b->b7x3_3, &b->b7x3_4),
                      tt_max_pool2d(x, 3, 2)};
  return tt_scope_end(tt_cat(3, br, 1));
}

// FIDInceptionE_1 (average pool) / E_2 (max pool): [B, Cin, 8, 8] -> [B, 2048, 8, 8]
static tt_tensor *block_e_forward(const block_e *b, tt_tensor *x, const tt_pool2d_params *pp) {
  tt_scope_begin();
  tt_tensor *t3 = bconv_forward(&b->b3_1, x);
  tt_tensor *t3dbl = CHAIN(x, &b->b3dbl_1, &b->b3dbl_2);
  tt_tensor *br[6] = {bconv_forward(&b->b1x1, x), bconv_forward(&b->b3_2a, t3), bconv_forward(&b->b3_2b, t3),
                      bconv_forward(&b->b3dbl_3a, t3dbl), bconv_forward(&b->b3dbl_3b, t3dbl),
                      pool_branch(&b->pool, x, pp)};
  /* torch.cat([b1x1, cat([3a, 3b]), cat([dbl_3a, dbl_3b]), pool]) is this one cat */
  return tt_scope_end(tt_cat(6, br, 1));
}

/* a block with its own scope, in the caller's: h is replaced by the block's output */
#define BLOCK(h, call) (h = tt_scope_replace(h, tt_scope_own(call)))

// x [B, 3, H, W] in [0, 1] -> pool3 [B, 2048]
static tt_tensor *features(const inception *n, tt_tensor *x) {
  tt_scope_begin();
  tt_tensor *h = x;
  if (x->shape[1] == 1) h = tt_repeat(h, 4, (const int64_t[]){1, 3, 1, 1});
  if (n->resize && (x->shape[2] != INCEPTION_SIZE || x->shape[3] != INCEPTION_SIZE))
    h = tt_scope_replace(h, tt_interpolate(h, INCEPTION_SIZE, INCEPTION_SIZE, TT_INTERP_BILINEAR));
  if (n->normalize) h = tt_scope_replace(h, tt_affine(h, 2.0, -1.0));
  h = CHAIN(h, &n->c1a, &n->c2a, &n->c2b);                  // [B, 64, 147, 147]
  h = tt_scope_replace(h, tt_max_pool2d(h, 3, 2));          // [B, 64, 73, 73]
  h = CHAIN(h, &n->c3b, &n->c4a);                           // [B, 192, 71, 71]
  h = tt_scope_replace(h, tt_max_pool2d(h, 3, 2));          // [B, 192, 35, 35]
  BLOCK(h, block_a_forward(&n->m5b, h));                    // [B, 256, 35, 35]
  BLOCK(h, block_a_forward(&n->m5c, h));                    // [B, 288, 35, 35]
  BLOCK(h, block_a_forward(&n->m5d, h));                    // [B, 288, 35, 35]
  BLOCK(h, block_b_forward(&n->m6a, h));                    // [B, 768, 17, 17]
  BLOCK(h, block_c_forward(&n->m6b, h));
  BLOCK(h, block_c_forward(&n->m6c, h));
  BLOCK(h, block_c_forward(&n->m6d, h));
  BLOCK(h, block_c_forward(&n->m6e, h));
  BLOCK(h, block_d_forward(&n->m7a, h));                    // [B, 1280, 8, 8]
  BLOCK(h, block_e_forward(&n->m7b, h, &AVG_3x3_PAD));      // [B, 2048, 8, 8]
  BLOCK(h, block_e_forward(&n->m7c, h, &MAX_3x3_PAD));
  return tt_scope_end(tt_mean_dims(h, 2, (const int[]){2, 3}, false));   // [B, 2048]
}

static tt_status check_input(const tt_tensor *x) {
  char b[128];
  if (x->ndim != 4 || (x->shape[1] != 1 && x->shape[1] != 3) || x->dtype != TT_F32 || x->shape[0] < 1)
    return tt_error(TT_ERR_INVALID, "x: expected f32 images [B, 3, H, W] (or [B, 1, H, W]) in [0, 1], found %s %s",
                    tt_dtype_name(x->dtype), tt_tensor_shape_str(x, b, sizeof b));
  if (x->shape[2] < 1 || x->shape[3] < 1)
    return tt_error(TT_ERR_INVALID, "x: empty image %s", tt_tensor_shape_str(x, b, sizeof b));
  return TT_OK;
}

static tt_status inc_forward(void *self, const tt_value *args, int nargs, tt_value *rets, int *nrets) {
  inception *n = self;
  tt_tensor *x;
  TT_TRY(tt_args_check("forward", nargs, 1, 1));
  TT_TRY(tt_arg_tensor(args, nargs, 0, "x", &x));
  TT_TRY(check_input(x));
  /* without the resize, the stem's stride-2 convolution and two pools need 75x75 */
  if (!n->resize && (x->shape[2] < 75 || x->shape[3] < 75)) {
    char b[128];
    return tt_error(TT_ERR_INVALID, "x: resize=false needs images of at least 75x75, found %s",
                    tt_tensor_shape_str(x, b, sizeof b));
  }
  if (!n->c1a.w->t || !n->fc_w->t) return tt_error(TT_ERR_INVALID, "parameters are neither bound nor materialised");
  tt_status s;
  TT_NO_GRAD_BEGIN;
  tt_scope_begin();
  tt_tensor *pool = tt_scope_own(features(n, x));
  tt_tensor *logits = tt_linear(pool, n->fc_w->t, NULL);   // [B, 2048] -> [B, 1008]
  s = tt_scope_return(rets, nrets, pool, logits);
  TT_NO_GRAD_END;
  return s;
}

static const tt_method inc_methods[] = {
    {"forward", inc_forward,
     "x [B, 3 (or 1), H, W] in [0, 1] -> pool3 features [B, 2048], logits without the fc bias [B, 1008]"},
    {NULL, NULL, NULL}};

TT_PLUGIN_DEFINE(.kind = "feature", .name = "inception", .version = "1.0.0",
                 .summary = "FID InceptionV3 (pytorch-fid / torch-fidelity, pt_inception-2015-12-05 weights)",
                 .create = inc_create, .destroy = inc_destroy, .params = inc_params, .methods = inc_methods);
