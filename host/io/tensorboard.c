/* tensorboard.c — TensorBoard event files (see taming/tensorboard.h): the
 * TFRecord framing with masked CRC-32C, Event/Summary protobufs encoded by hand
 * (only the fields TensorBoard reads for scalars and images), PNG encoding into
 * memory for image summaries, and a strict reader used by the tests.
 *
 * Each event is written with one fwrite and flushed, so a process killed at any
 * point leaves at most a truncated last record, which TensorBoard skips. */
#include "config.h"
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "taming/io.h"
#include "taming/tensorboard.h"
#include "io_internal.h"

/* ---- CRC-32C ---- */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
    crc_table[0][i] = c;
  }
  /* slicing-by-8 tables: images make records of hundreds of kilobytes */
  for (int t = 1; t < 8; t++)
    for (int i = 0; i < 256; i++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t tt_crc32c(uint32_t crc, const void *data, size_t n) {
  pthread_once(&crc_once, crc_init);
  const unsigned char *p = data;
  crc = ~crc;
  while (n >= 8) {
    uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
    crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^ crc_table[5][(lo >> 16) & 0xff] ^
          crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^ crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n--) crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
  return ~crc;
}

uint32_t tt_crc32c_mask(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

/* ---- a growable byte buffer with protobuf encoders ---- */

typedef struct buf {
  unsigned char *d;
  size_t n, cap;
  bool failed;
} buf;

static void buf_put(buf *b, const void *p, size_t n) {
  if (b->failed) return;
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + n) cap *= 2;
    unsigned char *d = realloc(b->d, cap);
    if (!d) { b->failed = true; return; }
    b->d = d;
    b->cap = cap;
  }
  memcpy(b->d + b->n, p, n);
  b->n += n;
}

static void pb_varint(buf *b, uint64_t v) {
  unsigned char t[10];
  int n = 0;
  do {
    t[n] = (unsigned char)(v & 0x7f);
    v >>= 7;
    if (v) t[n] |= 0x80;
    n++;
  } while (v);
  buf_put(b, t, (size_t)n);
}

enum { WT_VARINT = 0, WT_FIXED64 = 1, WT_BYTES = 2, WT_FIXED32 = 5 };

static void pb_key(buf *b, int field, int wt) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wt); }

static void pb_bytes(buf *b, int field, const void *p, size_t n) {
  pb_key(b, field, WT_BYTES);
  pb_varint(b, n);
  buf_put(b, p, n);
}

static void pb_le(buf *b, uint64_t v, int n) {
  unsigned char t[8];
  for (int i = 0; i < n; i++) t[i] = (unsigned char)(v >> (8 * i));
  buf_put(b, t, (size_t)n);
}

static void pb_double(buf *b, int field, double v) {
  uint64_t u;
  memcpy(&u, &v, 8);
  pb_key(b, field, WT_FIXED64);
  pb_le(b, u, 8);
}

static void pb_float(buf *b, int field, float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  pb_key(b, field, WT_FIXED32);
  pb_le(b, u, 4);
}

/* ---- the writer ---- */

struct tt_tb_writer {
  FILE *f;
  char *path;
};

