/* yaml_config.c — YAML configs into tt_value, read the way the official code
 * reads them (PyYAML's SafeLoader, YAML 1.1 scalar rules).
 *
 * Plain scalars are resolved with PyYAML's implicit resolvers, quirks
 * included: `4.5e-6` has no dot and stays a STRING (tt_value_as_num accepts
 * numeric strings), `1.0e5` too (the exponent needs a sign), `0x1F`, `0755`
 * (octal), `1_000` and `1:30` (base 60) are ints, yes/no/on/off are booleans.
 * Deviations, all on inputs the official configs do not contain: timestamps
 * stay strings, mapping keys are kept as their text (`1:` is the key "1"), and
 * integers beyond 64 bits become numbers. Anchors, aliases and `<<` merge keys
 * work; an alias is a deep copy, with a budget of a million values against
 * "billion laughs" documents. */
#include "config.h"
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <yaml.h>
#include "taming/io.h"

#define YAML_MAX_DEPTH 256
#define YAML_MAX_VALUES (1 << 20)
#define YAML_MAX_FILE_BYTES (16ll << 20)

typedef struct anchor {
  char *name;
  tt_value v;
} anchor;

typedef struct yl {
  yaml_parser_t parser;
  const char *name;
  anchor *anchors;
  int nanchors, cap;
  int64_t budget;
} yl;

static tt_status at(yl *y, const yaml_mark_t *m, tt_status s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static tt_status at(yl *y, const yaml_mark_t *m, tt_status s, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return tt_error(s, "%s:%zu:%zu: %s", y->name, m->line + 1, m->column + 1, what);
}

static tt_status next(yl *y, yaml_event_t *ev) {
  if (yaml_parser_parse(&y->parser, ev)) return TT_OK;
  const yaml_parser_t *p = &y->parser;
  char what[400];
  if (p->context)
    snprintf(what, sizeof what, "%s (%s at line %zu, column %zu)", p->problem ? p->problem : "syntax error",
             p->context, p->context_mark.line + 1, p->context_mark.column + 1);
  else
    snprintf(what, sizeof what, "%s", p->problem ? p->problem : "syntax error");
  return at(y, &p->problem_mark, TT_ERR_FORMAT, "%s", what);
}

static int64_t count_values(const tt_value *v) {
  int64_t n = 1;
  for (int i = 0; i < tt_value_len(v); i++) n += count_values(&v->u.c.items[i]);
  return n;
}

/* ---- PyYAML's implicit scalar resolution ---- */

static bool digits(const char *s, const char *set) {
  if (!*s) return false;
  for (; *s; s++)
    if (!strchr(set, *s)) return false;
  return true;
}

/* [-+]?[0-9][0-9_]* followed by (:[0-5]?[0-9])+ ; returns the end or NULL */
static const char *sexagesimal(const char *s) {
  if (*s < '0' || *s > '9') return NULL;
  while ((*s >= '0' && *s <= '9') || *s == '_') s++;
  if (*s != ':') return NULL;
  while (*s == ':') {
    s++;
    if (*s >= '0' && *s <= '5' && s[1] >= '0' && s[1] <= '9') s += 2;
    else if (*s >= '0' && *s <= '9') s++;
    else return NULL;
  }
  return s;
}

static void strip_underscores(const char *s, char *out, size_t n) {
  size_t k = 0;
  for (; *s && k + 1 < n; s++)
    if (*s != '_') out[k++] = *s;
  out[k] = 0;
}

/* Sum of base-60 parts "a:b:c" (sign already removed). */
static double base60(const char *s) {
  double v = 0;
  while (*s) {
    char *end;
    double part = strtod(s, &end);
    v = v * 60 + part;
    s = *end == ':' ? end + 1 : end + strlen(end);
  }
  return v;
}

static bool resolve_int(const char *s, tt_value *out) {
  const char *b = s + (*s == '-' || *s == '+');
  bool neg = *s == '-';
  bool ok = false;
  int base = 10;
  if (b[0] == '0' && b[1] == 'b') {
    ok = digits(b + 2, "01_");
    base = 2;
  } else if (b[0] == '0' && b[1] == 'x') {
    ok = digits(b + 2, "0123456789abcdefABCDEF_");
    base = 16;
  } else if (b[0] == '0' && b[1]) {
    ok = digits(b + 1, "01234567_");
    base = 8;
  } else if (!strcmp(b, "0")) {
    ok = true;
  } else if (b[0] >= '1' && b[0] <= '9') {
    ok = digits(b, "0123456789_");
    const char *e = ok ? NULL : sexagesimal(b);
    if (e && !*e) {
      ok = true;
      base = 60;
    }
  }
  if (!ok) return false;
  char clean[128];
  strip_underscores(b + (base == 2 || base == 16 ? 2 : 0), clean, sizeof clean);
  if (!clean[0]) return false;   /* "0x_": PyYAML fails on it; a string here */
  if (base == 60) {
    double v = base60(clean);
    *out = v < 9.2e18 ? tt_value_int((int64_t)(neg ? -v : v)) : tt_value_num(neg ? -v : v);
    return true;
  }
  errno = 0;
  unsigned long long u = strtoull(clean, NULL, base);
  if (errno == ERANGE || u > (unsigned long long)INT64_MAX + neg) {
    *out = tt_value_num(neg ? -strtod(clean, NULL) : strtod(clean, NULL));
    return true;
  }
  *out = tt_value_int(neg ? (int64_t)(0 - u) : (int64_t)u);
  return true;
}

/* [eE][-+][0-9]+ at s, or nothing */
static const char *exponent(const char *s) {
  if ((*s == 'e' || *s == 'E') && (s[1] == '-' || s[1] == '+') && s[2] >= '0' && s[2] <= '9') {
    s += 2;
    while (*s >= '0' && *s <= '9') s++;
  }
  return s;
}

static bool resolve_float(const char *s, tt_value *out) {
  const char *b = s + (*s == '-' || *s == '+');
  bool neg = *s == '-';
  if (!strcmp(b, ".inf") || !strcmp(b, ".Inf") || !strcmp(b, ".INF")) {
    *out = tt_value_num(neg ? -INFINITY : INFINITY);
    return true;
  }
  if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
    *out = tt_value_num(NAN);
    return true;
  }
  const char *p = b;
  bool ok = false, sexa = false;
  if (*p >= '0' && *p <= '9') {
    /* [0-9][0-9_]* \. [0-9_]* exponent?   or   [0-9][0-9_]* (:[0-5]?[0-9])+ \. [0-9_]* */
    const char *e = sexagesimal(p);
    if (e) {
      sexa = true;
      p = e;
    } else {
      while ((*p >= '0' && *p <= '9') || *p == '_') p++;
    }
    if (*p == '.') {
      p++;
      while ((*p >= '0' && *p <= '9') || *p == '_') p++;
      if (!sexa) p = exponent(p);
      ok = !*p;
    }
  } else if (*p == '.' && p == s && p[1] >= '0' && p[1] <= '9') {
    /* \.[0-9][0-9_]* exponent?  (no sign allowed by PyYAML) */
    p++;
    while ((*p >= '0' && *p <= '9') || *p == '_') p++;
    p = exponent(p);
    ok = !*p;
  }
  if (!ok) return false;
  char clean[128];
  strip_underscores(b, clean, sizeof clean);
  double v = sexa ? base60(clean) : strtod(clean, NULL);
  *out = tt_value_num(neg ? -v : v);
  return true;
}

