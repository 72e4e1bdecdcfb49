/* internal.h — declarations shared inside libtaming, not part of the SDK. */
#ifndef TAMING_INTERNAL_H
#define TAMING_INTERNAL_H

#include "taming/backend.h"

/* Defined in kernels/cpu/cpu_backend.c. */
tt_status tt_cpu_backend_create(tt_backend **out);
/* True when the running executable lives in the build tree (or TAMING_UNINSTALLED is set). */
TT_API bool tt_running_uninstalled(void);

/* Installed locations; $TAMING_HOME (an install prefix moved elsewhere) overrides
 * the configured ones: HOME/lib/taming, HOME/lib/taming/plugins, HOME/share/taming. */
typedef enum { TT_DIR_PKGLIB, TT_DIR_PLUGINS, TT_DIR_PKGDATA } tt_dir_kind;
TT_API const char *tt_install_dir(tt_dir_kind k);

#endif
