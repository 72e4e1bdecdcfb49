/* scope.h — a scope that owns the temporaries of a forward pass.
 *
 * In a C file that includes this header, every tensor an SDK call returns (an
 * op, a layer's forward, a constructor) while a scope is open belongs to the
 * innermost scope: the code never unrefs it. tt_scope_end(keep...) releases
 * every tensor the scope owns except the kept ones, which leave it owned by the
 * caller, exactly as a function that returns a new reference. So a function
 * with its own scope reads, and behaves towards its callers, like any op:
 *
 *   static tt_tensor *mlp_forward(const mlp *m, tt_tensor *x) {   // x [B, T, E]
 *     tt_scope_begin();
 *     tt_tensor *h = tt_linear_layer_forward(&m->fc, x);           // [B, T, 4E]
 *     h = tt_gelu(h);
 *     h = tt_linear_layer_forward(&m->out, h);                     // [B, T, E]
 *     return tt_scope_end(h);
 *   }
 *
 * and its caller, itself inside a scope, hands the result to its own scope
 * with tt_scope_own(mlp_forward(...)). A static helper without a scope of its
 * own runs in its caller's scope and returns tensors that scope owns.
 *
 * NULL passes through: a wrapped call with a NULL tensor argument does
 * nothing, returns NULL and leaves the thread's error (tt_error_message) as the
 * first failure set it, so a chain of calls after a failure is a chain of
 * no-ops and one check at the end reports the first error. Optional tensor
 * arguments (a bias, an affine weight) may be NULL as before.
 *
 * Memory: a scope keeps what it owns until it ends, so a long chain holds its
 * intermediates longer than code that unrefs each one when it is dead. Give
 * each block (a layer, a residual block) its own scope, and in a loop that
 * replaces a large tensor release the dead one at once:
 * h = tt_scope_replace(h, block(h)), or tt_scope_drop(h).
 *
 * Scopes nest (up to TT_SCOPE_MAX_DEPTH deep) and are per thread: a scope
 * opened on one thread owns what that thread's calls return, and no other
 * thread's. Code compiled without this header (the host library, older
 * plugins) is unaffected: there, results are the caller's as always.
 * (ggml's context owns the tensors of a graph in the same way.) */
#ifndef TAMING_SCOPE_H
#define TAMING_SCOPE_H

#include <stdbool.h>
#include <stddef.h>
#include "taming/export.h"
#include "taming/ops.h"
#include "taming/module.h"
#include "taming/tensor.h"
#include "taming/value.h"

#ifdef __cplusplus
extern "C" {
#endif

#define TT_SCOPE_MAX_DEPTH 64

/* Opens a scope on this thread. Deeper than TT_SCOPE_MAX_DEPTH is a bug (an
 * end missing in a loop) and aborts with the file and line of the begin. */
#define tt_scope_begin() tt_scope_begin_at(__FILE__, __LINE__)
TT_API void tt_scope_begin_at(const char *file, int line);
/* Ends the innermost scope: releases what it owns except keep[0..n), whose
 * references pass to the caller (a kept tensor the scope did not own, such as
 * an argument, gets a new reference). NULL entries are skipped. Returns
 * keep[0] (NULL when n == 0). */
TT_API tt_tensor *tt_scope_end_n(int n, tt_tensor *const *keep);
/* tt_scope_end(), tt_scope_end(y), tt_scope_end(zq, loss, idx) */
#define tt_scope_end(...) \
  tt_scope_end_n((int)(sizeof((tt_tensor *[]){NULL, __VA_ARGS__}) / sizeof(tt_tensor *)) - 1, \
                 (tt_tensor *[]){NULL, __VA_ARGS__} + 1)
/* For a plugin method: ends the innermost scope keeping keep[0..n) and makes
 * them the method's results (rets[i], *nrets = n). When one of them is NULL
 * the scope failed: everything is released and the first error returned. */
TT_API tt_status tt_scope_return_n(tt_value *rets, int *nrets, int n, tt_tensor *const *keep);
/* return tt_scope_return(rets, nrets, zq, loss, indices); */
#define tt_scope_return(rets, nrets, ...) \
  tt_scope_return_n(rets, nrets, (int)(sizeof((tt_tensor *[]){__VA_ARGS__}) / sizeof(tt_tensor *)), \
                    (tt_tensor *[]){__VA_ARGS__})
/* Hands t (a reference the caller owns) to the innermost scope and returns it;
 * with no scope open it stays the caller's. NULL passes through. Fails (NULL,
 * t released) only when out of memory. */
TT_API tt_tensor *tt_scope_own(tt_tensor *t);
/* Releases now the reference the innermost scope holds on t (t is dead: a
 * large intermediate in a loop). A tensor that scope does not own (an
 * argument, a tensor an outer scope owns) is left alone, so a function can
 * only release what it made. */
TT_API void tt_scope_drop(tt_tensor *t);
/* h = tt_scope_replace(h, tt_conv2d_layer_forward(&l, h)): releases `dead`
 * now, as tt_scope_drop does, and returns `next` (the step of a chain or loop
 * that replaces a large tensor by the next one). */
TT_API tt_tensor *tt_scope_replace(tt_tensor *dead, tt_tensor *next);
/* Takes t out of the innermost scope: the reference becomes the caller's (a
 * tensor made inside a scope that must outlive it, such as a cache); when that
 * scope does not own t, the caller gets a new reference. Returns t. */
TT_API tt_tensor *tt_scope_detach(tt_tensor *t);
/* Open scopes on this thread, and the tensors they own (for tests). */
TT_API int tt_scope_depth(void);
TT_API size_t tt_scope_owned(void);
/* What a wrapped call returns when a tensor argument is NULL: NULL, with the
 * thread's error left as it is (set to "op: an input is NULL" when none was). */
TT_API tt_tensor *tt_scope_skip(const char *op);

#ifdef __cplusplus
}
#endif