static double wall_time(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One TFRecord around an encoded Event, written in one call and flushed. */
static tt_status write_record(tt_tb_writer *w, const buf *ev) {
  if (ev->failed) return tt_error(TT_ERR_NOMEM, "%s: out of memory encoding an event", w->path);
  buf r = {0};
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)((uint64_t)ev->n >> (8 * i));
  buf_put(&r, len, 8);
  pb_le(&r, tt_crc32c_mask(tt_crc32c(0, len, 8)), 4);
  buf_put(&r, ev->d, ev->n);
  pb_le(&r, tt_crc32c_mask(tt_crc32c(0, ev->d, ev->n)), 4);
  tt_status s = TT_OK;
  if (r.failed) s = tt_error(TT_ERR_NOMEM, "%s: out of memory framing an event", w->path);
  else if (fwrite(r.d, 1, r.n, w->f) != r.n || fflush(w->f) != 0)
    s = tt_error(TT_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
  free(r.d);
  return s;
}

static tt_status mkdirs(const char *path) {
  char b[4096];
  size_t n = strlen(path);
  if (n == 0 || n >= sizeof b) return tt_error(TT_ERR_INVALID, "tensorboard: bad log folder '%s'", path);
  memcpy(b, path, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (b[i] != '/' && b[i] != 0) continue;
    char c = b[i];
    b[i] = 0;
    if (mkdir(b, 0777) != 0 && errno != EEXIST)
      return tt_error(TT_ERR_IO, "%s: cannot create folder: %s", b, strerror(errno));
    b[i] = c;
  }
  return TT_OK;
}

tt_status tt_tb_open(const char *logdir, tt_tb_writer **out) {
  *out = NULL;
  if (!logdir) return tt_error(TT_ERR_INVALID, "tensorboard: no log folder given");
  TT_TRY(mkdirs(logdir));
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "localhost");
  host[sizeof host - 1] = 0;
  for (char *p = host; *p; p++)
    if (*p == '/') *p = '_';
  long now = (long)time(NULL);
  size_t cap = strlen(logdir) + strlen(host) + 64;
  char *path = malloc(cap);
  if (!path) return tt_error(TT_ERR_NOMEM, "out of memory");
  FILE *f = NULL;
  for (int k = 0; k < 100 && !f; k++) {
    /* two writers started in the same second get distinct files */
    if (k == 0) snprintf(path, cap, "%s/events.out.tfevents.%ld.%s", logdir, now, host);
    else snprintf(path, cap, "%s/events.out.tfevents.%ld.%s.%d", logdir, now, host, k);
    f = fopen(path, "wbx");
    if (!f && errno != EEXIST) break;
  }
  if (!f) {
    tt_status s = tt_error(TT_ERR_IO, "%s: cannot create event file: %s", path, strerror(errno));
    free(path);
    return s;
  }
  tt_tb_writer *w = calloc(1, sizeof *w);
  if (!w) {
    fclose(f);
    free(path);
    return tt_error(TT_ERR_NOMEM, "out of memory");
  }
  w->f = f;
  w->path = path;
  buf ev = {0};
  pb_double(&ev, 1, wall_time());
  pb_key(&ev, 2, WT_VARINT);
  pb_varint(&ev, 0);
  pb_bytes(&ev, 3, "brain.Event:2", 13);
  tt_status s = write_record(w, &ev);
  free(ev.d);
  if (s != TT_OK) {
    tt_tb_close(w);
    return s;
  }
  *out = w;
  return TT_OK;
}

const char *tt_tb_path(const tt_tb_writer *w) { return w ? w->path : NULL; }

/* Event{wall_time, step, summary{value}} around one encoded Summary.Value. */
static tt_status write_value(tt_tb_writer *w, int64_t step, const buf *value) {
  if (value->failed) return tt_error(TT_ERR_NOMEM, "%s: out of memory encoding a summary", w->path);
  buf summary = {0}, ev = {0};
  pb_bytes(&summary, 1, value->d, value->n);
  pb_double(&ev, 1, wall_time());
  pb_key(&ev, 2, WT_VARINT);
  pb_varint(&ev, (uint64_t)step);
  if (summary.failed) ev.failed = true;
  else pb_bytes(&ev, 5, summary.d, summary.n);
  tt_status s = write_record(w, &ev);
  free(summary.d);
  free(ev.d);
  return s;
}

tt_status tt_tb_scalar(tt_tb_writer *w, const char *tag, int64_t step, double value) {
  if (!w || !tag) return tt_error(TT_ERR_INVALID, "tensorboard scalar: missing writer or tag");
  buf v = {0};
  pb_bytes(&v, 1, tag, strlen(tag));
  pb_float(&v, 2, (float)value);
  tt_status s = write_value(w, step, &v);
  free(v.d);
  return s;
}

