/* zip.c — the ZIP directory of a torch.save file, read without decompressing.
 *
 * PyTorch (>= 1.6) stores every entry uncompressed, so an entry is a byte range
 * of the file that tensors can map directly. Files over 4 GiB (training
 * checkpoints with optimizer moments) use the ZIP64 records. The data offset of
 * an entry comes from its *local* header: PyTorch pads the local extra field so
 * data is 64-byte aligned, and that padding is not in the central directory.
 * CRCs are not checked: that would read every byte of every tensor, which is
 * what mapping the file avoids. */
#include "config.h"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"
#include "taming/checked.h"

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static int cmp_entry(const void *a, const void *b) {
  const tt_zip_entry *x = *(tt_zip_entry *const *)a, *y = *(tt_zip_entry *const *)b;
  return strcmp(x->name, y->name);
}

/* Locates the end-of-central-directory record in the last 64 KiB + 22 bytes. */
static tt_status find_eocd(tt_zip *z, uint64_t *eocd_off, uint8_t rec[22]) {
  tt_mfile *m = z->file;
  if (m->size < 22)
    return tt_error(TT_ERR_FORMAT, "%s: truncated zip archive (%" PRIu64 " bytes, no end of central directory)",
                    m->path, m->size);
  size_t tail = m->size < 65535 + 22 ? (size_t)m->size : 65535 + 22;
  uint8_t *buf = malloc(tail);
  if (!buf) return tt_error(TT_ERR_NOMEM, "%s: out of memory", m->path);
  tt_status s = tt_mfile_read(m, m->size - tail, buf, tail, "the zip directory");
  if (s != TT_OK) {
    free(buf);
    return s;
  }
  for (size_t i = tail - 22 + 1; i-- > 0;) {
    if (rd32(buf + i) == SIG_EOCD && i + 22 + rd16(buf + i + 20) <= tail) {
      memcpy(rec, buf + i, 22);
      *eocd_off = m->size - tail + i;
      free(buf);
      return TT_OK;
    }
  }
  free(buf);
  return tt_error(TT_ERR_FORMAT,
                  "%s: no zip end-of-central-directory record: the file is truncated or not a zip archive", m->path);
}

/* Reads the ZIP64 end record when a locator precedes the classic one (writers
 * add it when a field overflowed, some always); *found says whether it did. */
