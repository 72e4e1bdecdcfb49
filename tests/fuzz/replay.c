/* replay.c — main() for a fuzz target in the normal build: runs
 * LLVMFuzzerTestOneInput once on each file given (folders: on each file in
 * them), or, without arguments, on $TT_SRCDIR/tests/fuzz/regress/TARGET and
 * $TT_SRCDIR/tests/fuzz/corpus/TARGET, TARGET being the program's name less
 * "replay_" (tests/fuzz/replay_pickle replays pickle). This is the `make check`
 * test of every target: each input that ever crashed, leaked or blew up stays
 * fixed.
 *
 * Each input runs in a child process, so one that fails does not hide the
 * others, and LeakSanitizer checks each on its own (FUZZ_IN_PROCESS=1 runs
 * them in this process, for a debugger). The limits are the fuzzers', so an
 * input that blew up there fails here too: an allocation over
 * FUZZ_MALLOC_LIMIT_MB (default 1024) aborts naming its size, an input that
 * takes over FUZZ_TIMEOUT (seconds, default 60) aborts, and the peak RSS must
 * stay under FUZZ_RSS_LIMIT_MB (default 1024, the bound the readers promise;
 * 2048 under ASan, whose shadow memory and quarantine count). Under
 * AddressSanitizer the allocation limit is ASan's max_allocation_size_mb. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "fuzz.h"

#if defined(__SANITIZE_ADDRESS__)
#define REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_ASAN 1
#endif
#endif

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *current = "(none)";
static bool in_process;   /* FUZZ_IN_PROCESS=1: no fork per input (for a debugger) */
#ifdef REPLAY_ASAN
#define RSS_LIMIT_MB 2048
#else
#define RSS_LIMIT_MB 1024
#endif
static long rss_limit_mb = RSS_LIMIT_MB;

static long env_long(const char *name, long def) {
  const char *v = getenv(name);
  return v && *v ? strtol(v, NULL, 10) : def;
}

#ifdef REPLAY_ASAN
/* ASan's own allocation-size limit gives the report (with a stack) that
 * libFuzzer's -malloc_limit_mb gives; ASAN_OPTIONS may override it. */
/* (default visibility: the tree builds with -fvisibility=hidden, and gcc's
 * libasan.so looks the symbol up in the executable) */
#define REPLAY_EXPORT __attribute__((visibility("default")))
REPLAY_EXPORT const char *__asan_default_options(void);
REPLAY_EXPORT const char *__asan_default_options(void) { return "max_allocation_size_mb=1024:allocator_may_return_null=0"; }
#else
/* Without ASan, the allocation functions of this program stand in front of
 * glibc's (ELF interposition reaches libtaming, libpng, libjpeg too; they need
 * default visibility for that, the tree builds with -fvisibility=hidden). */
#define REPLAY_EXPORT __attribute__((visibility("default")))
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
static size_t malloc_limit = (size_t)1024 << 20;

static void too_big(size_t n) {
  char msg[256];
  int len = snprintf(msg, sizeof msg, "replay: %s: an allocation of %zu bytes (over the %zu MB limit)\n", current, n,
                     malloc_limit >> 20);
  if (write(2, msg, (size_t)len) < 0) abort();
  abort();
}
REPLAY_EXPORT void *malloc(size_t n) {
  if (n > malloc_limit) too_big(n);
  return __libc_malloc(n);
}
REPLAY_EXPORT void *calloc(size_t k, size_t n) {
  if (n && k > malloc_limit / n) too_big(k * n);
  return __libc_calloc(k, n);
}
REPLAY_EXPORT void *realloc(void *p, size_t n) {
  if (n > malloc_limit) too_big(n);
  return __libc_realloc(p, n);
}
REPLAY_EXPORT int posix_memalign(void **p, size_t align, size_t n) {
  if (n > malloc_limit) too_big(n);
  *p = __libc_memalign(align, n);
  return *p ? 0 : ENOMEM;
}
REPLAY_EXPORT void *aligned_alloc(size_t align, size_t n) {
  if (n > malloc_limit) too_big(n);
  return __libc_memalign(align, n);
}
#endif

static void on_alarm(int sig) {
  (void)sig;
  char msg[512];
  int len = snprintf(msg, sizeof msg, "replay: %s: timed out\n", current);
  if (write(2, msg, (size_t)len) < 0) abort();
  abort();
}