tt_status tt_tb_image(tt_tb_writer *w, const char *tag, int64_t step, tt_tensor *img) {
  char sh[128];
  if (!w || !tag || !img) return tt_error(TT_ERR_INVALID, "tensorboard image: missing writer, tag or image");
  tt_tensor *u8 = NULL;
  if (img->dtype == TT_U8) {
    if (img->ndim != 3 || img->device != TT_CPU || !tt_tensor_is_contiguous(img))
      return tt_error(TT_ERR_INVALID, "tensorboard image '%s': expected contiguous CPU u8 [H, W, C], found %s", tag,
                      tt_tensor_shape_str(img, sh, sizeof sh));
    u8 = tt_tensor_ref(img);
  } else {
    u8 = tt_image_to_u8(img);
    if (!u8) return tt_error_prefix(tt_last_status(), "tensorboard image '%s': ", tag);
  }
  int64_t H = u8->shape[0], W = u8->shape[1], C = u8->shape[2];
  if (C != 1 && C != 3 && C != 4) {
    tt_tensor_unref(u8);
    return tt_error(TT_ERR_INVALID, "tensorboard image '%s': %lld channels (expected 1, 3 or 4)", tag, (long long)C);
  }
  if (H < 1 || W < 1 || H > (1 << 20) || W > (1 << 20)) {
    tt_tensor_unref(u8);
    return tt_error(TT_ERR_INVALID, "tensorboard image '%s': bad size %lldx%lld", tag, (long long)H, (long long)W);
  }
  char what[160];
  snprintf(what, sizeof what, "tensorboard image '%s'", tag);
  unsigned char *png = NULL;
  size_t png_len = 0;
  tt_status s = tt_png_encode_mem(what, tt_tensor_data(u8), H, W, (int)C, &png, &png_len);
  tt_tensor_unref(u8);
  if (s == TT_OK) {
    buf im = {0}, v = {0};
    pb_key(&im, 1, WT_VARINT);
    pb_varint(&im, (uint64_t)H);
    pb_key(&im, 2, WT_VARINT);
    pb_varint(&im, (uint64_t)W);
    pb_key(&im, 3, WT_VARINT);
    pb_varint(&im, (uint64_t)C);   /* colorspace: 1 gray, 3 RGB, 4 RGBA */
    pb_bytes(&im, 4, png, png_len);
    pb_bytes(&v, 1, tag, strlen(tag));
    if (im.failed) v.failed = true;
    else pb_bytes(&v, 4, im.d, im.n);
    s = write_value(w, step, &v);
    free(im.d);
    free(v.d);
  }
  free(png);
  return s;
}

tt_status tt_tb_flush(tt_tb_writer *w) {
  if (!w) return TT_OK;
  if (fflush(w->f) != 0 || fsync(fileno(w->f)) != 0)
    return tt_error(TT_ERR_IO, "%s: flush failed: %s", w->path, strerror(errno));
  return TT_OK;
}

void tt_tb_close(tt_tb_writer *w) {
  if (!w) return;
  if (w->f) fclose(w->f);
  free(w->path);
  free(w);
}

/* ---- the reader ---- */

typedef struct pb_reader {
  const unsigned char *p, *end;
} pb_reader;

static bool pb_read_varint(pb_reader *r, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return false;
    unsigned char c = *r->p++;
    *v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return true;
  }
  return false;
}

/* Reads one field header and its payload: a varint/fixed value or a byte span. */
typedef struct pb_field {
  int number, wt;
  uint64_t u;
  const unsigned char *data;
  size_t len;
} pb_field;

