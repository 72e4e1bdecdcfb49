/* fuzz_pickle.c — the pickle of a torch checkpoint, on its own: the input is
 * data.pkl, wrapped here in a well-formed stored ZIP with twenty storages
 * (archive/data/0 .. 19, 128 bytes each) so that mutations reach the pickle
 * machine and the state-dict conversion instead of the ZIP reader. */
#include <stdlib.h>
#include <string.h>
#include "fuzz.h"

typedef struct zb {
  uint8_t *b;
  size_t n, cap;
  struct { char name[32]; uint32_t off, size; } e[24];
  int ne;
} zb;

static void put(zb *z, const void *p, size_t n) {
  if (z->n + n > z->cap) {
    z->cap = (z->n + n) * 2 + 4096;
    z->b = realloc(z->b, z->cap);
    FUZZ_CHECK(z->b != NULL, "out of memory");
  }
  if (n) memcpy(z->b + z->n, p, n);
  z->n += n;
}
static void u16(zb *z, unsigned v) { put(z, (uint8_t[]){(uint8_t)v, (uint8_t)(v >> 8)}, 2); }
static void u32(zb *z, uint32_t v) { u16(z, v & 0xffff); u16(z, v >> 16); }

/* A stored entry whose data starts 64-byte aligned, as torch writes them. */
static void add(zb *z, const char *name, const void *p, size_t n) {
  size_t nlen = strlen(name);
  size_t pad = (64 - (z->n + 30 + nlen + 4) % 64) % 64;
  snprintf(z->e[z->ne].name, sizeof z->e[0].name, "%s", name);
  z->e[z->ne].off = (uint32_t)z->n;
  z->e[z->ne].size = (uint32_t)n;
  z->ne++;
  u32(z, 0x04034b50); u16(z, 20); u16(z, 0); u16(z, 0); u16(z, 0); u16(z, 0);
  u32(z, 0); u32(z, (uint32_t)n); u32(z, (uint32_t)n); u16(z, (unsigned)nlen); u16(z, (unsigned)(pad + 4));
  put(z, name, nlen);
  u16(z, 0x4246); u16(z, (unsigned)pad);
  for (size_t i = 0; i < pad; i++) put(z, "Z", 1);
  put(z, p, n);
}

static void finish(zb *z) {
  uint32_t cd = (uint32_t)z->n;
  for (int i = 0; i < z->ne; i++) {
    size_t nlen = strlen(z->e[i].name);
    u32(z, 0x02014b50); u16(z, 0x031e); u16(z, 20); u16(z, 0); u16(z, 0); u16(z, 0); u16(z, 0); u32(z, 0);
    u32(z, z->e[i].size); u32(z, z->e[i].size); u16(z, (unsigned)nlen); u16(z, 0); u16(z, 0); u16(z, 0);
    u16(z, 0); u32(z, 0); u32(z, z->e[i].off);
    put(z, z->e[i].name, nlen);
  }
  uint32_t cd_size = (uint32_t)z->n - cd;
  u32(z, 0x06054b50); u16(z, 0); u16(z, 0); u16(z, (unsigned)z->ne); u16(z, (unsigned)z->ne);
  u32(z, cd_size); u32(z, cd); u16(z, 0);
}

FUZZ_INITIALIZE_DEFAULT

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 20)) return 0;   /* the wrapper keeps 32-bit ZIP sizes */
  zb z = {0};
  add(&z, "archive/data.pkl", data, size);
  uint8_t storage[128];
  for (int i = 0; i < 20; i++) {
    for (size_t k = 0; k < sizeof storage; k++) storage[k] = (uint8_t)(k * 7 + (size_t)i);
    char name[32];
    snprintf(name, sizeof name, "archive/data/%d", i);
    add(&z, name, storage, sizeof storage);
  }
  add(&z, "archive/version", "3\n", 2);
  finish(&z);
  fuzz_ckpt_roundtrip(fuzz_file(0, z.b, z.n));
  free(z.b);
  return 0;
}