static tt_status read_zip64(tt_zip *z, uint64_t eocd_off, bool *found, uint64_t *n, uint64_t *cd_size,
                            uint64_t *cd_off, uint64_t *cd_end) {
  tt_mfile *m = z->file;
  uint8_t loc[20], rec[56];
  *found = false;
  if (eocd_off < 20) return TT_OK;
  TT_TRY(tt_mfile_read(m, eocd_off - 20, loc, 20, "the zip64 locator"));
  if (rd32(loc) != SIG_LOCATOR64) return TT_OK;
  *found = true;
  uint64_t off = rd64(loc + 8);
  if (rd32(loc + 16) > 1) return tt_error(TT_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", m->path);
  if (off > eocd_off - 20 || eocd_off - 20 - off < 56)
    return tt_error(TT_ERR_FORMAT, "%s: the zip64 locator points outside the archive (offset %" PRIu64 ")", m->path,
                    off);
  TT_TRY(tt_mfile_read(m, off, rec, 56, "the zip64 end record"));
  if (rd32(rec) != SIG_EOCD64)
    return tt_error(TT_ERR_FORMAT, "%s: bad zip64 end record signature at offset %" PRIu64, m->path, off);
  *n = rd64(rec + 32);
  *cd_size = rd64(rec + 40);
  *cd_off = rd64(rec + 48);
  *cd_end = off;
  return TT_OK;
}

/* Fills the 64-bit fields that the central entry marked as 0xFFFFFFFF. */
static tt_status zip64_extra(tt_zip *z, tt_zip_entry *e, const uint8_t *x, size_t xlen, bool usz, bool csz,
                             bool hoff) {
  size_t i = 0;
  while (i + 4 <= xlen) {
    uint16_t id = rd16(x + i), len = rd16(x + i + 2);
    if (i + 4 + len > xlen) break;
    if (id == 0x0001) {
      const uint8_t *p = x + i + 4, *end = p + len;
      if (usz) { if (p + 8 > end) goto bad; e->size = rd64(p); p += 8; }
      if (csz) { if (p + 8 > end) goto bad; e->csize = rd64(p); p += 8; }
      if (hoff) { if (p + 8 > end) goto bad; e->header_off = rd64(p); p += 8; }
      return TT_OK;
    }
    i += 4 + (size_t)len;
  }
bad:
  return tt_error(TT_ERR_FORMAT, "%s: zip entry '%s' lacks the zip64 sizes its header announces", z->file->path,
                  e->name);
}

tt_status tt_zip_open(tt_zip *z, tt_mfile *file) {
  memset(z, 0, sizeof *z);
  z->file = file;
  const char *path = file->path;
  uint8_t rec[22] = {0};
  uint64_t eocd_off = 0;
  TT_TRY(find_eocd(z, &eocd_off, rec));
  if (rd16(rec + 4) != 0 || rd16(rec + 6) > 1)
    return tt_error(TT_ERR_UNSUPPORTED, "%s: multi-disk zip archives are not supported", path);
  uint64_t n = rd16(rec + 10), cd_size = rd32(rec + 12), cd_off = rd32(rec + 16), cd_end = eocd_off;
  bool zip64;
  TT_TRY(read_zip64(z, eocd_off, &zip64, &n, &cd_size, &cd_off, &cd_end));
  if (!zip64 && (n == 0xFFFF || cd_size == 0xFFFFFFFFu || cd_off == 0xFFFFFFFFu))
    return tt_error(TT_ERR_FORMAT, "%s: the zip directory needs ZIP64 records but has no zip64 locator (truncated?)",
                    path);
  if (cd_off > cd_end || cd_size > cd_end - cd_off)
    return tt_error(TT_ERR_FORMAT,
                    "%s: the zip central directory (%" PRIu64 " bytes at %" PRIu64 ") lies outside the archive "
                    "(truncated or corrupt file)",
                    path, cd_size, cd_off);
  if (n > cd_size / 46)
    return tt_error(TT_ERR_FORMAT, "%s: the zip directory claims %" PRIu64 " entries in %" PRIu64 " bytes", path, n,
                    cd_size);
  uint8_t *cd = malloc(cd_size ? (size_t)cd_size : 1);
  z->entries = calloc(n ? (size_t)n : 1, sizeof *z->entries);
  z->sorted = malloc(sizeof *z->sorted * (n ? (size_t)n : 1));
  if (!cd || !z->entries || !z->sorted) {
    free(cd);
    tt_zip_close(z);
    return tt_error(TT_ERR_NOMEM, "%s: out of memory reading the zip directory", path);
  }
  tt_status s = tt_mfile_read(file, cd_off, cd, (size_t)cd_size, "the zip central directory");
  size_t pos = 0;
  for (uint64_t i = 0; s == TT_OK && i < n; i++) {
    const uint8_t *h = cd + pos;
    if (pos + 46 > cd_size || rd32(h) != SIG_CENTRAL) {
      s = tt_error(TT_ERR_FORMAT, "%s: corrupt zip central directory at entry %" PRIu64, path, i);
      break;
    }
    size_t nlen = rd16(h + 28), xlen = rd16(h + 30), clen = rd16(h + 32);
    size_t rec_end;
    if (!tt_size_add(pos, 46 + nlen + xlen + clen, &rec_end) || rec_end > cd_size) {
      s = tt_error(TT_ERR_FORMAT, "%s: corrupt zip central directory at entry %" PRIu64, path, i);
      break;
    }
    tt_zip_entry *e = &z->entries[z->n];
    e->name = strndup((const char *)h + 46, nlen);
    if (!e->name) {
      s = tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
      break;
    }
    z->n++;
    e->flags = rd16(h + 8);
    e->method = rd16(h + 10);
    e->csize = rd32(h + 20);
    e->size = rd32(h + 24);
    e->header_off = rd32(h + 42);
    bool usz = e->size == 0xFFFFFFFFu, csz = e->csize == 0xFFFFFFFFu, hoff = e->header_off == 0xFFFFFFFFu;
    if (usz || csz || hoff) s = zip64_extra(z, e, h + 46 + nlen, xlen, usz, csz, hoff);
    pos += 46 + nlen + xlen + clen;
  }
  free(cd);
  if (s != TT_OK) {
    tt_zip_close(z);
    return s;
  }
  for (int i = 0; i < z->n; i++) z->sorted[i] = &z->entries[i];
  qsort(z->sorted, (size_t)z->n, sizeof *z->sorted, cmp_entry);
  return TT_OK;
}

void tt_zip_close(tt_zip *z) {
  for (int i = 0; i < z->n; i++) free(z->entries[i].name);
  free(z->entries);
  free(z->sorted);
  z->entries = NULL;
  z->sorted = NULL;
  z->n = 0;
}

tt_zip_entry *tt_zip_find(const tt_zip *z, const char *name) {
  int lo = 0, hi = z->n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    int r = strcmp(name, z->sorted[mid]->name);
    if (r == 0) return z->sorted[mid];
    if (r < 0) hi = mid - 1;
    else lo = mid + 1;
  }
  return NULL;
}

