/* permuter/spiral_in.c — SpiralIn. */
#include "config.h"
#include "orders.h"

TT_PERMUTER_PLUGIN("spiral_in", "SpiralIn", tt_order_spiral_in, true);
