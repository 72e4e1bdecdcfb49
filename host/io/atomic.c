/* atomic.c — crash-safe file replacement for every writer in the library.
 *
 * A file is written to PATH.tmp.XXXXXX in the same directory (rename is only
 * atomic within one filesystem), flushed and fsynced, renamed over PATH, and
 * the directory is fsynced so the rename itself survives a power loss. Until
 * the rename the old PATH is untouched; on any failure the temporary file is
 * removed. */
#include "config.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "taming/io.h"

/* mkstemp creates 0600 files; a finished file should get the usual 0666 & ~umask.
 * umask() cannot be read without changing it (racy with other threads), so
 * read it from /proc and fall back to the common 022. */
static mode_t current_umask(void) {
  mode_t m = 022;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return m;
  char line[256];
  while (fgets(line, sizeof line, f)) {
    unsigned v;
    if (sscanf(line, "Umask: %o", &v) == 1) {
      m = (mode_t)v;
      break;
    }
  }
  fclose(f);
  return m;
}

static void reset(tt_atomic_file *f) {
  free(f->path);
  free(f->tmp_path);
  f->path = f->tmp_path = NULL;
  f->fd = -1;
  f->fp = NULL;
}

tt_status tt_atomic_open(tt_atomic_file *f, const char *path) {
  f->path = f->tmp_path = NULL;
  f->fd = -1;
  f->fp = NULL;
  if (!path || !*path) return tt_error(TT_ERR_INVALID, "atomic write: empty path");
  size_t n = strlen(path);
  f->path = strdup(path);
  f->tmp_path = malloc(n + sizeof ".tmp.XXXXXX");
  if (!f->path || !f->tmp_path) {
    reset(f);
    return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  }
  memcpy(f->tmp_path, path, n);
  memcpy(f->tmp_path + n, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
  f->fd = mkstemp(f->tmp_path);
  if (f->fd < 0) {
    tt_status s = tt_error(TT_ERR_IO, "%s: cannot create a temporary file next to it: %s", path, strerror(errno));
    reset(f);
    return s;
  }
  /* not fatal if refused: the file is then written with owner-only permissions */
  (void)fchmod(f->fd, 0666 & ~current_umask());
  f->fp = fdopen(f->fd, "wb");
  if (!f->fp) {
    tt_status s = tt_error(TT_ERR_IO, "%s: fdopen: %s", f->tmp_path, strerror(errno));
    close(f->fd);
    unlink(f->tmp_path);
    reset(f);
    return s;
  }
  return TT_OK;
}

tt_status tt_atomic_write(tt_atomic_file *f, const void *data, size_t n) {
  if (!f->fp) return tt_error(TT_ERR_INVALID, "atomic write: the file is not open");
  if (n && fwrite(data, 1, n, f->fp) != n)
    return tt_error(TT_ERR_IO, "%s: write failed: %s", f->path, strerror(errno));
  return TT_OK;
}

static tt_status fail(tt_atomic_file *f, const char *what, int err) {
  tt_status s = tt_error(TT_ERR_IO, "%s: %s failed: %s (the previous file, if any, is unchanged)", f->path,
                         what, strerror(err));
  if (f->fp) fclose(f->fp);
  f->fp = NULL;
  unlink(f->tmp_path);
  reset(f);
  return s;
}

tt_status tt_atomic_commit(tt_atomic_file *f) {
  if (!f->fp) return tt_error(TT_ERR_INVALID, "atomic write: the file is not open");
  FILE *fp = f->fp;
  if (fflush(fp) != 0 || ferror(fp)) return fail(f, "write", errno ? errno : EIO);
  if (fsync(f->fd) != 0) return fail(f, "fsync", errno);
  f->fp = NULL;
  if (fclose(fp) != 0) return fail(f, "close", errno);
  if (rename(f->tmp_path, f->path) != 0) return fail(f, "rename", errno);
  /* make the rename durable: fsync the directory that holds the entry */
  char *slash = strrchr(f->path, '/');
  const char *dir = ".";
  if (slash == f->path) dir = "/";
  else if (slash) {
    *slash = 0;
    dir = f->path;
  }
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    /* some filesystems refuse fsync on directories (EINVAL); the data is safe anyway */
    (void)fsync(dfd);
    close(dfd);
  }
  if (slash) *slash = '/';
  reset(f);
  return TT_OK;
}

void tt_atomic_abort(tt_atomic_file *f) {
  if (!f) return;
  if (f->fp) fclose(f->fp);
  else if (f->fd >= 0) close(f->fd);
  if (f->tmp_path) unlink(f->tmp_path);
  reset(f);
}
