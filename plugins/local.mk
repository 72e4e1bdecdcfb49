# plugins/ — one folder per kind, one file per plugin -> KIND_NAME.so (libtool modules).
noinst_LTLIBRARIES += plugins/libblocks.la
plugins_libblocks_la_SOURCES = plugins/common/blocks.c plugins/common/blocks.h

plugins_LTLIBRARIES += plugins/encoder_vqgan.la plugins/decoder_vqgan.la plugins/layer_conv2d.la \
	plugins/quantizer_vq.la plugins/quantizer_gumbel.la plugins/quantizer_ema.la
plugins_encoder_vqgan_la_SOURCES = plugins/encoder/vqgan.c
plugins_encoder_vqgan_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_encoder_vqgan_la_LIBADD = plugins/libblocks.la $(PLUGIN_LIBS)
plugins_decoder_vqgan_la_SOURCES = plugins/decoder/vqgan.c
plugins_decoder_vqgan_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_decoder_vqgan_la_LIBADD = plugins/libblocks.la $(PLUGIN_LIBS)
plugins_layer_conv2d_la_SOURCES = plugins/layer/conv2d.c
plugins_layer_conv2d_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_layer_conv2d_la_LIBADD = $(PLUGIN_LIBS)
plugins_quantizer_vq_la_SOURCES = plugins/quantizer/vq.c
plugins_quantizer_vq_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_quantizer_vq_la_LIBADD = $(PLUGIN_LIBS)
plugins_quantizer_gumbel_la_SOURCES = plugins/quantizer/gumbel.c
plugins_quantizer_gumbel_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_quantizer_gumbel_la_LIBADD = $(PLUGIN_LIBS)
plugins_quantizer_ema_la_SOURCES = plugins/quantizer/ema.c
plugins_quantizer_ema_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_quantizer_ema_la_LIBADD = $(PLUGIN_LIBS)

# second stage
plugins_LTLIBRARIES += plugins/transformer_mingpt.la
plugins_transformer_mingpt_la_SOURCES = plugins/transformer/mingpt.c
plugins_transformer_mingpt_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_transformer_mingpt_la_LIBADD = $(PLUGIN_LIBS)

noinst_LTLIBRARIES += plugins/libsampler.la plugins/libpermuter.la plugins/libcond.la
plugins_libsampler_la_SOURCES = plugins/sampler/common.c plugins/sampler/sampler.h
plugins_libpermuter_la_SOURCES = plugins/permuter/common.c plugins/permuter/orders.c plugins/permuter/orders.h \
	plugins/permuter/permuter.h
plugins_libcond_la_SOURCES = plugins/cond/cond.c plugins/cond/cond.h

plugins_LTLIBRARIES += plugins/sampler_greedy.la plugins/sampler_categorical.la
plugins_sampler_greedy_la_SOURCES = plugins/sampler/greedy.c
plugins_sampler_greedy_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_sampler_greedy_la_LIBADD = plugins/libsampler.la $(PLUGIN_LIBS)
plugins_sampler_categorical_la_SOURCES = plugins/sampler/categorical.c
plugins_sampler_categorical_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_sampler_categorical_la_LIBADD = plugins/libsampler.la $(PLUGIN_LIBS)

plugins_LTLIBRARIES += plugins/permuter_identity.la plugins/permuter_subsample.la plugins/permuter_zcurve.la \
	plugins/permuter_spiral_out.la plugins/permuter_spiral_in.la plugins/permuter_random.la \
	plugins/permuter_alternate.la
plugins_permuter_identity_la_SOURCES = plugins/permuter/identity.c
plugins_permuter_identity_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_permuter_identity_la_LIBADD = plugins/libpermuter.la $(PLUGIN_LIBS)
plugins_permuter_subsample_la_SOURCES = plugins/permuter/subsample.c
plugins_permuter_subsample_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_permuter_subsample_la_LIBADD = plugins/libpermuter.la $(PLUGIN_LIBS)
plugins_permuter_zcurve_la_SOURCES = plugins/permuter/zcurve.c
plugins_permuter_zcurve_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_permuter_zcurve_la_LIBADD = plugins/libpermuter.la $(PLUGIN_LIBS)
plugins_permuter_spiral_out_la_SOURCES = plugins/permuter/spiral_out.c
plugins_permuter_spiral_out_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_permuter_spiral_out_la_LIBADD = plugins/libpermuter.la $(PLUGIN_LIBS)
plugins_permuter_spiral_in_la_SOURCES = plugins/permuter/spiral_in.c
plugins_permuter_spiral_in_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_permuter_spiral_in_la_LIBADD = plugins/libpermuter.la $(PLUGIN_LIBS)
plugins_permuter_random_la_SOURCES = plugins/permuter/random.c
plugins_permuter_random_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_permuter_random_la_LIBADD = plugins/libpermuter.la $(PLUGIN_LIBS)
plugins_permuter_alternate_la_SOURCES = plugins/permuter/alternate.c
plugins_permuter_alternate_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_permuter_alternate_la_LIBADD = plugins/libpermuter.la $(PLUGIN_LIBS)

plugins_LTLIBRARIES += plugins/cond_sos.la plugins/cond_labelator.la plugins/cond_coord.la plugins/cond_dummy.la
plugins_cond_sos_la_SOURCES = plugins/cond/sos.c
plugins_cond_sos_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_cond_sos_la_LIBADD = plugins/libcond.la $(PLUGIN_LIBS)
plugins_cond_labelator_la_SOURCES = plugins/cond/labelator.c
plugins_cond_labelator_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_cond_labelator_la_LIBADD = plugins/libcond.la $(PLUGIN_LIBS)
plugins_cond_coord_la_SOURCES = plugins/cond/coord.c
plugins_cond_coord_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_cond_coord_la_LIBADD = plugins/libcond.la $(PLUGIN_LIBS)
plugins_cond_dummy_la_SOURCES = plugins/cond/dummy.c
plugins_cond_dummy_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_cond_dummy_la_LIBADD = plugins/libcond.la $(PLUGIN_LIBS)

# first-stage training losses: LPIPS and the PatchGAN discriminator
plugins_LTLIBRARIES += plugins/loss_lpips.la plugins/discriminator_patchgan.la
plugins_loss_lpips_la_SOURCES = plugins/loss/lpips.c
plugins_loss_lpips_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_loss_lpips_la_LIBADD = $(PLUGIN_LIBS)
plugins_discriminator_patchgan_la_SOURCES = plugins/discriminator/patchgan.c
plugins_discriminator_patchgan_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_discriminator_patchgan_la_LIBADD = $(PLUGIN_LIBS)

# evaluation: the FID InceptionV3 (features for FID, logits for the Inception Score)
plugins_LTLIBRARIES += plugins/feature_inception.la
plugins_feature_inception_la_SOURCES = plugins/feature/inception.c
plugins_feature_inception_la_LDFLAGS = $(PLUGIN_FLAGS)
plugins_feature_inception_la_LIBADD = $(PLUGIN_LIBS)
