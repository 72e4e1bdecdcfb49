/* permuter/subsample.c — Subsample (coarse to fine). */
#include "config.h"
#include "orders.h"

TT_PERMUTER_PLUGIN("subsample", "Subsample (coarse to fine)", tt_order_subsample, true);
