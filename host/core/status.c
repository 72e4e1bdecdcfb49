/* status.c — the thread-local error message behind every tt_status. */
#include "config.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "taming/status.h"

#define TT_MSG_MAX 2048

static _Thread_local char tt_msg[TT_MSG_MAX];
static _Thread_local tt_status tt_last;

tt_status tt_verror(tt_status s, const char *fmt, va_list ap) {
  vsnprintf(tt_msg, sizeof tt_msg, fmt, ap);
  tt_last = s;
  return s;
}

tt_status tt_error(tt_status s, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  tt_verror(s, fmt, ap);
  va_end(ap);
  return s;
}

tt_status tt_error_prefix(tt_status s, const char *fmt, ...) {
  char prefix[512], old[TT_MSG_MAX];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, tt_msg, sizeof old);
  size_t pl = strlen(prefix);
  if (pl >= sizeof tt_msg) pl = sizeof tt_msg - 1;
  memcpy(tt_msg, prefix, pl);
  size_t ol = strlen(old);
  if (pl + ol >= sizeof tt_msg) ol = sizeof tt_msg - 1 - pl;
  memcpy(tt_msg + pl, old, ol);
  tt_msg[pl + ol] = 0;
  tt_last = s;
  return s;
}

const char *tt_error_message(void) { return tt_msg[0] ? tt_msg : tt_status_name(tt_last); }
tt_status tt_last_status(void) { return tt_last; }

void tt_error_clear(void) {
  tt_msg[0] = 0;
  tt_last = TT_OK;
}

const char *tt_status_name(tt_status s) {
  switch (s) {
    case TT_OK: return "ok";
    case TT_ERR_INVALID: return "invalid argument";
    case TT_ERR_IO: return "I/O error";
    case TT_ERR_FORMAT: return "bad file format";
    case TT_ERR_NOMEM: return "out of memory";
    case TT_ERR_UNSUPPORTED: return "unsupported";
    case TT_ERR_NOT_FOUND: return "not found";
    case TT_ERR_PLUGIN: return "plugin refused";
    case TT_ERR_DEVICE: return "device error";
    case TT_ERR_SCRIPT: return "script error";
    case TT_ERR_INTERNAL: return "internal error";
  }
  return "unknown status";
}

void tt_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "taming: internal error: assertion '%s' failed at %s:%d\n", expr, file, line);
  abort();
}
