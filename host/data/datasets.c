/* datasets.c — IDX files (MNIST / Fashion-MNIST) through zlib, which reads
 * gzipped and plain files alike. The header's sizes are checked against the
 * file before anything is allocated: a plain file must hold exactly the bytes
 * its header declares, a gzipped one at most what deflate can expand its size
 * to, so a few header bytes cannot ask for gigabytes. */
#include "config.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>
#include "taming/datasets.h"

/* deflate expands at most 1032:1 (258-byte matches coded in 2 bits) */
#define DEFLATE_MAX_RATIO 1032

/* Reads exactly n bytes or fails naming the file and how much was there. */
static tt_status gz_read_exact(gzFile f, const char *path, void *buf, size_t n, const char *what) {
  size_t got = 0;
  while (got < n) {
    unsigned chunk = n - got > (1u << 30) ? (1u << 30) : (unsigned)(n - got);
    int r = gzread(f, (char *)buf + got, chunk);
    if (r < 0) {
      int e;
      const char *msg = gzerror(f, &e);
      return tt_error(TT_ERR_FORMAT, "%s: corrupt or unreadable while reading the %s: %s", path, what,
                      e == Z_ERRNO ? strerror(errno) : msg);
    }
    if (r == 0) break;
    got += (size_t)r;
  }
  if (got != n)
    return tt_error(TT_ERR_FORMAT, "%s: truncated: the %s needs %zu bytes, the file has %zu", path, what, n, got);
  return TT_OK;
}

