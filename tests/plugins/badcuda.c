/* badcuda.c — stand-ins for a CUDA backend module built against another SDK:
 * another ABI major (built with -DBAD_ABI) or another tt_backend layout (with
 * -DBAD_LAYOUT). The host must refuse both before calling anything in them. */
#include <stdlib.h>
#include "../../host/core/backend_impl.h"

static tt_status must_not_run(tt_backend **out) {
  (void)out;
  abort();
}

#ifdef BAD_ABI
TT_API const tt_backend_module tt_backend_module_desc = {TT_PLUGIN_ABI_MAJOR + 98, 0, (uint32_t)sizeof(tt_backend),
                                                         must_not_run};
#else
TT_API const tt_backend_module tt_backend_module_desc = {TT_PLUGIN_ABI_MAJOR, TT_PLUGIN_ABI_MINOR,
                                                         (uint32_t)sizeof(tt_backend) + 8, must_not_run};
#endif
