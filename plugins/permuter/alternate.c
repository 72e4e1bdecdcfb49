/* permuter/alternate.c — AlternateParsing (boustrophedon). */
#include "config.h"
#include "orders.h"

TT_PERMUTER_PLUGIN("alternate", "AlternateParsing (boustrophedon)", tt_order_alternate, true);
