/* blocks.h — the building blocks of the official VQGAN Encoder and Decoder
 * (REFERENCE.md §2.2): Normalize, ResnetBlock, AttnBlock, Downsample, Upsample,
 * and the ddconfig they are built from. Shared by the encoder and decoder plugins. */
#ifndef TAMING_PLUGINS_BLOCKS_H
#define TAMING_PLUGINS_BLOCKS_H

#include "taming/plugin.h"
#include "taming/scope.h"

#define TT_MAX_LEVELS 8

/* The official ddconfig (both Encoder and Decoder read it; each ignores what it does not use). */
typedef struct {
  int ch, out_ch, in_channels, resolution, z_channels, num_res_blocks;
  int ch_mult[TT_MAX_LEVELS], n_levels;
  int attn_res[16], n_attn;
  bool double_z, give_pre_end, resamp_with_conv;
  float dropout;
} tt_ddconfig;

/* Reads a ddconfig map; errors name the missing or bad key ("ddconfig: missing key 'ch'"). */
tt_status tt_ddconfig_read(const tt_value *cfg, tt_ddconfig *dd);
bool tt_ddconfig_has_attn(const tt_ddconfig *dd, int res);

/* A convolution of the VQGAN that can run with bf16 weights (precision=bf16).
 * The pack is used while it is current (made from the weight now bound) and no
 * gradient is wanted through the convolution; otherwise the layer runs in f32. */
typedef struct {
  tt_conv2d_layer l;
  tt_conv2d_packed *pk;   /* bf16 weights after set_precision("bf16"), else NULL */
  tt_tensor *src;         /* the f32 weight pk was packed from (a reference) */
} tt_vconv;

tt_status tt_vconv_declare(tt_vconv *c, tt_paramset *ps, const char *prefix, int cin, int cout, int k, int stride,
                           int pad);
/* x [B, Ci, H, W] -> [B, Co, Ho, Wo] */
tt_tensor *tt_vconv_forward(const tt_vconv *c, tt_tensor *x);
/* TT_F32 drops the pack; TT_BF16 packs the bound weight (keeping a current pack). */
tt_status tt_vconv_set_precision(tt_vconv *c, tt_dtype dt);
void tt_vconv_free(tt_vconv *c);

/* The precision every VQGAN plugin reports from set_precision("fp32" | "bf16" | "int8"):
 * *dt is what its convolutions will run in (f32 where bf16 has no kernel here, and
 * for int8, which the VQGAN does not implement), *isa what runs them, and *fallback
 * (NULL when none) why the request was not met. Errors on any other name. */
tt_status tt_vqgan_precision_choose(const tt_value *arg, tt_device dev, tt_dtype *dt, const char **isa,
                                    const char **fallback);
/* {precision, isa[, fallback]} as set_precision returns it */
tt_status tt_vqgan_precision_report(tt_value *ret, tt_dtype dt, const char *isa, const char *fallback);

/* Normalize(C) = GroupNorm(32, C, eps 1e-6). */
tt_status tt_normalize_declare(tt_norm_layer *n, tt_paramset *ps, const char *prefix, int c);

typedef struct {
  tt_norm_layer norm1, norm2;
  tt_vconv conv1, conv2, nin_shortcut;
  bool has_nin;
  float dropout;
} tt_resblock;

/* swish(group_norm(x)): the norm + nonlinearity every block and both ends use */
tt_tensor *tt_norm_swish(const tt_norm_layer *n, tt_tensor *x);

tt_status tt_resblock_declare(tt_resblock *b, tt_paramset *ps, const char *prefix, int cin, int cout, float dropout);
/* x [B, Cin, H, W] -> [B, Cout, H, W]; consumes nothing (x stays owned by the caller). */
tt_tensor *tt_resblock_forward(const tt_resblock *b, tt_tensor *x, bool training, tt_rng *rng);

typedef struct {
  tt_norm_layer norm;
  tt_vconv q, k, v, proj_out;
  int c;
} tt_attnblock;

tt_status tt_attnblock_declare(tt_attnblock *a, tt_paramset *ps, const char *prefix, int c);
/* single-head spatial self-attention with a residual: [B, C, H, W] -> same */
tt_tensor *tt_attnblock_forward(const tt_attnblock *a, tt_tensor *x);

typedef struct {
  tt_vconv conv;
  bool with_conv;
} tt_resample;

/* Downsample: pad 1 row bottom, 1 column right, 3x3 stride-2 conv (or 2x2 average pool). */
tt_status tt_downsample_declare(tt_resample *d, tt_paramset *ps, const char *prefix, int c, bool with_conv);
tt_tensor *tt_downsample_forward(const tt_resample *d, tt_tensor *x);
/* Upsample: nearest x2, then 3x3 conv pad 1 (or nearest only). */
tt_status tt_upsample_declare(tt_resample *u, tt_paramset *ps, const char *prefix, int c, bool with_conv);
tt_tensor *tt_upsample_forward(const tt_resample *u, tt_tensor *x);

/* In a scope, a block's result belongs to the scope and a NULL input passes
 * through, as for the SDK's calls (taming/scope.h). */
#define tt_norm_swish(n, x) TT_SCOPE_1_(tt_norm_swish, x, tt_norm_swish((n), tt_s_a_))
#define tt_vconv_forward(c, x) TT_SCOPE_1_(tt_vconv_forward, x, tt_vconv_forward((c), tt_s_a_))
#define tt_resblock_forward(b, x, tr, r) TT_SCOPE_1_(tt_resblock_forward, x, tt_resblock_forward((b), tt_s_a_, (tr), (r)))
#define tt_attnblock_forward(a, x) TT_SCOPE_1_(tt_attnblock_forward, x, tt_attnblock_forward((a), tt_s_a_))
#define tt_downsample_forward(d, x) TT_SCOPE_1_(tt_downsample_forward, x, tt_downsample_forward((d), tt_s_a_))
#define tt_upsample_forward(u, x) TT_SCOPE_1_(tt_upsample_forward, x, tt_upsample_forward((u), tt_s_a_))
/* every convolution of a block, for set_precision and destroy; returns how many (at most 4) */
int tt_resblock_convs(tt_resblock *b, tt_vconv **out);
int tt_attnblock_convs(tt_attnblock *a, tt_vconv **out);

/* set_precision(arg) over all n convolutions of a plugin (see tt_vqgan_precision_choose):
 * packs them all or, on failure, none; *precision gets the result and *ret the report. */
tt_status tt_vconvs_set_precision(tt_vconv **convs, int n, const tt_value *arg, tt_dtype *precision, tt_value *ret);


#endif