static const char *method_name(unsigned m) {
  switch (m) {
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstd";
    case 95: return "xz";
    default: return "unknown";
  }
}

tt_status tt_zip_resolve(tt_zip *z, tt_zip_entry *e) {
  if (e->data_off) return TT_OK;
  tt_mfile *m = z->file;
  if (e->flags & 1) return tt_error(TT_ERR_UNSUPPORTED, "%s: zip entry '%s' is encrypted", m->path, e->name);
  if (e->method != 0)
    return tt_error(TT_ERR_UNSUPPORTED,
                    "%s: zip entry '%s' is compressed (method %u, %s); checkpoints are read only with stored "
                    "(uncompressed) entries, as torch.save writes them: re-save the file with torch.save",
                    m->path, e->name, e->method, method_name(e->method));
  if (e->csize != e->size)
    return tt_error(TT_ERR_FORMAT, "%s: zip entry '%s' is stored but its sizes differ (%" PRIu64 " vs %" PRIu64 ")",
                    m->path, e->name, e->csize, e->size);
  uint8_t h[30];
  if (e->header_off > m->size || m->size - e->header_off < 30)
    return tt_error(TT_ERR_FORMAT,
                    "%s: zip entry '%s' points outside the file (local header at %" PRIu64 ", file is %" PRIu64
                    " bytes): truncated or corrupt",
                    m->path, e->name, e->header_off, m->size);
  TT_TRY(tt_mfile_read(m, e->header_off, h, 30, "a zip local header"));
  if (rd32(h) != SIG_LOCAL)
    return tt_error(TT_ERR_FORMAT, "%s: zip entry '%s': no local header at offset %" PRIu64 " (corrupt file)", m->path,
                    e->name, e->header_off);
  uint64_t off, end;
  if (!tt_u64_add(e->header_off, 30u + (uint64_t)rd16(h + 26) + rd16(h + 28), &off) || !tt_u64_add(off, e->size, &end) ||
      end > m->size)
    return tt_error(TT_ERR_FORMAT,
                    "%s: zip entry '%s' (%" PRIu64 " bytes at offset %" PRIu64 ") reaches past the end of the file (%" PRIu64
                    " bytes): truncated or corrupt",
                    m->path, e->name, e->size, off, m->size);
  e->data_off = off;
  return TT_OK;
}
