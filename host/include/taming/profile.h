/* profile.h — where a training step spends its time and memory.
 *
 * While profiling is on, every op wrapper and every backward function of the
 * autograd tape is timed and the bytes of tensor storage it allocates are
 * counted, per (op, pass). Nested ops count towards the outermost one (the op
 * a model calls), so the rows add up to the time spent inside ops; the rest of
 * the wall time is Lua, data and bookkeeping ("(outside ops)").
 *
 *   TAMING_PROFILE=1 taming run ...        the whole run's table on stderr at exit
 *   train_vqgan.lua ... profile=3          the table of step 3
 *
 * Off (the default) it costs one relaxed atomic load per op. */
#ifndef TAMING_PROFILE_H
#define TAMING_PROFILE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include "taming/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Turns profiling on (clearing the counters) or off. Returns the previous state. */
TT_API bool tt_profile_set_enabled(bool on);
TT_API bool tt_profile_enabled(void);
/* Clears the counters and starts a new wall-clock window. */
TT_API void tt_profile_reset(void);
/* Writes the table of the window since the last reset, slowest row first. title
 * (may be NULL) heads it. */
TT_API void tt_profile_report(FILE *f, const char *title);
/* The window's peak of tensor storage in use on the CPU, and the amount in use
 * when it began (bytes). */
TT_API void tt_profile_memory(size_t *peak, size_t *at_start);

/* For op authors: brackets one op. pass is a string literal ("forward",
 * "backward", "update"); op must outlive the program (a literal or a static
 * name). begin returns a token for end. */
TT_API int tt_profile_begin(const char *op, const char *pass);
TT_API void tt_profile_end(int token);
/* Called by the storage allocator. */
TT_API void tt_profile_note_alloc(size_t nbytes, size_t in_use);

static inline void tt_profile_end_scope_(int *token) { tt_profile_end(*token); }
/* One line at the top of an op wrapper: the scope ends wherever the function returns. */
#define TT_PROFILE_OP(op) \
  int tt_prof_tok_ __attribute__((cleanup(tt_profile_end_scope_), unused)) = tt_profile_begin((op), "forward")
#define TT_PROFILE_SCOPE(op, pass) \
  int tt_prof_tok_ __attribute__((cleanup(tt_profile_end_scope_), unused)) = tt_profile_begin((op), (pass))

#ifdef __cplusplus
}
#endif
#endif
