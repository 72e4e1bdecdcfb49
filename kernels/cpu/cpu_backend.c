/* cpu_backend.c — the CPU backend: host memory with a small block cache, and
 * the registration of every CPU kernel family.
 *
 * Large tensors of the same sizes are allocated and freed over and over in a
 * forward pass; returning them to the kernel (munmap) and faulting fresh zeroed
 * pages back in costs more than the arithmetic of a cheap op. Freed blocks of
 * 256 KiB or more are kept (up to a cap) and reused for requests of up to 1/8
 * less than their size. A training step holds several hundred such blocks at
 * its peak (a VQGAN 64x64 step at batch 8: 128 slots let 30-40 thousand pages a
 * step fault back in, 150 MB more RSS from the blocks glibc took back; 1024 slots
 * bring that under a thousand after the first steps). */
#include "config.h"
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"
#include "../../host/core/internal.h"

#pragma weak tt_cpu_register_conv
#pragma weak tt_cpu_register_resample
#pragma weak tt_cpu_register_norm
#pragma weak tt_cpu_register_softmax
#pragma weak tt_cpu_register_attention
#pragma weak tt_cpu_register_embedding
#pragma weak tt_cpu_register_loss
#pragma weak tt_cpu_register_quantize
#pragma weak tt_cpu_register_optim
#pragma weak tt_cpu_register_compare
#pragma weak tt_cpu_register_sort
#pragma weak tt_cpu_register_qlinear
#pragma weak tt_cpu_register_gemm_bf16
#pragma weak tt_cpu_register_conv_lowp
#pragma weak tt_cpu_register_conv_dnnl_train

#define CACHE_MIN_BYTES (256u << 10)
#define CACHE_SLOTS 1024
#define CACHE_CAP_BYTES ((size_t)2 << 30)

typedef struct {
  void *p;
  size_t size;
  uint64_t age;
} cached_block;

static struct {
  pthread_mutex_t lock;
  cached_block slots[CACHE_SLOTS];
  size_t bytes;
  uint64_t clock;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t round_size(size_t n) { return (n + 4095) & ~(size_t)4095; }

static void *cpu_alloc(tt_backend *b, size_t nbytes) {
  if (nbytes >= CACHE_MIN_BYTES) {
    size_t want = round_size(nbytes);
    pthread_mutex_lock(&cache.lock);
    int best = -1;
    for (int i = 0; i < CACHE_SLOTS; i++) {
      cached_block *c = &cache.slots[i];
      if (!c->p || c->size < want || c->size - c->size / 8 > want) continue;
      if (best < 0 || c->size < cache.slots[best].size) best = i;
    }
    if (best >= 0) {
      void *p = cache.slots[best].p;
      cache.bytes -= cache.slots[best].size;
      cache.slots[best].p = NULL;
      pthread_mutex_unlock(&cache.lock);
      return p;
    }
    pthread_mutex_unlock(&cache.lock);
    void *p = NULL;
    if (posix_memalign(&p, 64, want) != 0) return NULL;
    return p;
  }
  void *p = NULL;
  if (posix_memalign(&p, 64, nbytes) != 0) return NULL;
  return p;
}

static void cpu_free(tt_backend *b, void *p, size_t nbytes) {
  if (nbytes >= CACHE_MIN_BYTES) {
    size_t size = round_size(nbytes);
    pthread_mutex_lock(&cache.lock);
    /* make room: evict the oldest blocks until it fits under the cap */
    while (cache.bytes + size > CACHE_CAP_BYTES) {
      int old = -1;
      for (int i = 0; i < CACHE_SLOTS; i++)
        if (cache.slots[i].p && (old < 0 || cache.slots[i].age < cache.slots[old].age)) old = i;
      if (old < 0) break;
      free(cache.slots[old].p);
      cache.bytes -= cache.slots[old].size;
      cache.slots[old].p = NULL;
    }
    int slot = -1;
    for (int i = 0; i < CACHE_SLOTS && slot < 0; i++)
      if (!cache.slots[i].p) slot = i;
    if (slot < 0) { /* full: replace the oldest */
      slot = 0;
      for (int i = 1; i < CACHE_SLOTS; i++)
        if (cache.slots[i].age < cache.slots[slot].age) slot = i;
      free(cache.slots[slot].p);
      cache.bytes -= cache.slots[slot].size;
    }
    if (cache.bytes + size <= CACHE_CAP_BYTES) {
      cache.slots[slot] = (cached_block){p, size, ++cache.clock};
      cache.bytes += size;
      p = NULL;
    } else {
      cache.slots[slot].p = NULL;
    }
    pthread_mutex_unlock(&cache.lock);
  }
  free(p);
}

static tt_status cpu_copy(tt_backend *b, void *dst, const void *src, size_t n) {
  memcpy(dst, src, n);
  return TT_OK;
}

static tt_status cpu_memset0(tt_backend *b, void *p, size_t n) {
  memset(p, 0, n);
  return TT_OK;
}

static const char *cpu_describe(tt_backend *b) { return "host CPU (OpenBLAS + OpenMP)"; }

tt_status tt_cpu_backend_create(tt_backend **out) {
  static tt_backend b = {
      .name = "cpu",
      .device = TT_CPU,
      .alloc = cpu_alloc,
      .free = cpu_free,
      .copy_to_host = cpu_copy,
      .copy_from_host = cpu_copy,
      .copy_device = cpu_copy,
      .memset0 = cpu_memset0,
      .describe = cpu_describe,
  };
  /* families are registered in a fixed order; a family not linked in is skipped */
  tt_status (*const families[])(tt_backend *) = {
      tt_cpu_register_copy,      tt_cpu_register_elementwise, tt_cpu_register_reduce,
      tt_cpu_register_gemm,      tt_cpu_register_random,      tt_cpu_register_conv,
      tt_cpu_register_resample,  tt_cpu_register_norm,        tt_cpu_register_softmax,
      tt_cpu_register_attention, tt_cpu_register_embedding,   tt_cpu_register_loss,
      tt_cpu_register_quantize,  tt_cpu_register_optim,       tt_cpu_register_compare,
      tt_cpu_register_sort,      tt_cpu_register_qlinear,     tt_cpu_register_gemm_bf16,
      tt_cpu_register_conv_lowp, tt_cpu_register_conv_dnnl_train};
  for (size_t i = 0; i < sizeof families / sizeof *families; i++)
    if (families[i]) TT_TRY(families[i](&b));
  *out = &b;
  return TT_OK;
}
