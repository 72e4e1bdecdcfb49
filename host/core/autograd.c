/* autograd.c — the tape: nodes, backward, grad-of, no-grad mode. */
#include "config.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "taming/autograd.h"
#include "taming/ops.h"
#include "taming/profile.h"

static _Thread_local int grad_off;
static _Thread_local unsigned recompute_mask;
static _Atomic uint64_t next_seq = 1;
static _Atomic uint64_t next_mark = 1;
static _Atomic long live_nodes;

bool tt_grad_enabled(void) { return !grad_off; }

bool tt_grad_set_enabled(bool on) {
  bool prev = !grad_off;
  grad_off = !on;
  return prev;
}

unsigned tt_recompute_mode(void) { return recompute_mask; }

unsigned tt_recompute_set(unsigned mask) {
  unsigned prev = recompute_mask;
  recompute_mask = mask;
  return prev;
}

bool tt_requires_grad(const tt_tensor *t) { return t && (t->requires_grad || t->grad_fn); }

void tt_tensor_set_requires_grad(tt_tensor *t, bool on) { t->requires_grad = on; }

long tt_autograd_live_nodes(void) { return atomic_load(&live_nodes); }

/* What a node keeps of an input that needs a gradient: a leaf itself (its ->grad
 * is where the gradient lands), or, for the output of another op, a header with
 * its shape and its autograd link (grad_fn, out_index) but no data. Backward
 * functions read only the shapes of n->in; the data an op needs it saves in its
 * ctx, so an activation no backward reads is freed as soon as the forward is
 * done with it. */
static tt_tensor *input_edge(tt_tensor *x) {
  if (!x->grad_fn) return tt_tensor_ref(x);
  tt_tensor *e = calloc(1, sizeof *e);
  if (!e) return NULL;
  e->refcount = 1;
  e->dtype = x->dtype;
  e->device = x->device;
  e->ndim = x->ndim;
  memcpy(e->shape, x->shape, sizeof e->shape);
  memcpy(e->stride, x->stride, sizeof e->stride);
  e->requires_grad = x->requires_grad;
  e->grad_fn = x->grad_fn;
  atomic_fetch_add_explicit((_Atomic int *)&x->grad_fn->refcount, 1, memory_order_relaxed);
  e->out_index = x->out_index;
  return e;
}

tt_tensor *tt_saved_make(tt_tensor *t) {
  if (!t) return NULL;
  tt_node *p = t->grad_fn;
  if (p && p->recompute && !p->freed && t->offset == 0 && tt_tensor_is_contiguous(t)) {
    tt_tensor *e = input_edge(t);   /* shape and link, no data */
    if (e) return e;
  }
  return tt_detach(t);
}

tt_tensor *tt_saved_get(tt_tensor *s) {
  if (!s) return NULL;
  if (s->storage) return tt_tensor_ref(s);
  tt_node *p = s->grad_fn;
  if (!p || !p->recompute) {
    tt_error(TT_ERR_INTERNAL, "a saved tensor has neither data nor a node that recomputes it");
    return NULL;
  }
  if (p->freed) {
    tt_error(TT_ERR_INVALID, "recomputing the output of %s: its saved tensors were freed (pass retain_graph)", p->op);
    return NULL;
  }
  int prof = tt_profile_begin(p->op, "recompute");
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *y = p->recompute(p, s->out_index);
  tt_grad_set_enabled(prev);
  tt_profile_end(prof);
  if (y && !tt_tensor_same_shape(y, s)) {
    char a[128], b[128];
    tt_error(TT_ERR_INTERNAL, "%s recomputed an output of shape %s for a saved tensor of shape %s", p->op,
             tt_tensor_shape_str(y, a, sizeof a), tt_tensor_shape_str(s, b, sizeof b));
    tt_tensor_unref(y);
    return NULL;
  }
  return y;
}

/* Whether the input edge x stands for the tensor t (t itself, or another header
 * of the same op output). */
static bool is_tensor(const tt_tensor *x, const tt_tensor *t) {
  return x == t || (x->grad_fn && x->grad_fn == t->grad_fn && x->out_index == t->out_index);
}

