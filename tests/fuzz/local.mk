# tests/fuzz/ — a libFuzzer target per reader of untrusted input (README.md there).
# Every target links twice from the same source: with replay.c into
# tests/fuzz/replay_TARGET, a `make check` test that runs the target on each file
# of tests/fuzz/regress/TARGET and tests/fuzz/corpus/TARGET; and, configured with
# --enable-fuzzing (CC=clang), with libFuzzer into tests/fuzz/fuzz_TARGET, which
# `make fuzz-smoke` runs for FUZZ_SECONDS each.
FUZZ_TARGETS = pickle ckpt safetensors json yaml npy image idx dataloader args
FUZZ_CFLAGS = $(AM_CFLAGS) $(LUA_CFLAGS) $(OPENMP_CFLAGS)
FUZZ_LIBS = host/libtaming_lua.la host/libtaming_data.la host/libtaming.la $(LUA_LIBS) -lm

# replay.c stands in front of malloc (the allocation limit), so it links into
# each program from this convenience library, with the shared harness helpers.
check_LTLIBRARIES += tests/fuzz/libfuzzreplay.la
tests_fuzz_libfuzzreplay_la_SOURCES = tests/fuzz/replay.c tests/fuzz/fuzz_common.c tests/fuzz/fuzz.h
tests_fuzz_libfuzzreplay_la_CFLAGS = $(FUZZ_CFLAGS)
FUZZ_REPLAY_LIBS = tests/fuzz/libfuzzreplay.la $(FUZZ_LIBS)
check_PROGRAMS += tests/fuzz/replay_pickle
tests_fuzz_replay_pickle_SOURCES = tests/fuzz/fuzz_pickle.c
tests_fuzz_replay_pickle_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_pickle_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_pickle
check_PROGRAMS += tests/fuzz/replay_ckpt
tests_fuzz_replay_ckpt_SOURCES = tests/fuzz/fuzz_ckpt.c
tests_fuzz_replay_ckpt_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_ckpt_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_ckpt
check_PROGRAMS += tests/fuzz/replay_safetensors
tests_fuzz_replay_safetensors_SOURCES = tests/fuzz/fuzz_safetensors.c
tests_fuzz_replay_safetensors_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_safetensors_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_safetensors
check_PROGRAMS += tests/fuzz/replay_json
tests_fuzz_replay_json_SOURCES = tests/fuzz/fuzz_json.c
tests_fuzz_replay_json_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_json_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_json
check_PROGRAMS += tests/fuzz/replay_yaml
tests_fuzz_replay_yaml_SOURCES = tests/fuzz/fuzz_yaml.c
tests_fuzz_replay_yaml_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_yaml_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_yaml
check_PROGRAMS += tests/fuzz/replay_npy
tests_fuzz_replay_npy_SOURCES = tests/fuzz/fuzz_npy.c
tests_fuzz_replay_npy_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_npy_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_npy
check_PROGRAMS += tests/fuzz/replay_image
tests_fuzz_replay_image_SOURCES = tests/fuzz/fuzz_image.c
tests_fuzz_replay_image_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_image_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_image
check_PROGRAMS += tests/fuzz/replay_idx
tests_fuzz_replay_idx_SOURCES = tests/fuzz/fuzz_idx.c
tests_fuzz_replay_idx_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_idx_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_idx
check_PROGRAMS += tests/fuzz/replay_dataloader
tests_fuzz_replay_dataloader_SOURCES = tests/fuzz/fuzz_dataloader.c
tests_fuzz_replay_dataloader_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_dataloader_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_dataloader
check_PROGRAMS += tests/fuzz/replay_args
tests_fuzz_replay_args_SOURCES = tests/fuzz/fuzz_args.c
tests_fuzz_replay_args_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_replay_args_LDADD = $(FUZZ_REPLAY_LIBS)
TESTS += tests/fuzz/replay_args