static bool resolve_bool(const char *s, tt_value *out) {
  static const char *const t[] = {"yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", NULL};
  static const char *const f[] = {"no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", NULL};
  for (int i = 0; t[i]; i++) {
    if (!strcmp(s, t[i])) { *out = tt_value_bool(true); return true; }
    if (!strcmp(s, f[i])) { *out = tt_value_bool(false); return true; }
  }
  return false;
}

static bool is_null(const char *s) {
  return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static tt_status scalar(yl *y, const yaml_event_t *ev, tt_value *out) {
  const char *s = (const char *)ev->data.scalar.value;
  const char *tag = (const char *)ev->data.scalar.tag;
  bool plain = ev->data.scalar.plain_implicit && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  if (strlen(s) != ev->data.scalar.length)
    return at(y, &ev->start_mark, TT_ERR_UNSUPPORTED, "a NUL character in a scalar is not supported");
  if (!tag && plain) {
    if (is_null(s)) { *out = TT_VALUE_NIL; return TT_OK; }
    if (resolve_bool(s, out) || resolve_float(s, out) || resolve_int(s, out)) return TT_OK;
  } else if (tag && strcmp(tag, "!") != 0 && strcmp(tag, YAML_STR_TAG) != 0) {
    bool ok;
    if (!strcmp(tag, YAML_NULL_TAG)) {
      *out = TT_VALUE_NIL;
      ok = true;
    } else if (!strcmp(tag, YAML_BOOL_TAG)) {
      ok = resolve_bool(s, out);
    } else if (!strcmp(tag, YAML_INT_TAG)) {
      ok = resolve_int(s, out);
    } else if (!strcmp(tag, YAML_FLOAT_TAG)) {
      /* an explicit float takes anything Python's float() does, e.g. 1e5 */
      char clean[128], *end;
      strip_underscores(s, clean, sizeof clean);
      double v = strtod(clean, &end);
      ok = resolve_float(s, out) || (end != clean && !*end && (*out = tt_value_num(v), true));
    } else if (!strcmp(tag, YAML_TIMESTAMP_TAG) || !strcmp(tag, "tag:yaml.org,2002:binary")) {
      ok = false;   /* kept as text below */
      tag = NULL;
    } else {
      return at(y, &ev->start_mark, TT_ERR_UNSUPPORTED, "unsupported tag '%s' (only the YAML 1.1 core tags are read)",
                tag);
    }
    if (ok) return TT_OK;
    if (tag) return at(y, &ev->start_mark, TT_ERR_FORMAT, "'%s' does not match its tag %s", s, tag);
  }
  *out = tt_value_str(s);
  return out->type == TT_V_STR ? TT_OK : tt_error(TT_ERR_NOMEM, "out of memory");
}

/* ---- nodes ---- */

static tt_status remember(yl *y, const yaml_char_t *name, const tt_value *v) {
  if (!name) return TT_OK;
  if (y->nanchors == y->cap) {
    int cap = y->cap ? 2 * y->cap : 16;
    anchor *a = realloc(y->anchors, sizeof *a * (size_t)cap);
    if (!a) return tt_error(TT_ERR_NOMEM, "out of memory");
    y->anchors = a;
    y->cap = cap;
  }
  anchor *a = &y->anchors[y->nanchors];
  a->name = strdup((const char *)name);
  if (!a->name) return tt_error(TT_ERR_NOMEM, "out of memory");
  TT_TRY(tt_value_copy(&a->v, v));
  y->nanchors++;
  return TT_OK;
}

static tt_status alias(yl *y, const yaml_event_t *ev, tt_value *out) {
  const char *name = (const char *)ev->data.alias.anchor;
  /* the latest definition wins, as anchors may be redefined */
  for (int i = y->nanchors - 1; i >= 0; i--) {
    if (strcmp(y->anchors[i].name, name) != 0) continue;
    y->budget -= count_values(&y->anchors[i].v);
    if (y->budget < 0)
      return at(y, &ev->start_mark, TT_ERR_FORMAT, "aliases expand to more than %d values", YAML_MAX_VALUES);
    return tt_value_copy(out, &y->anchors[i].v);
  }
  return at(y, &ev->start_mark, TT_ERR_FORMAT, "alias '*%s' to an unknown (or not yet finished) anchor", name);
}

static tt_status node(yl *y, yaml_event_t *ev, int depth, tt_value *out);

/* Merges the mappings of a `<<` value into *into. A later merge key wins over an
 * earlier one; inside a list the first mapping wins (PyYAML applies the list
 * reversed), so the list is applied last to first. */
static tt_status merge(yl *y, const yaml_mark_t *m, tt_value *into, const tt_value *src) {
  if (src->type == TT_V_MAP) {
    for (int i = 0; i < src->u.c.len; i++) {
      tt_value c;
      TT_TRY(tt_value_copy(&c, &src->u.c.items[i]));
      TT_TRY(tt_value_set(into, src->u.c.keys[i], &c));
    }
    return TT_OK;
  }
  if (src->type == TT_V_LIST) {
    for (int i = src->u.c.len - 1; i >= 0; i--) {
      if (src->u.c.items[i].type != TT_V_MAP)
        return at(y, m, TT_ERR_FORMAT, "a merge key '<<' expects a mapping or a list of mappings");
      TT_TRY(merge(y, m, into, &src->u.c.items[i]));
    }
    return TT_OK;
  }
  return at(y, m, TT_ERR_FORMAT, "a merge key '<<' expects a mapping or a list of mappings");
}

static tt_status mapping(yl *y, int depth, tt_value *out) {
  tt_value explicit = tt_value_map(), merged = tt_value_map();
  tt_status s = TT_OK;
  for (;;) {
    yaml_event_t kev, vev;
    if ((s = next(y, &kev)) != TT_OK) break;
    if (kev.type == YAML_MAPPING_END_EVENT) {
      yaml_event_delete(&kev);
      break;
    }
    tt_value key = TT_VALUE_NIL, val = TT_VALUE_NIL;
    yaml_mark_t km = kev.start_mark;
    bool is_merge = kev.type == YAML_SCALAR_EVENT && !kev.data.scalar.tag && kev.data.scalar.plain_implicit &&
                    !strcmp((const char *)kev.data.scalar.value, "<<");
    char *ktext = NULL;
    if (kev.type == YAML_SCALAR_EVENT) {
      /* keys are kept as written: PyYAML would give `1:` an int key */
      ktext = strdup((const char *)kev.data.scalar.value);
      if (!ktext) s = tt_error(TT_ERR_NOMEM, "out of memory");
      else if (kev.data.scalar.anchor) {
        tt_value kv = tt_value_str(ktext);
        s = remember(y, kev.data.scalar.anchor, &kv);
        tt_value_clear(&kv);
      }
    } else if (kev.type == YAML_ALIAS_EVENT) {
      s = alias(y, &kev, &key);
      if (s == TT_OK && key.type != TT_V_STR)
        s = at(y, &km, TT_ERR_UNSUPPORTED, "only scalar mapping keys are supported");
      if (s == TT_OK && !(ktext = strdup(key.u.s))) s = tt_error(TT_ERR_NOMEM, "out of memory");
    } else {
      s = at(y, &km, TT_ERR_UNSUPPORTED, "only scalar mapping keys are supported");
    }
    yaml_event_delete(&kev);
    if (s == TT_OK && (s = next(y, &vev)) == TT_OK) {
      s = node(y, &vev, depth + 1, &val);
      yaml_event_delete(&vev);
    }
    if (s == TT_OK) s = is_merge ? merge(y, &km, &merged, &val) : tt_value_set(&explicit, ktext, &val);
    free(ktext);
    tt_value_clear(&key);
    tt_value_clear(&val);
    if (s != TT_OK) break;
  }
  if (s == TT_OK && merged.u.c.len) {
    /* merged keys first, explicit ones override them in place (PyYAML's order) */
    for (int i = 0; s == TT_OK && i < explicit.u.c.len; i++) {
      tt_value v = explicit.u.c.items[i];
      explicit.u.c.items[i] = TT_VALUE_NIL;
      s = tt_value_set(&merged, explicit.u.c.keys[i], &v);
      tt_value_clear(&v);
    }
    tt_value_clear(&explicit);
    explicit = merged;
    merged = TT_VALUE_NIL;
  }
  tt_value_clear(&merged);
  if (s != TT_OK) {
    tt_value_clear(&explicit);
    return s;
  }
  *out = explicit;
  return TT_OK;
}

static tt_status sequence(yl *y, int depth, tt_value *out) {
  *out = tt_value_list();
  for (;;) {
    yaml_event_t ev;
    tt_status s = next(y, &ev);
    if (s == TT_OK && ev.type == YAML_SEQUENCE_END_EVENT) {
      yaml_event_delete(&ev);
      return TT_OK;
    }
    tt_value item = TT_VALUE_NIL;
    if (s == TT_OK) {
      s = node(y, &ev, depth + 1, &item);
      yaml_event_delete(&ev);
    }
    if (s == TT_OK) s = tt_value_push(out, &item);
    if (s != TT_OK) {
      tt_value_clear(&item);
      tt_value_clear(out);
      return s;
    }
  }
}

static tt_status node(yl *y, yaml_event_t *ev, int depth, tt_value *out) {
  *out = TT_VALUE_NIL;
  if (depth > YAML_MAX_DEPTH) return at(y, &ev->start_mark, TT_ERR_FORMAT, "nested too deeply");
  if (--y->budget < 0) return at(y, &ev->start_mark, TT_ERR_FORMAT, "more than %d values", YAML_MAX_VALUES);
  const yaml_char_t *anchor_name = NULL;
  tt_status s;
  switch (ev->type) {
    case YAML_SCALAR_EVENT:
      anchor_name = ev->data.scalar.anchor;
      s = scalar(y, ev, out);
      break;
    case YAML_SEQUENCE_START_EVENT:
      anchor_name = ev->data.sequence_start.anchor;
      s = sequence(y, depth, out);
      break;
    case YAML_MAPPING_START_EVENT:
      anchor_name = ev->data.mapping_start.anchor;
      s = mapping(y, depth, out);
      break;
    case YAML_ALIAS_EVENT: return alias(y, ev, out);
    default: return at(y, &ev->start_mark, TT_ERR_FORMAT, "unexpected YAML event");
  }
  if (s == TT_OK) s = remember(y, anchor_name, out);
  if (s != TT_OK) tt_value_clear(out);
  return s;
}

tt_status tt_yaml_parse(const char *text, size_t len, const char *name, tt_value *out) {
  *out = TT_VALUE_NIL;
  yl y = {.name = name ? name : "<yaml>", .budget = YAML_MAX_VALUES};
  if (!yaml_parser_initialize(&y.parser)) return tt_error(TT_ERR_NOMEM, "%s: out of memory", y.name);
  yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
  yaml_event_t ev;
  tt_status s = TT_OK;
  bool have_doc = false;
  /* stream start, then at most one document (yaml.safe_load refuses more) */
  while (s == TT_OK && (s = next(&y, &ev)) == TT_OK) {
    yaml_event_type_t t = ev.type;
    yaml_mark_t m = ev.start_mark;
    if (t == YAML_DOCUMENT_START_EVENT && have_doc) {
      s = at(&y, &m, TT_ERR_FORMAT, "expected a single document, found a second one");
    } else if (t == YAML_DOCUMENT_START_EVENT) {
      have_doc = true;
      yaml_event_t root;
      if ((s = next(&y, &root)) == TT_OK) {
        s = node(&y, &root, 0, out);
        yaml_event_delete(&root);
      }
    }
    yaml_event_delete(&ev);
    if (t == YAML_STREAM_END_EVENT) break;
  }
  yaml_parser_delete(&y.parser);
  for (int i = 0; i < y.nanchors; i++) {
    free(y.anchors[i].name);
    tt_value_clear(&y.anchors[i].v);
  }
  free(y.anchors);
  if (s != TT_OK) tt_value_clear(out);
  return s;
}

/* The most bytes a config file may have: TAMING_MAX_CONFIG_BYTES, else 16 MiB
 * (the official configs are a few KB). */
static tt_status config_limit(const char *path, int64_t *limit) {
  *limit = YAML_MAX_FILE_BYTES;
  const char *e = getenv("TAMING_MAX_CONFIG_BYTES");
  if (!e || !*e) return TT_OK;
  char *end;
  errno = 0;
  long long v = strtoll(e, &end, 10);
  if (errno || *end || end == e || v < 1)
    return tt_error(TT_ERR_INVALID, "%s: TAMING_MAX_CONFIG_BYTES=%s: expected a byte count >= 1", path, e);
  *limit = v;
  return TT_OK;
}

tt_status tt_yaml_load(const char *path, tt_value *out) {
  *out = TT_VALUE_NIL;
  int64_t limit;
  TT_TRY(config_limit(path, &limit));
  FILE *f = fopen(path, "rb");
  if (!f) return tt_error(TT_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  /* regular files only: a directory or a device (/dev/zero) is not a config */
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    bool dir = S_ISDIR(st.st_mode);
    fclose(f);
    return tt_error(TT_ERR_IO, "%s: %s, not a YAML config", path, dir ? "is a directory" : "not a regular file");
  }
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if ((int64_t)len > limit) { /* read in whole: st_size may be 0 (procfs) or grow */
      free(buf);
      fclose(f);
      return tt_error(TT_ERR_FORMAT, "%s: larger than %lld bytes, too large for a config (TAMING_MAX_CONFIG_BYTES "
                      "raises the limit)", path, (long long)limit);
    }
    if (len == cap) {
      cap = cap ? cap * 2 : 1 << 14;
      char *b = realloc(buf, cap);
      if (!b) {
        free(buf);
        fclose(f);
        return tt_error(TT_ERR_NOMEM, "%s: out of memory", path);
      }
      buf = b;
    }
    size_t r = fread(buf + len, 1, cap - len, f);
    len += r;
    if (r == 0 && (int64_t)len <= limit) break;
  }
  bool bad = ferror(f);
  int err = errno;
  fclose(f);
  if (bad) {
    free(buf);
    return tt_error(TT_ERR_IO, "%s: read error: %s", path, strerror(err ? err : EIO));
  }
  tt_status s = tt_yaml_parse(buf, len, path, out);
  free(buf);
  /* yaml.safe_load gives None for an empty file; no config is empty */
  if (s == TT_OK && out->type == TT_V_NIL) s = tt_error(TT_ERR_FORMAT, "%s: empty config", path);
  return s;
}
