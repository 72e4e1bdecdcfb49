/* conv_dnnl_train.c — convolution forward, backward to the input and backward
 * to the weight through oneDNN, with bf16 or f32 products (taming/ops/conv_prec.h):
 * the kernels of bf16 mixed-precision training, and oneDNN's f32 convolution
 * where it beats kernels/cpu/conv.c.
 *
 * Unlike conv_dnnl.c (bf16 inference, weights packed once per pack), nothing is
 * kept per weight: training changes the weights every step. A plan per shape,
 * direction and dtype holds the primitive and the weight reorder; plans live in
 * one process-wide table (a VQGAN training step has a few dozen shapes).
 *
 * Layouts. Tensors stay f32 NCHW between ops. The primitive is asked for NHWC
 * activations (what oneDNN's AMX and AVX512 brgemm kernels read and write), and
 * the transposes in and out are ours: oneDNN's generic reorders took as long as
 * the convolutions (see nhwc.h). TAMING_DNNL_LAYOUT=any lets the primitive
 * choose instead (blocked nChw16c for f32 on AVX-512) and reorders through
 * oneDNN; that is for measuring (bench_conv --prec), not for use. Weights go
 * through oneDNN's reorder into whatever blocked layout the primitive wants
 * (a few hundred KB per call), and weight gradients back to OIHW the same way.
 *
 * Run-time choice: bf16 kernels exist when oneDNN dispatches to AVX512-BF16 or
 * AMX; f32 ones when it has AVX-512 (our transposes need it). TAMING_CPU_ISA=
 * generic hides both (the caller falls back to conv.c's f32 kernels). Calls are
 * serialised by one lock: they share the scratch buffers, and oneDNN runs each
 * primitive on all OpenMP threads anyway. */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"
#include "taming/ops/conv_prec.h"

static const char *isa_bf16, *isa_f32;

static const char *cpu_conv2d_prec_isa(tt_dtype dt) {
  return dt == TT_BF16 ? isa_bf16 : dt == TT_F32 ? isa_f32 : NULL;
}

#ifdef HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#include "nhwc.h"
#include "taming/dtype.h"

#define MAX_PLANS 96   /* one VQGAN 64^2 training step (autoencoder, LPIPS, PatchGAN) uses about 60 */

enum { FWD, BWD_DATA, BWD_WEIGHT };
static const char *const kind_name[] = {"forward", "backward to the input", "backward to the weight"};

typedef struct {
  int kind;
  tt_dtype dt;
  int64_t B, Ci, H, W, Co, kh, kw, Ho, Wo;
  tt_conv2d_params p;
  bool bias;
  dnnl_primitive_t conv;
  /* the primitive's memory descriptors: a = its activation input (src for FWD and
   * BWD_WEIGHT, diff_dst for BWD_DATA), g = diff_dst for BWD_WEIGHT, o = its
   * activation output (dst, diff_src), w = weights or diff weights */
  dnnl_memory_desc_t a, g, o, w;
  dnnl_memory_desc_t a_nchw, g_nchw, o_nchw, w_oihw, bias_md;   /* ours, f32 */
  bool a_nhwc, g_nhwc, o_nhwc;   /* our transposes; otherwise oneDNN reorders (or none when equal) */
  dnnl_primitive_t a_in, g_in, o_out, w_io;   /* those reorders, NULL when not needed */
  size_t a_bytes, g_bytes, o_bytes, w_bytes;
} plan;

static plan plans[MAX_PLANS];
static int n_plans, next_plan;
static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *scratch;
static size_t scratch_bytes;

#define DN(call, what)                                                                                   \
  do {                                                                                                   \
    dnnl_status_t st_ = (call);                                                                          \
    if (st_ != dnnl_success) {                                                                           \
      s = tt_error(TT_ERR_UNSUPPORTED, "conv2d (%s, %s): oneDNN %s failed (status %d)", kind_name[pl->kind], \
                   tt_dtype_name(pl->dt), what, (int)st_);                                               \
      goto done;                                                                                         \
    }                                                                                                    \
  } while (0)

static void plan_free(plan *pl) {
  dnnl_primitive_t *r[5] = {&pl->conv, &pl->a_in, &pl->g_in, &pl->o_out, &pl->w_io};
  for (int i = 0; i < 5; i++) dnnl_primitive_destroy(*r[i]);
  memset(pl, 0, sizeof *pl);
}