/* ---- the wrapped SDK calls (C only: they use GNU statement expressions) ----
 * Each wraps the function of the same name (a macro does not expand inside its
 * own expansion): the checked tensor arguments are evaluated once, first; when
 * one is NULL the call is skipped, else its result goes to the innermost scope. */
#ifndef __cplusplus
static inline tt_tensor *tt_scope_arg_(const tt_tensor *t) { return (tt_tensor *)t; }
#define TT_SCOPE_0_(f, call) tt_scope_own(call)
#define TT_SCOPE_1_(f, a, call) \
  ({ tt_tensor *tt_s_a_ = tt_scope_arg_(a); tt_s_a_ ? tt_scope_own(call) : tt_scope_skip(#f); })
#define TT_SCOPE_2_(f, a, b, call) \
  ({ tt_tensor *tt_s_a_ = tt_scope_arg_(a), *tt_s_b_ = tt_scope_arg_(b); \
     tt_s_a_ && tt_s_b_ ? tt_scope_own(call) : tt_scope_skip(#f); })
#define TT_SCOPE_3_(f, a, b, c, call) \
  ({ tt_tensor *tt_s_a_ = tt_scope_arg_(a), *tt_s_b_ = tt_scope_arg_(b), *tt_s_c_ = tt_scope_arg_(c); \
     tt_s_a_ && tt_s_b_ && tt_s_c_ ? tt_scope_own(call) : tt_scope_skip(#f); })

/* constructors */
#define tt_tensor_new(dt, ...) TT_SCOPE_0_(tt_tensor_new, tt_tensor_new((dt), __VA_ARGS__))
#define tt_tensor_new_like(t) TT_SCOPE_1_(tt_tensor_new_like, t, tt_tensor_new_like(tt_s_a_))
#define tt_zeros(dt, ...) TT_SCOPE_0_(tt_zeros, tt_zeros((dt), __VA_ARGS__))
#define tt_full(dt, ...) TT_SCOPE_0_(tt_full, tt_full((dt), __VA_ARGS__))
#define tt_zeros_like(t) TT_SCOPE_1_(tt_zeros_like, t, tt_zeros_like(tt_s_a_))
#define tt_scalar(...) TT_SCOPE_0_(tt_scalar, tt_scalar(__VA_ARGS__))
#define tt_tensor_from_data(dt, ...) TT_SCOPE_0_(tt_tensor_from_data, tt_tensor_from_data((dt), __VA_ARGS__))
#define tt_tensor_view_of(t, ...) TT_SCOPE_1_(tt_tensor_view_of, t, tt_tensor_view_of(tt_s_a_, __VA_ARGS__))
#define tt_detach(t) TT_SCOPE_1_(tt_detach, t, tt_detach(tt_s_a_))
/* attention, compare, conv, copy */
#define tt_attention(q, k, v, ...) \
  TT_SCOPE_3_(tt_attention, q, k, v, tt_attention(tt_s_a_, tt_s_b_, tt_s_c_, __VA_ARGS__))
#define tt_compare(op, a, b) TT_SCOPE_2_(tt_compare, a, b, tt_compare((op), tt_s_a_, tt_s_b_))
#define tt_compare_scalar(op, a, ...) \
  TT_SCOPE_1_(tt_compare_scalar, a, tt_compare_scalar((op), tt_s_a_, __VA_ARGS__))
#define tt_lt(a, b) TT_SCOPE_2_(tt_lt, a, b, tt_lt(tt_s_a_, tt_s_b_))
#define tt_le(a, b) TT_SCOPE_2_(tt_le, a, b, tt_le(tt_s_a_, tt_s_b_))
#define tt_gt(a, b) TT_SCOPE_2_(tt_gt, a, b, tt_gt(tt_s_a_, tt_s_b_))
#define tt_ge(a, b) TT_SCOPE_2_(tt_ge, a, b, tt_ge(tt_s_a_, tt_s_b_))
#define tt_eq(a, b) TT_SCOPE_2_(tt_eq, a, b, tt_eq(tt_s_a_, tt_s_b_))
#define tt_ne(a, b) TT_SCOPE_2_(tt_ne, a, b, tt_ne(tt_s_a_, tt_s_b_))
#define tt_where(c, a, b) TT_SCOPE_3_(tt_where, c, a, b, tt_where(tt_s_a_, tt_s_b_, tt_s_c_))
#define tt_masked_fill(x, m, ...) \
  TT_SCOPE_2_(tt_masked_fill, x, m, tt_masked_fill(tt_s_a_, tt_s_b_, __VA_ARGS__))
#define tt_conv2d(x, w, ...) TT_SCOPE_2_(tt_conv2d, x, w, tt_conv2d(tt_s_a_, tt_s_b_, __VA_ARGS__))
#define tt_conv2d_packed_forward_fused(pk, x, ...) \
  TT_SCOPE_1_(tt_conv2d_packed_forward_fused, x, tt_conv2d_packed_forward_fused((pk), tt_s_a_, __VA_ARGS__))
#define tt_contiguous(t) TT_SCOPE_1_(tt_contiguous, t, tt_contiguous(tt_s_a_))
#define tt_clone(t) TT_SCOPE_1_(tt_clone, t, tt_clone(tt_s_a_))
#define tt_cast(t, ...) TT_SCOPE_1_(tt_cast, t, tt_cast(tt_s_a_, __VA_ARGS__))
#define tt_to_device(t, ...) TT_SCOPE_1_(tt_to_device, t, tt_to_device(tt_s_a_, __VA_ARGS__))
#define tt_host_contiguous(t) TT_SCOPE_1_(tt_host_contiguous, t, tt_host_contiguous(tt_s_a_))
/* elementwise */
#define tt_binary(op, a, b) TT_SCOPE_2_(tt_binary, a, b, tt_binary((op), tt_s_a_, tt_s_b_))
#define tt_add(a, b) TT_SCOPE_2_(tt_add, a, b, tt_add(tt_s_a_, tt_s_b_))
#define tt_sub(a, b) TT_SCOPE_2_(tt_sub, a, b, tt_sub(tt_s_a_, tt_s_b_))
#define tt_mul(a, b) TT_SCOPE_2_(tt_mul, a, b, tt_mul(tt_s_a_, tt_s_b_))
#define tt_div(a, b) TT_SCOPE_2_(tt_div, a, b, tt_div(tt_s_a_, tt_s_b_))
#define tt_maximum(a, b) TT_SCOPE_2_(tt_maximum, a, b, tt_maximum(tt_s_a_, tt_s_b_))
#define tt_minimum(a, b) TT_SCOPE_2_(tt_minimum, a, b, tt_minimum(tt_s_a_, tt_s_b_))
#define tt_unary(op, al, be, x) TT_SCOPE_1_(tt_unary, x, tt_unary((op), (al), (be), tt_s_a_))
#define tt_neg(x) TT_SCOPE_1_(tt_neg, x, tt_neg(tt_s_a_))
#define tt_abs(x) TT_SCOPE_1_(tt_abs, x, tt_abs(tt_s_a_))
#define tt_exp(x) TT_SCOPE_1_(tt_exp, x, tt_exp(tt_s_a_))
#define tt_log(x) TT_SCOPE_1_(tt_log, x, tt_log(tt_s_a_))
#define tt_sqrt(x) TT_SCOPE_1_(tt_sqrt, x, tt_sqrt(tt_s_a_))
#define tt_square(x) TT_SCOPE_1_(tt_square, x, tt_square(tt_s_a_))
#define tt_relu(x) TT_SCOPE_1_(tt_relu, x, tt_relu(tt_s_a_))
#define tt_silu(x) TT_SCOPE_1_(tt_silu, x, tt_silu(tt_s_a_))
#define tt_gelu(x) TT_SCOPE_1_(tt_gelu, x, tt_gelu(tt_s_a_))
#define tt_sigmoid(x) TT_SCOPE_1_(tt_sigmoid, x, tt_sigmoid(tt_s_a_))
#define tt_tanh(x) TT_SCOPE_1_(tt_tanh, x, tt_tanh(tt_s_a_))
#define tt_softplus(x) TT_SCOPE_1_(tt_softplus, x, tt_softplus(tt_s_a_))
#define tt_leaky_relu(x, ...) TT_SCOPE_1_(tt_leaky_relu, x, tt_leaky_relu(tt_s_a_, __VA_ARGS__))
#define tt_clamp(x, ...) TT_SCOPE_1_(tt_clamp, x, tt_clamp(tt_s_a_, __VA_ARGS__))
#define tt_add_scalar(x, ...) TT_SCOPE_1_(tt_add_scalar, x, tt_add_scalar(tt_s_a_, __VA_ARGS__))
#define tt_mul_scalar(x, ...) TT_SCOPE_1_(tt_mul_scalar, x, tt_mul_scalar(tt_s_a_, __VA_ARGS__))
#define tt_affine(x, ...) TT_SCOPE_1_(tt_affine, x, tt_affine(tt_s_a_, __VA_ARGS__))
#define tt_pow_scalar(x, ...) TT_SCOPE_1_(tt_pow_scalar, x, tt_pow_scalar(tt_s_a_, __VA_ARGS__))
#define tt_reciprocal(x) TT_SCOPE_1_(tt_reciprocal, x, tt_reciprocal(tt_s_a_))
/* embedding, gemm, loss, norm (weight and bias are optional where the op allows it) */
#define tt_embedding(w, idx) TT_SCOPE_2_(tt_embedding, w, idx, tt_embedding(tt_s_a_, tt_s_b_))
#define tt_one_hot(idx, ...) TT_SCOPE_1_(tt_one_hot, idx, tt_one_hot(tt_s_a_, __VA_ARGS__))
#define tt_matmul(a, b) TT_SCOPE_2_(tt_matmul, a, b, tt_matmul(tt_s_a_, tt_s_b_))
#define tt_linear(x, w, ...) TT_SCOPE_2_(tt_linear, x, w, tt_linear(tt_s_a_, tt_s_b_, __VA_ARGS__))
#define tt_l1_loss(a, b) TT_SCOPE_2_(tt_l1_loss, a, b, tt_l1_loss(tt_s_a_, tt_s_b_))
#define tt_mse_loss(a, b) TT_SCOPE_2_(tt_mse_loss, a, b, tt_mse_loss(tt_s_a_, tt_s_b_))
#define tt_cross_entropy(l, t) TT_SCOPE_2_(tt_cross_entropy, l, t, tt_cross_entropy(tt_s_a_, tt_s_b_))
#define tt_bce_with_logits(l, t) TT_SCOPE_2_(tt_bce_with_logits, l, t, tt_bce_with_logits(tt_s_a_, tt_s_b_))
#define tt_group_norm(x, ...) TT_SCOPE_1_(tt_group_norm, x, tt_group_norm(tt_s_a_, __VA_ARGS__))
#define tt_group_norm_silu(x, ...) TT_SCOPE_1_(tt_group_norm_silu, x, tt_group_norm_silu(tt_s_a_, __VA_ARGS__))
#define tt_batch_norm(x, ...) TT_SCOPE_1_(tt_batch_norm, x, tt_batch_norm(tt_s_a_, __VA_ARGS__))
#define tt_batch_norm_leaky_relu(x, ...) \
  TT_SCOPE_1_(tt_batch_norm_leaky_relu, x, tt_batch_norm_leaky_relu(tt_s_a_, __VA_ARGS__))
#define tt_layer_norm(x, ...) TT_SCOPE_1_(tt_layer_norm, x, tt_layer_norm(tt_s_a_, __VA_ARGS__))
/* qlinear, quantize (the out-parameter dmin stays the caller's), random */
#define tt_dequantize_i8_rows(q, s) \
  TT_SCOPE_2_(tt_dequantize_i8_rows, q, s, tt_dequantize_i8_rows(tt_s_a_, tt_s_b_))
#define tt_qlinear(x, w, ...) TT_SCOPE_2_(tt_qlinear, x, w, tt_qlinear(tt_s_a_, tt_s_b_, __VA_ARGS__))
#define tt_codebook_argmin(z, cb, ...) \
  TT_SCOPE_2_(tt_codebook_argmin, z, cb, tt_codebook_argmin(tt_s_a_, tt_s_b_, __VA_ARGS__))
#define tt_rand(r, ...) TT_SCOPE_0_(tt_rand, tt_rand((r), __VA_ARGS__))
#define tt_randn(r, ...) TT_SCOPE_0_(tt_randn, tt_randn((r), __VA_ARGS__))
#define tt_multinomial(p, ...) TT_SCOPE_1_(tt_multinomial, p, tt_multinomial(tt_s_a_, __VA_ARGS__))
#define tt_dropout(x, ...) TT_SCOPE_1_(tt_dropout, x, tt_dropout(tt_s_a_, __VA_ARGS__))
/* reduce */
#define tt_sum(x) TT_SCOPE_1_(tt_sum, x, tt_sum(tt_s_a_))
#define tt_mean(x) TT_SCOPE_1_(tt_mean, x, tt_mean(tt_s_a_))
#define tt_sum_dims(x, ...) TT_SCOPE_1_(tt_sum_dims, x, tt_sum_dims(tt_s_a_, __VA_ARGS__))
#define tt_mean_dims(x, ...) TT_SCOPE_1_(tt_mean_dims, x, tt_mean_dims(tt_s_a_, __VA_ARGS__))
#define tt_sum_dim(x, ...) TT_SCOPE_1_(tt_sum_dim, x, tt_sum_dim(tt_s_a_, __VA_ARGS__))
#define tt_mean_dim(x, ...) TT_SCOPE_1_(tt_mean_dim, x, tt_mean_dim(tt_s_a_, __VA_ARGS__))
#define tt_sum_to(x, ...) TT_SCOPE_1_(tt_sum_to, x, tt_sum_to(tt_s_a_, __VA_ARGS__))
#define tt_cumsum(x, ...) TT_SCOPE_1_(tt_cumsum, x, tt_cumsum(tt_s_a_, __VA_ARGS__))
#define tt_max_dim(x, ...) TT_SCOPE_1_(tt_max_dim, x, tt_max_dim(tt_s_a_, __VA_ARGS__))
#define tt_argmax(x, ...) TT_SCOPE_1_(tt_argmax, x, tt_argmax(tt_s_a_, __VA_ARGS__))
#define tt_argmin(x, ...) TT_SCOPE_1_(tt_argmin, x, tt_argmin(tt_s_a_, __VA_ARGS__))
/* resample */
#define tt_upsample_nearest(x, ...) \
  TT_SCOPE_1_(tt_upsample_nearest, x, tt_upsample_nearest(tt_s_a_, __VA_ARGS__))
#define tt_max_pool2d(x, ...) TT_SCOPE_1_(tt_max_pool2d, x, tt_max_pool2d(tt_s_a_, __VA_ARGS__))
#define tt_avg_pool2d(x, ...) TT_SCOPE_1_(tt_avg_pool2d, x, tt_avg_pool2d(tt_s_a_, __VA_ARGS__))
#define tt_pool2d(x, ...) TT_SCOPE_1_(tt_pool2d, x, tt_pool2d(tt_s_a_, __VA_ARGS__))
#define tt_interpolate(x, ...) TT_SCOPE_1_(tt_interpolate, x, tt_interpolate(tt_s_a_, __VA_ARGS__))
/* shape (tt_cat is below: it checks every part) */
#define tt_reshape(t, ...) TT_SCOPE_1_(tt_reshape, t, tt_reshape(tt_s_a_, __VA_ARGS__))
#define tt_flatten(t, ...) TT_SCOPE_1_(tt_flatten, t, tt_flatten(tt_s_a_, __VA_ARGS__))
#define tt_permute(t, ...) TT_SCOPE_1_(tt_permute, t, tt_permute(tt_s_a_, __VA_ARGS__))
#define tt_transpose(t, ...) TT_SCOPE_1_(tt_transpose, t, tt_transpose(tt_s_a_, __VA_ARGS__))
#define tt_slice(t, ...) TT_SCOPE_1_(tt_slice, t, tt_slice(tt_s_a_, __VA_ARGS__))
#define tt_select(t, ...) TT_SCOPE_1_(tt_select, t, tt_select(tt_s_a_, __VA_ARGS__))
#define tt_unsqueeze(t, ...) TT_SCOPE_1_(tt_unsqueeze, t, tt_unsqueeze(tt_s_a_, __VA_ARGS__))
#define tt_squeeze(t, ...) TT_SCOPE_1_(tt_squeeze, t, tt_squeeze(tt_s_a_, __VA_ARGS__))
#define tt_expand(t, ...) TT_SCOPE_1_(tt_expand, t, tt_expand(tt_s_a_, __VA_ARGS__))
#define tt_pad2d(t, ...) TT_SCOPE_1_(tt_pad2d, t, tt_pad2d(tt_s_a_, __VA_ARGS__))
#define tt_repeat(t, ...) TT_SCOPE_1_(tt_repeat, t, tt_repeat(tt_s_a_, __VA_ARGS__))
/* softmax */
#define tt_softmax(x, ...) TT_SCOPE_1_(tt_softmax, x, tt_softmax(tt_s_a_, __VA_ARGS__))
#define tt_log_softmax(x, ...) TT_SCOPE_1_(tt_log_softmax, x, tt_log_softmax(tt_s_a_, __VA_ARGS__))
/* layers (taming/module.h) */
#define tt_conv2d_layer_forward(l, x) \
  TT_SCOPE_1_(tt_conv2d_layer_forward, x, tt_conv2d_layer_forward((l), tt_s_a_))
#define tt_linear_layer_forward(l, x) \
  TT_SCOPE_1_(tt_linear_layer_forward, x, tt_linear_layer_forward((l), tt_s_a_))
#define tt_group_norm_layer_forward(l, x) \
  TT_SCOPE_1_(tt_group_norm_layer_forward, x, tt_group_norm_layer_forward((l), tt_s_a_))
#define tt_group_norm_silu_layer_forward(l, x) \
  TT_SCOPE_1_(tt_group_norm_silu_layer_forward, x, tt_group_norm_silu_layer_forward((l), tt_s_a_))
#define tt_layer_norm_layer_forward(l, x) \
  TT_SCOPE_1_(tt_layer_norm_layer_forward, x, tt_layer_norm_layer_forward((l), tt_s_a_))
#define tt_batch_norm_layer_forward(l, x, ...) \
  TT_SCOPE_1_(tt_batch_norm_layer_forward, x, tt_batch_norm_layer_forward((l), tt_s_a_, __VA_ARGS__))
#define tt_batch_norm_lrelu_layer_forward(l, x, ...) \
  TT_SCOPE_1_(tt_batch_norm_lrelu_layer_forward, x, tt_batch_norm_lrelu_layer_forward((l), tt_s_a_, __VA_ARGS__))
static inline tt_tensor *tt_scope_cat_(int n, tt_tensor *const *ts, int dim) {
  for (int i = 0; i < n; i++)
    if (!ts[i]) return tt_scope_skip("tt_cat");
  return tt_scope_own(tt_cat(n, ts, dim));
}
#define tt_cat(...) tt_scope_cat_(__VA_ARGS__)
#endif /* !__cplusplus */

#endif