tt_status tt_idx_load(const char *path, tt_tensor **out) {
  if (!path || !out) return tt_error(TT_ERR_INVALID, "idx_load: NULL argument");
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0) return tt_error(TT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  if (S_ISDIR(st.st_mode)) return tt_error(TT_ERR_IO, "%s: is a directory, not an IDX file", path);
  if (!S_ISREG(st.st_mode)) return tt_error(TT_ERR_IO, "%s: not a regular file", path);
  gzFile f = gzopen(path, "rb");
  if (!f) return tt_error(TT_ERR_IO, "%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
  tt_status s;
  tt_tensor *t = NULL;
  unsigned char head[4];
  if ((s = gz_read_exact(f, path, head, 4, "IDX magic number")) != TT_OK) goto done;
  if (head[0] != 0 || head[1] != 0 || head[3] < 1 || head[3] > 4) {
    s = tt_error(TT_ERR_FORMAT, "%s: not an IDX file: magic number %02x%02x%02x%02x, expected 0000TTNN with 1 <= NN <= 4",
                 path, head[0], head[1], head[2], head[3]);
    goto done;
  }
  tt_dtype dt;
  switch (head[2]) {
  case 0x08: dt = TT_U8; break;
  case 0x0C: dt = TT_I32; break;
  case 0x0D: dt = TT_F32; break;
  case 0x0E: dt = TT_F64; break;
  default:
    s = tt_error(TT_ERR_UNSUPPORTED, "%s: IDX element type 0x%02x is not supported (0x08 u8, 0x0C i32, 0x0D f32, "
                 "0x0E f64 are)", path, head[2]);
    goto done;
  }
  int nd = head[3];
  int64_t shape[4];
  unsigned char dims[16];
  if ((s = gz_read_exact(f, path, dims, (size_t)nd * 4, "IDX dimensions")) != TT_OK) goto done;
  int64_t numel = 1;
  for (int i = 0; i < nd; i++) {
    shape[i] = (int64_t)dims[4 * i] << 24 | (int64_t)dims[4 * i + 1] << 16 | (int64_t)dims[4 * i + 2] << 8 | dims[4 * i + 3];
    if (shape[i] < 1 || shape[i] > (1ll << 31) || __builtin_mul_overflow(numel, shape[i], &numel) ||
        numel > (1ll << 40)) {
      s = tt_error(TT_ERR_FORMAT, "%s: implausible IDX dimension %d = %lld", path, i, (long long)shape[i]);
      goto done;
    }
  }
  size_t es = tt_dtype_size(dt);
  uint64_t nbytes, head_bytes = 4 + 4 * (uint64_t)nd, fsize = (uint64_t)st.st_size;
  if (__builtin_mul_overflow((uint64_t)numel, (uint64_t)es, &nbytes) || nbytes > (uint64_t)SIZE_MAX) {
    s = tt_error(TT_ERR_FORMAT, "%s: the IDX header declares %lld elements of %zu bytes, too many to address", path,
                 (long long)numel, es);
    goto done;
  }
  if (gzdirect(f) && nbytes != fsize - head_bytes) {
    s = tt_error(TT_ERR_FORMAT, "%s: %s %llu bytes of data (%lld elements), the file holds %llu", path,
                 nbytes > fsize - head_bytes ? "truncated: the IDX header declares" : "more data than the IDX header declares:",
                 (unsigned long long)nbytes, (long long)numel, (unsigned long long)(fsize - head_bytes));
    goto done;
  }
  if (!gzdirect(f) && nbytes / DEFLATE_MAX_RATIO > fsize) {
    s = tt_error(TT_ERR_FORMAT, "%s: truncated: the IDX header declares %llu bytes of data (%lld elements), more than "
                 "a gzip file of %llu bytes can hold", path, (unsigned long long)nbytes, (long long)numel,
                 (unsigned long long)fsize);
    goto done;
  }
  t = tt_tensor_new(dt, nd, shape, TT_CPU);
  if (!t) {
    s = tt_last_status();
    goto done;
  }
  unsigned char *p = tt_tensor_data(t);
  if ((s = gz_read_exact(f, path, p, (size_t)nbytes, "IDX data")) != TT_OK) goto done;
  unsigned char extra;
  if (gzread(f, &extra, 1) != 0) {
    s = tt_error(TT_ERR_FORMAT, "%s: more data than the IDX header's %lld elements", path, (long long)numel);
    goto done;
  }
  /* big-endian on disk */
  if (es > 1) {
    for (size_t i = 0; i < (size_t)nbytes; i += es)
      for (size_t a = 0, b = es - 1; a < b; a++, b--) {
        unsigned char c = p[i + a];
        p[i + a] = p[i + b];
        p[i + b] = c;
      }
  }
  s = TT_OK;
done:
  gzclose(f);
  if (s != TT_OK) tt_tensor_release(&t);
  *out = t;
  return s;
}

tt_status tt_fashion_mnist_load(const char *dir, const char *split, tt_tensor **images, tt_tensor **labels) {
  if (!split || !images || !labels) return tt_error(TT_ERR_INVALID, "fashion_mnist_load: NULL argument");
  *images = *labels = NULL;
  const char *prefix;
  int64_t expect;
  if (strcmp(split, "train") == 0) prefix = "train", expect = 60000;
  else if (strcmp(split, "test") == 0 || strcmp(split, "t10k") == 0) prefix = "t10k", expect = 10000;
  else return tt_error(TT_ERR_INVALID, "fashion_mnist_load: unknown split \"%s\" (train or test)", split);
  if (!dir) dir = TT_FASHION_MNIST_DIR;
  char ip[4096], lp[4096];
  snprintf(ip, sizeof ip, "%s/%s-images-idx3-ubyte.gz", dir, prefix);
  snprintf(lp, sizeof lp, "%s/%s-labels-idx1-ubyte.gz", dir, prefix);
  tt_tensor *im = NULL, *lb = NULL, *l64 = NULL;
  tt_status s = tt_idx_load(ip, &im);
  if (s != TT_OK) return s;
  if (im->dtype != TT_U8 || im->ndim != 3 || im->shape[1] != 28 || im->shape[2] != 28 || im->shape[0] != expect) {
    char sh[128];
    s = tt_error(TT_ERR_FORMAT, "%s: expected u8 images [%lld, 28, 28] (magic 0x00000803), found %s %s", ip,
                 (long long)expect, tt_dtype_name(im->dtype), tt_tensor_shape_str(im, sh, sizeof sh));
    goto fail;
  }
  if ((s = tt_idx_load(lp, &lb)) != TT_OK) goto fail;
  if (lb->dtype != TT_U8 || lb->ndim != 1 || lb->shape[0] != im->shape[0]) {
    char sh[128];
    s = tt_error(TT_ERR_FORMAT, "%s: expected u8 labels [%lld] (magic 0x00000801) matching %s, found %s %s", lp,
                 (long long)im->shape[0], ip, tt_dtype_name(lb->dtype), tt_tensor_shape_str(lb, sh, sizeof sh));
    goto fail;
  }
  l64 = tt_tensor_new(TT_I64, TT_DIMS(lb->shape[0]), TT_CPU);
  if (!l64) {
    s = tt_last_status();
    goto fail;
  }
  const unsigned char *src = tt_tensor_data(lb);
  for (int64_t i = 0; i < lb->shape[0]; i++) {
    if (src[i] > 9) {
      s = tt_error(TT_ERR_FORMAT, "%s: label %d at index %lld is outside 0..9", lp, src[i], (long long)i);
      goto fail;
    }
    tt_i64(l64)[i] = src[i];
  }
  tt_tensor_unref(lb);
  *images = im;
  *labels = l64;
  return TT_OK;
fail:
  tt_tensor_unref(im);
  tt_tensor_unref(lb);
  tt_tensor_unref(l64);
  return s;
}