static bool pb_next(pb_reader *r, pb_field *f, const char **why) {
  uint64_t key;
  if (!pb_read_varint(r, &key)) { *why = "truncated field key"; return false; }
  f->number = (int)(key >> 3);
  f->wt = (int)(key & 7);
  if (f->number == 0) { *why = "field number 0"; return false; }
  switch (f->wt) {
    case WT_VARINT:
      if (!pb_read_varint(r, &f->u)) { *why = "truncated varint"; return false; }
      return true;
    case WT_FIXED64:
    case WT_FIXED32: {
      size_t n = f->wt == WT_FIXED64 ? 8 : 4;
      if ((size_t)(r->end - r->p) < n) { *why = "truncated fixed-width value"; return false; }
      f->u = 0;
      for (size_t i = 0; i < n; i++) f->u |= (uint64_t)r->p[i] << (8 * i);
      r->p += n;
      return true;
    }
    case WT_BYTES:
      if (!pb_read_varint(r, &f->u) || f->u > (uint64_t)(r->end - r->p)) {
        *why = "length-delimited field runs past its message";
        return false;
      }
      f->data = r->p;
      f->len = (size_t)f->u;
      r->p += f->len;
      return true;
    default: *why = "unknown wire type"; return false;
  }
}

typedef struct event_scratch {
  tt_tb_value *values;
  int n, cap;
  char **strings;
  int ns, scap;
} event_scratch;

static const char *keep_string(event_scratch *s, const unsigned char *p, size_t n) {
  if (s->ns == s->scap) {
    int cap = s->scap ? s->scap * 2 : 8;
    char **a = realloc(s->strings, sizeof *a * (size_t)cap);
    if (!a) return NULL;
    s->strings = a;
    s->scap = cap;
  }
  char *c = malloc(n + 1);
  if (!c) return NULL;
  memcpy(c, p, n);
  c[n] = 0;
  s->strings[s->ns++] = c;
  return c;
}

static void scratch_reset(event_scratch *s) {
  for (int i = 0; i < s->ns; i++) free(s->strings[i]);
  s->ns = 0;
  s->n = 0;
}

static bool parse_image(const unsigned char *p, size_t n, tt_tb_value *v, const char **why) {
  pb_reader r = {p, p + n};
  pb_field f;
  while (r.p < r.end) {
    if (!pb_next(&r, &f, why)) return false;
    bool want_varint = f.number >= 1 && f.number <= 3;
    if ((want_varint && f.wt != WT_VARINT) || (f.number == 4 && f.wt != WT_BYTES)) {
      *why = "Summary.Image field with the wrong wire type";
      return false;
    }
    if (f.number == 1) v->height = (int)f.u;
    else if (f.number == 2) v->width = (int)f.u;
    else if (f.number == 3) v->colorspace = (int)f.u;
    else if (f.number == 4) { v->png = f.data; v->png_len = f.len; }
  }
  v->has_image = true;
  return true;
}

static bool parse_value(const unsigned char *p, size_t n, tt_tb_value *v, event_scratch *s, const char **why) {
  pb_reader r = {p, p + n};
  pb_field f;
  memset(v, 0, sizeof *v);
  while (r.p < r.end) {
    if (!pb_next(&r, &f, why)) return false;
    if (f.number == 1) {
      if (f.wt != WT_BYTES) { *why = "Summary.Value.tag is not a string"; return false; }
      if (!(v->tag = keep_string(s, f.data, f.len))) { *why = "out of memory"; return false; }
    } else if (f.number == 2) {
      if (f.wt != WT_FIXED32) { *why = "Summary.Value.simple_value is not a float"; return false; }
      uint32_t u = (uint32_t)f.u;
      memcpy(&v->simple_value, &u, 4);
      v->has_simple_value = true;
    } else if (f.number == 4) {
      if (f.wt != WT_BYTES) { *why = "Summary.Value.image is not a message"; return false; }
      if (!parse_image(f.data, f.len, v, why)) return false;
    }
  }
  if (!v->tag) { *why = "Summary.Value without a tag"; return false; }
  return true;
}

