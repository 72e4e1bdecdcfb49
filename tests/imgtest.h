/* imgtest.h — helpers shared by the image check suites: reference data paths,
 * a small .npy reader (the library's own npy support lives elsewhere) and a
 * comparison that always prints the measured difference. */
#ifndef TAMING_IMGTEST_H
#define TAMING_IMGTEST_H

#include <stdlib.h>
#include "testhelp.h"

/* Path of a file in tests/data/image (a static buffer, valid until the next call). */
const char *it_data(const char *name);
/* Loads tests/data/image/<name> (PNG/JPEG) as u8 [H, W, C]; fails the test on error. */
tt_tensor *it_image(const char *name);
/* Loads a little-endian .npy (u1, i8, f4, f8; C order) from tests/data/image. */
tt_tensor *it_npy(const char *name);
/* max |got - want| over all elements, printed as "what: max |diff| = x (n of m differ)",
 * then asserted <= tol. Shapes must match exactly. */
double it_expect_close(const char *what, const tt_tensor *got, const tt_tensor *want, double tol);
/* A fresh temporary directory (removed by the caller with it_rmtree). */
char *it_tmpdir(void);
void it_rmtree(const char *dir);
/* Writes bytes to a file; fails the test on error. */
void it_write_file(const char *path, const void *data, size_t n);
/* Reads a whole file (malloc'ed, *n set); fails the test on error. */
unsigned char *it_read_file(const char *path, size_t *n);

#endif
