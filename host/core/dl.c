/* dl.c — the one search rule for the shared objects libtaming loads (plugins,
 * the CUDA backend, the MPI module), and dlopen with one-line errors. The rule
 * is written down once, in dl.h. */
#include "config.h"
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "taming/version.h"
#include "dl.h"

static const struct {
  const char *path_var;    /* ':'-separated folders searched first */
  const char *file_var;    /* the file itself, tried alone */
  const char *build_subdir;
  tt_dir_kind installed;
} kinds[TT_DL_KIND_COUNT] = {
    [TT_DL_PLUGIN] = {"TAMING_PLUGIN_PATH", NULL, "plugins/.libs", TT_DIR_PLUGINS},
    [TT_DL_CUDA] = {NULL, "TAMING_CUDA_BACKEND", "kernels/cuda/.libs", TT_DIR_PKGLIB},
    [TT_DL_MPI] = {NULL, "TAMING_MPI_MODULE", "host/.libs", TT_DIR_PKGLIB},
};

bool tt_running_uninstalled(void) {
  static int cached = -1;
  if (cached >= 0) return cached;
  int u = 0;
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n > 0) {
    exe[n] = 0;
    size_t bl = strlen(TT_ABS_BUILDDIR);
    if (strncmp(exe, TT_ABS_BUILDDIR, bl) == 0 && (exe[bl] == '/' || exe[bl] == 0)) u = 1;
  }
  const char *env = getenv("TAMING_UNINSTALLED");
  if (env) u = strcmp(env, "0") != 0;
  cached = u;
  return u;
}

const char *tt_install_dir(tt_dir_kind k) {
  static _Thread_local char buf[TT_DL_PATH_MAX];
  const char *home = getenv("TAMING_HOME");
  const char *tail = k == TT_DIR_PKGLIB ? "lib/taming" : k == TT_DIR_PLUGINS ? "lib/taming/plugins" : "share/taming";
  if (home && *home) {
    snprintf(buf, sizeof buf, "%s/%s", home, tail);
    return buf;
  }
  return k == TT_DIR_PKGLIB ? TT_PKGLIBDIR : k == TT_DIR_PLUGINS ? TT_PLUGINDIR : TT_PKGDATADIR;
}

static const char *override_file(tt_dl_kind k) {
  const char *v = kinds[k].file_var ? getenv(kinds[k].file_var) : NULL;
  return v && *v ? v : NULL;
}

int tt_dl_search_dirs(tt_dl_kind k, char dirs[][TT_DL_PATH_MAX], int max) {
  if ((unsigned)k >= TT_DL_KIND_COUNT || override_file(k)) return 0;
  int n = 0;
  const char *env = kinds[k].path_var ? getenv(kinds[k].path_var) : NULL;
  for (const char *p = env && *env ? env : NULL; p && n < max;) {
    const char *e = strchr(p, ':');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len > 0 && len < TT_DL_PATH_MAX) {
      memcpy(dirs[n], p, len);
      dirs[n++][len] = 0;
    }
    p = e ? e + 1 : NULL;
  }
  if (tt_running_uninstalled() && n < max)
    snprintf(dirs[n++], TT_DL_PATH_MAX, "%s/%s", TT_ABS_BUILDDIR, kinds[k].build_subdir);
  if (n < max) snprintf(dirs[n++], TT_DL_PATH_MAX, "%s", tt_install_dir(kinds[k].installed));
  return n;
}

const char *tt_dl_search_path(tt_dl_kind k) {
  static _Thread_local char buf[TT_DL_MAX_DIRS * 1024];
  const char *file = (unsigned)k < TT_DL_KIND_COUNT ? override_file(k) : NULL;
  if (file) {
    snprintf(buf, sizeof buf, "%s=%s", kinds[k].file_var, file);
    return buf;
  }
  char dirs[TT_DL_MAX_DIRS][TT_DL_PATH_MAX];
  int n = tt_dl_search_dirs(k, dirs, TT_DL_MAX_DIRS);
  size_t len = 0;
  buf[0] = 0;
  for (int i = 0; i < n; i++)
    len += (size_t)snprintf(buf + len, len < sizeof buf ? sizeof buf - len : 0, "%s%s", i ? ":" : "", dirs[i]);
  return buf;
}

tt_status tt_dl_locate(tt_dl_kind k, const char *name, char *path, size_t n) {
  if ((unsigned)k >= TT_DL_KIND_COUNT) return tt_error(TT_ERR_INVALID, "unknown shared-object kind %d", (int)k);
  const char *file = override_file(k);
  if (file) {
    if (access(file, R_OK) != 0) return tt_error(TT_ERR_NOT_FOUND, "%s=%s: no such file", kinds[k].file_var, file);
    if (strlen(file) >= n) return tt_error(TT_ERR_INVALID, "%s=%s: path too long", kinds[k].file_var, file);
    snprintf(path, n, "%s", file);
    return TT_OK;
  }
  char dirs[TT_DL_MAX_DIRS][TT_DL_PATH_MAX];
  int nd = tt_dl_search_dirs(k, dirs, TT_DL_MAX_DIRS);
  for (int i = 0; i < nd; i++) {
    int len = snprintf(path, n, "%s/%s", dirs[i], name);
    if (len < 0 || (size_t)len >= n) continue;
    if (access(path, R_OK) == 0) return TT_OK;
  }
  return tt_error(TT_ERR_NOT_FOUND, "no %s in %s", name, tt_dl_search_path(k));
}

tt_status tt_dl_refuse_abi(const char *path, const char *what, unsigned major, unsigned minor) {
  return tt_error(TT_ERR_PLUGIN, "%s: %s ABI %u.%u, this host speaks %u.%u (rebuild the %s against this SDK)", path,
                  what, major, minor, TT_PLUGIN_ABI_MAJOR, TT_PLUGIN_ABI_MINOR, what);
}

tt_status tt_dl_open_file(const char *path, int flags, void **handle) {
  dlerror();
  *handle = dlopen(path, flags);
  if (*handle) return TT_OK;
  const char *e = dlerror();
  return tt_error(TT_ERR_PLUGIN, "%s: cannot load: %s", path, e ? e : "unknown dlopen error");
}

tt_status tt_dl_open(tt_dl_kind k, const char *name, int flags, void **handle, char *path_out, size_t n) {
  char path[TT_DL_PATH_MAX * 2];
  *handle = NULL;
  TT_TRY(tt_dl_locate(k, name, path, sizeof path));
  if (path_out) snprintf(path_out, n, "%s", path);
  return tt_dl_open_file(path, flags, handle);
}
