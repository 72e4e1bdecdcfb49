/* conv_dnnl.c — the CPU kernel of convolutions with bf16 weights
 * (taming/ops/conv_lowp.h), through oneDNN.
 *
 * Why oneDNN and not our own micro-kernels: measured on the Xeon this was
 * written on (AMX-BF16, 2 threads), a 3x3 128->128 conv at 256x256 ran in
 * 32-48 ms in oneDNN's AMX brgemm kernel against 366-839 ms as im2col followed
 * by the AMX GEMM of qlinear.c (which is built for few activation rows) and
 * 200-260 ms in today's fp32 path; 512->512 at 16x16 took 0.36 ms against 2.9 ms.
 * Reaching oneDNN's blocking would be a project of its own.
 *
 * Activations stay f32 NCHW between ops: per call the input is transposed to
 * the bf16 NHWC the primitive reads and the f32 NHWC output back to NCHW (our
 * own transposes, nhwc.h; oneDNN's reorders for other layouts). Keeping NHWC
 * across a ResNet block would need GroupNorm, SiLU and the residual add in that
 * layout too, for what is now about 5 % of the convolution time. Weights are
 * reordered once per input shape and kept in the pack's cache with the primitive.
 *
 * Run-time choice: the kernel is registered only when oneDNN dispatches to
 * AVX512-BF16 or AMX on this CPU (emulated bf16 is slower than our fp32 path).
 * TAMING_CPU_ISA=generic hides it (to test the fp32 fallback), =avx512 caps
 * oneDNN below AMX, as for the qlinear kernels. Built without oneDNN, this file
 * registers only the ISA query, which says so. */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"
#include "taming/ops/conv_lowp.h"

static const char *bf16_isa = "taming was built without oneDNN (libdnnl-dev)";

static const char *cpu_conv2d_bf16_isa(void) { return bf16_isa; }

#ifdef HAVE_DNNL
#include <immintrin.h>
#include <oneapi/dnnl/dnnl.h>
#include "nhwc.h"
#include "taming/dtype.h"

#define MAX_PLANS 4   /* input shapes remembered per weight (a VQGAN sees one) */

/* one input shape: the primitive, its memory objects and the reordered weights */
typedef struct {
  int64_t B, H, W;
  tt_conv2d_params p;
  bool has_bias;
  dnnl_primitive_t conv, to_src, from_dst;   /* oneDNN reorders, NULL when not needed or done by us */
  bool src_nhwc, dst_nhwc;                   /* the primitive reads bf16 NHWC / writes f32 NHWC: our transposes */
  dnnl_memory_t x_user, src, wts, bias, dst, y_user;
  size_t src_bytes, dst_bytes;
  void *wbuf;
} plan;

typedef struct {
  const void *w;   /* the bf16 weights the plans were made from */
  plan plans[MAX_PLANS];
  int n, next;     /* plans filled, slot to replace next */
} cache;

static dnnl_engine_t engine;
static dnnl_stream_t stream;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* scratch for the reordered input and output, shared by all packs (calls are serialised) */
static void *scratch;
static size_t scratch_bytes;

#define DN(call, what)                                                                                 \
  do {                                                                                                 \
    dnnl_status_t st_ = (call);                                                                        \
    if (st_ != dnnl_success) {                                                                         \
      s = tt_error(TT_ERR_UNSUPPORTED, "conv2d_bf16: oneDNN %s failed (status %d)", what, (int)st_);      \
      goto done;                                                                                       \
    }                                                                                                  \
  } while (0)

static void plan_free(plan *pl) {
  dnnl_primitive_destroy(pl->conv);
  dnnl_primitive_destroy(pl->to_src);
  dnnl_primitive_destroy(pl->from_dst);
  dnnl_memory_t *m[6] = {&pl->x_user, &pl->src, &pl->wts, &pl->bias, &pl->dst, &pl->y_user};
  for (int i = 0; i < 6; i++) dnnl_memory_destroy(*m[i]);
  free(pl->wbuf);
  memset(pl, 0, sizeof *pl);
}

