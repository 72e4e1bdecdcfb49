/* ops/quantize.c — nearest-codebook search (the argmin of vector quantisation).
 * No gradient: the quantizer's straight-through estimator and codebook loss
 * are built from other ops around the indices this returns. */
#include "config.h"
#include "common.h"

// z [N, D], codebook [K, D] -> idx [N] i64; *dmin_out [N] f32
tt_tensor *tt_codebook_argmin(tt_tensor *z, tt_tensor *codebook, tt_tensor **dmin_out) {
  TT_PROFILE_OP("codebook_argmin");
  const char *op = "codebook_argmin";
  tt_tensor *args[2] = {z, codebook};
  if (dmin_out) *dmin_out = NULL;
  if (tt_check_f32(op, "z", z) || tt_check_f32(op, "codebook", codebook) || tt_check_ndim(op, "z", z, 2) ||
      tt_check_ndim(op, "codebook", codebook, 2) || tt_check_same_device(op, 2, args))
    return NULL;
  if (z->shape[1] != codebook->shape[1] || codebook->shape[0] == 0) {
    char s1[TT_SHAPE_BUF], s2[TT_SHAPE_BUF];
    tt_error(TT_ERR_INVALID, "%s: expected z [N, D] and a non-empty codebook [K, D], found z %s, codebook %s", op,
             tt_tensor_shape_str(z, s1, sizeof s1), tt_tensor_shape_str(codebook, s2, sizeof s2));
    return NULL;
  }
  tt_codebook_argmin_fn f = TT_KERNEL(z->device, codebook_argmin);
  if (!f) return NULL;
  int64_t N = z->shape[0];
  tt_tensor *zc = NULL, *ec = NULL, *idx = NULL, *dmin = NULL;
  TT_NO_GRAD_BEGIN;
  zc = tt_contiguous(z);
  ec = tt_contiguous(codebook);
  TT_NO_GRAD_END;
  idx = tt_tensor_new(TT_I64, TT_DIMS(N), z->device);
  if (dmin_out) dmin = tt_tensor_new(TT_F32, TT_DIMS(N), z->device);
  if (!zc || !ec || !idx || (dmin_out && !dmin) || f(zc, ec, idx, dmin) != TT_OK) {
    tt_tensor_release(&idx);
    tt_tensor_release(&dmin);
  }
  tt_tensor_unref(zc);
  tt_tensor_unref(ec);
  if (dmin_out) *dmin_out = dmin;
  return idx;
}
