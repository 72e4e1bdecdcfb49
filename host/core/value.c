/* value.c — the dynamic value used for configs and plugin method calls. */
#include "config.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "taming/value.h"

void tt_value_clear(tt_value *v) {
  if (!v) return;
  switch (v->type) {
    case TT_V_STR: free(v->u.s); break;
    case TT_V_TENSOR: tt_tensor_unref(v->u.t); break;
    case TT_V_LIST:
    case TT_V_MAP:
      for (int i = 0; i < v->u.c.len; i++) {
        tt_value_clear(&v->u.c.items[i]);
        if (v->u.c.keys) free(v->u.c.keys[i]);
      }
      free(v->u.c.items);
      free(v->u.c.keys);
      break;
    default: break;
  }
  v->type = TT_V_NIL;
}

tt_value tt_value_bool(bool b) { return (tt_value){.type = TT_V_BOOL, .u.b = b}; }
tt_value tt_value_int(int64_t i) { return (tt_value){.type = TT_V_INT, .u.i = i}; }
tt_value tt_value_num(double n) { return (tt_value){.type = TT_V_NUM, .u.n = n}; }
tt_value tt_value_str(const char *s) {
  char *c = strdup(s ? s : "");
  if (!c) return TT_VALUE_NIL;
  return (tt_value){.type = TT_V_STR, .u.s = c};
}
tt_value tt_value_tensor(tt_tensor *t) {
  return (tt_value){.type = TT_V_TENSOR, .u.t = tt_tensor_ref(t)};
}
tt_value tt_value_tensor_steal(tt_tensor *t) { return (tt_value){.type = TT_V_TENSOR, .u.t = t}; }
tt_value tt_value_list(void) { return (tt_value){.type = TT_V_LIST}; }
tt_value tt_value_map(void) { return (tt_value){.type = TT_V_MAP}; }

static tt_status grow(tt_value *c) {
  if (c->u.c.len < c->u.c.cap) return TT_OK;
  int cap = c->u.c.cap ? c->u.c.cap * 2 : 8;
  tt_value *items = realloc(c->u.c.items, sizeof *items * (size_t)cap);
  if (!items) return tt_error(TT_ERR_NOMEM, "out of memory growing a value");
  c->u.c.items = items;
  if (c->type == TT_V_MAP) {
    char **keys = realloc(c->u.c.keys, sizeof *keys * (size_t)cap);
    if (!keys) return tt_error(TT_ERR_NOMEM, "out of memory growing a value");
    c->u.c.keys = keys;
  }
  c->u.c.cap = cap;
  return TT_OK;
}

tt_status tt_value_push(tt_value *list, tt_value *item) {
  if (list->type != TT_V_LIST) return tt_error(TT_ERR_INVALID, "push onto a %s", tt_vtype_name(list->type));
  TT_TRY(grow(list));
  list->u.c.items[list->u.c.len++] = *item;
  *item = TT_VALUE_NIL;
  return TT_OK;
}

tt_status tt_value_set(tt_value *map, const char *key, tt_value *item) {
  if (map->type != TT_V_MAP) return tt_error(TT_ERR_INVALID, "set '%s' on a %s", key, tt_vtype_name(map->type));
  for (int i = 0; i < map->u.c.len; i++) {
    if (strcmp(map->u.c.keys[i], key) == 0) {
      tt_value_clear(&map->u.c.items[i]);
      map->u.c.items[i] = *item;
      *item = TT_VALUE_NIL;
      return TT_OK;
    }
  }
  TT_TRY(grow(map));
  char *k = strdup(key);
  if (!k) return tt_error(TT_ERR_NOMEM, "out of memory");
  map->u.c.keys[map->u.c.len] = k;
  map->u.c.items[map->u.c.len++] = *item;
  *item = TT_VALUE_NIL;
  return TT_OK;
}

const tt_value *tt_value_get(const tt_value *map, const char *key) {
  if (!map || map->type != TT_V_MAP) return NULL;
  for (int i = 0; i < map->u.c.len; i++)
    if (strcmp(map->u.c.keys[i], key) == 0) return &map->u.c.items[i];
  return NULL;
}

