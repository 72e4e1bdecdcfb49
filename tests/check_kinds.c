/* check_kinds.c — the typed calls of kinds.h against the shipped plugins (and
 * stand-ins in tests/plugins): each returns what its kind's contract says,
 * with the values the plugin computes, and a plugin that breaks the contract
 * is refused with a message naming it. */
#include "config.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "testhelp.h"

static void use_test_plugins(void) {
  static char path[4096];
  snprintf(path, sizeof path, "%s/tests/plugins/.libs", TT_ABS_BUILDDIR);
  setenv("TAMING_PLUGIN_PATH", path, 1);
}

static void set_int(tt_value *m, const char *key, int64_t v) {
  tt_value x = tt_value_int(v);
  TH_OK(tt_value_set(m, key, &x));
}

static void set_list(tt_value *m, const char *key, int n, const int64_t *v) {
  tt_value l = tt_value_list();
  for (int i = 0; i < n; i++) {
    tt_value x = tt_value_int(v[i]);
    TH_OK(tt_value_push(&l, &x));
  }
  TH_OK(tt_value_set(m, key, &l));
}

/* kind/name from cfg (cleared), parameters initialised from seed 1 */
static tt_instance *make(const char *kind, const char *name, tt_value *cfg) {
  tt_plugin *p;
  tt_instance *inst;
  TH_OK(tt_plugin_find(kind, name, &p));
  TH_OK(tt_instance_create(p, cfg, &inst));
  if (cfg) tt_value_clear(cfg);
  TH_OK(tt_paramset_materialize(tt_instance_params(inst), 1, TT_CPU));
  TH_OK(tt_instance_params_ready(inst));
  return inst;
}

static void assert_shape(const char *what, const tt_tensor *t, int nd, const int64_t *shape) {
  char a[128], b[128];
  bool ok = t->ndim == nd;
  for (int i = 0; ok && i < nd; i++) ok = t->shape[i] == shape[i];
  ck_assert_msg(ok, "%s: shape %s, expected %s", what, tt_tensor_shape_str(t, a, sizeof a), tt_shape_str(nd, shape, b, sizeof b));
}

START_TEST(test_sampler_calls) {
  float rows[2 * 5] = {0.1f, 3.0f, -1.0f, 3.0f, 0.0f, /* tie: the first maximum */
                       -2.0f, -1.0f, 0.5f, 0.0f, 0.4f};
  tt_tensor *logits = tt_tensor_from_data(TT_F32, TT_DIMS(2, 5), rows, TT_CPU);
  tt_instance *g = make("sampler", "greedy", NULL);
  tt_tensor *tok, *p;
  TH_OK(tt_sampler_sample(g, logits, &tok));
  ck_assert_int_eq(tok->dtype, TT_I64);
  ck_assert_int_eq(tt_i64(tok)[0], 1);
  ck_assert_int_eq(tt_i64(tok)[1], 2);
  ck_assert_int_eq(tt_sampler_argmax(rows, 5), 1);
  tt_tensor_unref(tok);
  TH_OK(tt_sampler_probs(g, logits, &p));
  assert_shape("greedy probs", p, TT_DIMS(2, 5));
  ck_assert(tt_tensor_get(p, 1) == 1.0 && tt_tensor_get(p, 3) == 0.0 && tt_tensor_get(p, 7) == 1.0);
  tt_tensor_unref(p);
  uint64_t seed = 9, counter = 9;
  TH_OK(tt_sampler_state(g, &seed, &counter));
  ck_assert(seed == 0 && counter == 0);
  tt_instance_free(g);

  /* categorical: the state round-trips and replays the same draws */
  tt_value cfg = tt_value_map();
  set_int(&cfg, "seed", 42);
  tt_instance *c = make("sampler", "categorical", &cfg);
  TH_OK(tt_sampler_probs(c, logits, &p));
  for (int b = 0; b < 2; b++) {
    double sum = 0;
    for (int v = 0; v < 5; v++) sum += tt_tensor_get(p, b * 5 + v);
    ck_assert_msg(fabs(sum - 1.0) < 1e-6, "row %d of probs sums to %g", b, sum);
  }
  tt_tensor_unref(p);
  TH_OK(tt_sampler_state(c, &seed, &counter));
  ck_assert(seed == 42);
  int64_t first[16];
  for (int i = 0; i < 8; i++) {
    TH_OK(tt_sampler_sample(c, logits, &tok));
    first[2 * i] = tt_i64(tok)[0];
    first[2 * i + 1] = tt_i64(tok)[1];
    tt_tensor_unref(tok);
  }
  uint64_t s2, c2;
  TH_OK(tt_sampler_state(c, &s2, &c2));
  ck_assert(s2 == 42 && c2 > counter);
  TH_OK(tt_sampler_set_state(c, seed, counter));
  for (int i = 0; i < 8; i++) {
    TH_OK(tt_sampler_sample(c, logits, &tok));
    ck_assert(tt_i64(tok)[0] == first[2 * i] && tt_i64(tok)[1] == first[2 * i + 1]);
    tt_tensor_unref(tok);
  }
  tt_instance_free(c);
  tt_tensor_unref(logits);
}
END_TEST

