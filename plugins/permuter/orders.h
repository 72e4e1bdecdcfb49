/* orders.h — the official token orders (see orders.c). */
#ifndef TAMING_PLUGINS_ORDERS_H
#define TAMING_PLUGINS_ORDERS_H
#include "permuter.h"
tt_status tt_order_identity(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);
tt_status tt_order_subsample(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);
tt_status tt_order_zcurve(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);
tt_status tt_order_spiral_out(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);
tt_status tt_order_spiral_in(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);
tt_status tt_order_alternate(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);
tt_status tt_order_random(int64_t H, int64_t W, const tt_value *cfg, int64_t *fwd);
#endif