static size_t up64(size_t n) { return (n + 63) / 64 * 64; }

/* a reorder from one layout to another, or NULL when they are the same */
static dnnl_status_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *r) {
  *r = NULL;
  if (dnnl_memory_desc_equal(from, to)) return dnnl_success;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL);
  if (st == dnnl_success) st = dnnl_primitive_create(r, pd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  return st;
}

static bool layout_any(void) {
  const char *e = getenv("TAMING_DNNL_LAYOUT");
  return e && !strcmp(e, "any");
}

/* The first implementation oneDNN offers, except that a padded 1x1 convolution
 * skips the AMX ones (oneDNN 2.6.3 reads outside the input there; see conv_dnnl.c). */
static dnnl_status_t pick(const void *desc, const dnnl_primitive_desc_t hint, bool padded_1x1,
                          dnnl_primitive_desc_t *out) {
  *out = NULL;
  dnnl_primitive_desc_iterator_t it;
  dnnl_status_t st = dnnl_primitive_desc_iterator_create(&it, desc, NULL, engine, hint);
  if (st != dnnl_success) return st;
  do {
    dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(it);
    const char *impl = NULL;
    if (pd && (!padded_1x1 || (dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
                               impl && !strstr(impl, "amx")))) {
      *out = pd;
      break;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
  } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
  dnnl_primitive_desc_iterator_destroy(it);
  return *out ? dnnl_success : dnnl_unimplemented;
}

static tt_status plan_make(plan *pl) {
  tt_status s = TT_OK;
  dnnl_data_type_t dt = pl->dt == TT_BF16 ? dnnl_bf16 : dnnl_f32;
  dnnl_format_tag_t act = layout_any() ? dnnl_format_tag_any : dnnl_nhwc;
  dnnl_dims_t xd = {pl->B, pl->Ci, pl->H, pl->W}, wd = {pl->Co, pl->Ci, pl->kh, pl->kw};
  dnnl_dims_t yd = {pl->B, pl->Co, pl->Ho, pl->Wo}, bd = {pl->Co};
  dnnl_dims_t strides = {pl->p.stride_h, pl->p.stride_w}, pad_l = {pl->p.pad_top, pl->p.pad_left},
              pad_r = {pl->p.pad_bottom, pl->p.pad_right};
  const tt_conv2d_params *p = &pl->p;
  bool padded_1x1 = pl->kh == 1 && pl->kw == 1 && (p->pad_top || p->pad_bottom || p->pad_left || p->pad_right);
  dnnl_memory_desc_t x_any, w_any, y_any, gx_any, gw_any, gy_any, x_nchw, y_nchw, x_nhwc, y_nhwc;
  dnnl_convolution_desc_t fd, bdd;
  dnnl_primitive_desc_t fpd = NULL, pd = NULL;
  /* the output side of each direction is f32: y, gx and gw leave the kernel in f32 */
  DN(dnnl_memory_desc_init_by_tag(&x_any, 4, xd, dt, act), "source descriptor");
  DN(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dt, dnnl_format_tag_any), "weight descriptor");
  DN(dnnl_memory_desc_init_by_tag(&y_any, 4, yd, pl->kind == FWD ? dnnl_f32 : dt, act), "output descriptor");
  DN(dnnl_memory_desc_init_by_tag(&gx_any, 4, xd, dnnl_f32, act), "input gradient descriptor");
  DN(dnnl_memory_desc_init_by_tag(&gw_any, 4, wd, dnnl_f32, dnnl_format_tag_any), "weight gradient descriptor");
  DN(dnnl_memory_desc_init_by_tag(&gy_any, 4, yd, dt, act), "output gradient descriptor");
  DN(dnnl_memory_desc_init_by_tag(&pl->bias_md, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
  DN(dnnl_memory_desc_init_by_tag(&pl->w_oihw, 4, wd, dnnl_f32, dnnl_oihw), "weight descriptor");
  DN(dnnl_memory_desc_init_by_tag(&x_nchw, 4, xd, dnnl_f32, dnnl_nchw), "input descriptor");
  DN(dnnl_memory_desc_init_by_tag(&y_nchw, 4, yd, dnnl_f32, dnnl_nchw), "output descriptor");
  /* the forward descriptor is also the hint the backward primitives need */
  DN(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &x_any, &w_any,
                                        pl->bias ? &pl->bias_md : NULL, &y_any, strides, pad_l, pad_r),
     "forward descriptor");
  DN(pick(&fd, NULL, padded_1x1, &fpd), "forward primitive");
  const dnnl_memory_desc_t *amd, *gmd = NULL, *omd = NULL, *wmd;
  if (pl->kind == FWD) {
    pd = fpd, fpd = NULL;
    amd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    omd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    pl->a_nchw = x_nchw, pl->o_nchw = y_nchw;
  } else if (pl->kind == BWD_DATA) {
    DN(dnnl_convolution_backward_data_desc_init(&bdd, dnnl_convolution_direct, &gx_any, &w_any, &gy_any, strides,
                                                pad_l, pad_r),
       "backward data descriptor");
    DN(pick(&bdd, fpd, padded_1x1, &pd), "backward data primitive");
    amd = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
    omd = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_src_md, 0);
    wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    pl->a_nchw = y_nchw, pl->o_nchw = x_nchw;
  } else {
    DN(dnnl_convolution_backward_weights_desc_init(&bdd, dnnl_convolution_direct, &x_any, &gw_any,
                                                   pl->bias ? &pl->bias_md : NULL, &gy_any, strides, pad_l, pad_r),
       "backward weights descriptor");
    DN(pick(&bdd, fpd, padded_1x1, &pd), "backward weights primitive");
    amd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    gmd = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_dst_md, 0);
    wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_diff_weights_md, 0);
    pl->a_nchw = x_nchw, pl->g_nchw = y_nchw;
  }
  DN(dnnl_primitive_create(&pl->conv, pd), "primitive");
  pl->a = *amd, pl->w = *wmd;
  if (gmd) pl->g = *gmd;
  if (pl->kind != BWD_WEIGHT) pl->o = *omd;
  /* activations: our transposes where the primitive reads or writes NHWC */
  const dnnl_dims_t *ad = pl->kind == BWD_DATA ? &yd : &xd, *od = pl->kind == BWD_DATA ? &xd : &yd;
  DN(dnnl_memory_desc_init_by_tag(&x_nhwc, 4, *ad, dt, dnnl_nhwc), "input descriptor");
  pl->a_nhwc = dnnl_memory_desc_equal(&pl->a, &x_nhwc);
  if (!pl->a_nhwc) DN(make_reorder(&pl->a_nchw, &pl->a, &pl->a_in), "input reorder");
  if (gmd) {
    DN(dnnl_memory_desc_init_by_tag(&y_nhwc, 4, yd, dt, dnnl_nhwc), "output gradient descriptor");
    pl->g_nhwc = dnnl_memory_desc_equal(&pl->g, &y_nhwc);
    if (!pl->g_nhwc) DN(make_reorder(&pl->g_nchw, &pl->g, &pl->g_in), "output gradient reorder");
  } else {
    DN(dnnl_memory_desc_init_by_tag(&y_nhwc, 4, *od, dnnl_f32, dnnl_nhwc), "output descriptor");
    pl->o_nhwc = dnnl_memory_desc_equal(&pl->o, &y_nhwc);
    if (!pl->o_nhwc) DN(make_reorder(&pl->o, &pl->o_nchw, &pl->o_out), "output reorder");
  }
  /* weights: oneDNN's reorder in (f32 OIHW -> the primitive's dtype and blocking) or out */
  if (pl->kind == BWD_WEIGHT) DN(make_reorder(&pl->w, &pl->w_oihw, &pl->w_io), "weight gradient reorder");
  else DN(make_reorder(&pl->w_oihw, &pl->w, &pl->w_io), "weight reorder");
  pl->a_bytes = pl->a_nhwc || pl->a_in ? dnnl_memory_desc_get_size(&pl->a) : 0;
  pl->g_bytes = gmd && (pl->g_nhwc || pl->g_in) ? dnnl_memory_desc_get_size(&pl->g) : 0;
  pl->o_bytes = !gmd && (pl->o_nhwc || pl->o_out) ? dnnl_memory_desc_get_size(&pl->o) : 0;
  pl->w_bytes = pl->w_io ? dnnl_memory_desc_get_size(&pl->w) : 0;
