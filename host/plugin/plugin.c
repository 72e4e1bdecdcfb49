/* plugin.c — loading plugins: the search path, dlopen, the ABI checks, the
 * registry of loaded files, and instances with their method calls.
 *
 * A file is refused — with a message naming it and both versions — when it has
 * no descriptor symbol, another ABI major, a descriptor larger than the host's
 * (built for a newer minor), or lacks a required field; with a message naming
 * the method, when it breaks its kind's contract (kinds.c); and, when looked up
 * by kind and name or listed, when its file name disagrees with its
 * descriptor. Refusals never unload code that is in use and never crash the host. */
#include "config.h"
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "taming/kinds.h"
#include "taming/plugin.h"
#include "../core/dl.h"
#include "../core/internal.h"

struct tt_plugin {
  char *path;
  void *handle;
  tt_plugin_desc desc;   /* the host's view: fields past the plugin's desc_size are zero */
  tt_plugin *next;
};

struct tt_instance {
  tt_plugin *plugin;
  void *self;
  tt_paramset none;      /* what params() reports for a plugin without parameters */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static tt_plugin *registry;

/* The ABI 1.0 descriptor ends after `methods`; 1.1 appended struct_sizes. */
#define DESC_MIN_SIZE (offsetof(tt_plugin_desc, methods) + sizeof(const tt_method *))
#define DESC_1_1_SIZE (offsetof(tt_plugin_desc, struct_sizes) + sizeof(uint64_t))

/* Each size must fit its ten bits for the fingerprint to be exact. */
_Static_assert(sizeof(tt_tensor) < 1024 && sizeof(tt_storage) < 1024 && sizeof(tt_value) < 1024 &&
                   sizeof(tt_method) < 1024 && sizeof(tt_param) < 1024 && sizeof(tt_paramset) < 1024,
               "a public struct outgrew its ten bits in TT_PLUGIN_STRUCT_SIZES");

/* "tt_tensor 200, tt_storage 48, ..." from a packed fingerprint. */
static const char *sizes_str(uint64_t f, char *buf, size_t n) {
  static const char *const names[] = {"tt_tensor", "tt_storage", "tt_value", "tt_method", "tt_param", "tt_paramset"};
  size_t k = 0;
  buf[0] = 0;
  for (int i = 0; i < 6; i++)
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%s %u", i ? ", " : "", names[i],
                          (unsigned)((f >> (10 * i)) & 1023u));
  return buf;
}

/* Plugins follow the one search rule of dl.h. */
const char *tt_plugin_search_path(void) { return tt_dl_search_path(TT_DL_PLUGIN); }

static tt_status check_desc(const char *path, const tt_plugin_desc *d, tt_plugin_desc *out) {
  if (d->abi_major != TT_PLUGIN_ABI_MAJOR) return tt_dl_refuse_abi(path, "plugin", d->abi_major, d->abi_minor);
  if (d->desc_size > sizeof(tt_plugin_desc))
    return tt_error(TT_ERR_PLUGIN,
                    "%s: plugin descriptor of %u bytes (ABI %u.%u) is larger than this host's %zu (ABI %u.%u): "
                    "the plugin needs a newer host",
                    path, d->desc_size, d->abi_major, d->abi_minor, sizeof(tt_plugin_desc), TT_PLUGIN_ABI_MAJOR,
                    TT_PLUGIN_ABI_MINOR);
  if (d->desc_size < DESC_MIN_SIZE)
    return tt_error(TT_ERR_PLUGIN, "%s: plugin descriptor of %u bytes is smaller than ABI %u.0 requires (%zu)", path,
                    d->desc_size, TT_PLUGIN_ABI_MAJOR, (size_t)DESC_MIN_SIZE);
  memset(out, 0, sizeof *out);
  memcpy(out, d, d->desc_size);
  const char *missing = !out->kind ? "kind" : !out->name ? "name" : !out->version ? "version"
                        : !out->create ? "create" : !out->destroy ? "destroy" : !out->methods ? "methods" : NULL;
  if (!missing && d->desc_size >= DESC_1_1_SIZE && !out->struct_sizes) missing = "struct_sizes";
  if (missing)
    return tt_error(TT_ERR_PLUGIN, "%s: plugin %s/%s (ABI %u.%u) lacks the required '%s'", path,
                    out->kind ? out->kind : "?", out->name ? out->name : "?", d->abi_major, d->abi_minor, missing);
  if (out->struct_sizes && out->struct_sizes != TT_PLUGIN_STRUCT_SIZES) {
    char theirs[256], ours[256];
    return tt_error(TT_ERR_PLUGIN,
                    "%s: plugin %s/%s (ABI %u.%u) was built with public struct sizes %s; this host (ABI %u.%u) has %s "
                    "(rebuild the plugin against this SDK)",
                    path, out->kind, out->name, d->abi_major, d->abi_minor, sizes_str(out->struct_sizes, theirs, sizeof theirs),
                    TT_PLUGIN_ABI_MAJOR, TT_PLUGIN_ABI_MINOR, sizes_str(TT_PLUGIN_STRUCT_SIZES, ours, sizeof ours));
  }
  return tt_kind_check(path, out);
}

