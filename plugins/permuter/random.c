/* permuter/random.c — Random (seeded; a checkpoint's buffers override). */
#include "config.h"
#include "orders.h"

TT_PERMUTER_PLUGIN("random", "Random (seeded; a checkpoint's buffers override)", tt_order_random, true);
