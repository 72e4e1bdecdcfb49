// check_headers_cxx.cc — the public SDK from C++: every installed header
// compiles as C++ and declares its functions with C linkage, so a C++ plugin
// links against libtaming. A header without extern "C" makes this program fail
// to link (its functions are looked up under C++-mangled names).
#include "taming/taming.h"
#include "taming/dataloader.h"
#include "taming/dtype.h"
#include "taming/tensorboard.h"
#include "taming/scope.h"
#include <cstdio>

// One function of each header, taken by address so the linker must find it.
static const void *const one_per_header[] = {
    (const void *)&tt_arena_new,        (const void *)&tt_grad_enabled,     (const void *)&tt_device_available,
    (const void *)&tt_loader_open,      (const void *)&tt_idx_load,         (const void *)&tt_dist_init,
    (const void *)&tt_cv_resize,        (const void *)&tt_ckpt_open,        (const void *)&tt_paramset_init,
    (const void *)&tt_plugin_find,      (const void *)&tt_sample_sequence,  (const void *)&tt_error,
    (const void *)&tt_dtype_size,       (const void *)&tt_tb_open,          (const void *)&tt_value_clear,
    (const void *)&tt_attention,        (const void *)&tt_conv2d,           (const void *)&tt_copy_,
    (const void *)&tt_binary,           (const void *)&tt_embedding,        (const void *)&tt_matmul,
    (const void *)&tt_l1_loss,          (const void *)&tt_group_norm,       (const void *)&tt_adam_step,
    (const void *)&tt_codebook_argmin,  (const void *)&tt_rng_make,         (const void *)&tt_sum,
    (const void *)&tt_upsample_nearest, (const void *)&tt_reshape,          (const void *)&tt_softmax,
    (const void *)&tt_kind_find,        (const void *)&tt_sampler_sample,   (const void *)&tt_sampler_host_logits,
    (const void *)&tt_scope_own,
};

int main() {
  for (const void *p : one_per_header)
    if (!p) return 1;
  // and a round trip through the library, with dtype.h's inline conversions
  const int64_t shape[1] = {3};
  const float data[3] = {1.5f, -2.0f, 3.25f};
  tt_tensor *t = tt_tensor_from_data(TT_F32, 1, shape, data, TT_CPU);
  tt_tensor *h = t ? tt_cast(t, TT_F16) : nullptr;
  tt_tensor *back = h ? tt_cast(h, TT_F32) : nullptr;
  int bad = !back;
  for (int i = 0; back && i < 3; i++) bad += tt_tensor_get(back, i) != data[i];
  bad += tt_f16_to_f32(tt_f32_to_f16(3.25f)) != 3.25f;
  tt_tensor_unref(back);
  tt_tensor_unref(h);
  tt_tensor_unref(t);
  std::printf("check_headers_cxx: %zu headers' functions linked from C++, %s\n",
              sizeof one_per_header / sizeof one_per_header[0], bad ? "round trip FAILED" : "round trip ok");
  return bad ? 1 : 0;
}