/* The file must be KIND_NAME.so for the descriptor it holds: tt_plugin_find
 * and tt_plugin_scan refuse it otherwise, with this one message. */
static tt_status check_file_name(const char *path, const tt_plugin_desc *d) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t nk = strlen(d->kind), nn = strlen(d->name);
  bool ok = strncmp(base, d->kind, nk) == 0 && base[nk] == '_' && strncmp(base + nk + 1, d->name, nn) == 0 &&
            strcmp(base + nk + 1 + nn, ".so") == 0;
  if (ok) return TT_OK;
  return tt_error(TT_ERR_PLUGIN, "%s: the file name says %.*s but the descriptor says %s/%s (name it %s_%s.so)", path,
                  (int)(strlen(base) > 3 ? strlen(base) - 3 : strlen(base)), base, d->kind, d->name, d->kind, d->name);
}

tt_status tt_plugin_open_file(const char *path, tt_plugin **out) {
  pthread_mutex_lock(&registry_lock);
  for (tt_plugin *p = registry; p; p = p->next) {
    if (strcmp(p->path, path) == 0) {
      *out = p;
      pthread_mutex_unlock(&registry_lock);
      return TT_OK;
    }
  }
  pthread_mutex_unlock(&registry_lock);
  struct stat st;
  if (stat(path, &st) != 0) return tt_error(TT_ERR_NOT_FOUND, "%s: no such plugin file", path);
  void *h = NULL;
  TT_TRY(tt_dl_open_file(path, RTLD_NOW | RTLD_LOCAL, &h));
  const tt_plugin_desc *d = dlsym(h, TT_PLUGIN_SYMBOL);
  if (!d) {
    dlclose(h);
    return tt_error(TT_ERR_PLUGIN, "%s: not a taming plugin (no '%s' symbol)", path, TT_PLUGIN_SYMBOL);
  }
  tt_plugin *p = calloc(1, sizeof *p);
  if (!p) {
    dlclose(h);
    return tt_error(TT_ERR_NOMEM, "out of memory loading %s", path);
  }
  tt_status s = check_desc(path, d, &p->desc);
  if (s != TT_OK) {
    free(p);
    dlclose(h);
    return s;
  }
  p->path = strdup(path);
  p->handle = h;
  pthread_mutex_lock(&registry_lock);
  p->next = registry;
  registry = p;
  pthread_mutex_unlock(&registry_lock);
  *out = p;
  return TT_OK;
}

static bool valid_part(const char *s) {
  if (!s || !*s) return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
      return false;
  return true;
}

