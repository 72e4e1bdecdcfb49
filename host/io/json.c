/* json.c — a small strict JSON (RFC 8259) parser into tt_value, and string
 * escaping for the writers. Used for safetensors headers, where a malformed
 * header must be an error, never a guess. */
#include "config.h"
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "io_internal.h"

#define JSON_MAX_DEPTH 64

typedef struct jp {
  const char *start, *p, *end;
  const char *name;
} jp;

static tt_status jerr(jp *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static tt_status jerr(jp *j, const char *fmt, ...) {
  char what[200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return tt_error(TT_ERR_FORMAT, "%s: bad JSON: %s at byte %zu", j->name, what, (size_t)(j->p - j->start));
}

static void ws(jp *j) {
  while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r')) j->p++;
}

static int hex4(const char *p) {
  int v = 0;
  for (int i = 0; i < 4; i++) {
    char c = p[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) { o[0] = (char)cp; return 1; }
  if (cp < 0x800) { o[0] = (char)(0xc0 | cp >> 6); o[1] = (char)(0x80 | (cp & 0x3f)); return 2; }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | cp >> 12); o[1] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | cp >> 18); o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f)); o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* A string literal at j->p (the opening quote) -> malloc'd UTF-8. */
static tt_status string(jp *j, char **out) {
  j->p++;
  const char *q = j->p;
  while (q < j->end && *q != '"') q += *q == '\\' ? 2 : 1;
  if (q >= j->end) return jerr(j, "unterminated string");
  char *o = malloc((size_t)(q - j->p) + 1), *w = o;   /* escapes never grow the text */
  if (!o) return tt_error(TT_ERR_NOMEM, "%s: out of memory", j->name);
  while (*j->p != '"') {
    unsigned char c = (unsigned char)*j->p;
    if (c < 0x20) { free(o); return jerr(j, "control character in a string"); }
    if (c != '\\') { *w++ = (char)c; j->p++; continue; }
    char e = j->p[1];
    j->p += 2;
    switch (e) {
      case '"': *w++ = '"'; break;
      case '\\': *w++ = '\\'; break;
      case '/': *w++ = '/'; break;
      case 'b': *w++ = '\b'; break;
      case 'f': *w++ = '\f'; break;
      case 'n': *w++ = '\n'; break;
      case 'r': *w++ = '\r'; break;
      case 't': *w++ = '\t'; break;
      case 'u': {
        int cp = j->end - j->p >= 4 ? hex4(j->p) : -1;
        if (cp < 0) { free(o); return jerr(j, "bad \\u escape"); }
        j->p += 4;
        if (cp >= 0xd800 && cp < 0xdc00) {
          int lo = j->end - j->p >= 6 && j->p[0] == '\\' && j->p[1] == 'u' ? hex4(j->p + 2) : -1;
          if (lo < 0xdc00 || lo > 0xdfff) { free(o); return jerr(j, "unpaired surrogate"); }
          j->p += 6;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        } else if (cp >= 0xdc00 && cp < 0xe000) {
          free(o);
          return jerr(j, "unpaired surrogate");
        }
        if (cp == 0) { free(o); return jerr(j, "\\u0000 in a string is not supported"); }
        w += put_utf8(w, (unsigned)cp);
        break;
      }
      default: free(o); return jerr(j, "bad escape '\\%c'", e);
    }
  }
  j->p++;
  *w = 0;
  *out = o;
  return TT_OK;
}

static tt_status number(jp *j, tt_value *out) {
  const char *s = j->p;
  bool integral = true;
  if (j->p < j->end && *j->p == '-') j->p++;
  if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jerr(j, "bad number");
  if (*j->p == '0') j->p++;
  else while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  if (j->p < j->end && *j->p == '.') {
    integral = false;
    j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jerr(j, "bad number");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  }
  if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
    integral = false;
    j->p++;
    if (j->p < j->end && (*j->p == '+' || *j->p == '-')) j->p++;
    if (j->p >= j->end || *j->p < '0' || *j->p > '9') return jerr(j, "bad number");
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') j->p++;
  }
  char buf[64];
  size_t n = (size_t)(j->p - s);
  if (n >= sizeof buf) return jerr(j, "number too long");
  memcpy(buf, s, n);
  buf[n] = 0;
  if (integral) {
    errno = 0;
    long long v = strtoll(buf, NULL, 10);
    if (errno != ERANGE) {
      *out = tt_value_int(v);
      return TT_OK;
    }
  }
  *out = tt_value_num(strtod(buf, NULL));
  return TT_OK;
}

