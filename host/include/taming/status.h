/* status.h — error codes and the thread-local error message.
 *
 * Every library function returns a tt_status (or NULL for constructors, with the
 * status kept in tt_last_status()). The message says what failed, where (file,
 * tensor, key) and, where it can, what was expected and what was found.
 * Library code never calls exit(). */
#ifndef TAMING_STATUS_H
#define TAMING_STATUS_H

#include <stdarg.h>
#include "taming/export.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_status {
  TT_OK = 0,
  TT_ERR_INVALID,     /* a bad argument: wrong shape, dtype, range */
  TT_ERR_IO,          /* a file could not be opened, read or written */
  TT_ERR_FORMAT,      /* a file is corrupt, truncated or of the wrong kind */
  TT_ERR_NOMEM,       /* an allocation failed */
  TT_ERR_UNSUPPORTED, /* valid, but not supported (dtype, device, feature) */
  TT_ERR_NOT_FOUND,   /* a key, plugin or tensor that is not there */
  TT_ERR_PLUGIN,      /* a plugin was refused (ABI, missing callback) */
  TT_ERR_DEVICE,      /* a device (GPU) error */
  TT_ERR_SCRIPT,      /* a Lua error */
  TT_ERR_INTERNAL     /* a bug: an invariant was broken */
} tt_status;

/* Sets the thread's message (printf-style) and returns s, so a failure reads
 *   return tt_error(TT_ERR_INVALID, "conv2d: weight %s, expected ...", ...); */
TT_API tt_status tt_error(tt_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
TT_API tt_status tt_verror(tt_status s, const char *fmt, va_list ap);
/* Prefixes the current message with more context ("vqgan.ckpt: " + message). */
TT_API tt_status tt_error_prefix(tt_status s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
TT_API const char *tt_error_message(void);
TT_API tt_status tt_last_status(void);
TT_API void tt_error_clear(void);
TT_API const char *tt_status_name(tt_status s);

/* Propagate a failing status: TT_TRY(tt_something(...)); */
#define TT_TRY(expr)                 \
  do {                               \
    tt_status tt_try_s_ = (expr);    \
    if (tt_try_s_ != TT_OK) return tt_try_s_; \
  } while (0)

/* For programmer errors only (broken invariants), never for bad input. */
TT_API void tt_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define TT_ASSERT(e) ((e) ? (void)0 : tt_assert_fail(#e, __FILE__, __LINE__))

#ifdef __cplusplus
}
#endif
#endif
