/* permuter/identity.c — Identity (raster order). */
#include "config.h"
#include "orders.h"

TT_PERMUTER_PLUGIN("identity", "Identity (raster order)", tt_order_identity, false);