static bool parse_event(const unsigned char *p, size_t n, tt_tb_event *e, event_scratch *s, const char **why) {
  pb_reader r = {p, p + n};
  pb_field f;
  memset(e, 0, sizeof *e);
  while (r.p < r.end) {
    if (!pb_next(&r, &f, why)) return false;
    if (f.number == 1) {
      if (f.wt != WT_FIXED64) { *why = "Event.wall_time is not a double"; return false; }
      memcpy(&e->wall_time, &f.u, 8);
    } else if (f.number == 2) {
      if (f.wt != WT_VARINT) { *why = "Event.step is not a varint"; return false; }
      e->step = (int64_t)f.u;
    } else if (f.number == 3) {
      if (f.wt != WT_BYTES) { *why = "Event.file_version is not a string"; return false; }
      if (!(e->file_version = keep_string(s, f.data, f.len))) { *why = "out of memory"; return false; }
    } else if (f.number == 5) {
      if (f.wt != WT_BYTES) { *why = "Event.summary is not a message"; return false; }
      pb_reader sr = {f.data, f.data + f.len};
      pb_field g;
      while (sr.p < sr.end) {
        if (!pb_next(&sr, &g, why)) return false;
        if (g.number != 1) continue;
        if (g.wt != WT_BYTES) { *why = "Summary.value is not a message"; return false; }
        if (s->n == s->cap) {
          int cap = s->cap ? s->cap * 2 : 4;
          tt_tb_value *a = realloc(s->values, sizeof *a * (size_t)cap);
          if (!a) { *why = "out of memory"; return false; }
          s->values = a;
          s->cap = cap;
        }
        if (!parse_value(g.data, g.len, &s->values[s->n], s, why)) return false;
        s->n++;
      }
    }
  }
  e->n_values = s->n;
  e->values = s->values;
  return true;
}

static uint32_t le32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

tt_status tt_tb_read(const char *path, tt_tb_event_fn fn, void *ud) {
  FILE *f = fopen(path, "rb");
  if (!f) return tt_error(TT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  event_scratch s = {0};
  unsigned char *data = NULL;
  size_t cap = 0;
  tt_status st = TT_OK;
  long long offset = 0;
  for (int rec = 0;; rec++) {
    unsigned char head[12];
    size_t got = fread(head, 1, 12, f);
    if (got == 0 && feof(f)) break;
    if (got != 12) {
      st = tt_error(TT_ERR_FORMAT, "%s: record %d at offset %lld: truncated header (%zu of 12 bytes)", path, rec, offset,
                    got);
      break;
    }
    uint64_t len = 0;
    for (int i = 0; i < 8; i++) len |= (uint64_t)head[i] << (8 * i);
    if (le32(head + 8) != tt_crc32c_mask(tt_crc32c(0, head, 8))) {
      st = tt_error(TT_ERR_FORMAT, "%s: record %d at offset %lld: length CRC mismatch", path, rec, offset);
      break;
    }
    if (len > ((uint64_t)1 << 31)) {
      st = tt_error(TT_ERR_FORMAT, "%s: record %d at offset %lld: implausible length %llu", path, rec, offset,
                    (unsigned long long)len);
      break;
    }
    if (len + 4 > cap) {
      unsigned char *d = realloc(data, (size_t)len + 4);
      if (!d) { st = tt_error(TT_ERR_NOMEM, "%s: out of memory", path); break; }
      data = d;
      cap = (size_t)len + 4;
    }
    if (fread(data, 1, (size_t)len + 4, f) != (size_t)len + 4) {
      st = tt_error(TT_ERR_FORMAT, "%s: record %d at offset %lld: truncated (%llu data bytes expected)", path, rec,
                    offset, (unsigned long long)len);
      break;
    }
    if (le32(data + len) != tt_crc32c_mask(tt_crc32c(0, data, (size_t)len))) {
      st = tt_error(TT_ERR_FORMAT, "%s: record %d at offset %lld: data CRC mismatch", path, rec, offset);
      break;
    }
    tt_tb_event e;
    const char *why = NULL;
    scratch_reset(&s);
    if (!parse_event(data, (size_t)len, &e, &s, &why)) {
      st = tt_error(TT_ERR_FORMAT, "%s: record %d at offset %lld: bad Event protobuf: %s", path, rec, offset, why);
      break;
    }
    if (fn && (st = fn(&e, ud)) != TT_OK) break;
    offset += 16 + (long long)len;
  }
  scratch_reset(&s);
  free(s.strings);
  free(s.values);
  free(data);
  fclose(f);
  return st;
}