static tt_status literal(jp *j, const char *word, tt_value v, tt_value *out) {
  size_t n = strlen(word);
  if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0) return jerr(j, "unexpected character '%c'", *j->p);
  j->p += n;
  *out = v;
  return TT_OK;
}

static tt_status value(jp *j, int depth, tt_value *out);

static tt_status container(jp *j, int depth, tt_value *out) {
  bool obj = *j->p == '{';
  char close = obj ? '}' : ']';
  if (depth > JSON_MAX_DEPTH) return jerr(j, "nested too deeply");
  j->p++;
  *out = obj ? tt_value_map() : tt_value_list();
  ws(j);
  if (j->p < j->end && *j->p == close) {
    j->p++;
    return TT_OK;
  }
  for (;;) {
    char *key = NULL;
    tt_value item = TT_VALUE_NIL;
    tt_status s = TT_OK;
    ws(j);
    if (obj) {
      if (j->p >= j->end || *j->p != '"') s = jerr(j, "expected a key string");
      if (s == TT_OK) s = string(j, &key);
      if (s == TT_OK && tt_value_get(out, key)) s = jerr(j, "duplicate key \"%s\"", key);
      if (s == TT_OK) {
        ws(j);
        if (j->p >= j->end || *j->p != ':') s = jerr(j, "expected ':'");
        else j->p++;
      }
    }
    if (s == TT_OK) s = value(j, depth + 1, &item);
    if (s == TT_OK) s = obj ? tt_value_set(out, key, &item) : tt_value_push(out, &item);
    free(key);
    if (s != TT_OK) {
      tt_value_clear(&item);
      tt_value_clear(out);
      return s;
    }
    ws(j);
    if (j->p < j->end && *j->p == ',') {
      j->p++;
      continue;
    }
    if (j->p < j->end && *j->p == close) {
      j->p++;
      return TT_OK;
    }
    tt_value_clear(out);
    return jerr(j, "expected ',' or '%c'", close);
  }
}

static tt_status value(jp *j, int depth, tt_value *out) {
  *out = TT_VALUE_NIL;
  ws(j);
  if (j->p >= j->end) return jerr(j, "unexpected end");
  switch (*j->p) {
    case '{': case '[': return container(j, depth, out);
    case '"': {
      char *s;
      TT_TRY(string(j, &s));
      *out = (tt_value){.type = TT_V_STR, .u.s = s};
      return TT_OK;
    }
    case 't': return literal(j, "true", tt_value_bool(true), out);
    case 'f': return literal(j, "false", tt_value_bool(false), out);
    case 'n': return literal(j, "null", TT_VALUE_NIL, out);
    default:
      if (*j->p == '-' || (*j->p >= '0' && *j->p <= '9')) return number(j, out);
      return jerr(j, "unexpected character '%c'", *j->p);
  }
}

tt_status tt_json_parse(const char *text, size_t len, const char *name, tt_value *out) {
  jp j = {.start = text, .p = text, .end = text + len, .name = name};
  TT_TRY(value(&j, 0, out));
  ws(&j);
  if (j.p != j.end) {
    tt_value_clear(out);
    return jerr(&j, "trailing characters after the value");
  }
  return TT_OK;
}

void tt_json_write_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    switch (*p) {
      case '"': fputs("\\\"", f); break;
      case '\\': fputs("\\\\", f); break;
      case '\n': fputs("\\n", f); break;
      case '\r': fputs("\\r", f); break;
      case '\t': fputs("\\t", f); break;
      default:
        if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
  }
  fputc('"', f);
}
