/* imgtest.c — see imgtest.h. */
#include "config.h"
#include "imgtest.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "taming/io.h"

const char *it_data(const char *name) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/tests/data/image/%s", TT_ABS_SRCDIR, name);
  return path;
}

tt_tensor *it_image(const char *name) {
  tt_tensor *t = NULL;
  tt_status s = tt_image_load_u8(it_data(name), &t);
  ck_assert_msg(s == TT_OK, "loading %s: %s", name, tt_error_message());
  return t;
}

unsigned char *it_read_file(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *buf = malloc((size_t)len + 1);
  ck_assert(buf != NULL);
  ck_assert_msg(fread(buf, 1, (size_t)len, f) == (size_t)len, "short read of %s", path);
  fclose(f);
  *n = (size_t)len;
  return buf;
}

void it_write_file(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_msg(f != NULL, "cannot create %s: %s", path, strerror(errno));
  ck_assert(fwrite(data, 1, n, f) == n);
  ck_assert(fclose(f) == 0);
}

tt_tensor *it_npy(const char *name) {
  size_t n;
  unsigned char *buf = it_read_file(it_data(name), &n);
  ck_assert_msg(n > 10 && memcmp(buf, "\x93NUMPY", 6) == 0, "%s: not a .npy file", name);
  size_t hlen, off;
  if (buf[6] == 1) hlen = buf[8] | (size_t)buf[9] << 8, off = 10;
  else hlen = buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24, off = 12;
  ck_assert_msg(off + hlen <= n, "%s: truncated header", name);
  char head[1024];
  ck_assert(hlen < sizeof head);
  memcpy(head, buf + off, hlen);
  head[hlen] = '\0';
  ck_assert_msg(strstr(head, "'fortran_order': False") != NULL, "%s: Fortran order", name);
  tt_dtype dt;
  if (strstr(head, "'|u1'")) dt = TT_U8;
  else if (strstr(head, "'<f4'")) dt = TT_F32;
  else if (strstr(head, "'<f8'")) dt = TT_F64;
  else if (strstr(head, "'<i8'")) dt = TT_I64;
  else ck_abort_msg("%s: unsupported dtype in %s", name, head);
  const char *sp = strstr(head, "'shape': (");
  ck_assert(sp != NULL);
  sp += strlen("'shape': (");
  int64_t shape[TT_MAX_DIMS];
  int nd = 0;
  while (*sp && *sp != ')') {
    char *end;
    long long v = strtoll(sp, &end, 10);
    if (end == sp) {
      sp++;
      continue;
    }
    shape[nd++] = v;
    sp = end;
  }
  tt_tensor *t = tt_tensor_new(dt, nd, shape, TT_CPU);
  ck_assert(t != NULL);
  ck_assert_msg(off + hlen + tt_tensor_nbytes(t) == n, "%s: %zu data bytes, expected %zu", name, n - off - hlen,
                tt_tensor_nbytes(t));
  memcpy(tt_tensor_data(t), buf + off + hlen, tt_tensor_nbytes(t));
  free(buf);
  return t;
}

double it_expect_close(const char *what, const tt_tensor *got, const tt_tensor *want, double tol) {
  char s1[128], s2[128];
  ck_assert_msg(got != NULL, "%s: no result: %s", what, tt_error_message());
  ck_assert_msg(tt_tensor_same_shape(got, want), "%s: shape %s, expected %s", what,
                tt_tensor_shape_str(got, s1, sizeof s1), tt_tensor_shape_str(want, s2, sizeof s2));
  int64_t n = tt_tensor_numel(got), differ = 0, at = 0;
  double m = 0;
  for (int64_t i = 0; i < n; i++) {
    double d = fabs(tt_tensor_get(got, i) - tt_tensor_get(want, i));
    if (isnan(d)) d = INFINITY;
    if (d > 0) differ++;
    if (d > m) m = d, at = i;
  }
  printf("%s: max |diff| = %.3g (%lld of %lld values differ)\n", what, m, (long long)differ, (long long)n);
  ck_assert_msg(m <= tol, "%s: max |diff| %.3g > %.3g at element %lld (%.9g vs %.9g); %lld of %lld differ", what, m,
                tol, (long long)at, tt_tensor_get(got, at), tt_tensor_get(want, at), (long long)differ, (long long)n);
  return m;
}

char *it_tmpdir(void) {
  char tmpl[] = "/tmp/taming-img-XXXXXX";
  char *d = mkdtemp(tmpl);
  ck_assert_msg(d != NULL, "mkdtemp: %s", strerror(errno));
  return strdup(d);
}

void it_rmtree(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[4096];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    struct stat st;
    if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) it_rmtree(p);
    else unlink(p);
  }
  closedir(d);
  rmdir(dir);
}