int tt_value_len(const tt_value *v) {
  return v && (v->type == TT_V_LIST || v->type == TT_V_MAP) ? v->u.c.len : 0;
}

const tt_value *tt_value_at(const tt_value *list, int i) {
  if (!list || (list->type != TT_V_LIST && list->type != TT_V_MAP) || i < 0 || i >= list->u.c.len)
    return NULL;
  return &list->u.c.items[i];
}

tt_status tt_value_copy(tt_value *dst, const tt_value *src) {
  *dst = TT_VALUE_NIL;
  switch (src->type) {
    case TT_V_STR:
      *dst = tt_value_str(src->u.s);
      if (dst->type != TT_V_STR) return tt_error(TT_ERR_NOMEM, "out of memory");
      return TT_OK;
    case TT_V_TENSOR: *dst = tt_value_tensor(src->u.t); return TT_OK;
    case TT_V_LIST:
    case TT_V_MAP: {
      *dst = src->type == TT_V_LIST ? tt_value_list() : tt_value_map();
      for (int i = 0; i < src->u.c.len; i++) {
        tt_value item;
        tt_status s = tt_value_copy(&item, &src->u.c.items[i]);
        if (s == TT_OK)
          s = src->type == TT_V_LIST ? tt_value_push(dst, &item) : tt_value_set(dst, src->u.c.keys[i], &item);
        if (s != TT_OK) {
          tt_value_clear(&item);
          tt_value_clear(dst);
          return s;
        }
      }
      return TT_OK;
    }
    default: *dst = *src; return TT_OK;
  }
}

const char *tt_vtype_name(tt_vtype t) {
  static const char *names[] = {"nil", "bool", "int", "number", "string", "tensor", "list", "map"};
  return (unsigned)t <= TT_V_MAP ? names[t] : "?";
}

static const tt_value *present(const tt_value *map, const char *key) {
  const tt_value *v = tt_value_get(map, key);
  return v && v->type != TT_V_NIL ? v : NULL;
}

tt_status tt_value_as_int(const tt_value *v, const char *what, int64_t *out) {
  if (v->type == TT_V_INT) { *out = v->u.i; return TT_OK; }
  if (v->type == TT_V_BOOL) { *out = v->u.b; return TT_OK; }
  if (v->type == TT_V_NUM && v->u.n == floor(v->u.n) && fabs(v->u.n) < 9.0e15) {
    *out = (int64_t)v->u.n;
    return TT_OK;
  }
  return tt_error(TT_ERR_INVALID, "%s: expected an integer, found %s", what, tt_vtype_name(v->type));
}

tt_status tt_value_as_num(const tt_value *v, const char *what, double *out) {
  if (v->type == TT_V_NUM) { *out = v->u.n; return TT_OK; }
  if (v->type == TT_V_INT) { *out = (double)v->u.i; return TT_OK; }
  /* PyYAML reads "4.5e-6" (no dot) as a string; accept numeric strings for numbers. */
  if (v->type == TT_V_STR) {
    char *end;
    double d = strtod(v->u.s, &end);
    if (end != v->u.s && *end == 0) { *out = d; return TT_OK; }
  }
  return tt_error(TT_ERR_INVALID, "%s: expected a number, found %s", what, tt_vtype_name(v->type));
}

tt_status tt_value_as_tensor(const tt_value *v, const char *what, tt_tensor **out) {
  if (v->type == TT_V_TENSOR) { *out = v->u.t; return TT_OK; }
  return tt_error(TT_ERR_INVALID, "%s: expected a tensor, found %s", what, tt_vtype_name(v->type));
}

tt_status tt_cfg_int(const tt_value *map, const char *key, int64_t *out) {
  const tt_value *v = present(map, key);
  if (!v) return tt_error(TT_ERR_NOT_FOUND, "missing key '%s'", key);
  char what[160];
  snprintf(what, sizeof what, "key '%s'", key);
  return tt_value_as_int(v, what, out);
}

tt_status tt_cfg_int_opt(const tt_value *map, const char *key, int64_t def, int64_t *out) {
  if (!present(map, key)) { *out = def; return TT_OK; }
  return tt_cfg_int(map, key, out);
}

