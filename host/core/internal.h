/* internal.h — declarations shared inside libtaming, not part of the SDK. */
#ifndef TAMING_INTERNAL_H
#define TAMING_INTERNAL_H

#include "backend_impl.h"

/* Defined in kernels/cpu/cpu_backend.c. */
tt_status tt_cpu_backend_create(tt_backend **out);
/* tt_running_uninstalled, tt_install_dir and the search rule for shared objects. */
#include "dl.h"

#endif