static void cpu_conv2d_bf16_cache_free(void *c) {
  cache *cc = c;
  if (!cc) return;
  for (int i = 0; i < cc->n; i++) plan_free(&cc->plans[i]);
  free(cc);
}

static tt_status reorder_once(const dnnl_memory_desc_t *from, void *pf, const dnnl_memory_desc_t *to, void *pt) {
  tt_status s = TT_OK;
  dnnl_primitive_desc_t pd = NULL;
  dnnl_primitive_t r = NULL;
  dnnl_memory_t a = NULL, b = NULL;
  DN(dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL), "weight reorder");
  DN(dnnl_primitive_create(&r, pd), "weight reorder");
  DN(dnnl_memory_create(&a, from, engine, pf), "weight memory");
  DN(dnnl_memory_create(&b, to, engine, pt), "weight memory");
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a}, {DNNL_ARG_TO, b}};
  DN(dnnl_primitive_execute(r, stream, 2, args), "weight reorder");
  DN(dnnl_stream_wait(stream), "weight reorder");
done:
  dnnl_memory_destroy(a);
  dnnl_memory_destroy(b);
  dnnl_primitive_destroy(r);
  dnnl_primitive_desc_destroy(pd);
  return s;
}

/* a reorder primitive from one layout to another, or NULL when they are the same */
static dnnl_status_t make_reorder(const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to, dnnl_primitive_t *r) {
  *r = NULL;
  if (dnnl_memory_desc_equal(from, to)) return dnnl_success;
  dnnl_primitive_desc_t pd;
  dnnl_status_t st = dnnl_reorder_primitive_desc_create(&pd, from, engine, to, engine, NULL);
  if (st == dnnl_success) st = dnnl_primitive_create(r, pd);
  if (pd) dnnl_primitive_desc_destroy(pd);
  return st;
}

/* The first implementation oneDNN offers for the convolution, except that a padded
 * 1x1 convolution skips the AMX ones: in oneDNN 2.6.3 they read outside the input
 * when a 1x1 kernel is padded and strided (wrong values, or a crash), which
 * tests/check_ops_conv_lowp.c's random shapes found. No VQGAN convolution is one. */