tt_status tt_cfg_num(const tt_value *map, const char *key, double *out) {
  const tt_value *v = present(map, key);
  if (!v) return tt_error(TT_ERR_NOT_FOUND, "missing key '%s'", key);
  char what[160];
  snprintf(what, sizeof what, "key '%s'", key);
  return tt_value_as_num(v, what, out);
}

tt_status tt_cfg_num_opt(const tt_value *map, const char *key, double def, double *out) {
  if (!present(map, key)) { *out = def; return TT_OK; }
  return tt_cfg_num(map, key, out);
}

tt_status tt_cfg_bool_opt(const tt_value *map, const char *key, bool def, bool *out) {
  const tt_value *v = present(map, key);
  if (!v) { *out = def; return TT_OK; }
  if (v->type == TT_V_BOOL) { *out = v->u.b; return TT_OK; }
  if (v->type == TT_V_INT) { *out = v->u.i != 0; return TT_OK; }
  if (v->type == TT_V_STR) {
    if (!strcmp(v->u.s, "true") || !strcmp(v->u.s, "True")) { *out = true; return TT_OK; }
    if (!strcmp(v->u.s, "false") || !strcmp(v->u.s, "False")) { *out = false; return TT_OK; }
  }
  return tt_error(TT_ERR_INVALID, "key '%s': expected a boolean, found %s", key, tt_vtype_name(v->type));
}

tt_status tt_cfg_str(const tt_value *map, const char *key, const char **out) {
  const tt_value *v = present(map, key);
  if (!v) return tt_error(TT_ERR_NOT_FOUND, "missing key '%s'", key);
  if (v->type != TT_V_STR)
    return tt_error(TT_ERR_INVALID, "key '%s': expected a string, found %s", key, tt_vtype_name(v->type));
  *out = v->u.s;
  return TT_OK;
}

tt_status tt_cfg_str_opt(const tt_value *map, const char *key, const char *def, const char **out) {
  if (!present(map, key)) { *out = def; return TT_OK; }
  return tt_cfg_str(map, key, out);
}

tt_status tt_cfg_int_list(const tt_value *map, const char *key, int64_t *out, int max, int *n) {
  const tt_value *v = present(map, key);
  if (!v) return tt_error(TT_ERR_NOT_FOUND, "missing key '%s'", key);
  /* an empty Lua table cannot say whether it was a list or a map: a YAML `[]`
   * that went through Lua arrives as an empty map */
  bool empty_map = v->type == TT_V_MAP && v->u.c.len == 0;
  if (v->type != TT_V_LIST && !empty_map)
    return tt_error(TT_ERR_INVALID, "key '%s': expected a list, found %s", key, tt_vtype_name(v->type));
  if (v->u.c.len > max)
    return tt_error(TT_ERR_INVALID, "key '%s': at most %d entries, found %d", key, max, v->u.c.len);
  for (int i = 0; i < v->u.c.len; i++) {
    char what[160];
    snprintf(what, sizeof what, "key '%s'[%d]", key, i);
    TT_TRY(tt_value_as_int(&v->u.c.items[i], what, &out[i]));
  }
  *n = v->u.c.len;
  return TT_OK;
}

tt_status tt_cfg_check_keys(const tt_value *map, const char *const *known) {
  if (!map || map->type == TT_V_NIL) return TT_OK;
  if (map->type != TT_V_MAP)
    return tt_error(TT_ERR_INVALID, "the config must be a map of keys, found %s", tt_vtype_name(map->type));
  for (int i = 0; i < map->u.c.len; i++) {
    const char *key = map->u.c.keys[i];
    bool ok = false;
    for (const char *const *k = known; *k && !ok; k++) ok = strcmp(*k, key) == 0;
    if (ok) continue;
    char list[1024];
    size_t n = 0;
    list[0] = 0;
    for (const char *const *k = known; *k; k++)
      n += (size_t)snprintf(list + n, n < sizeof list ? sizeof list - n : 0, "%s%s", k == known ? "" : ", ", *k);
    return tt_error(TT_ERR_INVALID, "unknown config key '%s' (known: %s)", key, known[0] ? list : "none");
  }
  return TT_OK;
}
