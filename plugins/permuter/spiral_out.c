/* permuter/spiral_out.c — SpiralOut. */
#include "config.h"
#include "orders.h"

TT_PERMUTER_PLUGIN("spiral_out", "SpiralOut", tt_order_spiral_out, true);