static dnnl_status_t pick(const dnnl_convolution_desc_t *cd, bool padded_1x1, dnnl_primitive_desc_t *out) {
  *out = NULL;
  if (!padded_1x1) return dnnl_primitive_desc_create(out, cd, NULL, engine, NULL);
  dnnl_primitive_desc_iterator_t it;
  dnnl_status_t st = dnnl_primitive_desc_iterator_create(&it, cd, NULL, engine, NULL);
  if (st != dnnl_success) return st;
  do {
    dnnl_primitive_desc_t pd = dnnl_primitive_desc_iterator_fetch(it);
    const char *impl = NULL;
    if (pd && dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
        !strstr(impl, "amx")) {
      *out = pd;
      break;
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
  } while (dnnl_primitive_desc_iterator_next(it) == dnnl_success);
  dnnl_primitive_desc_iterator_destroy(it);
  return *out ? dnnl_success : dnnl_unimplemented;
}

static tt_status plan_make(plan *pl, const tt_conv2d_params *p, const tt_tensor *x, const tt_tensor *w, bool has_bias,
                           const tt_tensor *y) {
  tt_status s = TT_OK;
  memset(pl, 0, sizeof *pl);
  pl->B = x->shape[0], pl->H = x->shape[2], pl->W = x->shape[3], pl->p = *p, pl->has_bias = has_bias;
  dnnl_dims_t xd = {x->shape[0], x->shape[1], x->shape[2], x->shape[3]};
  dnnl_dims_t wd = {w->shape[0], w->shape[1], w->shape[2], w->shape[3]};
  dnnl_dims_t yd = {y->shape[0], y->shape[1], y->shape[2], y->shape[3]}, bd = {w->shape[0]};
  dnnl_dims_t strides = {p->stride_h, p->stride_w}, pad_l = {p->pad_top, p->pad_left},
              pad_r = {p->pad_bottom, p->pad_right};
  dnnl_memory_desc_t src_any, w_any, dst_any, b_md, x_nchw, w_oihw, y_nchw;
  dnnl_convolution_desc_t cd;
  dnnl_primitive_desc_t pd = NULL;
  DN(dnnl_memory_desc_init_by_tag(&src_any, 4, xd, dnnl_bf16, dnnl_format_tag_any), "source descriptor");
  DN(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_bf16, dnnl_format_tag_any), "weight descriptor");
  DN(dnnl_memory_desc_init_by_tag(&dst_any, 4, yd, dnnl_f32, dnnl_format_tag_any), "output descriptor");
  DN(dnnl_memory_desc_init_by_tag(&b_md, 1, bd, dnnl_f32, dnnl_x), "bias descriptor");
  DN(dnnl_memory_desc_init_by_tag(&x_nchw, 4, xd, dnnl_f32, dnnl_nchw), "input descriptor");
  DN(dnnl_memory_desc_init_by_tag(&w_oihw, 4, wd, dnnl_bf16, dnnl_oihw), "weight descriptor");
  DN(dnnl_memory_desc_init_by_tag(&y_nchw, 4, yd, dnnl_f32, dnnl_nchw), "output descriptor");
  DN(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct, &src_any, &w_any,
                                        has_bias ? &b_md : NULL, &dst_any, strides, pad_l, pad_r),
     "convolution descriptor");
  DN(pick(&cd, wd[2] == 1 && wd[3] == 1 && (p->pad_top || p->pad_bottom || p->pad_left || p->pad_right), &pd),
     "convolution");
  DN(dnnl_primitive_create(&pl->conv, pd), "convolution");
  const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
  const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
  const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
  pl->src_bytes = dnnl_memory_desc_get_size(smd);
  pl->dst_bytes = dnnl_memory_desc_get_size(dmd);
  size_t wbytes = dnnl_memory_desc_get_size(wmd);
  pl->wbuf = aligned_alloc(64, (wbytes + 63) / 64 * 64);
  if (!pl->wbuf) {
    s = tt_error(TT_ERR_NOMEM, "conv2d_bf16: out of memory for %zu bytes of weights", wbytes);
    goto done;
  }
  if ((s = reorder_once(&w_oihw, tt_tensor_data((tt_tensor *)w), wmd, pl->wbuf)) != TT_OK) goto done;
  dnnl_memory_desc_t x_nhwc, y_nhwc;
  DN(dnnl_memory_desc_init_by_tag(&x_nhwc, 4, xd, dnnl_bf16, dnnl_nhwc), "input descriptor");
  DN(dnnl_memory_desc_init_by_tag(&y_nhwc, 4, yd, dnnl_f32, dnnl_nhwc), "output descriptor");
  pl->src_nhwc = dnnl_memory_desc_equal(smd, &x_nhwc);
  pl->dst_nhwc = dnnl_memory_desc_equal(dmd, &y_nhwc);
  if (!pl->src_nhwc) DN(make_reorder(&x_nchw, smd, &pl->to_src), "input reorder");
  if (!pl->dst_nhwc) DN(make_reorder(dmd, &y_nchw, &pl->from_dst), "output reorder");
  DN(dnnl_memory_create(&pl->x_user, &x_nchw, engine, DNNL_MEMORY_NONE), "input memory");
  DN(dnnl_memory_create(&pl->src, smd, engine, DNNL_MEMORY_NONE), "source memory");
  DN(dnnl_memory_create(&pl->wts, wmd, engine, pl->wbuf), "weight memory");
  DN(dnnl_memory_create(&pl->bias, &b_md, engine, DNNL_MEMORY_NONE), "bias memory");
  DN(dnnl_memory_create(&pl->dst, dmd, engine, DNNL_MEMORY_NONE), "output memory");
  DN(dnnl_memory_create(&pl->y_user, &y_nchw, engine, DNNL_MEMORY_NONE), "output memory");