/* A sampler that breaks its contract is named; nothing crashes. */
START_TEST(test_sampler_contract_broken) {
  use_test_plugins();
  float rows[2 * 3] = {0, 1, 2, 2, 1, 0};
  tt_tensor *logits = tt_tensor_from_data(TT_F32, TT_DIMS(2, 3), rows, TT_CPU);
  const char *lies[] = {"f32", "count", "number", "nothing"};
  const char *found[] = {"returned tensor f32 [2]", "returned tensor i64 [3]", "returned int", "returned nothing"};
  for (int i = 0; i < 4; i++) {
    tt_value cfg = tt_value_map(), v = tt_value_str(lies[i]);
    TH_OK(tt_value_set(&cfg, "lie", &v));
    tt_instance *s = make("sampler", "liar", &cfg);
    tt_tensor *tok = NULL;
    ck_assert_int_eq(tt_sampler_sample(s, logits, &tok), TT_ERR_PLUGIN);
    ck_assert_ptr_null(tok);
    ck_assert_msg(strstr(tt_error_message(), "sampler/liar:sample ") && strstr(tt_error_message(), found[i]) &&
                      strstr(tt_error_message(), "i64 tokens [2]"),
                  "lie %s: %s", lies[i], tt_error_message());
    tt_instance_free(s);
  }
  /* honest, it agrees with greedy */
  tt_instance *s = make("sampler", "liar", NULL);
  tt_tensor *tok;
  TH_OK(tt_sampler_sample(s, logits, &tok));
  ck_assert(tt_i64(tok)[0] == 2 && tt_i64(tok)[1] == 0);
  tt_tensor_unref(tok);
  /* no state methods: state reads 0, 0 and set_state does nothing */
  uint64_t seed = 1, counter = 1;
  TH_OK(tt_sampler_state(s, &seed, &counter));
  ck_assert(seed == 0 && counter == 0);
  TH_OK(tt_sampler_set_state(s, 3, 4));
  tt_instance_free(s);
  tt_tensor_unref(logits);
}
END_TEST

