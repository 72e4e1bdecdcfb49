/* npy.c — NumPy .npy arrays (format versions 1, 2 and 3), C order only.
 *
 * A file is "\x93NUMPY", a version, a header length (2 bytes in v1, 4 in v2/v3)
 * and a Python dict literal {'descr': '<f4', 'fortran_order': False,
 * 'shape': (1, 3, 32, 32), } padded with spaces and a newline, then the raw
 * little-endian data. The fixtures and the reference scripts exchange arrays
 * this way. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "io_internal.h"
#include "taming/checked.h"
#include "taming/ops/copy.h"

static const struct { const char *descr; tt_dtype dt; } npy_dtypes[] = {
    {"<f4", TT_F32}, {"<f8", TT_F64}, {"<i8", TT_I64}, {"<i4", TT_I32}, {"|u1", TT_U8},
    {"<f2", TT_F16}, {"|b1", TT_U8}, {"<u1", TT_U8}, {"<b1", TT_U8}};

typedef struct npy_header {
  char descr[32];
  int fortran;   /* -1 until seen */
  int ndim;      /* -1 until seen */
  int64_t shape[TT_MAX_DIMS];
} npy_header;

typedef struct hp {
  const char *p, *end;
  const char *path;
} hp;

static tt_status herr(hp *h, const char *what) {
  return tt_error(TT_ERR_FORMAT, "%s: bad .npy header (%s)", h->path, what);
}

static void hws(hp *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r')) h->p++;
}

static bool eat(hp *h, char c) {
  hws(h);
  if (h->p < h->end && *h->p == c) {
    h->p++;
    return true;
  }
  return false;
}

static tt_status quoted(hp *h, char *out, size_t n) {
  hws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return herr(h, "expected a quoted string");
  char q = *h->p++;
  const char *s = h->p;
  while (h->p < h->end && *h->p != q) h->p++;
  if (h->p >= h->end) return herr(h, "unterminated string");
  size_t len = (size_t)(h->p - s);
  h->p++;
  if (len >= n) return herr(h, "string too long");
  memcpy(out, s, len);
  out[len] = 0;
  return TT_OK;
}

static tt_status parse_header(const char *text, size_t len, const char *path, npy_header *out) {
  hp h = {text, text + len, path};
  out->descr[0] = 0;
  out->fortran = out->ndim = -1;
  if (!eat(&h, '{')) return herr(&h, "expected '{'");
  while (!eat(&h, '}')) {
    char key[32];
    TT_TRY(quoted(&h, key, sizeof key));
    if (!eat(&h, ':')) return herr(&h, "expected ':'");
    hws(&h);
    if (!strcmp(key, "descr")) {
      if (h.p < h.end && *h.p == '[')
        return tt_error(TT_ERR_UNSUPPORTED, "%s: structured .npy arrays are not supported", path);
      TT_TRY(quoted(&h, out->descr, sizeof out->descr));
    } else if (!strcmp(key, "fortran_order")) {
      size_t left = (size_t)(h.end - h.p);
      if (left >= 4 && !memcmp(h.p, "True", 4)) {
        out->fortran = 1;
        h.p += 4;
      } else if (left >= 5 && !memcmp(h.p, "False", 5)) {
        out->fortran = 0;
        h.p += 5;
      } else {
        return herr(&h, "fortran_order is not True or False");
      }
    } else if (!strcmp(key, "shape")) {
      if (!eat(&h, '(')) return herr(&h, "shape is not a tuple");
      out->ndim = 0;
      while (!eat(&h, ')')) {
        hws(&h);
        char *end;
        errno = 0;
        long long d = h.p < h.end && *h.p >= '0' && *h.p <= '9' ? strtoll(h.p, &end, 10) : -1;
        if (d < 0 || errno || end > h.end) return herr(&h, "shape holds something other than sizes");
        if (out->ndim == TT_MAX_DIMS)
          return tt_error(TT_ERR_UNSUPPORTED, "%s: .npy array with more than %d dims", path, TT_MAX_DIMS);
        out->shape[out->ndim++] = d;
        h.p = end;
        if (!eat(&h, ',')) {
          if (!eat(&h, ')')) return herr(&h, "expected ',' or ')' in shape");
          break;
        }
      }
    } else {
      return herr(&h, "unknown key");
    }
    if (!eat(&h, ',')) {
      if (!eat(&h, '}')) return herr(&h, "expected ',' or '}'");
      break;
    }
  }
  hws(&h);
  if (h.p != h.end) return herr(&h, "trailing characters after the dict");
  if (!out->descr[0] || out->fortran < 0 || out->ndim < 0) return herr(&h, "descr, fortran_order or shape is missing");
  return TT_OK;
}

/* Decodes a whole .npy held in memory (a file's mapping, or an .npz member);
 * `path` names it in messages. */
