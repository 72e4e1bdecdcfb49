/* permuter/zcurve.c — ZCurve (Morton order). */
#include "config.h"
#include "orders.h"

TT_PERMUTER_PLUGIN("zcurve", "ZCurve (Morton order)", tt_order_zcurve, true);