tt_node *tt_node_new(const char *op, tt_backward_fn backward, void (*release)(tt_node *), int n_in,
                     tt_tensor *const *inputs, int n_out, size_t ctx_size) {
  if (grad_off) return NULL;
  bool any = false;
  for (int i = 0; i < n_in; i++)
    if (tt_requires_grad(inputs[i])) any = true;
  if (!any) return NULL;
  size_t ctx_off = sizeof(tt_node);
  ctx_off = (ctx_off + 15) & ~(size_t)15;
  size_t in_off = ctx_off + ((ctx_size + 15) & ~(size_t)15);
  size_t pend_off = in_off + sizeof(tt_tensor *) * (size_t)n_in;
  size_t want_off = pend_off + sizeof(tt_tensor *) * (size_t)n_out;
  size_t total = want_off + (size_t)n_in + 1;
  char *mem = calloc(1, total);
  if (!mem) {
    tt_error(TT_ERR_NOMEM, "out of memory recording %s on the autograd tape", op);
    return NULL;
  }
  tt_node *n = (tt_node *)mem;
  n->refcount = 1;
  n->seq = atomic_fetch_add(&next_seq, 1);
  n->op = op;
  n->backward = backward;
  n->release = release;
  n->n_in = n_in;
  n->n_out = n_out;
  n->ctx = ctx_size ? mem + ctx_off : NULL;
  n->in = (tt_tensor **)(mem + in_off);
  n->pending = (tt_tensor **)(mem + pend_off);
  n->want = (unsigned char *)(mem + want_off);
  atomic_fetch_add(&live_nodes, 1);
  for (int i = 0; i < n_in; i++) {
    if (!tt_requires_grad(inputs[i])) continue;
    if (!(n->in[i] = input_edge(inputs[i]))) {
      tt_node_unref(n);
      tt_error(TT_ERR_NOMEM, "out of memory recording %s on the autograd tape", op);
      return NULL;
    }
  }
  return n;
}

void tt_node_attach(tt_node *n, int k, tt_tensor *out) {
  if (!n || !out) return;
  atomic_fetch_add_explicit((_Atomic int *)&n->refcount, 1, memory_order_relaxed);
  if (out->grad_fn) tt_node_unref(out->grad_fn);
  out->grad_fn = n;
  out->out_index = k;
}

static void node_free_saved(tt_node *n) {
  if (n->freed) return;
  if (n->release) n->release(n);
  n->freed = true;
}

void tt_node_unref(tt_node *n) {
  if (!n) return;
  if (atomic_fetch_sub_explicit((_Atomic int *)&n->refcount, 1, memory_order_acq_rel) != 1) return;
  node_free_saved(n);
  for (int i = 0; i < n->n_in; i++) tt_tensor_unref(n->in[i]);
  for (int k = 0; k < n->n_out; k++) tt_tensor_unref(n->pending[k]);
  atomic_fetch_sub(&live_nodes, 1);
  free(n);
}

void tt_node_release_tensors(tt_tensor **ts, int n) {
  for (int i = 0; i < n; i++) tt_tensor_release(&ts[i]);
}

/* slot += g: in place when nothing else can see the slot's tensor or its data
 * (one reference to each, no history), else out of place, so that a gradient
 * shared by two slots, or held by the caller, is never mutated. */
static tt_status accumulate(tt_tensor **slot, tt_tensor *g) {
  TT_PROFILE_SCOPE("grad_accumulate", "backward");
  if (!*slot) {
    *slot = tt_tensor_ref(g);
    return TT_OK;
  }
  tt_tensor *t = *slot;
  if (t != g && t->refcount == 1 && t->storage && t->storage->refcount == 1 && !t->grad_fn &&
      t->dtype == TT_F32 && g->dtype == TT_F32 && tt_tensor_same_shape(t, g) && tt_tensor_is_contiguous(t) &&
      t->storage != g->storage)
    return tt_axpy_(t, 1.0f, g);
  tt_tensor *s = tt_add(*slot, g);
  if (!s) return tt_last_status();
  tt_tensor_unref(*slot);
  *slot = s;
  return TT_OK;
}

typedef struct {
  tt_node **items;
  int n, cap;
} node_list;

static tt_status list_push(node_list *l, tt_node *n) {
  if (l->n == l->cap) {
    int cap = l->cap ? l->cap * 2 : 64;
    tt_node **p = realloc(l->items, sizeof *p * (size_t)cap);
    if (!p) return tt_error(TT_ERR_NOMEM, "out of memory walking the autograd graph");
    l->items = p;
    l->cap = cap;
  }
  l->items[l->n++] = n;
  return TT_OK;
}

static int by_seq_desc(const void *a, const void *b) {
  uint64_t x = (*(tt_node *const *)a)->seq, y = (*(tt_node *const *)b)->seq;
  return x < y ? 1 : x > y ? -1 : 0;
}