START_TEST(test_transformer_calls) {
  tt_value cfg = tt_value_map();
  set_int(&cfg, "vocab_size", 7);
  set_int(&cfg, "block_size", 8);
  set_int(&cfg, "n_layer", 1);
  set_int(&cfg, "n_head", 2);
  set_int(&cfg, "n_embd", 8);
  tt_instance *gpt = make("transformer", "mingpt", &cfg);
  int64_t toks[2 * 4] = {1, 2, 3, 4, 6, 5, 0, 1};
  tt_tensor *x = tt_tensor_from_data(TT_I64, TT_DIMS(2, 4), toks, TT_CPU);
  tt_tensor *full, *head, *l3, *l1;
  TH_OK(tt_transformer_forward(gpt, x, NULL, &full));
  assert_shape("forward", full, TT_DIMS(2, 4, 7));
  tt_tensor *x3 = tt_slice(x, 1, 0, 3, 1), *xl = tt_slice(x, 1, 3, 4, 1);
  TH_OK(tt_transformer_reset_cache(gpt, 2));
  TH_OK(tt_transformer_forward_cached(gpt, x3, false, &l3));
  assert_shape("forward_cached", l3, TT_DIMS(2, 3, 7));
  head = tt_slice(full, 1, 0, 3, 1);
  th_assert_close("cached prefix vs forward", l3, head, 1e-5);
  TH_OK(tt_transformer_forward_cached(gpt, xl, true, &l1));
  assert_shape("forward_cached last_only", l1, TT_DIMS(2, 1, 7));
  tt_tensor *last = tt_slice(full, 1, 3, 4, 1);
  th_assert_close("cached step vs forward", l1, last, 1e-5);
  int64_t n;
  TH_OK(tt_transformer_cache_len(gpt, &n));
  ck_assert_int_eq(n, 4);
  TH_OK(tt_transformer_truncate_cache(gpt, 3));
  TH_OK(tt_transformer_cache_len(gpt, &n));
  ck_assert_int_eq(n, 3);
  /* the host's loop through these calls: greedy sampling with and without the cache agree */
  tt_plugin *gp;
  tt_instance *greedy;
  TH_OK(tt_plugin_find("sampler", "greedy", &gp));
  TH_OK(tt_instance_create(gp, NULL, &greedy));
  tt_tensor *a, *b;
  TH_OK(tt_sample_sequence(gpt, greedy, x3, 5, &(tt_sample_opts){.use_cache = true}, &a));
  TH_OK(tt_sample_sequence(gpt, greedy, x3, 5, &(tt_sample_opts){.use_cache = false}, &b));
  th_assert_close("cached vs uncached greedy tokens", a, b, 0);
  tt_tensor *bad = tt_zeros(TT_F32, TT_DIMS(2, 3), TT_CPU);
  ck_assert_int_ne(tt_transformer_forward(gpt, bad, NULL, &full), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "transformer/mingpt:forward"));
  tt_tensor *objs[] = {a, b, bad, x, x3, xl, full, head, l3, l1, last};
  for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) tt_tensor_unref(objs[i]);
  tt_instance_free(greedy);
  tt_instance_free(gpt);
}
END_TEST

START_TEST(test_cond_and_permuter_calls) {
  tt_value cfg = tt_value_map();
  set_int(&cfg, "n_classes", 10);
  tt_instance *lab = make("cond", "labelator", &cfg);
  int64_t labels[3] = {4, 0, 9};
  tt_tensor *y = tt_tensor_from_data(TT_I64, TT_DIMS(3), labels, TT_CPU);
  tt_value in = tt_value_tensor(y);
  tt_tensor *q, *idx;
  TH_OK(tt_cond_encode(lab, &in, &q, &idx));
  assert_shape("labelator indices", idx, TT_DIMS(3, 1));
  for (int i = 0; i < 3; i++) ck_assert_int_eq(tt_i64(idx)[i], labels[i]);
  tt_tensor_unref(q);
  tt_tensor_unref(idx);
  tt_value_clear(&in);
  tt_instance_free(lab);
  cfg = tt_value_map();
  set_int(&cfg, "sos_token", 5);
  tt_instance *sos = make("cond", "sos", &cfg);
  in = tt_value_int(2);   /* a batch size */
  TH_OK(tt_cond_encode(sos, &in, NULL, &idx));
  assert_shape("sos indices", idx, TT_DIMS(2, 1));
  ck_assert(tt_i64(idx)[0] == 5 && tt_i64(idx)[1] == 5);
  tt_tensor_unref(idx);
  tt_instance_free(sos);

  cfg = tt_value_map();
  set_int(&cfg, "H", 4);
  set_int(&cfg, "W", 4);
  tt_instance *z = make("permuter", "zcurve", &cfg);
  int64_t raster[2 * 16];
  for (int i = 0; i < 32; i++) raster[i] = i;
  tt_tensor *r = tt_tensor_from_data(TT_I64, TT_DIMS(2, 16), raster, TT_CPU), *s, *back;
  TH_OK(tt_permuter_forward(z, r, &s));
  TH_OK(tt_permuter_reverse(z, s, &back));
  th_assert_close("reverse(forward(x))", back, r, 0);
  /* the z-curve visits (0,0) (0,1) (1,0) (1,1) (0,2) ...: raster cells 0 1 4 5 2 */
  int64_t want[5] = {0, 1, 4, 5, 2};
  for (int i = 0; i < 5; i++) ck_assert_int_eq(tt_i64(s)[i], want[i]);
  tt_tensor_unref(r);
  tt_tensor_unref(s);
  tt_tensor_unref(back);
  tt_instance_free(z);
  tt_tensor_unref(y);
}
END_TEST

