/* npz.c — NumPy .npz archives: a zip of .npy members named KEY.npy.
 *
 * Reading takes stored members (np.savez) and deflated ones (np.savez_compressed,
 * which pytorch-fid's --save-stats writes); writing stores the members
 * uncompressed (np.load reads both). The FID statistics files (`mu`, `sigma`)
 * go through here. */
#include "config.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include "io_internal.h"
#include "taming/ops/copy.h"

/* Largest member inflated into memory; TAMING_NPZ_MAX_BYTES overrides. */
#define NPZ_MAX_BYTES ((uint64_t)8 << 30)

static uint64_t npz_limit(void) {
  const char *e = getenv("TAMING_NPZ_MAX_BYTES");
  if (e && *e) {
    char *end;
    unsigned long long v = strtoull(e, &end, 10);
    if (*end == 0 && v > 0) return (uint64_t)v;
  }
  return NPZ_MAX_BYTES;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* The member's .npy bytes: a view into the mapping (stored) or an inflated copy
 * (*owned set, to be freed). */
static tt_status member_bytes(tt_zip *z, tt_zip_entry *e, const uint8_t **data, uint8_t **owned) {
  tt_mfile *m = z->file;
  *owned = NULL;
  if (e->method == 0) {
    TT_TRY(tt_zip_resolve(z, e));
    *data = m->base + e->data_off;
    return TT_OK;
  }
  if (e->method != 8)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: member '%s' uses zip method %u (stored or deflate expected)", m->path,
                    e->name, e->method);
  if (e->flags & 1) return tt_error(TT_ERR_UNSUPPORTED, "%s: member '%s' is encrypted", m->path, e->name);
  uint64_t limit = npz_limit();
  if (e->size > limit)
    return tt_error(TT_ERR_FORMAT,
                    "%s: member '%s' inflates to %" PRIu64 " bytes, more than the limit of %" PRIu64
                    " (set TAMING_NPZ_MAX_BYTES to allow it)",
                    m->path, e->name, e->size, limit);
  uint8_t h[30];
  if (e->header_off > m->size || m->size - e->header_off < 30)
    return tt_error(TT_ERR_FORMAT, "%s: member '%s' points outside the file (truncated or corrupt)", m->path, e->name);
  TT_TRY(tt_mfile_read(m, e->header_off, h, 30, "a zip local header"));
  if (rd32(h) != 0x04034b50u)
    return tt_error(TT_ERR_FORMAT, "%s: member '%s': no local header at offset %" PRIu64 " (corrupt file)", m->path,
                    e->name, e->header_off);
  uint64_t off = e->header_off + 30 + rd16(h + 26) + rd16(h + 28);
  if (off > m->size || e->csize > m->size - off)
    return tt_error(TT_ERR_FORMAT,
                    "%s: member '%s' (%" PRIu64 " compressed bytes at offset %" PRIu64
                    ") reaches past the end of the file (%" PRIu64 " bytes): truncated or corrupt",
                    m->path, e->name, e->csize, off, m->size);
  /* one spare byte: a stream longer than announced is caught, not truncated */
  uint8_t *out = malloc((size_t)e->size + 1);
  if (!out) return tt_error(TT_ERR_NOMEM, "%s: member '%s': out of memory for %" PRIu64 " bytes", m->path, e->name, e->size);
  z_stream zs = {0};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) {
    free(out);
    return tt_error(TT_ERR_NOMEM, "%s: cannot start zlib", m->path);
  }
  /* zlib counts in uInt: feed and drain in chunks so members over 4 GiB work too */
  uint64_t in_left = e->csize;
  const uint8_t *in = m->base + off;
  zs.next_out = out;
  int rc = Z_OK;
  do {
    if (zs.avail_in == 0 && in_left) {
      uInt k = in_left > (1u << 30) ? (1u << 30) : (uInt)in_left;
      zs.next_in = (Bytef *)in;
      zs.avail_in = k;
      in += k;
      in_left -= k;
    }
    if (zs.avail_out == 0) {
      uint64_t left = e->size + 1 - zs.total_out;
      if (left == 0) break;
      zs.avail_out = left > (1u << 30) ? (1u << 30) : (uInt)left;
    }
    rc = inflate(&zs, Z_NO_FLUSH);
  } while (rc == Z_OK);
  uint64_t got = zs.total_out;
  inflateEnd(&zs);
  if (rc != Z_STREAM_END || got != e->size) {
    free(out);
    return tt_error(TT_ERR_FORMAT,
                    "%s: member '%s' does not inflate to its %" PRIu64 " bytes (got %" PRIu64 "): corrupt file",
                    m->path, e->name, e->size, got);
  }
  *data = out;
  *owned = out;
  return TT_OK;
}