tt_status tt_plugin_find(const char *kind, const char *name, tt_plugin **out) {
  if (!valid_part(kind) || !valid_part(name))
    return tt_error(TT_ERR_INVALID, "plugin kind and name must be letters, digits, '_' or '-' (got '%s', '%s')",
                    kind ? kind : "", name ? name : "");
  char file[512], path[TT_DL_PATH_MAX * 2];
  snprintf(file, sizeof file, "%s_%s.so", kind, name);
  if (tt_dl_locate(TT_DL_PLUGIN, file, path, sizeof path) != TT_OK)
    return tt_error(TT_ERR_NOT_FOUND, "no plugin %s/%s (looked for %s in %s)", kind, name, file,
                    tt_plugin_search_path());
  TT_TRY(tt_plugin_open_file(path, out));
  return check_file_name(path, &(*out)->desc);
}

const tt_plugin_desc *tt_plugin_descriptor_of(const tt_plugin *p) { return &p->desc; }
const char *tt_plugin_path(const tt_plugin *p) { return p->path; }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void tt_plugin_scan(tt_plugin_visit_fn fn, void *ud) {
  char dirs[TT_DL_MAX_DIRS][TT_DL_PATH_MAX];
  int n = tt_dl_search_dirs(TT_DL_PLUGIN, dirs, TT_DL_MAX_DIRS);
  char **seen = NULL;
  int nseen = 0, cap = 0;
  for (int i = 0; i < n; i++) {
    DIR *d = opendir(dirs[i]);
    if (!d) continue;
    char **files = NULL;
    int nf = 0, fcap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
      size_t len = strlen(e->d_name);
      if (len < 4 || strcmp(e->d_name + len - 3, ".so") != 0) continue;
      if (nf == fcap) {
        fcap = fcap ? fcap * 2 : 32;
        char **nfiles = realloc(files, sizeof *files * (size_t)fcap);
        if (!nfiles) break;
        files = nfiles;
      }
      files[nf++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(files, (size_t)nf, sizeof *files, cmp_str);
    for (int k = 0; k < nf; k++) {
      bool dup = false;
      for (int j = 0; j < nseen; j++)
        if (strcmp(seen[j], files[k]) == 0) dup = true;
      if (dup) { free(files[k]); continue; }
      if (nseen == cap) {
        cap = cap ? cap * 2 : 64;
        char **ns = realloc(seen, sizeof *seen * (size_t)cap);
        if (!ns) { free(files[k]); continue; }
        seen = ns;
      }
      seen[nseen++] = files[k];
      char path[8192];
      int len = snprintf(path, sizeof path, "%s/%s", dirs[i], files[k]);
      if (len < 0 || (size_t)len >= sizeof path) continue;
      tt_plugin *p = NULL;
      /* the checks tt_plugin_find makes, so the list shows what tt.plugin accepts */
      if (tt_plugin_open_file(path, &p) == TT_OK && check_file_name(path, &p->desc) == TT_OK) fn(path, &p->desc, NULL, ud);
      else fn(path, NULL, tt_error_message(), ud);
    }
    free(files);
  }
  for (int j = 0; j < nseen; j++) free(seen[j]);
  free(seen);
}

/* ---- instances ---- */

tt_status tt_instance_create(tt_plugin *p, const tt_value *config, tt_instance **out) {
  tt_instance *inst = calloc(1, sizeof *inst);
  if (!inst) return tt_error(TT_ERR_NOMEM, "out of memory creating %s/%s", p->desc.kind, p->desc.name);
  tt_value nil = TT_VALUE_NIL;
  tt_error_clear();
  tt_status s = p->desc.create(config ? config : &nil, &inst->self);
  if (s != TT_OK) {
    free(inst);
    return tt_error_prefix(s, "%s/%s: ", p->desc.kind, p->desc.name);
  }
  inst->plugin = p;
  tt_paramset_init(&inst->none);
  *out = inst;
  return TT_OK;
}

void tt_instance_free(tt_instance *inst) {
  if (!inst) return;
  if (inst->self) inst->plugin->desc.destroy(inst->self);
  if (inst->plugin) tt_paramset_free(&inst->none);
  free(inst);
}

void *tt_instance_self(const tt_instance *inst) { return inst->self; }
const tt_plugin_desc *tt_instance_desc(const tt_instance *inst) { return &inst->plugin->desc; }
tt_paramset *tt_instance_params(tt_instance *inst) {
  return inst->plugin->desc.params ? inst->plugin->desc.params(inst->self) : &inst->none;
}

const tt_method *tt_instance_method(const tt_instance *inst, const char *name) {
  for (const tt_method *m = inst->plugin->desc.methods; m->name; m++)
    if (strcmp(m->name, name) == 0) return m;
  return NULL;
}

tt_status tt_instance_call(tt_instance *inst, const char *method, const tt_value *args, int nargs, tt_value *rets,
                           int *nrets) {
  const tt_plugin_desc *d = &inst->plugin->desc;
  const tt_method *m = tt_instance_method(inst, method);
  *nrets = 0;
  if (!m || !m->fn) {
    char names[1024];
    size_t k = 0;
    names[0] = 0;
    for (const tt_method *x = d->methods; x->name; x++)
      k += (size_t)snprintf(names + k, k < sizeof names ? sizeof names - k : 0, "%s%s", k ? ", " : "", x->name);
    return tt_error(TT_ERR_NOT_FOUND, "%s/%s has no method '%s' (it has: %s)", d->kind, d->name, method, names);
  }
  for (int i = 0; i < TT_MAX_RETS; i++) rets[i] = TT_VALUE_NIL;
  tt_error_clear();
  tt_status s = m->fn(inst->self, args, nargs, rets, nrets);
  if (s != TT_OK) {
    for (int i = 0; i < TT_MAX_RETS; i++) tt_value_clear(&rets[i]);
    *nrets = 0;
    return tt_error_prefix(s, "%s/%s:%s: ", d->kind, d->name, method);
  }
  if (*nrets < 0 || *nrets > TT_MAX_RETS) {
    for (int i = 0; i < TT_MAX_RETS; i++) tt_value_clear(&rets[i]);
    *nrets = 0;
    return tt_error(TT_ERR_PLUGIN, "%s/%s:%s returned %d results (at most %d)", d->kind, d->name, method, *nrets,
                    TT_MAX_RETS);
  }
  return TT_OK;
}

tt_status tt_instance_set_training(tt_instance *inst, bool training) {
  const tt_plugin_desc *d = &inst->plugin->desc;
  if (!d->set_training) return TT_OK;
  tt_status s = d->set_training(inst->self, training);
  return s == TT_OK ? s : tt_error_prefix(s, "%s/%s: ", d->kind, d->name);
}

tt_status tt_instance_params_ready(tt_instance *inst) {
  const tt_plugin_desc *d = &inst->plugin->desc;
  if (!d->on_params_ready) return TT_OK;
  tt_status s = d->on_params_ready(inst->self);
  return s == TT_OK ? s : tt_error_prefix(s, "%s/%s: ", d->kind, d->name);
}

/* ---- argument helpers for method implementations ---- */

tt_status tt_args_check(const char *method, int nargs, int min, int max) {
  if (nargs < min || nargs > max) {
    if (min == max) return tt_error(TT_ERR_INVALID, "%s takes %d argument%s, got %d", method, min, min == 1 ? "" : "s", nargs);
    return tt_error(TT_ERR_INVALID, "%s takes %d to %d arguments, got %d", method, min, max, nargs);
  }
  return TT_OK;
}

tt_status tt_arg_tensor(const tt_value *args, int nargs, int i, const char *what, tt_tensor **out) {
  if (i >= nargs || args[i].type == TT_V_NIL) return tt_error(TT_ERR_INVALID, "missing argument %d (%s)", i + 1, what);
  return tt_value_as_tensor(&args[i], what, out);
}

tt_status tt_arg_tensor_opt(const tt_value *args, int nargs, int i, tt_tensor **out) {
  *out = NULL;
  if (i >= nargs || args[i].type == TT_V_NIL) return TT_OK;
  return tt_value_as_tensor(&args[i], "argument", out);
}