START_TEST(test_first_stage_calls) {
  /* quantizer: the code book entries of the indices are zq */
  tt_value cfg = tt_value_map();
  set_int(&cfg, "n_e", 6);
  set_int(&cfg, "e_dim", 3);
  tt_instance *vq = make("quantizer", "vq", &cfg);
  tt_tensor *z = th_randn(3, TT_DIMS(1, 3, 2, 2), 1.0f), *zq, *loss, *idx, *zq2;
  TH_OK(tt_quantizer_forward(vq, z, &zq, &loss, &idx));
  assert_shape("zq", zq, TT_DIMS(1, 3, 2, 2));
  ck_assert_ptr_nonnull(loss);
  ck_assert_int_eq(tt_tensor_numel(idx), 4);
  tt_tensor *flat = tt_reshape(idx, TT_DIMS(4));
  TH_OK(tt_quantizer_get_codebook_entry(vq, flat, (int64_t[4]){1, 2, 2, 3}, &zq2));
  th_assert_close("get_codebook_entry(indices) vs zq", zq2, zq, 1e-6);
  tt_tensor *only_idx;
  TH_OK(tt_quantizer_forward(vq, z, NULL, NULL, &only_idx));
  th_assert_close("indices", only_idx, idx, 0);
  tt_tensor *objs[] = {z, zq, loss, idx, zq2, flat, only_idx};
  for (size_t i = 0; i < sizeof objs / sizeof *objs; i++) tt_tensor_unref(objs[i]);
  tt_instance_free(vq);

  /* encoder -> decoder on a tiny ddconfig */
  tt_value dd[2];
  for (int k = 0; k < 2; k++) {
    dd[k] = tt_value_map();
    set_int(&dd[k], "ch", 32);
    set_list(&dd[k], "ch_mult", 2, (int64_t[]){1, 1});
    set_int(&dd[k], "num_res_blocks", 1);
    set_list(&dd[k], "attn_resolutions", 0, NULL);
    set_int(&dd[k], "resolution", 8);
    set_int(&dd[k], "z_channels", 4);
    tt_value f = tt_value_bool(false);
    TH_OK(tt_value_set(&dd[k], "double_z", &f));
  }
  tt_instance *enc = make("encoder", "vqgan", &dd[0]), *dec = make("decoder", "vqgan", &dd[1]);
  tt_tensor *x = th_randn(4, TT_DIMS(1, 3, 8, 8), 1.0f), *h, *xr;
  TH_OK(tt_encoder_forward(enc, x, &h));
  assert_shape("encoder", h, TT_DIMS(1, 4, 4, 4));
  TH_OK(tt_decoder_forward(dec, h, &xr));
  assert_shape("decoder", xr, TT_DIMS(1, 3, 8, 8));
  tt_tensor_unref(h);
  tt_tensor_unref(xr);
  tt_instance_free(enc);
  tt_instance_free(dec);

  /* a 1x1 convolution is a matrix product over channels */
  cfg = tt_value_map();
  set_int(&cfg, "in_channels", 3);
  set_int(&cfg, "out_channels", 2);
  tt_instance *conv = make("layer", "conv2d", &cfg);
  tt_tensor *y;
  TH_OK(tt_layer_forward(conv, x, &y));
  assert_shape("conv2d", y, TT_DIMS(1, 2, 8, 8));
  tt_paramset *ps = tt_instance_params(conv);
  tt_tensor *w = tt_paramset_find(ps, "weight")->t, *bias = tt_paramset_find(ps, "bias")->t;
  double want = tt_tensor_get(bias, 1);
  for (int c = 0; c < 3; c++) want += tt_tensor_get(w, 3 + c) * tt_tensor_get(x, c * 64 + 9);
  ck_assert_msg(fabs(tt_tensor_get(y, 64 + 9) - want) < 1e-5, "conv2d: %g vs %g", tt_tensor_get(y, 64 + 9), want);
  tt_tensor_unref(y);
  tt_instance_free(conv);

  cfg = tt_value_map();
  set_int(&cfg, "ndf", 8);
  set_int(&cfg, "n_layers", 1);
  tt_instance *disc = make("discriminator", "patchgan", &cfg);
  tt_tensor *x16 = th_randn(5, TT_DIMS(2, 3, 16, 16), 1.0f), *logits;
  TH_OK(tt_discriminator_forward(disc, x16, &logits));
  ck_assert_int_eq(logits->ndim, 4);
  ck_assert(logits->shape[0] == 2 && logits->shape[1] == 1);
  tt_tensor_unref(logits);
  tt_instance_free(disc);
  tt_tensor_unref(x16);
  tt_tensor_unref(x);
}
END_TEST

