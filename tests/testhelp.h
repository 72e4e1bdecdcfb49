/* testhelp.h — shared helpers of the check suites: random tensors, max-abs
 * comparisons that print both values, finite-difference gradient checks,
 * fixture lookup (exit 77 = skip when ../shared/fixtures is absent). */
#ifndef TAMING_TESTHELP_H
#define TAMING_TESTHELP_H

#include <check.h>
#include <stdio.h>
#include "taming/taming.h"

/* Fails the test with the library's message when expr is not TT_OK. */
#define TH_OK(expr)                                                                     \
  do {                                                                                  \
    tt_status th_s_ = (expr);                                                           \
    ck_assert_msg(th_s_ == TT_OK, "%s failed: %s", #expr, tt_error_message());          \
  } while (0)
/* Fails unless ptr is non-NULL, printing the library's message. */
#define TH_NN(ptr) ck_assert_msg((ptr) != NULL, "%s returned NULL: %s", #ptr, tt_error_message())

/* N(0, scale^2) tensor (f32, contiguous, CPU) from a seed. */
tt_tensor *th_randn(uint64_t seed, int ndim, const int64_t *shape, float scale);
tt_tensor *th_uniform(uint64_t seed, int ndim, const int64_t *shape, float lo, float hi);
/* th_randn(seed, ...) that requires grad: a leaf of a gradient check. */
tt_tensor *th_leaf(uint64_t seed, int ndim, const int64_t *shape, float scale);
/* max |a - b| over all elements (shapes must match; else +inf). */
double th_max_abs_diff(const tt_tensor *a, const tt_tensor *b);
/* Asserts max |a - b| <= tol, printing the difference and where it is. */
void th_assert_close(const char *what, const tt_tensor *a, const tt_tensor *b, double tol);
/* Asserts |t - ref| <= atol + rtol*|ref| everywhere (t read in row-major order
 * through its strides; equal values, infinities included, always pass), printing
 * the worst element. */
void th_assert_ref(const char *what, const tt_tensor *t, const double *ref, double atol, double rtol);
/* A zeroed array of n (at least one) doubles for a reference computed in the test. */
double *th_ref_alloc(int64_t n);

/* A function of the inputs whose gradient is checked; returns a tensor of any shape. */
typedef tt_tensor *(*th_fn)(tt_tensor *const *inputs, void *ud);
/* Compares autograd gradients of L = sum(f(inputs) * R) (R fixed random) with central
 * differences for up to `samples` elements of every input that requires grad:
 * |analytic - numeric| <= atol + rtol * |numeric|. Prints the worst element on failure. */
void th_gradcheck(const char *name, th_fn f, int n, tt_tensor *const *inputs, void *ud, double eps,
                  double atol, double rtol, int samples);

/* The fixtures folder (TAMING_FIXTURES or ../shared/fixtures from the source tree),
 * or exits 77 (skip) with a message when it is absent. */
const char *th_fixtures_or_skip(const char *suite);
/* Runs a suite, prints the summary, returns the process exit status. */
int th_run(Suite *s);

/* A scratch folder $TMPDIR/NAME.XXXXXX (or under /tmp) into out[cap]: 0, or -1 with
 * errno set. th_tmpdir_remove deletes its files, then the folder. */
int th_tmpdir_make(const char *name, char *out, size_t cap);
void th_tmpdir_remove(const char *dir);

#endif