tt_status tt_npz_load(const char *path, int *n_out, char ***names_out, tt_tensor ***tensors_out) {
  *n_out = 0;
  *names_out = NULL;
  *tensors_out = NULL;
  tt_mfile *m = NULL;
  TT_TRY(tt_mfile_open(path, &m));
  tt_zip z;
  tt_status s = tt_zip_open(&z, m);
  if (s != TT_OK) {
    tt_mfile_unref(m);
    return s;
  }
  char **names = calloc((size_t)(z.n ? z.n : 1), sizeof *names);
  tt_tensor **ts = calloc((size_t)(z.n ? z.n : 1), sizeof *ts);
  int n = 0;
  if (!names || !ts) s = tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  for (int i = 0; s == TT_OK && i < z.n; i++) {
    tt_zip_entry *e = &z.entries[i];
    size_t len = strlen(e->name);
    if (len < 5 || strcmp(e->name + len - 4, ".npy") != 0) continue;   /* not an array */
    const uint8_t *data = NULL;
    uint8_t *owned = NULL;
    if ((s = member_bytes(&z, e, &data, &owned)) != TT_OK) break;
    char what[512];
    snprintf(what, sizeof what, "%s:%s", path, e->name);
    s = tt_npy_decode(data, e->size, what, &ts[n]);
    free(owned);
    if (s != TT_OK) break;
    if (!(names[n] = strndup(e->name, len - 4))) {
      tt_tensor_unref(ts[n]);
      s = tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
      break;
    }
    n++;
  }
  tt_zip_close(&z);
  tt_mfile_unref(m);
  if (s != TT_OK) {
    tt_npz_free(n, names, ts);
    return s;
  }
  *n_out = n;
  *names_out = names;
  *tensors_out = ts;
  return TT_OK;
}

void tt_npz_free(int n, char **names, tt_tensor **tensors) {
  for (int i = 0; i < n; i++) {
    if (names) free(names[i]);
    if (tensors) tt_tensor_unref(tensors[i]);
  }
  free(names);
  free(tensors);
}

static void put16(uint8_t *p, uint32_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }

tt_status tt_npz_save(const char *path, int n, const char *const *names, tt_tensor *const *ts) {
  if (n < 0 || (n && (!names || !ts))) return tt_error(TT_ERR_INVALID, "%s: npz_save: bad arguments", path);
  tt_tensor **host = calloc((size_t)(n ? n : 1), sizeof *host);
  uint8_t *central = NULL;
  size_t clen = 0;
  if (!host) return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
  tt_atomic_file af;
  tt_status s = TT_OK;
  uint64_t off = 0;
  for (int i = 0; s == TT_OK && i < n; i++) {
    size_t nl = strlen(names[i]) + 4;
    if (!names[i][0] || nl > 0xfff0) s = tt_error(TT_ERR_INVALID, "%s: bad array name '%s'", path, names[i]);
    else if (!(host[i] = tt_host_contiguous(ts[i]))) s = tt_error_prefix(tt_last_status(), "%s: '%s': ", path, names[i]);
  }
  if (s == TT_OK) s = tt_atomic_open(&af, path);
  if (s != TT_OK) goto out;
  for (int i = 0; s == TT_OK && i < n; i++) {
    char pre[TT_NPY_HEADER_MAX], fname[0x10000];
    size_t plen;
    if ((s = tt_npy_header(host[i], path, pre, sizeof pre, &plen)) != TT_OK) break;
    int nl = snprintf(fname, sizeof fname, "%s.npy", names[i]);
    uint64_t nb = tt_tensor_nbytes(host[i]), size = plen + nb;
    if (size > 0xfffffffeu || off > 0xfffffffeu) {
      s = tt_error(TT_ERR_UNSUPPORTED, "%s: '%s' needs ZIP64 (over 4 GiB), which the .npz writer does not do", path,
                   names[i]);
      break;
    }
    uLong crc = crc32(0L, (const Bytef *)pre, (uInt)plen);
    const uint8_t *d = tt_tensor_data(host[i]);
    for (uint64_t k = 0; k < nb; k += 1u << 30)
      crc = crc32(crc, d + k, (uInt)(nb - k > (1u << 30) ? (1u << 30) : nb - k));
    uint8_t lh[30] = {0};
    put32(lh, 0x04034b50u);
    put16(lh + 4, 20);          /* version needed: 2.0 */
    put32(lh + 14, (uint32_t)crc);
    put32(lh + 18, (uint32_t)size);
    put32(lh + 22, (uint32_t)size);
    put16(lh + 26, (uint32_t)nl);
    uint8_t *nc = realloc(central, clen + 46 + (size_t)nl);
    if (!nc) {
      s = tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
      break;
    }
    central = nc;
    uint8_t *ch = central + clen;
    memset(ch, 0, 46);
    put32(ch, 0x02014b50u);
    put16(ch + 4, 20);
    put16(ch + 6, 20);
    memcpy(ch + 16, lh + 14, 12);   /* crc, sizes */
    put16(ch + 28, (uint32_t)nl);
    put32(ch + 42, (uint32_t)off);
    memcpy(ch + 46, fname, (size_t)nl);
    clen += 46 + (size_t)nl;
    if ((s = tt_atomic_write(&af, lh, 30)) == TT_OK && (s = tt_atomic_write(&af, fname, (size_t)nl)) == TT_OK &&
        (s = tt_atomic_write(&af, pre, plen)) == TT_OK)
      s = tt_atomic_write(&af, d, nb);
    off += 30 + (uint64_t)nl + size;
  }
  if (s == TT_OK && (off > 0xfffffffeu || clen > 0xfffffffeu))
    s = tt_error(TT_ERR_UNSUPPORTED, "%s: the archive needs ZIP64 (over 4 GiB)", path);
  if (s == TT_OK) {
    uint8_t end[22] = {0};
    put32(end, 0x06054b50u);
    put16(end + 8, (uint32_t)n);
    put16(end + 10, (uint32_t)n);
    put32(end + 12, (uint32_t)clen);
    put32(end + 16, (uint32_t)off);
    if ((s = tt_atomic_write(&af, central, clen)) == TT_OK && (s = tt_atomic_write(&af, end, 22)) == TT_OK)
      s = tt_atomic_commit(&af);
  }
  if (s != TT_OK) tt_atomic_abort(&af);
out:
  for (int i = 0; i < n; i++) tt_tensor_unref(host[i]);
  free(host);
  free(central);
  return s;
}