START_TEST(test_loss_and_feature_calls) {
  use_test_plugins();
  tt_instance *lp = make("loss", "lpips", NULL);
  tt_tensor *x = th_uniform(6, TT_DIMS(2, 3, 32, 32), -1, 1), *y = th_uniform(7, TT_DIMS(2, 3, 32, 32), -1, 1), *d, *d0;
  TH_OK(tt_loss_forward(lp, x, y, &d));
  assert_shape("lpips", d, TT_DIMS(2, 1, 1, 1));
  TH_OK(tt_loss_forward(lp, x, x, &d0));
  /* (random linear heads may weigh a difference negatively: only x == y gives 0 for sure) */
  ck_assert_msg(fabs(tt_tensor_get(d0, 0)) < 1e-6 && tt_tensor_get(d, 0) != 0, "lpips(x, x) = %g, lpips(x, y) = %g",
                tt_tensor_get(d0, 0), tt_tensor_get(d, 0));
  tt_tensor_unref(d);
  tt_tensor_unref(d0);
  tt_instance_free(lp);

  tt_instance *f = make("feature", "stub", NULL);
  tt_tensor *feat, *lg;
  TH_OK(tt_feature_forward(f, x, &feat, &lg));
  assert_shape("features", feat, TT_DIMS(2, 3));
  assert_shape("feature logits", lg, TT_DIMS(2, 1));
  double mean = 0;
  for (int i = 0; i < 1024; i++) mean += tt_tensor_get(x, 1024 + i);
  ck_assert_msg(fabs(tt_tensor_get(feat, 1) - mean / 1024) < 1e-5, "feature: %g vs %g", tt_tensor_get(feat, 1), mean / 1024);
  tt_tensor_unref(feat);
  tt_tensor_unref(lg);
  tt_tensor *bad = tt_zeros(TT_F32, TT_DIMS(3), TT_CPU);
  ck_assert_int_ne(tt_feature_forward(f, bad, &feat, NULL), TT_OK);
  ck_assert_ptr_nonnull(strstr(tt_error_message(), "feature/stub:forward: x must be [B, C, H, W]"));
  tt_tensor_unref(bad);
  tt_instance_free(f);
  tt_tensor_unref(x);
  tt_tensor_unref(y);
}
END_TEST

int main(void) {
  Suite *s = suite_create("kinds");
  TCase *tc = tcase_create("typed calls");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_sampler_calls);
  tcase_add_test(tc, test_sampler_contract_broken);
  tcase_add_test(tc, test_transformer_calls);
  tcase_add_test(tc, test_cond_and_permuter_calls);
  tcase_add_test(tc, test_first_stage_calls);
  tcase_add_test(tc, test_loss_and_feature_calls);
  suite_add_tcase(s, tc);
  return th_run(s);
}