if ENABLE_FUZZING
noinst_LTLIBRARIES += tests/fuzz/libfuzzcommon.la
tests_fuzz_libfuzzcommon_la_SOURCES = tests/fuzz/fuzz_common.c tests/fuzz/fuzz.h
tests_fuzz_libfuzzcommon_la_CFLAGS = $(FUZZ_CFLAGS)
FUZZ_ENGINE_LIBS = tests/fuzz/libfuzzcommon.la $(FUZZ_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_pickle
tests_fuzz_fuzz_pickle_SOURCES = tests/fuzz/fuzz_pickle.c
tests_fuzz_fuzz_pickle_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_pickle_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_pickle_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_ckpt
tests_fuzz_fuzz_ckpt_SOURCES = tests/fuzz/fuzz_ckpt.c
tests_fuzz_fuzz_ckpt_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_ckpt_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_ckpt_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_safetensors
tests_fuzz_fuzz_safetensors_SOURCES = tests/fuzz/fuzz_safetensors.c
tests_fuzz_fuzz_safetensors_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_safetensors_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_safetensors_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_json
tests_fuzz_fuzz_json_SOURCES = tests/fuzz/fuzz_json.c
tests_fuzz_fuzz_json_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_json_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_json_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_yaml
tests_fuzz_fuzz_yaml_SOURCES = tests/fuzz/fuzz_yaml.c
tests_fuzz_fuzz_yaml_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_yaml_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_yaml_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_npy
tests_fuzz_fuzz_npy_SOURCES = tests/fuzz/fuzz_npy.c
tests_fuzz_fuzz_npy_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_npy_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_npy_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_image
tests_fuzz_fuzz_image_SOURCES = tests/fuzz/fuzz_image.c
tests_fuzz_fuzz_image_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_image_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_image_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_idx
tests_fuzz_fuzz_idx_SOURCES = tests/fuzz/fuzz_idx.c
tests_fuzz_fuzz_idx_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_idx_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_idx_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_dataloader
tests_fuzz_fuzz_dataloader_SOURCES = tests/fuzz/fuzz_dataloader.c
tests_fuzz_fuzz_dataloader_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_dataloader_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_dataloader_LDADD = $(FUZZ_ENGINE_LIBS)
noinst_PROGRAMS += tests/fuzz/fuzz_args
tests_fuzz_fuzz_args_SOURCES = tests/fuzz/fuzz_args.c
tests_fuzz_fuzz_args_CFLAGS = $(FUZZ_CFLAGS)
tests_fuzz_fuzz_args_LDFLAGS = $(TT_FUZZ_LDFLAGS)
tests_fuzz_fuzz_args_LDADD = $(FUZZ_ENGINE_LIBS)
endif

# make fuzz-smoke [FUZZ_SECONDS=20] [FUZZ_TARGETS="json yaml"]: each fuzzer for
# FUZZ_SECONDS over its corpus and regressions; fails on any finding and
# prints where the input that triggered it was written.
FUZZ_SECONDS = 20
if ENABLE_FUZZING
fuzz-smoke: $(FUZZ_TARGETS:%=tests/fuzz/fuzz_%)
	@FUZZ_SECONDS='$(FUZZ_SECONDS)' $(SHELL) $(srcdir)/tests/fuzz/run.sh '$(srcdir)' tests/fuzz $(FUZZ_TARGETS)
else
fuzz-smoke:
	@echo "fuzz-smoke: configure with --enable-fuzzing CC=clang to build the fuzzers" >&2; exit 1
endif
.PHONY: fuzz-smoke

EXTRA_DIST += tests/fuzz/README.md tests/fuzz/run.sh tests/fuzz/gen_corpus.lua tests/fuzz/lsan.supp tests/fuzz/corpus tests/fuzz/regress
clean-local: clean-local-fuzz
clean-local-fuzz:
	-rm -rf tests/fuzz/work tests/fuzz/findings