done:
  if (fpd) dnnl_primitive_desc_destroy(fpd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  return s;
}

static tt_status scratch_reserve(size_t bytes) {
  if (bytes <= scratch_bytes) return TT_OK;
  free(scratch);
  scratch_bytes = 0;
  scratch = aligned_alloc(64, up64(bytes));
  if (!scratch) return tt_error(TT_ERR_NOMEM, "conv2d: out of memory for %zu bytes of oneDNN scratch", bytes);
  scratch_bytes = up64(bytes);
  return TT_OK;
}

/* One memory object over data (oneDNN's memory_create with a handle does not copy). */
static dnnl_status_t mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md, const void *data) {
  return dnnl_memory_create(m, md, engine, (void *)data);
}

static dnnl_status_t reorder(dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  return dnnl_primitive_execute(r, stream, 2, a);
}

/* An f32 NCHW tensor [B, C, P] into the primitive's layout at buf (or used in place). */
static dnnl_status_t feed(const plan *pl, bool nhwc, dnnl_primitive_t r, const dnnl_memory_desc_t *user,
                          const dnnl_memory_desc_t *md, const float *x, void *buf, int64_t B, int64_t C, int64_t P,
                          dnnl_memory_t *out) {
  if (nhwc) {
    if (pl->dt == TT_BF16) prep_input_bf16(B, C, 1, P, 1, x, NULL, NULL, false, buf);   /* as a 1 x P map */
    else nchw_to_nhwc_f32(B, C, P, x, buf);
    return mem(out, md, buf);
  }
  if (!r) return mem(out, md, x);
  dnnl_memory_t u = NULL;
  dnnl_status_t st = mem(&u, user, x);
  if (st == dnnl_success) st = mem(out, md, buf);
  if (st == dnnl_success) st = reorder(r, u, *out);
  if (st == dnnl_success) st = dnnl_stream_wait(stream);
  dnnl_memory_destroy(u);
  return st;
}

