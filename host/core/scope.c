/* scope.c — scopes that own the temporaries of a forward pass (taming/scope.h).
 *
 * One stack per thread: the tensors every open scope owns, innermost last, and
 * where each scope's part of that stack begins. Ending a scope releases its
 * part except the kept tensors, whose references go to the caller. The stack's
 * memory is freed whenever the last scope of the thread ends, so a thread that
 * used scopes leaves nothing behind. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "taming/scope.h"

typedef struct {
  tt_tensor **items;          /* owned references, innermost scope's last */
  size_t n, cap;
  size_t start[TT_SCOPE_MAX_DEPTH];  /* where each open scope's items begin */
  int depth;
} scope_stack;

static _Thread_local scope_stack S;

void tt_scope_begin_at(const char *file, int line) {
  if (S.depth >= TT_SCOPE_MAX_DEPTH) tt_assert_fail("scope depth below TT_SCOPE_MAX_DEPTH (a tt_scope_end missing?)", file, line);
  S.start[S.depth++] = S.n;
}

static void free_stack_if_idle(void) {
  if (S.depth > 0 || S.n > 0) return;
  free(S.items);
  S.items = NULL;
  S.cap = 0;
}

tt_tensor *tt_scope_own(tt_tensor *t) {
  if (!t || S.depth == 0) return t;
  if (S.n == S.cap) {
    size_t cap = S.cap ? 2 * S.cap : 64;
    tt_tensor **p = realloc(S.items, cap * sizeof *p);
    if (!p) {
      tt_tensor_unref(t);
      tt_error(TT_ERR_NOMEM, "scope: out of memory holding %zu tensors", S.n + 1);
      return NULL;
    }
    S.items = p;
    S.cap = cap;
  }
  S.items[S.n++] = t;
  return t;
}

tt_tensor *tt_scope_end_n(int n, tt_tensor *const *keep) {
  TT_ASSERT(S.depth > 0);
  size_t from = S.start[--S.depth];
  /* each kept tensor takes one of the scope's references to it, or a new one */
  for (int i = 0; i < n; i++) {
    if (!keep[i]) continue;
    size_t j = from;
    while (j < S.n && S.items[j] != keep[i]) j++;
    if (j < S.n) S.items[j] = NULL;
    else tt_tensor_ref(keep[i]);
  }
  /* release the rest, newest first (the order an unref-as-you-go pass would take) */
  for (size_t j = S.n; j > from; j--) tt_tensor_unref(S.items[j - 1]);
  S.n = from;
  free_stack_if_idle();
  return n > 0 ? keep[0] : NULL;
}

tt_status tt_scope_return_n(tt_value *rets, int *nrets, int n, tt_tensor *const *keep) {
  bool all = true;
  for (int i = 0; i < n; i++) all = all && keep[i];
  tt_scope_end_n(all ? n : 0, keep);
  if (!all) return tt_last_status() != TT_OK ? tt_last_status() : tt_error(TT_ERR_INTERNAL, "scope: a result is NULL");
  for (int i = 0; i < n; i++) rets[i] = tt_value_tensor_steal(keep[i]);
  *nrets = n;
  return TT_OK;
}

/* the slot of t in the innermost scope (the newest one); S.n when that scope does not own it */
static size_t find(const tt_tensor *t) {
  size_t from = S.depth > 0 ? S.start[S.depth - 1] : S.n;
  for (size_t j = S.n; j > from; j--)
    if (S.items[j - 1] == t) return j - 1;
  return S.n;
}

/* removes slot j of the innermost scope, moving the later ones down */
static void remove_slot(size_t j) {
  memmove(S.items + j, S.items + j + 1, (S.n - j - 1) * sizeof *S.items);
  S.n--;
}

void tt_scope_drop(tt_tensor *t) {
  if (!t) return;
  size_t j = find(t);
  if (j == S.n) return;
  remove_slot(j);
  tt_tensor_unref(t);
}

tt_tensor *tt_scope_replace(tt_tensor *dead, tt_tensor *next) {
  if (dead != next) tt_scope_drop(dead);
  return next;
}

tt_tensor *tt_scope_detach(tt_tensor *t) {
  if (!t) return NULL;
  size_t j = find(t);
  if (j < S.n) remove_slot(j);
  else tt_tensor_ref(t);   /* not the scope's: the caller still gets its own reference */
  return t;
}

int tt_scope_depth(void) { return S.depth; }

size_t tt_scope_owned(void) { return S.n; }

tt_tensor *tt_scope_skip(const char *op) {
  if (tt_last_status() == TT_OK) tt_error(TT_ERR_INVALID, "%s: an input tensor is NULL (no earlier error was recorded)", op);
  return NULL;
}
