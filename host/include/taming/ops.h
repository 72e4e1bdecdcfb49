/* ops.h — every op of the runtime, forward and backward, on every backend.
 *
 * Ops return a new tensor (one reference for the caller) or NULL with the
 * reason in tt_error_message(); inputs are borrowed. When gradients are enabled
 * and an input needs one, the op records itself on the autograd tape.
 * One family per header; each header also declares its backend kernels. */
#ifndef TAMING_OPS_H
#define TAMING_OPS_H

#include "taming/tensor.h"
#include "taming/autograd.h"
#include "taming/ops/copy.h"
#include "taming/ops/elementwise.h"
#include "taming/ops/shape.h"
#include "taming/ops/reduce.h"
#include "taming/ops/gemm.h"
#include "taming/ops/qlinear.h"
#include "taming/ops/conv.h"
#include "taming/ops/conv_lowp.h"
#include "taming/ops/conv_prec.h"
#include "taming/ops/resample.h"
#include "taming/ops/norm.h"
#include "taming/ops/softmax.h"
#include "taming/ops/attention.h"
#include "taming/ops/embedding.h"
#include "taming/ops/loss.h"
#include "taming/ops/quantize.h"
#include "taming/ops/optim.h"
#include "taming/ops/random.h"
#include "taming/ops/compare.h"
#include "taming/ops/sort.h"

#endif