tt_status tt_npy_decode(const uint8_t *buf, uint64_t size, const char *path, tt_tensor **out) {
  *out = NULL;
  if (size < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
    return tt_error(TT_ERR_FORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
  unsigned major = buf[6];
  uint64_t hlen = buf[8] | (uint64_t)buf[9] << 8, pos = 10;
  if (major == 2 || major == 3) {
    if (size < 12) return tt_error(TT_ERR_FORMAT, "%s: truncated .npy header", path);
    hlen |= (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
    pos = 12;
  } else if (major != 1) {
    return tt_error(TT_ERR_UNSUPPORTED, "%s: .npy format version %u.%u is not supported (1, 2 or 3)", path, major,
                    buf[7]);
  }
  if (hlen > (16u << 20)) return tt_error(TT_ERR_FORMAT, "%s: .npy header of %" PRIu64 " bytes (corrupt file)", path, hlen);
  if (size - pos < hlen)
    return tt_error(TT_ERR_FORMAT, "%s: truncated .npy header (%" PRIu64 " bytes announced)", path, hlen);
  char *text = malloc((size_t)hlen + 1);
  if (!text) return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  memcpy(text, buf + pos, (size_t)hlen);
  text[hlen] = 0;   /* strtoll in the shape parser stops here at the latest */
  pos += hlen;
  npy_header h;
  tt_status s = parse_header(text, (size_t)hlen, path, &h);
  free(text);
  if (s != TT_OK) return s;
  int dt = -1;
  for (size_t i = 0; i < sizeof npy_dtypes / sizeof npy_dtypes[0]; i++)
    if (!strcmp(h.descr, npy_dtypes[i].descr)) dt = npy_dtypes[i].dt;
  if (dt < 0)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported (<f4 <f8 <f2 <i8 <i4 |u1 |b1)%s", path,
                    h.descr, h.descr[0] == '>' ? "; it is big-endian" : "");
  if (h.fortran && h.ndim > 1)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: Fortran-order arrays are not supported; save np.ascontiguousarray(a)",
                    path);
  /* a zero dim must not hide an overflowing product of the others */
  size_t nb;
  if (!tt_shape_nbytes(h.ndim, h.shape, tt_dtype_size((tt_dtype)dt), &nb) || (uint64_t)nb > ((uint64_t)1 << 48)) {
    char sh[160];
    return tt_error(TT_ERR_FORMAT, "%s: .npy shape %s of %s is impossibly large (corrupt header)", path,
                    tt_shape_str(h.ndim, h.shape, sh, sizeof sh), h.descr);
  }
  uint64_t nbytes = nb;
  if (size - pos < nbytes) {
    char sh[160];
    return tt_error(TT_ERR_FORMAT, "%s: truncated: %s %s needs %" PRIu64 " bytes of data, the file has %" PRIu64, path,
                    h.descr, tt_shape_str(h.ndim, h.shape, sh, sizeof sh), nbytes, size - pos);
  }
  tt_tensor *t = tt_tensor_new((tt_dtype)dt, h.ndim, h.shape, TT_CPU);
  if (!t) return tt_error_prefix(tt_last_status(), "%s: ", path);
  if (nbytes) memcpy(tt_tensor_data(t), buf + pos, (size_t)nbytes);
  tt_tensor_set_name(t, path);
  *out = t;
  return TT_OK;
}

tt_status tt_npy_load(const char *path, tt_tensor **out) {
  *out = NULL;
  struct stat st;
  const char *why = stat(path, &st) != 0 ? strerror(errno)
                    : S_ISDIR(st.st_mode) ? "it is a directory"
                    : !S_ISREG(st.st_mode) ? "not a regular file"
                                           : NULL;
  if (why) return tt_error(TT_ERR_IO, "%s: cannot read a .npy array: %s", path, why);
  tt_mfile *m = NULL;
  TT_TRY(tt_mfile_open(path, &m));
  tt_status s = tt_npy_decode(m->base, m->size, path, out);
  tt_mfile_unref(m);
  return s;
}

/* The version-1 header of t (magic to '\n', padded so the data starts 64-byte aligned). */
tt_status tt_npy_header(const tt_tensor *t, const char *path, char *out, size_t cap, size_t *len) {
  const char *descr = NULL;
  for (size_t i = 0; i < sizeof npy_dtypes / sizeof npy_dtypes[0] && !descr; i++)
    if (npy_dtypes[i].dt == t->dtype) descr = npy_dtypes[i].descr;
  if (!descr)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: dtype %s has no .npy equivalent", path, tt_dtype_name(t->dtype));
  char dict[64 + TT_MAX_DIMS * 24];
  int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < t->ndim; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%" PRId64 "%s", t->shape[i],
                  t->ndim == 1 ? "," : i + 1 < t->ndim ? ", " : "");
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  size_t hlen = (size_t)n + 1;
  hlen += (64 - (10 + hlen) % 64) % 64;
  if (cap < 10 + hlen) return tt_error(TT_ERR_INVALID, "%s: .npy header buffer too small", path);
  memcpy(out, "\x93NUMPY\x01\x00", 8);
  out[8] = (char)(hlen & 0xff);
  out[9] = (char)(hlen >> 8);
  memcpy(out + 10, dict, (size_t)n);
  memset(out + 10 + n, ' ', hlen - (size_t)n - 1);
  out[10 + hlen - 1] = '\n';
  *len = 10 + hlen;
  return TT_OK;
}

tt_status tt_npy_save(const char *path, const tt_tensor *t) {
  char pre[TT_NPY_HEADER_MAX];
  size_t plen;
  TT_TRY(tt_npy_header(t, path, pre, sizeof pre, &plen));
  size_t nb = tt_tensor_nbytes(t);
  tt_tensor *h = tt_host_contiguous(t);
  if (!h) return tt_error_prefix(tt_last_status(), "%s: ", path);
  tt_atomic_file af;
  tt_status s = tt_atomic_open(&af, path);
  if (s == TT_OK) {
    s = tt_atomic_write(&af, pre, plen);
    if (s == TT_OK) s = tt_atomic_write(&af, tt_tensor_data(h), nb);
    if (s == TT_OK) s = tt_atomic_commit(&af);
    else tt_atomic_abort(&af);
  }
  tt_tensor_unref(h);
  return s;
}