/* Every node reachable from the roots, newest first (reverse tape order). */
static tt_status collect(int n_roots, tt_tensor *const *roots, node_list *out) {
  uint64_t mark = atomic_fetch_add(&next_mark, 1);
  node_list stack = {0};
  tt_status s = TT_OK;
  for (int r = 0; r < n_roots && s == TT_OK; r++) {
    tt_node *g = roots[r]->grad_fn;
    if (g && g->mark != mark) {
      g->mark = mark;
      s = list_push(&stack, g);
    }
  }
  while (s == TT_OK && stack.n > 0) {
    tt_node *n = stack.items[--stack.n];
    s = list_push(out, n);
    /* the walk holds each node: a backward releases inputs, and with them the
     * last reference to an older node still waiting in the list */
    if (s == TT_OK) atomic_fetch_add_explicit((_Atomic int *)&n->refcount, 1, memory_order_relaxed);
    for (int i = 0; s == TT_OK && i < n->n_in; i++) {
      tt_node *p = n->in[i] ? n->in[i]->grad_fn : NULL;
      if (p && p->mark != mark) {
        p->mark = mark;
        s = list_push(&stack, p);
      }
    }
  }
  free(stack.items);
  if (s == TT_OK) qsort(out->items, (size_t)out->n, sizeof *out->items, by_seq_desc);
  return s;
}

static tt_status check_grad_shape(const tt_node *n, int i, const tt_tensor *g) {
  const tt_tensor *x = n->in[i];
  if (tt_tensor_same_shape(x, g)) return TT_OK;
  char a[128], b[128];
  return tt_error(TT_ERR_INTERNAL, "backward of %s: gradient %d has shape %s, its input has %s", n->op, i,
                  tt_tensor_shape_str(g, a, sizeof a), tt_tensor_shape_str(x, b, sizeof b));
}

/* The walk shared by tt_backward and tt_autograd_grad. With targets, gradients
 * reaching those tensors are gathered into captured[] instead of leaf ->grad. */
static tt_status run_backward(int n_roots, tt_tensor *const *roots, tt_tensor *const *seeds,
                              bool retain, int n_targets, tt_tensor *const *targets,
                              tt_tensor **captured) {
  node_list order = {0};
  tt_status s = collect(n_roots, roots, &order);
  bool prev = tt_grad_set_enabled(false);
  tt_tensor *grad_in_buf[32];
  tt_tensor **grad_in = grad_in_buf;
  uint64_t relevant = 0;

  if (s == TT_OK && n_targets > 0) {
    /* Prune: a node matters only if some path from it reaches a target. Walk oldest
     * first so that inputs' nodes are decided before their consumers. */
    relevant = atomic_fetch_add(&next_mark, 1);
    for (int k = order.n - 1; k >= 0; k--) {
      tt_node *n = order.items[k];
      for (int i = 0; i < n->n_in; i++) {
        tt_tensor *x = n->in[i];
        if (!x) continue;
        bool hit = false;
        for (int t = 0; t < n_targets; t++)
          if (is_tensor(x, targets[t])) hit = true;
        if (hit || (x->grad_fn && x->grad_fn->mark == relevant)) {
          n->mark = relevant;
          break;
        }
      }
    }
  }
  /* seed */
  for (int r = 0; s == TT_OK && r < n_roots; r++) {
    tt_tensor *t = roots[r], *g = seeds[r];
    tt_tensor *own = NULL;
    if (!g) {
      if (tt_tensor_numel(t) != 1) {
        char b[128];
        s = tt_error(TT_ERR_INVALID, "backward: a gradient is needed for a non-scalar output of shape %s",
                     tt_tensor_shape_str(t, b, sizeof b));
        break;
      }
      own = g = tt_full(TT_F32, t->ndim, t->shape, 1.0, t->device);
      if (!g) { s = tt_last_status(); break; }
    }
    if (n_targets > 0) {
      for (int k = 0; k < n_targets; k++)
        if (targets[k] == t) s = accumulate(&captured[k], g);
    }
    if (t->grad_fn) s = accumulate(&t->grad_fn->pending[t->out_index], g);
    else if (n_targets == 0 && t->requires_grad) s = accumulate(&t->grad, g);
    tt_tensor_unref(own);
  }

  for (int k = 0; s == TT_OK && k < order.n; k++) {
    tt_node *n = order.items[k];
    bool any = false;
    for (int o = 0; o < n->n_out; o++)
      if (n->pending[o]) any = true;
    if (!any) continue;
    if (n_targets > 0 && n->mark != relevant) {
      for (int o = 0; o < n->n_out; o++) tt_tensor_release(&n->pending[o]);
      continue;
    }
    if (n->freed) {
      s = tt_error(TT_ERR_INVALID,
                   "backward through %s a second time: its saved tensors were freed (pass retain_graph)",
                   n->op);
      break;
    }
    if (n->n_in > 32) {
      grad_in = calloc((size_t)n->n_in, sizeof *grad_in);
      if (!grad_in) { s = tt_error(TT_ERR_NOMEM, "out of memory in backward"); break; }
    } else {
      memset(grad_in_buf, 0, sizeof grad_in_buf);
      grad_in = grad_in_buf;
    }
    for (int i = 0; i < n->n_in; i++) {
      tt_tensor *x = n->in[i];
      bool w = x != NULL;
      if (w && n_targets > 0) {
        bool hit = false;
        for (int t = 0; t < n_targets; t++) if (is_tensor(x, targets[t])) hit = true;
        w = hit || (x->grad_fn && x->grad_fn->mark == relevant);
      }
      n->want[i] = w;
    }
    int prof = tt_profile_begin(n->op, "backward");
    s = n->backward(n, n->pending, grad_in);
    tt_profile_end(prof);
    if (s != TT_OK) tt_error_prefix(s, "backward of %s: ", n->op);
    for (int i = 0; i < n->n_in; i++) {
      tt_tensor *g = grad_in[i];
      if (!g) continue;
      tt_tensor *x = n->in[i];
      if (s == TT_OK && x && n->want[i]) {
        s = check_grad_shape(n, i, g);
        if (s == TT_OK && n_targets > 0) {
          for (int t = 0; t < n_targets; t++)
            if (is_tensor(x, targets[t]) && s == TT_OK) s = accumulate(&captured[t], g);
        }
        if (s == TT_OK) {
          if (x->grad_fn) s = accumulate(&x->grad_fn->pending[x->out_index], g);
          else if (n_targets == 0 && x->requires_grad) s = accumulate(&x->grad, g);
        }
      }
      tt_tensor_unref(g);
    }
    if (grad_in != grad_in_buf) free(grad_in);
    for (int o = 0; o < n->n_out; o++) tt_tensor_release(&n->pending[o]);
    if (!retain) {
      /* The node can never run again: its saved tensors and its inputs go now, so
       * that each activation is freed as soon as the last backward that reads it
       * has run, not when the loss tensor (which owns the graph) is collected. */
      node_free_saved(n);
      if (s == TT_OK)
        for (int i = 0; i < n->n_in; i++) tt_tensor_release(&n->in[i]);
    }
  }
  /* on failure, drop whatever is still pending */
  for (int k = 0; k < order.n; k++)
    for (int o = 0; o < order.items[k]->n_out; o++) tt_tensor_release(&order.items[k]->pending[o]);
  for (int k = 0; k < order.n; k++) tt_node_unref(order.items[k]);
  free(order.items);
  tt_grad_set_enabled(prev);
  return s;
}