static tt_status run(plan *pl, const float *act, const float *act2, const float *wt, const float *bias, float *out,
                     float *out_w, float *out_b) {
  tt_status s = TT_OK;
  size_t oa = 0, og = oa + up64(pl->a_bytes), oo = og + up64(pl->g_bytes), ow = oo + up64(pl->o_bytes);
  TT_TRY(scratch_reserve(ow + pl->w_bytes + 64));
  char *sc = scratch;
  dnnl_memory_t ma = NULL, mg = NULL, mo = NULL, mw = NULL, mu = NULL, mb = NULL;
  int64_t aC = pl->kind == BWD_DATA ? pl->Co : pl->Ci, aP = pl->kind == BWD_DATA ? pl->Ho * pl->Wo : pl->H * pl->W;
  DN(feed(pl, pl->a_nhwc, pl->a_in, &pl->a_nchw, &pl->a, act, sc + oa, pl->B, aC, aP, &ma), "input layout");
  if (pl->kind == BWD_WEIGHT)
    DN(feed(pl, pl->g_nhwc, pl->g_in, &pl->g_nchw, &pl->g, act2, sc + og, pl->B, pl->Co, pl->Ho * pl->Wo, &mg),
       "output gradient layout");
  else
    DN(mem(&mo, &pl->o, pl->o_nhwc || pl->o_out ? (void *)(sc + oo) : (void *)out), "output memory");
  if (pl->kind == BWD_WEIGHT) {
    DN(mem(&mw, &pl->w, pl->w_io ? (void *)(sc + ow) : (void *)out_w), "weight gradient memory");
  } else if (pl->w_io) {
    DN(mem(&mu, &pl->w_oihw, wt), "weight memory");
    DN(mem(&mw, &pl->w, sc + ow), "weight memory");
    DN(reorder(pl->w_io, mu, mw), "weight reorder");
  } else {
    DN(mem(&mw, &pl->w, wt), "weight memory");
  }
  if (pl->bias && (bias || out_b)) DN(mem(&mb, &pl->bias_md, bias ? bias : out_b), "bias memory");
  dnnl_exec_arg_t a[4];
  int n = 0;
  if (pl->kind == FWD) {
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ma};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, mo};
    if (mb) a[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, mb};
  } else if (pl->kind == BWD_DATA) {
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, ma};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, mw};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_SRC, mo};
  } else {
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, ma};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_DST, mg};
    a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_WEIGHTS, mw};
    if (mb) a[n++] = (dnnl_exec_arg_t){DNNL_ARG_DIFF_BIAS, mb};
  }
  DN(dnnl_primitive_execute(pl->conv, stream, n, a), "convolution");
  if (pl->kind == BWD_WEIGHT && pl->w_io) {
    DN(mem(&mu, &pl->w_oihw, out_w), "weight gradient memory");
    DN(reorder(pl->w_io, mw, mu), "weight gradient reorder");
  }
  if (pl->o_out) {
    DN(mem(&mu, &pl->o_nchw, out), "output memory");
    DN(reorder(pl->o_out, mo, mu), "output reorder");
  }
  DN(dnnl_stream_wait(stream), "convolution");
  if (pl->o_nhwc) {
    int64_t oC = pl->kind == BWD_DATA ? pl->Ci : pl->Co, oP = pl->kind == BWD_DATA ? pl->H * pl->W : pl->Ho * pl->Wo;
    nhwc_to_nchw_add_f32(pl->B, oC, oP, (const float *)(sc + oo), NULL, out);
  }
