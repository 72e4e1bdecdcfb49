/* arena.h — scratch arenas: bump allocation with marks, freed all at once.
 *
 * Kernels take their workspaces (im2col columns, attention scores) from the
 * calling thread's arena instead of malloc/free per call:
 *   size_t m = tt_arena_mark(a); float *col = tt_arena_alloc(a, n, 64); ...; tt_arena_reset(a, m);
 * Memory is held in chunks, so growing never moves what was handed out. */
#ifndef TAMING_ARENA_H
#define TAMING_ARENA_H

#include <stddef.h>
#include "taming/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tt_arena tt_arena;

TT_API tt_arena *tt_arena_new(size_t chunk_bytes);
TT_API void tt_arena_free(tt_arena *a);
/* NULL when out of memory (no error message set; callers report it). */
TT_API void *tt_arena_alloc(tt_arena *a, size_t nbytes, size_t align);
TT_API size_t tt_arena_mark(const tt_arena *a);
TT_API void tt_arena_reset(tt_arena *a, size_t mark);
TT_API size_t tt_arena_capacity(const tt_arena *a);
/* The calling thread's arena (created on first use, freed at thread exit). */
TT_API tt_arena *tt_thread_arena(void);

#ifdef __cplusplus
}
#endif
#endif
