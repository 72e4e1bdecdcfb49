/* value.h — a small dynamic value: configs (from YAML or Lua tables) and the
 * arguments and results of plugin methods.
 *
 * nil, bool, int, number, string, tensor, list, map (ordered keys). A value owns
 * what it holds (strings are copied, tensors referenced); tt_value_clear frees it. */
#ifndef TAMING_VALUE_H
#define TAMING_VALUE_H

#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tt_vtype {
  TT_V_NIL = 0,
  TT_V_BOOL,
  TT_V_INT,
  TT_V_NUM,
  TT_V_STR,
  TT_V_TENSOR,
  TT_V_LIST,
  TT_V_MAP
} tt_vtype;

typedef struct tt_value tt_value;
struct tt_value {
  tt_vtype type;
  union {
    bool b;
    int64_t i;
    double n;
    char *s;
    tt_tensor *t;
    struct {
      tt_value *items;
      char **keys;     /* maps only */
      int len, cap;
    } c;
  } u;
};

#define TT_VALUE_NIL ((tt_value){.type = TT_V_NIL})

TT_API void tt_value_clear(tt_value *v);
TT_API tt_value tt_value_bool(bool b);
TT_API tt_value tt_value_int(int64_t i);
TT_API tt_value tt_value_num(double n);
TT_API tt_value tt_value_str(const char *s);            /* copies */
TT_API tt_value tt_value_tensor(tt_tensor *t);          /* takes a new reference */
TT_API tt_value tt_value_tensor_steal(tt_tensor *t);    /* takes over the caller's reference */
TT_API tt_value tt_value_list(void);
TT_API tt_value tt_value_map(void);
TT_API tt_status tt_value_copy(tt_value *dst, const tt_value *src);   /* deep copy */
/* Appends (takes ownership of *item, which becomes nil). */
TT_API tt_status tt_value_push(tt_value *list, tt_value *item);
/* Sets key (replacing an existing one; takes ownership of *item). */
TT_API tt_status tt_value_set(tt_value *map, const char *key, tt_value *item);
/* Looks up a key in a map (NULL if absent or not a map). Dots are not special. */
TT_API const tt_value *tt_value_get(const tt_value *map, const char *key);
TT_API int tt_value_len(const tt_value *v);
TT_API const tt_value *tt_value_at(const tt_value *list, int i);
TT_API const char *tt_vtype_name(tt_vtype t);

/* Typed config reads. The `_opt` forms return the default when the key is absent
 * (nil counts as absent); the others fail with "missing key 'K'" or
 * "key 'K': expected int, found string". A number with an integral value is an int. */
TT_API tt_status tt_cfg_int(const tt_value *map, const char *key, int64_t *out);
TT_API tt_status tt_cfg_int_opt(const tt_value *map, const char *key, int64_t def, int64_t *out);
TT_API tt_status tt_cfg_num(const tt_value *map, const char *key, double *out);
TT_API tt_status tt_cfg_num_opt(const tt_value *map, const char *key, double def, double *out);
TT_API tt_status tt_cfg_bool_opt(const tt_value *map, const char *key, bool def, bool *out);
TT_API tt_status tt_cfg_str(const tt_value *map, const char *key, const char **out);
TT_API tt_status tt_cfg_str_opt(const tt_value *map, const char *key, const char *def,
                                const char **out);
/* A list of ints (at most max); *n receives the count. */
TT_API tt_status tt_cfg_int_list(const tt_value *map, const char *key, int64_t *out, int max,
                                 int *n);
/* Refuses a config key a plugin does not read: `known` is NULL-terminated.
 * A nil config passes; a config that is not a map is refused. The message
 * names the key and lists the known ones: "unknown config key 'topk' (known:
 * temperature, top_k, top_p, seed)". Call it first in create(). */
TT_API tt_status tt_cfg_check_keys(const tt_value *map, const char *const *known);
/* Value as int/number/tensor (for method arguments). */
TT_API tt_status tt_value_as_int(const tt_value *v, const char *what, int64_t *out);
TT_API tt_status tt_value_as_num(const tt_value *v, const char *what, double *out);
TT_API tt_status tt_value_as_tensor(const tt_value *v, const char *what, tt_tensor **out);

#ifdef __cplusplus
}
#endif
#endif