tt_status tt_backward(tt_tensor *t, tt_tensor *grad, bool retain_graph) {
  if (!tt_requires_grad(t))
    return tt_error(TT_ERR_INVALID, "backward: the tensor does not require grad (no op recorded it)");
  if (grad && !tt_tensor_same_shape(grad, t)) {
    char a[128], b[128];
    return tt_error(TT_ERR_INVALID, "backward: gradient of shape %s for a tensor of shape %s",
                    tt_tensor_shape_str(grad, a, sizeof a), tt_tensor_shape_str(t, b, sizeof b));
  }
  tt_tensor *roots[1] = {t}, *seeds[1] = {grad};
  return run_backward(1, roots, seeds, retain_graph, 0, NULL, NULL);
}

tt_status tt_autograd_grad(int n_outputs, tt_tensor *const *outputs, int n_inputs,
                           tt_tensor *const *inputs, tt_tensor **grads_out, bool retain_graph) {
  tt_tensor *seeds[64] = {0};
  if (n_outputs > 64) return tt_error(TT_ERR_INVALID, "autograd.grad: at most 64 outputs");
  for (int i = 0; i < n_inputs; i++) grads_out[i] = NULL;
  for (int i = 0; i < n_outputs; i++)
    if (!tt_requires_grad(outputs[i]))
      return tt_error(TT_ERR_INVALID, "autograd.grad: output %d does not require grad", i + 1);
  tt_status s = run_backward(n_outputs, outputs, seeds, retain_graph, n_inputs, inputs, grads_out);
  for (int i = 0; s == TT_OK && i < n_inputs; i++) {
    if (!grads_out[i]) {
      grads_out[i] = tt_zeros_like(inputs[i]);
      if (!grads_out[i]) s = tt_last_status();
    }
  }
  if (s != TT_OK)
    for (int i = 0; i < n_inputs; i++) tt_tensor_release(&grads_out[i]);
  return s;
}

void tt_zero_grad(tt_tensor *t) { tt_tensor_release(&t->grad); }

tt_tensor *tt_detach(tt_tensor *t) {
  return tt_tensor_view_of(t, t->ndim, t->shape, t->stride, t->offset);
}