done:
  if (pd) dnnl_primitive_desc_destroy(pd);
  if (s != TT_OK) plan_free(pl);
  return s;
}

static tt_status scratch_reserve(size_t bytes) {
  if (bytes <= scratch_bytes) return TT_OK;
  free(scratch);
  scratch_bytes = 0;
  scratch = aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!scratch) return tt_error(TT_ERR_NOMEM, "conv2d_bf16: out of memory for %zu bytes of scratch", bytes);
  scratch_bytes = (bytes + 63) / 64 * 64;
  return TT_OK;
}

static tt_status run(plan *pl, const tt_tensor *x, const tt_tensor *b, tt_tensor *y) {
  tt_status s = TT_OK;
  /* the bf16 input and the f32 output in the primitive's layouts share one scratch buffer */
  bool src_scratch = pl->src_nhwc || pl->to_src, dst_scratch = pl->dst_nhwc || pl->from_dst;
  size_t dst_off = src_scratch ? (pl->src_bytes + 63) / 64 * 64 : 0;
  TT_TRY(scratch_reserve(dst_off + (dst_scratch ? pl->dst_bytes : 0)));
  char *sp = src_scratch ? (char *)scratch : tt_tensor_data((tt_tensor *)x);
  char *dp = dst_scratch ? (char *)scratch + dst_off : tt_tensor_data(y);
  DN(dnnl_memory_set_data_handle(pl->x_user, tt_tensor_data((tt_tensor *)x)), "input memory");
  DN(dnnl_memory_set_data_handle(pl->src, sp), "source memory");
  DN(dnnl_memory_set_data_handle(pl->dst, dp), "output memory");
  DN(dnnl_memory_set_data_handle(pl->y_user, tt_tensor_data(y)), "output memory");
  int64_t B = x->shape[0], Ci = x->shape[1], Co = y->shape[1];
  if (pl->src_nhwc) {
    nchw_to_nhwc_bf16(B, Ci, x->shape[2] * x->shape[3], tt_f32(x), (uint16_t *)sp);
  } else if (pl->to_src) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, pl->x_user}, {DNNL_ARG_TO, pl->src}};
    DN(dnnl_primitive_execute(pl->to_src, stream, 2, a), "input reorder");
  }
  dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, pl->src}, {DNNL_ARG_WEIGHTS, pl->wts}, {DNNL_ARG_DST, pl->dst},
                          {DNNL_ARG_BIAS, pl->bias}};
  if (b) DN(dnnl_memory_set_data_handle(pl->bias, tt_tensor_data((tt_tensor *)b)), "bias memory");
  DN(dnnl_primitive_execute(pl->conv, stream, b ? 4 : 3, a), "convolution");
  if (pl->from_dst) {
    dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, pl->dst}, {DNNL_ARG_TO, pl->y_user}};
    DN(dnnl_primitive_execute(pl->from_dst, stream, 2, r), "output reorder");
  }
  DN(dnnl_stream_wait(stream), "convolution");
  if (pl->dst_nhwc) nhwc_to_nchw_f32(B, Co, y->shape[2] * y->shape[3], (const float *)dp, tt_f32(y));
done:
  return s;
}

static bool same_params(const tt_conv2d_params *a, const tt_conv2d_params *b) {
  return a->stride_h == b->stride_h && a->stride_w == b->stride_w && a->pad_top == b->pad_top &&
         a->pad_bottom == b->pad_bottom && a->pad_left == b->pad_left && a->pad_right == b->pad_right;
}

