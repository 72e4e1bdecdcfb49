/* taming.h — the whole public SDK in one include. */
#ifndef TAMING_H
#define TAMING_H
#include "taming/version.h"
#include "taming/export.h"
#include "taming/status.h"
#include "taming/tensor.h"
#include "taming/arena.h"
#include "taming/backend.h"
#include "taming/autograd.h"
#include "taming/profile.h"
#include "taming/ops.h"
#include "taming/value.h"
#include "taming/module.h"
#include "taming/plugin.h"
#include "taming/kinds.h"
#include "taming/io.h"
#include "taming/imgproc.h"
#include "taming/datasets.h"
#include "taming/sampling.h"
#include "taming/metrics.h"
#include "taming/dist.h"
#endif