/* of this process, or of the largest child (the inputs run in children) */
static long peak_rss_mb(void) {
  struct rusage ru, rc;
  getrusage(RUSAGE_SELF, &ru);
  getrusage(RUSAGE_CHILDREN, &rc);
  return (ru.ru_maxrss > rc.ru_maxrss ? ru.ru_maxrss : rc.ru_maxrss) / 1024;
}

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: %s: cannot open: %s\n", path, strerror(errno));
    return 1;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap);
  size_t got;
  while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
    n += got;
    if (n == cap) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "replay: %s: out of memory\n", path);
    return 1;
  }
  /* a copy of exactly n bytes, so that ASan sees a read past the input */
  uint8_t *in = malloc(n ? n : 1);
  memcpy(in, buf, n);
  free(buf);
  current = path;
  int bad = 0;
  pid_t pid = in_process ? 0 : fork();
  if (pid < 0) {
    fprintf(stderr, "replay: %s: fork: %s\n", path, strerror(errno));
    bad = 1;
  } else if (pid == 0) {
    alarm((unsigned)env_long("FUZZ_TIMEOUT", 60));
    LLVMFuzzerTestOneInput(in, n);
    alarm(0);
    long rss = peak_rss_mb();
    if (rss > rss_limit_mb) {
      fprintf(stderr, "replay: %s: peak RSS %ld MB (over the %ld MB limit)\n", path, rss, rss_limit_mb);
      bad = 1;
    }
    if (!in_process) exit(bad);   /* (exit, not _exit: LeakSanitizer checks at exit) */
  } else {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {}
    if (WIFSIGNALED(st)) {
      fprintf(stderr, "replay: %s: FAILED (signal %d)\n", path, WTERMSIG(st));
      bad = 1;
    } else if (WEXITSTATUS(st) != 0) {
      fprintf(stderr, "replay: %s: FAILED (exit %d)\n", path, WEXITSTATUS(st));
      bad = 1;
    }
  }
  free(in);
  return bad;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Files of a folder in name order (not recursive); files starting with '.' or
 * named README* are not inputs. `*count` += the inputs run. */
static int run_path(const char *path, bool must_exist, int *count) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (!must_exist) return 0;
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) {
    (*count)++;
    return run_file(path);
  }
  DIR *d = opendir(path);
  if (!d) {
    fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
    return 1;
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || !strncmp(e->d_name, "README", 6)) continue;
    if (n == cap) names = realloc(names, (cap = cap * 2 + 16) * sizeof *names);
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, cmp_str);
  int bad = 0;
  for (size_t i = 0; i < n; i++) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", path, names[i]);
    if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
      (*count)++;
      bad |= run_file(p);
    }
    free(names[i]);
  }
  free(names);
  return bad;
}

/* "pickle" from ".../replay_pickle" (or libtool's ".libs/lt-replay_pickle") */
static const char *target_name(const char *argv0) {
  const char *b = strrchr(argv0, '/');
  b = b ? b + 1 : argv0;
  if (!strncmp(b, "lt-", 3)) b += 3;
  if (!strncmp(b, "replay_", 7)) b += 7;
  return b;
}

int main(int argc, char **argv) {
  const char *target = target_name(argv[0]);
#ifndef REPLAY_ASAN
  malloc_limit = (size_t)env_long("FUZZ_MALLOC_LIMIT_MB", 1024) << 20;
#endif
  rss_limit_mb = env_long("FUZZ_RSS_LIMIT_MB", RSS_LIMIT_MB);
  in_process = env_long("FUZZ_IN_PROCESS", 0) != 0;
  signal(SIGALRM, on_alarm);
  if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
  int count = 0, bad = 0;
  if (argc > 1) {
    for (int i = 1; i < argc; i++) bad |= run_path(argv[i], true, &count);
  } else {
    const char *src = getenv("TT_SRCDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/tests/fuzz/regress/%s", src ? src : TT_ABS_SRCDIR, target);
    bad |= run_path(dir, false, &count);
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/%s", src ? src : TT_ABS_SRCDIR, target);
    bad |= run_path(dir, true, &count);
  }
  printf("replay %s: %d input%s, peak RSS %ld MB%s\n", target, count, count == 1 ? "" : "s", peak_rss_mb(),
         bad ? ", FAILED" : "");
  return bad ? 1 : 0;
}