static tt_status cpu_conv2d_bf16(void **cachep, const tt_conv2d_params *p, const tt_tensor *x, const tt_tensor *w,
                                 const tt_tensor *b, tt_tensor *y) {
  if (w->dtype != TT_BF16 || x->dtype != TT_F32 || y->dtype != TT_F32)
    return tt_error(TT_ERR_INVALID, "conv2d_bf16: expected f32 input, bf16 weights and f32 output, found %s, %s, %s",
                    tt_dtype_name(x->dtype), tt_dtype_name(w->dtype), tt_dtype_name(y->dtype));
  pthread_mutex_lock(&lock);
  tt_status s = TT_OK;
  /* the engine is made on first use, so processes that never convolve in bf16 do not pay for it */
  if (!engine && (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
                  dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success)) {
    if (engine) dnnl_engine_destroy(engine);
    engine = NULL;
    s = tt_error(TT_ERR_UNSUPPORTED, "conv2d_bf16: oneDNN could not make a CPU engine and stream");
  }
  cache *c = s == TT_OK ? *cachep : NULL;
  if (s == TT_OK && !c) {
    c = calloc(1, sizeof *c);
    if (!c) s = tt_error(TT_ERR_NOMEM, "conv2d_bf16: out of memory");
    else *cachep = c, c->w = tt_tensor_data((tt_tensor *)w);
  }
  if (s == TT_OK && c->w != tt_tensor_data((tt_tensor *)w))
    s = tt_error(TT_ERR_INVALID, "conv2d_bf16: the pack's kernel state belongs to other weights");
  plan *pl = NULL;
  for (int i = 0; s == TT_OK && i < c->n && !pl; i++) {
    plan *q = &c->plans[i];
    if (q->B == x->shape[0] && q->H == x->shape[2] && q->W == x->shape[3] && q->has_bias == (b != NULL) &&
        same_params(&q->p, p))
      pl = q;
  }
  if (s == TT_OK && !pl) {
    int slot = c->n < MAX_PLANS ? c->n++ : c->next;
    if (slot == c->next) c->next = (c->next + 1) % MAX_PLANS;
    if (c->plans[slot].conv) plan_free(&c->plans[slot]);
    s = plan_make(&c->plans[slot], p, x, w, b != NULL, y);
    if (s == TT_OK) pl = &c->plans[slot];
    else if (slot == c->n - 1) c->n--;
  }
  if (s == TT_OK) s = run(pl, x, b, y);
  pthread_mutex_unlock(&lock);
  return s;
}

tt_status tt_cpu_register_conv_lowp(tt_backend *b) {
  const char *env = getenv("TAMING_CPU_ISA");
  if (env && !strcmp(env, "generic")) {
    bf16_isa = "no kernel (TAMING_CPU_ISA=generic)";
  } else {
    /* capping the ISA only works before oneDNN dispatches anything */
    if (env && !strcmp(env, "avx512")) dnnl_set_max_cpu_isa(dnnl_cpu_isa_avx512_core_bf16);
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    /* the ISA values are bit masks, each holding the ones below it */
    bool amx = (isa & dnnl_cpu_isa_avx512_core_amx) == dnnl_cpu_isa_avx512_core_amx;
    bool bf16 = (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
    bf16_isa = amx ? "amx-bf16 (oneDNN)" : bf16 ? "avx512bf16 (oneDNN)" : "no avx512bf16 on this CPU";
    if (bf16) {
      TT_REGISTER_KERNEL(b, conv2d_bf16, cpu_conv2d_bf16);
      TT_REGISTER_KERNEL(b, conv2d_bf16_cache_free, cpu_conv2d_bf16_cache_free);
    }
  }
  TT_REGISTER_KERNEL(b, conv2d_bf16_isa, cpu_conv2d_bf16_isa);
  return TT_OK;
}

#else /* no oneDNN */

tt_status tt_cpu_register_conv_lowp(tt_backend *b) {
  TT_REGISTER_KERNEL(b, conv2d_bf16_isa, cpu_conv2d_bf16_isa);
  return TT_OK;
}

#endif
