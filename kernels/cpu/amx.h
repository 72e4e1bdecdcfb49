/* amx.h — the AMX tile setup the bf16 kernels share (qlinear.c, gemm_bf16.c):
 * palette 1, all eight tiles 16 rows x 64 bytes (16 x 16 f32 or 16 x 32 bf16).
 * Call only where tt_cpu_amx_bf16_usable() is true; begin/end bracket the tile
 * work of one thread. */
#ifndef TAMING_KERNELS_CPU_AMX_H
#define TAMING_KERNELS_CPU_AMX_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

typedef struct {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} tt_amx_tilecfg;

__attribute__((target("amx-tile,amx-bf16"))) static inline void tt_cpu_amx_begin(void) {
  tt_amx_tilecfg cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
}

__attribute__((target("amx-tile"))) static inline void tt_cpu_amx_end(void) { _tile_release(); }

#endif
