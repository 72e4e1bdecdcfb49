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

/* Normalize(C) = GroupNorm(32, C, eps 1e-6). */
tt_status tt_normalize_declare(tt_norm_layer *n, tt_paramset *ps, const char *prefix, int c);

typedef struct {
  tt_norm_layer norm1, norm2;
  tt_conv2d_layer conv1, conv2, nin_shortcut;
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
  tt_conv2d_layer q, k, v, proj_out;
  int c;
} tt_attnblock;

tt_status tt_attnblock_declare(tt_attnblock *a, tt_paramset *ps, const char *prefix, int c);
/* single-head spatial self-attention with a residual: [B, C, H, W] -> same */
tt_tensor *tt_attnblock_forward(const tt_attnblock *a, tt_tensor *x);

typedef struct {
  tt_conv2d_layer conv;
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
#define tt_resblock_forward(b, x, tr, r) TT_SCOPE_1_(tt_resblock_forward, x, tt_resblock_forward((b), tt_s_a_, (tr), (r)))
#define tt_attnblock_forward(a, x) TT_SCOPE_1_(tt_attnblock_forward, x, tt_attnblock_forward((a), tt_s_a_))
#define tt_downsample_forward(d, x) TT_SCOPE_1_(tt_downsample_forward, x, tt_downsample_forward((d), tt_s_a_))
#define tt_upsample_forward(u, x) TT_SCOPE_1_(tt_upsample_forward, x, tt_upsample_forward((u), tt_s_a_))

#endif
