/* backend.c — the backend registry and the kernel tables.
 *
 * The CPU backend is built in (kernels/cpu/cpu_backend.c). The CUDA backend is a
 * separate shared object loaded with dlopen the first time TT_CUDA is asked for;
 * it exports a tt_backend_module descriptor (backend_impl.h), checked against
 * this host's ABI and tt_backend layout before anything in it runs. Kernel
 * tables are small open-addressing hash maps from kernel name to function. */
#include "config.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "taming/version.h"
#include "backend_impl.h"
#include "dl.h"
#include "internal.h"

struct tt_kernel_entry {
  const char *name;
  tt_kernel_fn fn;
};

static tt_backend *backends[TT_DEVICE_COUNT];
static char backend_error[TT_DEVICE_COUNT][1024];
static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t cuda_lock = PTHREAD_MUTEX_INITIALIZER;
static int cuda_tried;

static uint32_t name_hash(const char *s) {
  uint32_t h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

tt_status tt_backend_register_kernel(tt_backend *b, const char *name, tt_kernel_fn fn) {
  if (b->n_kernels * 2 >= b->cap_kernels) {
    int cap = b->cap_kernels ? b->cap_kernels * 2 : 256;
    struct tt_kernel_entry *t = calloc((size_t)cap, sizeof *t);
    if (!t) return tt_error(TT_ERR_NOMEM, "out of memory growing the %s kernel table", b->name);
    for (int i = 0; i < b->cap_kernels; i++) {
      if (!b->kernels[i].name) continue;
      uint32_t h = name_hash(b->kernels[i].name) & (uint32_t)(cap - 1);
      while (t[h].name) h = (h + 1) & (uint32_t)(cap - 1);
      t[h] = b->kernels[i];
    }
    free(b->kernels);
    b->kernels = t;
    b->cap_kernels = cap;
  }
  uint32_t h = name_hash(name) & (uint32_t)(b->cap_kernels - 1);
  while (b->kernels[h].name) {
    if (strcmp(b->kernels[h].name, name) == 0) {
      b->kernels[h].fn = fn; /* re-registration replaces */
      return TT_OK;
    }
    h = (h + 1) & (uint32_t)(b->cap_kernels - 1);
  }
  b->kernels[h].name = name;
  b->kernels[h].fn = fn;
  b->n_kernels++;
  return TT_OK;
}

static tt_kernel_fn lookup(const tt_backend *b, const char *name) {
  if (!b->cap_kernels) return NULL;
  uint32_t h = name_hash(name) & (uint32_t)(b->cap_kernels - 1);
  while (b->kernels[h].name) {
    if (strcmp(b->kernels[h].name, name) == 0) return b->kernels[h].fn;
    h = (h + 1) & (uint32_t)(b->cap_kernels - 1);
  }
  return NULL;
}

static void cpu_init(void) {
  tt_backend *b = NULL;
  if (tt_cpu_backend_create(&b) != TT_OK) {
    snprintf(backend_error[TT_CPU], sizeof backend_error[TT_CPU], "%s", tt_error_message());
    return;
  }
  backends[TT_CPU] = b;
}

static void cuda_init_locked(void) {
  void *h = NULL;
  char path[TT_DL_PATH_MAX * 2];
  tt_status s = tt_dl_open(TT_DL_CUDA, "libtaming_cuda.so", RTLD_NOW | RTLD_LOCAL, &h, path, sizeof path);
  if (s != TT_OK) {
    snprintf(backend_error[TT_CUDA], sizeof backend_error[TT_CUDA], "cuda unavailable: %s%s", tt_error_message(),
             s == TT_ERR_NOT_FOUND && !getenv("TAMING_CUDA_BACKEND") ? " (the CUDA backend was not built: configure found no nvcc/cuBLAS/cuDNN; "
                                     "or it is not installed)"
                                   : "");
    return;
  }
  const tt_backend_module *m = dlsym(h, TT_BACKEND_MODULE_SYMBOL);
  if (!m) {
    dlclose(h);
    snprintf(backend_error[TT_CUDA], sizeof backend_error[TT_CUDA],
             "cuda unavailable: %.900s: not the CUDA backend module (no %s symbol)", path, TT_BACKEND_MODULE_SYMBOL);
    return;
  }
  /* The module fills a tt_backend the host reads: the same ABI major and the
   * same layout, or nothing of it is called. */
  if (m->abi_major != TT_PLUGIN_ABI_MAJOR)
    s = tt_dl_refuse_abi(path, "CUDA backend module", m->abi_major, m->abi_minor);
  else if (m->backend_size != sizeof(tt_backend))
    s = tt_error(TT_ERR_PLUGIN,
                 "%s: CUDA backend module (ABI %u.%u) fills a %u-byte backend, this host's is %zu bytes (ABI %u.%u): "
                 "rebuild the module with this libtaming",
                 path, m->abi_major, m->abi_minor, m->backend_size, sizeof(tt_backend), TT_PLUGIN_ABI_MAJOR,
                 TT_PLUGIN_ABI_MINOR);
  else if (!m->init)
    s = tt_error(TT_ERR_PLUGIN, "%s: CUDA backend module lacks the required 'init'", path);
  if (s != TT_OK) {
    dlclose(h);
    snprintf(backend_error[TT_CUDA], sizeof backend_error[TT_CUDA], "cuda unavailable: %s", tt_error_message());
    return;
  }
  tt_backend *b = NULL;
  if (m->init(&b) != TT_OK || !b) {
    snprintf(backend_error[TT_CUDA], sizeof backend_error[TT_CUDA], "cuda unavailable: %s",
             tt_error_message());
    return;
  }
  backends[TT_CUDA] = b;
}

tt_backend *tt_backend_get(tt_device dev) {
  if (dev == TT_CPU) {
    pthread_once(&cpu_once, cpu_init);
  } else if (dev == TT_CUDA) {
    if (!__atomic_load_n(&cuda_tried, __ATOMIC_ACQUIRE)) {
      pthread_mutex_lock(&cuda_lock);
      if (!cuda_tried) {
        cuda_init_locked();
        __atomic_store_n(&cuda_tried, 1, __ATOMIC_RELEASE);
      }
      pthread_mutex_unlock(&cuda_lock);
    }
  } else {
    tt_error(TT_ERR_INVALID, "unknown device %d", (int)dev);
    return NULL;
  }
  if (!backends[dev]) tt_error(TT_ERR_DEVICE, "%s", backend_error[dev]);
  return backends[dev];
}

bool tt_device_available(tt_device dev) {
  if ((unsigned)dev >= TT_DEVICE_COUNT) return false;
  tt_backend *b = tt_backend_get(dev);
  if (!b) tt_error_clear();
  return b != NULL;
}

tt_kernel_fn tt_backend_kernel(tt_device dev, const char *name) {
  tt_backend *b = tt_backend_get(dev);
  if (!b) return NULL;
  tt_kernel_fn f = lookup(b, name);
  if (!f) tt_error(TT_ERR_UNSUPPORTED, "the %s backend has no kernel '%s'", b->name, name);
  return f;
}

bool tt_backend_supports(tt_device dev, const char *name) {
  if (!tt_device_available(dev)) return false;
  return lookup(backends[dev], name) != NULL;
}

int tt_backend_kernel_count(tt_device dev) {
  tt_backend *b = tt_backend_get(dev);
  return b ? b->n_kernels : 0;
}

const char *tt_backend_kernel_name(tt_device dev, int i) {
  tt_backend *b = tt_backend_get(dev);
  if (!b) return NULL;
  for (int k = 0; k < b->cap_kernels; k++)
    if (b->kernels[k].name && i-- == 0) return b->kernels[k].name;
  return NULL;
}

const char *tt_device_describe(tt_device dev) {
  if (!tt_device_available(dev)) return NULL;
  tt_backend *b = backends[dev];
  return b->describe ? b->describe(b) : b->name;
}

tt_status tt_device_synchronize(tt_device dev) {
  tt_backend *b = tt_backend_get(dev);
  if (!b) return tt_last_status();
  return b->synchronize ? b->synchronize(b) : TT_OK;
}
