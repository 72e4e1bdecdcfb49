/* autograd.h — reverse-mode differentiation with a tape.
 *
 * While gradients are enabled, every op whose inputs need a gradient records a
 * node: its inputs' autograd links, what it saved for the backward pass, and its
 * backward function. n->in[i] is the leaf itself, or for another op's output a
 * header with its shape and link but NO data: a backward function reads only
 * shapes there and keeps the data it needs in its ctx (so that activations no
 * backward reads are freed during the forward pass). A backward without
 * retain_graph releases each node's ctx and inputs as soon as it has run. Nodes carry a sequence number — the tape
 * order. tt_backward(loss) collects the nodes the loss depends on, walks them in
 * reverse tape order and accumulates gradients into leaves (t->grad).
 * Plugin authors write forward code only; op authors write a forward and a
 * backward function side by side (see host/ops/). */
#ifndef TAMING_AUTOGRAD_H
#define TAMING_AUTOGRAD_H

#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_node tt_node;
/* grad_out[k]: gradient of output k (NULL when that output got none: treat as zero).
 * grad_in[i] (to fill): gradient for input i; leave NULL when in[i] is NULL or
 * needs none. Runs with gradients disabled. */
typedef tt_status (*tt_backward_fn)(tt_node *n, tt_tensor *const *grad_out, tt_tensor **grad_in);

struct tt_node {
  int refcount;
  uint64_t seq;                /* tape position */
  const char *op;              /* for messages: "conv2d" */
  tt_backward_fn backward;
  void (*release)(tt_node *n); /* frees what ctx holds (saved tensors); may be NULL */
  int n_in;
  tt_tensor **in;              /* inputs that need a gradient (others NULL); shape and link only */
  int n_out;
  tt_tensor **pending;         /* gradients gathered for the outputs during a backward pass */
  void *ctx;                   /* op-owned saved state (zeroed, freed with the node) */
  bool freed;                  /* saved state released (graph not retained) */
  unsigned char *want;         /* during backward: which inputs need a gradient now */
  uint64_t mark;               /* traversal bookkeeping */
  /* optional: output k computed again from the saved state (a new tensor), so
   * that a consumer can save a header without data instead of the output
   * (tt_saved_make); set only while the op's recompute mode is on */
  tt_tensor *(*recompute)(tt_node *n, int k);
};

/* In a backward function: whether grad_in[i] must be computed. */
static inline bool tt_node_wants(const tt_node *n, int i) { return n->want[i] != 0; }

/* Gradient mode of the calling thread (on by default). Returns the previous mode. */
TT_API bool tt_grad_enabled(void);
TT_API bool tt_grad_set_enabled(bool on);
/* True when t is a leaf that requires grad or the output of a recorded op. */
TT_API bool tt_requires_grad(const tt_tensor *t);
TT_API void tt_tensor_set_requires_grad(tt_tensor *t, bool on);

/* For op authors. Returns NULL (and records nothing) when grad mode is off or no
 * input needs a gradient; otherwise a node with n_in input slots (filled with
 * references to the inputs that need gradients) and ctx_size zeroed bytes. */
TT_API tt_node *tt_node_new(const char *op, tt_backward_fn backward, void (*release)(tt_node *),
                            int n_in, tt_tensor *const *inputs, int n_out, size_t ctx_size);
/* Makes out the k-th output of n (out takes a reference to n). */
TT_API void tt_node_attach(tt_node *n, int k, tt_tensor *out);
/* Drops the creator's reference after attaching outputs. */
TT_API void tt_node_unref(tt_node *n);
/* Helper for release functions: unref an array of saved tensors. */
TT_API void tt_node_release_tensors(tt_tensor **ts, int n);

/* Recompute modes (a mask, per thread, off by default): with TT_RECOMPUTE_NORM_ACT
 * the fused norm + activation ops (group_norm_silu, batch_norm_leaky_relu) let
 * the ops that consume their output keep no copy of it for the backward: it is
 * computed again from the norm's saved input and statistics when the consumer's
 * backward needs it, bit for bit the same. Less activation memory for one
 * more pass over those tensors. Returns the previous mask. */
#define TT_RECOMPUTE_NORM_ACT 1u
TT_API unsigned tt_recompute_mode(void);
TT_API unsigned tt_recompute_set(unsigned mask);
/* For op authors: what to keep of t for the backward. A detached view of t, or,
 * where t is an output of a node that can recompute it, a header without data
 * (holding that node) that tt_saved_get rebuilds. Release it with tt_tensor_unref. */
TT_API tt_tensor *tt_saved_make(tt_tensor *t);
/* A new reference to the saved tensor's data: s itself, or s recomputed. NULL
 * with the error set when the recomputing node's saved state is gone. */
TT_API tt_tensor *tt_saved_get(tt_tensor *s);

/* Backpropagates from t (grad = d(objective)/dt, NULL means ones for a one-element t).
 * Gradients add into every reachable leaf's ->grad. Unless retain_graph, the
 * nodes' saved state is freed and a second backward through them is an error. */
TT_API tt_status tt_backward(tt_tensor *t, tt_tensor *grad, bool retain_graph);
/* Gradients of sum(outputs) w.r.t. inputs without touching ->grad (like
 * torch.autograd.grad); grads_out[i] receives a new tensor (zeros if unreachable).
 * Only the part of the graph that leads to the inputs is evaluated. */
TT_API tt_status tt_autograd_grad(int n_outputs, tt_tensor *const *outputs, int n_inputs,
                                  tt_tensor *const *inputs, tt_tensor **grads_out, bool retain_graph);
/* Sets t->grad to NULL. */
TT_API void tt_zero_grad(tt_tensor *t);
/* A tensor sharing t's data with no autograd history. */
TT_API tt_tensor *tt_detach(tt_tensor *t);
/* Counts nodes alive (for leak tests). */
TT_API long tt_autograd_live_nodes(void);

/* A no-grad scope:  TT_NO_GRAD_BEGIN; ... ; TT_NO_GRAD_END;  (must not return in between) */
#define TT_NO_GRAD_BEGIN { bool tt_ng_prev_ = tt_grad_set_enabled(false);
#define TT_NO_GRAD_END   tt_grad_set_enabled(tt_ng_prev_); }

#ifdef __cplusplus
}
#endif
#endif
