/* arena.c — chunked bump allocator for kernel scratch memory. */
#include "config.h"
#include <stdint.h>
#include <stdlib.h>
#include <pthread.h>
#include "taming/arena.h"

typedef struct chunk {
  struct chunk *next;
  size_t size, used;
  size_t base;            /* arena offset of this chunk's first byte (for marks) */
  unsigned char *data;
} chunk;

struct tt_arena {
  chunk *head, *cur;
  size_t chunk_bytes;
  size_t total;           /* sum of chunk sizes */
};

tt_arena *tt_arena_new(size_t chunk_bytes) {
  tt_arena *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->chunk_bytes = chunk_bytes ? chunk_bytes : (1u << 20);
  return a;
}

void tt_arena_free(tt_arena *a) {
  if (!a) return;
  for (chunk *c = a->head; c;) {
    chunk *n = c->next;
    free(c->data);
    free(c);
    c = n;
  }
  free(a);
}

static chunk *chunk_new(size_t size, size_t base) {
  chunk *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  if (posix_memalign((void **)&c->data, 64, size) != 0) {
    free(c);
    return NULL;
  }
  c->size = size;
  c->base = base;
  return c;
}

void *tt_arena_alloc(tt_arena *a, size_t n, size_t align) {
  if (align < 16) align = 16;
  for (chunk *c = a->cur; c; c = c->next) {
    uintptr_t p = (uintptr_t)(c->data + c->used);
    size_t pad = (align - p % align) % align;
    if (c->used + pad + n <= c->size) {
      c->used += pad + n;
      a->cur = c;
      return (void *)(p + pad);
    }
    /* later chunks are empty after a reset: move on to them */
    if (c->next) c->next->used = 0;
  }
  size_t size = a->chunk_bytes;
  while (size < n + align) size *= 2;
  chunk *c = chunk_new(size, a->total);
  if (!c) return NULL;
  a->total += size;
  if (!a->head) a->head = c;
  else {
    chunk *last = a->head;
    while (last->next) last = last->next;
    last->next = c;
  }
  a->cur = c;
  uintptr_t p = (uintptr_t)c->data;
  size_t pad = (align - p % align) % align;
  c->used = pad + n;
  return (void *)(p + pad);
}

size_t tt_arena_mark(const tt_arena *a) { return a->cur ? a->cur->base + a->cur->used : 0; }

void tt_arena_reset(tt_arena *a, size_t mark) {
  for (chunk *c = a->head; c; c = c->next) {
    if (mark >= c->base && mark <= c->base + c->size) {
      c->used = mark - c->base;
      for (chunk *n = c->next; n; n = n->next) n->used = 0;
      a->cur = c;
      return;
    }
  }
  a->cur = a->head;
  if (a->head) a->head->used = 0;
}

size_t tt_arena_capacity(const tt_arena *a) { return a->total; }

static pthread_key_t arena_key;
static pthread_once_t arena_once = PTHREAD_ONCE_INIT;
static void arena_destroy(void *p) { tt_arena_free(p); }
static void arena_key_init(void) { pthread_key_create(&arena_key, arena_destroy); }

tt_arena *tt_thread_arena(void) {
  pthread_once(&arena_once, arena_key_init);
  tt_arena *a = pthread_getspecific(arena_key);
  if (!a) {
    a = tt_arena_new(4u << 20);
    pthread_setspecific(arena_key, a);
  }
  return a;
}
