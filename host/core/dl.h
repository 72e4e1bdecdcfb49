/* dl.h — where libtaming finds the shared objects it loads at run time, and
 * how it opens them (not part of the SDK). Three kinds of file are loaded:
 * plugins (KIND_NAME.so), the CUDA backend (libtaming_cuda.so) and the MPI
 * module (libtaming_mpi.so). All three follow one search rule:
 *
 *   1. the user's override, alone when it names a file:
 *        plugins   $TAMING_PLUGIN_PATH, ':'-separated folders searched first;
 *        CUDA      $TAMING_CUDA_BACKEND, the module file itself (nothing else is tried);
 *        MPI       $TAMING_MPI_MODULE, the module file itself (nothing else is tried);
 *   2. the build tree, when the running program is uninstalled (it lives in the
 *      build tree, or $TAMING_UNINSTALLED is set to anything but 0):
 *        plugins/.libs, kernels/cuda/.libs, host/.libs;
 *   3. the install folder, under $TAMING_HOME when it is set (an install
 *      prefix moved elsewhere), else under the configured prefix:
 *        HOME/lib/taming/plugins, HOME/lib/taming, HOME/lib/taming.
 *
 * The first folder holding the file wins; a file found there that fails to
 * load is an error (naming it and dlerror's reason), never a reason to fall
 * back on an older copy further down the path. */
#ifndef TAMING_DL_H
#define TAMING_DL_H

#include <stdbool.h>
#include <stddef.h>
#include "taming/export.h"
#include "taming/status.h"

typedef enum { TT_DL_PLUGIN, TT_DL_CUDA, TT_DL_MPI, TT_DL_KIND_COUNT } tt_dl_kind;

#define TT_DL_MAX_DIRS 16
#define TT_DL_PATH_MAX 4096

/* True when the running executable lives in the build tree (or $TAMING_UNINSTALLED is set, and not to 0). */
TT_API bool tt_running_uninstalled(void);

/* Installed locations; $TAMING_HOME (an install prefix moved elsewhere) overrides
 * the configured ones: HOME/lib/taming, HOME/lib/taming/plugins, HOME/share/taming. */
typedef enum { TT_DIR_PKGLIB, TT_DIR_PLUGINS, TT_DIR_PKGDATA } tt_dir_kind;
TT_API const char *tt_install_dir(tt_dir_kind k);

/* The folders searched for files of kind k, in order; returns how many (0 when
 * an override names the file itself). */
TT_API int tt_dl_search_dirs(tt_dl_kind k, char dirs[][TT_DL_PATH_MAX], int max);
/* Where files of kind k are looked for, for messages: the folders ':'-joined,
 * or "VAR=FILE" for an override naming the file (a per-thread buffer). */
TT_API const char *tt_dl_search_path(tt_dl_kind k);
/* The path of file `name` of kind k by the rule above; TT_ERR_NOT_FOUND
 * naming the places searched when no folder holds it. */
TT_API tt_status tt_dl_locate(tt_dl_kind k, const char *name, char *path, size_t n);
/* The refusal of a shared object built for another ABI major, worded alike for
 * plugins and modules: "PATH: WHAT ABI M.m, this host speaks M.m (rebuild the
 * WHAT against this SDK)". Returns TT_ERR_PLUGIN. */
TT_API tt_status tt_dl_refuse_abi(const char *path, const char *what, unsigned major, unsigned minor);
/* dlopen(path, flags) with the failure as "PATH: cannot load: REASON". */
TT_API tt_status tt_dl_open_file(const char *path, int flags, void **handle);
/* tt_dl_locate + tt_dl_open_file; *path_out (may be NULL) receives the path. */
TT_API tt_status tt_dl_open(tt_dl_kind k, const char *name, int flags, void **handle, char *path_out, size_t n);

#endif
