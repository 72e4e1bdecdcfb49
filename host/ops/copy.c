/* ops/copy.c — copies, casts, fills and device transfers. */
#include "config.h"
#include <string.h>
#include "../core/backend_impl.h"
#include "taming/ops.h"
#include "taming/profile.h"

static tt_status broadcast_strides(const tt_tensor *src, const tt_tensor *dst, int64_t *strides) {
  int off = dst->ndim - src->ndim;
  if (off < 0) goto bad;
  for (int i = 0; i < dst->ndim; i++) {
    int j = i - off;
    if (j < 0) { strides[i] = 0; continue; }
    if (src->shape[j] == dst->shape[i]) strides[i] = src->stride[j];
    else if (src->shape[j] == 1) strides[i] = 0;
    else goto bad;
  }
  return TT_OK;
bad: {
  char a[128], b[128];
  return tt_error(TT_ERR_INVALID, "copy: cannot broadcast %s to %s", tt_tensor_shape_str(src, a, sizeof a),
                  tt_tensor_shape_str(dst, b, sizeof b));
}
}

tt_status tt_copy_(tt_tensor *dst, const tt_tensor *src) {
  TT_PROFILE_OP("copy_");
  if (dst->device != src->device) {
    /* cross-device: make a contiguous same-dtype copy on the source side, then transfer */
    if (!tt_tensor_same_shape(dst, src) || !tt_tensor_is_contiguous(dst) || dst->dtype != src->dtype) {
      tt_tensor *tmp = tt_tensor_new(dst->dtype, dst->ndim, dst->shape, src->device);
      if (!tmp) return tt_last_status();
      tt_status s = tt_copy_(tmp, src);
      if (s == TT_OK) s = tt_copy_(dst, tmp);
      tt_tensor_unref(tmp);
      return s;
    }
    tt_tensor *c = tt_contiguous((tt_tensor *)src);
    if (!c) return tt_last_status();
    size_t n = tt_tensor_nbytes(dst);
    tt_status s;
    if (src->device == TT_CPU) {
      tt_backend *b = tt_backend_get(dst->device);
      s = b ? b->copy_from_host(b, tt_tensor_data(dst), tt_tensor_data(c), n) : tt_last_status();
    } else if (dst->device == TT_CPU) {
      tt_backend *b = tt_backend_get(src->device);
      s = b ? b->copy_to_host(b, tt_tensor_data(dst), tt_tensor_data(c), n) : tt_last_status();
    } else {
      s = tt_error(TT_ERR_UNSUPPORTED, "copy between %s and %s", tt_device_name(src->device),
                   tt_device_name(dst->device));
    }
    tt_tensor_unref(c);
    return s;
  }
  tt_tensor view = *src;
  TT_TRY(broadcast_strides(src, dst, view.stride));
  view.ndim = dst->ndim;
  memcpy(view.shape, dst->shape, sizeof view.shape);
  tt_copy_strided_fn f = TT_KERNEL(dst->device, copy_strided);
  if (!f) return tt_last_status();
  return f(dst, &view);
}

tt_status tt_fill_(tt_tensor *t, double value) {
  TT_PROFILE_OP("fill_");
  if (!tt_tensor_is_contiguous(t)) {
    tt_tensor *v = tt_full(t->dtype, 0, NULL, value, t->device);
    if (!v) return tt_last_status();
    tt_status s = tt_copy_(t, v);
    tt_tensor_unref(v);
    return s;
  }
  tt_fill_fn f = TT_KERNEL(t->device, fill);
  if (!f) return tt_last_status();
  return f(t, value);
}

static tt_status identity_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  if (gy[0] && tt_node_wants(n, 0)) gx[0] = tt_tensor_ref(gy[0]);
  return TT_OK;
}

static tt_tensor *copy_op(tt_tensor *t, const char *name) {
  TT_PROFILE_OP(name);
  tt_tensor *out = tt_tensor_new(t->dtype, t->ndim, t->shape, t->device);
  if (!out) return NULL;
  if (tt_copy_(out, t) != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  tt_node *n = tt_node_new(name, identity_backward, NULL, 1, &t, 1, 0);
  if (n) {
    tt_node_attach(n, 0, out);
    tt_node_unref(n);
  }
  return out;
}

tt_tensor *tt_contiguous(tt_tensor *t) {
  if (tt_tensor_is_contiguous(t)) return tt_tensor_ref(t);
  return copy_op(t, "contiguous");
}

tt_tensor *tt_clone(tt_tensor *t) { return copy_op(t, "clone"); }

tt_tensor *tt_cast(tt_tensor *t, tt_dtype dt) {
  TT_PROFILE_OP("cast");
  if (t->dtype == dt) return tt_tensor_ref(t);
  tt_tensor *out = tt_tensor_new(dt, t->ndim, t->shape, t->device);
  if (!out) return NULL;
  if (tt_copy_(out, t) != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  return out;   /* no gradient across a cast */
}

typedef struct { tt_device from; } to_device_ctx;

static tt_status to_device_backward(tt_node *n, tt_tensor *const *gy, tt_tensor **gx) {
  to_device_ctx *c = n->ctx;
  if (gy[0] && tt_node_wants(n, 0)) {
    gx[0] = tt_to_device(gy[0], c->from);
    if (!gx[0]) return tt_last_status();
  }
  return TT_OK;
}

tt_tensor *tt_to_device(tt_tensor *t, tt_device dev) {
  TT_PROFILE_OP("to_device");
  if (t->device == dev) return tt_tensor_ref(t);
  tt_tensor *out = tt_tensor_new(t->dtype, t->ndim, t->shape, dev);
  if (!out) return NULL;
  if (tt_copy_(out, t) != TT_OK) {
    tt_tensor_unref(out);
    return NULL;
  }
  tt_node *n = tt_node_new("to_device", to_device_backward, NULL, 1, &t, 1, sizeof(to_device_ctx));
  if (n) {
    ((to_device_ctx *)n->ctx)->from = t->device;
    tt_node_attach(n, 0, out);
    tt_node_unref(n);
  }
  return out;
}

tt_status tt_tensor_read(const tt_tensor *t, void *dst) {
  if (!tt_tensor_is_contiguous(t)) {
    tt_tensor *c = tt_tensor_new(t->dtype, t->ndim, t->shape, t->device);
    if (!c) return tt_last_status();
    tt_status s = tt_copy_(c, t);
    if (s == TT_OK) s = tt_tensor_read(c, dst);
    tt_tensor_unref(c);
    return s;
  }
  tt_backend *b = tt_backend_get(t->device);
  if (!b) return tt_last_status();
  return b->copy_to_host(b, dst, tt_tensor_data(t), tt_tensor_nbytes(t));
}

tt_status tt_tensor_write(tt_tensor *t, const void *src) {
  if (!tt_tensor_is_contiguous(t))
    return tt_error(TT_ERR_INVALID, "tensor write: destination is not contiguous");
  tt_backend *b = tt_backend_get(t->device);
  if (!b) return tt_last_status();
  return b->copy_from_host(b, tt_tensor_data(t), src, tt_tensor_nbytes(t));
}

tt_tensor *tt_host_contiguous(const tt_tensor *t) {
  tt_tensor *x = (tt_tensor *)t;
  if (x->device == TT_CPU && tt_tensor_is_contiguous(x)) return tt_tensor_ref(x);
  tt_tensor *r = tt_tensor_new(x->dtype, x->ndim, x->shape, TT_CPU);
  if (r && tt_copy_(r, x) != TT_OK) tt_tensor_release(&r);
  return r;
}