done:
  dnnl_memory_destroy(ma);
  dnnl_memory_destroy(mg);
  dnnl_memory_destroy(mo);
  dnnl_memory_destroy(mw);
  dnnl_memory_destroy(mu);
  dnnl_memory_destroy(mb);
  return s;
}

static bool same(const plan *a, const plan *b) {
  const tt_conv2d_params *p = &a->p, *q = &b->p;
  return a->kind == b->kind && a->dt == b->dt && a->B == b->B && a->Ci == b->Ci && a->H == b->H && a->W == b->W &&
         a->Co == b->Co && a->kh == b->kh && a->kw == b->kw && a->bias == b->bias && p->stride_h == q->stride_h &&
         p->stride_w == q->stride_w && p->pad_top == q->pad_top && p->pad_bottom == q->pad_bottom &&
         p->pad_left == q->pad_left && p->pad_right == q->pad_right;
}

/* x [B,Ci,H,W] and w [Co,Ci,kh,kw] give the key of one plan; checks what the op layer cannot know */
static tt_status key_make(plan *k, int kind, tt_dtype dt, const tt_conv2d_params *p, const int64_t *xs,
                          const int64_t *ws, bool bias) {
  memset(k, 0, sizeof *k);
  if (dt != TT_BF16 && dt != TT_F32)
    return tt_error(TT_ERR_UNSUPPORTED, "conv2d (%s): products in %s are not supported (bf16 or f32)",
                    kind_name[kind], tt_dtype_name(dt));
  if (!cpu_conv2d_prec_isa(dt))
    return tt_error(TT_ERR_UNSUPPORTED, "conv2d (%s): no oneDNN %s convolution on this CPU", kind_name[kind],
                    tt_dtype_name(dt));
  *k = (plan){.kind = kind, .dt = dt, .B = xs[0], .Ci = xs[1], .H = xs[2], .W = xs[3], .Co = ws[0], .kh = ws[2],
              .kw = ws[3], .p = *p, .bias = bias};
  k->Ho = (k->H + p->pad_top + p->pad_bottom - k->kh) / p->stride_h + 1;
  k->Wo = (k->W + p->pad_left + p->pad_right - k->kw) / p->stride_w + 1;
  /* our transposes index with 32-bit gathers: 16 pixels or channels apart */
  if (k->H * k->W > INT32_MAX / 16 || k->Ci > INT32_MAX / 16 || k->Co > INT32_MAX / 16)
    return tt_error(TT_ERR_UNSUPPORTED, "conv2d (%s): a map of %lldx%lld with %lld -> %lld channels is beyond the "
                    "oneDNN path's 32-bit indexing", kind_name[kind], (long long)k->H, (long long)k->W,
                    (long long)k->Ci, (long long)k->Co);
  return TT_OK;
}

