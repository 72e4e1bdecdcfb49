/* dnn.cu — cuDNN loaded at run time.
 *
 * cuDNN is several hundred megabytes, ships apart from the CUDA toolkit (often
 * only inside PyTorch's nvidia-cudnn wheel) and serves convolutions alone, for
 * which conv.cu has a cuBLAS path. Linking it would make the whole backend
 * fail to load where it is missing; instead backend.cu calls tt_dnn_load once
 * at start-up and conv.cu uses cuDNN only when that succeeded.
 *
 * The library is looked up by the dynamic linker's usual search (the
 * LD_LIBRARY_PATH, the module's run path, the system cache), so a cuDNN inside
 * site-packages/nvidia/cudnn/lib is found by putting that folder on the
 * LD_LIBRARY_PATH, or named outright with TAMING_CUDA_CUDNN=/path/libcudnn.so.9. */
#include "config.h"
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cuda_backend.h"

#define ENV_CUDNN "TAMING_CUDA_CUDNN" /* path of the cuDNN library to load */

#define TT_STR2(x) #x
#define TT_STR(x) TT_STR2(x)

tt_dnn_api tt_dnn;

/* cuDNN 9 numbers its versions major*10000 + minor*100 + patch, 8 and older major*1000 + ... */
static long dnn_major(size_t version) { return (long)(version >= 90000 ? version / 10000 : version / 1000); }

bool tt_dnn_load(char *why, size_t n) { /* why: the reason, or the file loaded */
  const char *env = getenv(ENV_CUDNN);
  const char *cands[3] = {env && *env ? env : NULL, "libcudnn.so." TT_STR(CUDNN_MAJOR), "libcudnn.so"};
  void *h = NULL;
  const char *used = NULL;
  size_t k = 0;
  why[0] = 0;
  for (int i = 0; i < 3 && !h; i++) {
    if (!cands[i]) continue;
    h = dlopen(cands[i], RTLD_NOW | RTLD_LOCAL);
    if (h) {
      used = cands[i];
    } else {
      const char *e = dlerror();
      k += (size_t)snprintf(why + k, k < n ? n - k : 0, "%s%s", k ? "; " : "", e ? e : cands[i]);
    }
    if (cands[i] == env) break; /* a library named outright is the only one tried */
  }
  if (!h) return false;
  tt_dnn_api api;
#define TT_DNN_LOOKUP(f)                                                              \
  api.f = (decltype(api.f))dlsym(h, #f);                                              \
  if (!api.f) {                                                                       \
    snprintf(why, n, "%s has no %s (expected cuDNN %d)", used, #f, (int)CUDNN_MAJOR); \
    dlclose(h);                                                                       \
    return false;                                                                     \
  }
  TT_DNN_FUNCS(TT_DNN_LOOKUP)
#undef TT_DNN_LOOKUP
  size_t v = api.cudnnGetVersion();
  if (dnn_major(v) != CUDNN_MAJOR) {
    snprintf(why, n, "%s is cuDNN %zu, the backend was built against cuDNN %d", used, v, (int)CUDNN_MAJOR);
    dlclose(h);
    return false;
  }
  tt_dnn = api;
  struct link_map *lm = NULL;
  if (dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_name && *lm->l_name)
    snprintf(why, n, "%s", lm->l_name);
  else
    snprintf(why, n, "%s", used);
  return true;
}
