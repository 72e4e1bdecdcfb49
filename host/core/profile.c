/* profile.c — per-op time and allocation counters (see taming/profile.h).
 *
 * Each thread keeps its own nesting depth, so only the outermost op of a call
 * chain is timed and the rows never count the same time twice. Rows are few (one
 * per op and pass), kept in a small table under a mutex taken once per outermost
 * op; bytes allocated inside an op are summed per thread and added at its end. */
#include "config.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "taming/profile.h"
#include "taming/tensor.h"

#define MAX_ROWS 512

typedef struct {
  const char *op, *pass;
  uint64_t calls;
  double sec;
  uint64_t bytes;
} row;

static atomic_bool enabled;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static row rows[MAX_ROWS];
static int n_rows;
static double window_start;
static _Atomic uint64_t outside_bytes;
static _Atomic size_t peak_in_use, start_in_use;

static _Thread_local int depth;
static _Thread_local const char *cur_op, *cur_pass;
static _Thread_local double cur_start;
static _Thread_local uint64_t cur_bytes;

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

bool tt_profile_enabled(void) { return atomic_load_explicit(&enabled, memory_order_relaxed); }

void tt_profile_reset(void) {
  pthread_mutex_lock(&lock);
  n_rows = 0;
  window_start = now();
  atomic_store(&outside_bytes, 0);
  size_t in_use = tt_memory_in_use(TT_CPU);
  atomic_store(&start_in_use, in_use);
  atomic_store(&peak_in_use, in_use);
  pthread_mutex_unlock(&lock);
}

bool tt_profile_set_enabled(bool on) {
  if (on) tt_profile_reset();
  return atomic_exchange(&enabled, on);
}

int tt_profile_begin(const char *op, const char *pass) {
  if (!tt_profile_enabled()) return 0;
  if (depth++ > 0) return 1;
  cur_op = op;
  cur_pass = pass;
  cur_bytes = 0;
  cur_start = now();
  return 1;
}

static row *find_row(const char *op, const char *pass) {
  for (int i = 0; i < n_rows; i++)
    if ((rows[i].op == op || strcmp(rows[i].op, op) == 0) && strcmp(rows[i].pass, pass) == 0) return &rows[i];
  if (n_rows == MAX_ROWS) return &rows[MAX_ROWS - 1];   /* (never in practice: ops x passes are few) */
  row *r = &rows[n_rows++];
  memset(r, 0, sizeof *r);
  r->op = op;
  r->pass = pass;
  return r;
}

void tt_profile_end(int token) {
  if (!token || depth == 0) return;
  if (--depth > 0) return;
  double dt = now() - cur_start;
  pthread_mutex_lock(&lock);
  row *r = find_row(cur_op, cur_pass);
  r->calls++;
  r->sec += dt;
  r->bytes += cur_bytes;
  pthread_mutex_unlock(&lock);
}

void tt_profile_note_alloc(size_t nbytes, size_t in_use) {
  if (!tt_profile_enabled()) return;
  if (depth > 0) cur_bytes += nbytes;
  else atomic_fetch_add_explicit(&outside_bytes, nbytes, memory_order_relaxed);
  size_t p = atomic_load_explicit(&peak_in_use, memory_order_relaxed);
  while (in_use > p && !atomic_compare_exchange_weak(&peak_in_use, &p, in_use)) {
  }
}

void tt_profile_memory(size_t *peak, size_t *at_start) {
  if (peak) *peak = atomic_load(&peak_in_use);
  if (at_start) *at_start = atomic_load(&start_in_use);
}

static int by_time_desc(const void *a, const void *b) {
  double x = ((const row *)a)->sec, y = ((const row *)b)->sec;
  return x < y ? 1 : x > y ? -1 : 0;
}

void tt_profile_report(FILE *f, const char *title) {
  pthread_mutex_lock(&lock);
  double wall = now() - window_start;
  int n = n_rows;
  row *copy = malloc(sizeof *copy * (size_t)(n ? n : 1));
  if (copy) memcpy(copy, rows, sizeof *copy * (size_t)n);
  pthread_mutex_unlock(&lock);
  if (!copy) return;
  qsort(copy, (size_t)n, sizeof *copy, by_time_desc);
  double in_ops = 0;
  uint64_t calls = 0, bytes = 0;
  for (int i = 0; i < n; i++) {
    in_ops += copy[i].sec;
    calls += copy[i].calls;
    bytes += copy[i].bytes;
  }
  size_t peak, start;
  tt_profile_memory(&peak, &start);
  const double MB = 1024.0 * 1024.0;
  fprintf(f, "profile%s%s: %.3f s wall, %.3f s in %llu op calls; CPU tensors: peak %.1f MB, %.1f MB at start\n",
          title ? " of " : "", title ? title : "", wall, in_ops, (unsigned long long)calls, (double)peak / MB,
          (double)start / MB);
  fprintf(f, "%-24s %-9s %8s %10s %6s %11s\n", "op", "pass", "calls", "ms", "%", "MB alloc");
  for (int i = 0; i < n; i++)
    fprintf(f, "%-24s %-9s %8llu %10.2f %6.1f %11.2f\n", copy[i].op, copy[i].pass,
            (unsigned long long)copy[i].calls, copy[i].sec * 1e3, wall > 0 ? 100.0 * copy[i].sec / wall : 0.0,
            (double)copy[i].bytes / MB);
  double outside = wall - in_ops;
  uint64_t ob = atomic_load(&outside_bytes);
  fprintf(f, "%-24s %-9s %8s %10.2f %6.1f %11.2f\n", "(outside ops)", "", "", outside * 1e3,
          wall > 0 ? 100.0 * outside / wall : 0.0, (double)ob / MB);
  fprintf(f, "%-24s %-9s %8llu %10.2f %6.1f %11.2f\n", "(total)", "", (unsigned long long)calls, wall * 1e3, 100.0,
          (double)(bytes + ob) / MB);
  fflush(f);
  free(copy);
}