static tt_status dispatch(const plan *key, const float *act, const float *act2, const float *wt, const float *bias,
                          float *out, float *out_w, float *out_b) {
  pthread_mutex_lock(&lock);
  tt_status s = TT_OK;
  /* the engine is made on first use, so processes that never call these kernels do not pay for it */
  if (!engine && (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
                  dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success)) {
    if (engine) dnnl_engine_destroy(engine);
    engine = NULL;
    s = tt_error(TT_ERR_UNSUPPORTED, "conv2d: oneDNN could not make a CPU engine and stream");
  }
  plan *pl = NULL;
  for (int i = 0; s == TT_OK && i < n_plans && !pl; i++)
    if (same(&plans[i], key)) pl = &plans[i];
  if (s == TT_OK && !pl) {
    int slot = n_plans < MAX_PLANS ? n_plans++ : next_plan;
    if (slot == next_plan) next_plan = (next_plan + 1) % MAX_PLANS;
    if (plans[slot].conv) plan_free(&plans[slot]);
    plans[slot] = *key;
    s = plan_make(&plans[slot]);
    if (s == TT_OK) pl = &plans[slot];
    else plan_free(&plans[slot]);   /* an empty slot never matches a key (kind 0 with B 0) */
  }
  if (s == TT_OK) s = run(pl, act, act2, wt, bias, out, out_w, out_b);
  pthread_mutex_unlock(&lock);
  return s;
}

static tt_status cpu_conv2d_fwd_prec(tt_dtype dt, const tt_conv2d_params *p, const tt_tensor *x, const tt_tensor *w,
                                     const tt_tensor *b, tt_tensor *y) {
  plan k;
  TT_TRY(key_make(&k, FWD, dt, p, x->shape, w->shape, b != NULL));
  return dispatch(&k, tt_f32(x), NULL, tt_f32(w), b ? tt_f32(b) : NULL, tt_f32(y), NULL, NULL);
}

static tt_status cpu_conv2d_bwd_data_prec(tt_dtype dt, const tt_conv2d_params *p, const tt_tensor *gy,
                                          const tt_tensor *w, tt_tensor *gx) {
  plan k;
  TT_TRY(key_make(&k, BWD_DATA, dt, p, gx->shape, w->shape, false));
  return dispatch(&k, tt_f32(gy), NULL, tt_f32(w), NULL, tt_f32(gx), NULL, NULL);
}

static tt_status cpu_conv2d_bwd_weight_prec(tt_dtype dt, const tt_conv2d_params *p, const tt_tensor *x,
                                            const tt_tensor *gy, tt_tensor *gw, tt_tensor *gb) {
  if (!gw || !x)
    return tt_error(TT_ERR_INVALID, "conv2d (backward to the weight, %s): needs the input and the weight gradient "
                    "(a bias-only gradient is the f32 kernel's)", tt_dtype_name(dt));
  plan k;
  TT_TRY(key_make(&k, BWD_WEIGHT, dt, p, x->shape, gw->shape, gb != NULL));
  return dispatch(&k, tt_f32(x), tt_f32(gy), NULL, NULL, NULL, tt_f32(gw), gb ? tt_f32(gb) : NULL);
}

tt_status tt_cpu_register_conv_dnnl_train(tt_backend *b) {
  unsigned isa = tt_cpu_dnnl_isa();   /* TAMING_CPU_ISA's cap included */
  isa_bf16 = isa & TT_DNNL_AMX ? "amx-bf16 (oneDNN)" : isa & TT_DNNL_BF16 ? "avx512bf16 (oneDNN)" : NULL;
  isa_f32 = isa & TT_DNNL_AVX512 ? "avx512 (oneDNN)" : NULL;
  TT_REGISTER_KERNEL(b, conv2d_prec_isa, cpu_conv2d_prec_isa);
  if (isa_bf16 || isa_f32) {
    TT_REGISTER_KERNEL(b, conv2d_fwd_prec, cpu_conv2d_fwd_prec);
    TT_REGISTER_KERNEL(b, conv2d_bwd_data_prec, cpu_conv2d_bwd_data_prec);
    TT_REGISTER_KERNEL(b, conv2d_bwd_weight_prec, cpu_conv2d_bwd_weight_prec);
  }
  return TT_OK;
}

#else /* no oneDNN */

tt_status tt_cpu_register_conv_dnnl_train(tt_backend *b) {
  TT_REGISTER_KERNEL(b, conv2d_prec_isa, cpu_conv2d_prec_isa);
  return TT_OK;
}

#endif
