/* module.h — named parameters and the layers plugins are built from.
 *
 * A plugin declares its parameters in a tt_paramset under the official
 * state_dict names, relative to its place in the model ("conv_in.weight",
 * "down.0.block.1.norm1.bias"). Declaring records shape, dtype, flags and how to
 * initialise it; the host either binds each one to a checkpoint tensor (by
 * name, zero-copy from an mmap) or initialises it. Layers keep tt_param
 * pointers and read p->t at forward time, so binding never invalidates them.
 * (stable-diffusion.cpp's two-phase loader; torch7's modules.) */
#ifndef TAMING_MODULE_H
#define TAMING_MODULE_H

#include "taming/ops.h"

#ifdef __cplusplus
extern "C" {
#endif

enum {
  TT_PARAM_TRAINABLE = 1u << 0, /* receives gradients and optimizer updates */
  TT_PARAM_BUFFER = 1u << 1,    /* state, not trained (running stats, masks) */
  TT_PARAM_OPTIONAL = 1u << 2,  /* may be missing from a checkpoint (keeps its init) */
  TT_PARAM_FROZEN = 1u << 3     /* a weight that is never trained (LPIPS) */
};

typedef enum tt_init_kind {
  TT_INIT_ZEROS = 0,
  TT_INIT_CONST,       /* a */
  TT_INIT_UNIFORM,     /* [a, b) */
  TT_INIT_NORMAL       /* mean a, std b */
} tt_init_kind;

typedef struct tt_init {
  tt_init_kind kind;
  double a, b;
} tt_init;

typedef struct tt_param {
  char *name;
  tt_dtype dtype;
  int ndim;
  int64_t shape[TT_MAX_DIMS];
  unsigned flags;
  tt_init init;
  tt_tensor *t;        /* NULL until initialised or bound */
} tt_param;

typedef struct tt_paramset {
  tt_param **items;
  int n, cap;
} tt_paramset;

TT_API void tt_paramset_init(tt_paramset *ps);
TT_API void tt_paramset_free(tt_paramset *ps);
/* Declares a parameter (name printf-style). NULL on error (duplicate name, no memory). */
TT_API tt_param *tt_param_declare(tt_paramset *ps, tt_dtype dt, int ndim, const int64_t *shape,
                                  unsigned flags, tt_init init, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
TT_API tt_param *tt_paramset_find(const tt_paramset *ps, const char *name);
/* Materialises every parameter still without a tensor from its init, on dev.
 * Each parameter's draw is keyed by (seed, its name), so order does not matter. */
TT_API tt_status tt_paramset_materialize(tt_paramset *ps, uint64_t seed, tt_device dev);
/* Replaces p's tensor (takes a new reference); checks shape and dtype, naming p. */
TT_API tt_status tt_param_bind(tt_param *p, tt_tensor *t, const char *source);
/* Total elements of the parameters with all of `flags` set (0 = all). */
TT_API int64_t tt_paramset_numel(const tt_paramset *ps, unsigned flags);

static inline tt_init tt_init_zeros(void) { return (tt_init){TT_INIT_ZEROS, 0, 0}; }
static inline tt_init tt_init_const(double a) { return (tt_init){TT_INIT_CONST, a, 0}; }
static inline tt_init tt_init_uniform(double lo, double hi) { return (tt_init){TT_INIT_UNIFORM, lo, hi}; }
static inline tt_init tt_init_normal(double mean, double std) { return (tt_init){TT_INIT_NORMAL, mean, std}; }

/* ---- layers (PyTorch default initialisation unless stated) ---- */

typedef struct tt_conv2d_layer {
  tt_param *weight, *bias;    /* [Co, Ci, k, k], [Co] (bias may be NULL) */
  tt_conv2d_params p;
} tt_conv2d_layer;

typedef struct tt_linear_layer {
  tt_param *weight, *bias;    /* [out, in], [out] (bias may be NULL) */
} tt_linear_layer;

typedef struct tt_norm_layer {
  tt_param *weight, *bias;    /* [C] */
  tt_param *running_mean, *running_var, *num_batches_tracked; /* batch norm only */
  int groups;                 /* group norm */
  float eps, momentum;
} tt_norm_layer;

/* prefix: "encoder.conv_in" -> params "encoder.conv_in.weight"/".bias". */
TT_API tt_status tt_conv2d_layer_declare(tt_conv2d_layer *l, tt_paramset *ps, const char *prefix,
                                         int cin, int cout, int k, int stride, int pad, bool bias);
TT_API tt_tensor *tt_conv2d_layer_forward(const tt_conv2d_layer *l, tt_tensor *x);
TT_API tt_status tt_linear_layer_declare(tt_linear_layer *l, tt_paramset *ps, const char *prefix,
                                         int in, int out, bool bias);
TT_API tt_tensor *tt_linear_layer_forward(const tt_linear_layer *l, tt_tensor *x);
TT_API tt_status tt_group_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix,
                                             int groups, int channels, float eps);
TT_API tt_tensor *tt_group_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x);
/* The layer followed by SiLU, fused (tt_group_norm_silu). */
TT_API tt_tensor *tt_group_norm_silu_layer_forward(const tt_norm_layer *l, tt_tensor *x);
TT_API tt_status tt_layer_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix,
                                             int dim, float eps);
TT_API tt_tensor *tt_layer_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x);
TT_API tt_status tt_batch_norm_layer_declare(tt_norm_layer *l, tt_paramset *ps, const char *prefix,
                                             int channels, float eps, float momentum);
TT_API tt_tensor *tt_batch_norm_layer_forward(const tt_norm_layer *l, tt_tensor *x, bool training);
/* The layer followed by LeakyReLU(slope), fused (tt_batch_norm_leaky_relu). */
TT_API tt_tensor *tt_batch_norm_lrelu_layer_forward(const tt_norm_layer *l, tt_tensor *x, bool training,
                                                    float slope);

#ifdef __cplusplus
}
#endif
#endif
