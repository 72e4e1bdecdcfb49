/* fuzz.h — what the fuzz targets in tests/fuzz share.
 *
 * Each fuzz_<target>.c defines LLVMFuzzerTestOneInput (and, where it needs one,
 * LLVMFuzzerInitialize) and nothing else. The same file links either with
 * libFuzzer (./configure --enable-fuzzing, CC=clang) or with replay.c, a main()
 * that feeds it the files of its corpus/ and regress/ folders, which is how
 * `make check` replays every input that ever broke a reader.
 *
 * A harness aborts (FUZZ_CHECK) when the library breaks a promise it makes for
 * any input: a tensor that reaches outside its storage or whose element count
 * does not fit in 64 bits, a failure without a message, a Lua error that is a
 * bug in library code ("attempt to index a nil value") instead of a message.
 * A refusal with a message is the expected outcome for most inputs. */
#ifndef TAMING_FUZZ_H
#define TAMING_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <lua.h>
#include "taming/taming.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Prints what was broken and aborts: a finding for libFuzzer and for replay. */
void fuzz_fail(const char *file, int line, const char *fmt, ...) __attribute__((noreturn, format(printf, 3, 4)));
#define FUZZ_CHECK(cond, ...) ((cond) ? (void)0 : fuzz_fail(__FILE__, __LINE__, __VA_ARGS__))

/* The environment every target runs in: one CPU thread, image and file caps
 * low enough that a refused "decompression bomb" never counts as a finding
 * (the fuzzers run with -malloc_limit_mb=1024), no GPU. Idempotent. */
void fuzz_setup(void);
/* libFuzzer's init hook for the targets that need nothing beyond fuzz_setup. */
#define FUZZ_INITIALIZE_DEFAULT                            \
  int LLVMFuzzerInitialize(int *argc, char ***argv) {      \
    (void)argc;                                            \
    (void)argv;                                            \
    fuzz_setup();                                          \
    return 0;                                              \
  }

/* A path whose file holds exactly data[0..n): an in-memory file (memfd) per
 * slot (0..3), rewritten on every call, so targets that read paths run
 * without touching the disk. */
const char *fuzz_file(int slot, const uint8_t *data, size_t n);
/* A scratch folder for writers (on tmpfs where there is one). */
const char *fuzz_scratch_dir(void);

/* A failed call must say why (FUZZ_VERBOSE=1 in the environment prints it). */
void fuzz_expect_message(tt_status s, const char *what);

/* Reads every element a tensor claims through its shape, strides and offset:
 * checks that they lie inside its storage (computed without overflow), that
 * the element count fits in int64 and matches tt_tensor_numel, then copies it
 * to a contiguous tensor and sums the bytes. Returns the sum (to keep the
 * reads). Tensors over `max_bytes` are checked but not copied. */
uint64_t fuzz_touch_tensor(const tt_tensor *t, const char *what, size_t max_bytes);
/* Walks a value (configs, checkpoint metadata): every string read, every
 * tensor touched. */
uint64_t fuzz_touch_value(const tt_value *v, int depth);

/* Opens a checkpoint (.ckpt/.pt or .safetensors, by content), with unsafe
 * pickle globals allowed, and reads all of it: every tensor touched and found
 * by name, the metadata walked, the unsafe globals listed, the `taming info`
 * listing printed; the default open must succeed exactly when there are no
 * unsafe globals. Then converts it to safetensors as `taming convert` does and
 * checks that the result reads back with the same tensors. */
void fuzz_ckpt_roundtrip(const char *path);

/* A Lua state set up as `taming run` sets it up (its allocations carry
 * canaries, see fuzz_lua_check_heap): the standard libraries,
 * package.path with the source tree's lua/ first, taming.core preloaded. */
lua_State *fuzz_lua_new(void);
/* Calls the function below its nargs arguments on the stack, discarding
 * results, and checks how it failed, if it did: the error must be a non-empty
 * string, not a runtime error of the Lua VM in library code ("attempt to
 * index a nil value") nor a luaL_check* refusal of an argument the library
 * passed without checking it ("bad argument #2 to ..."). Pops everything. */
void fuzz_lua_call(lua_State *L, int nargs, const char *what);
/* Checks that no block of the harnesses' Lua states was written past its end
 * (liblua is not instrumented; fuzz_lua_call runs this after each call). */
void fuzz_lua_check_heap(void);

#endif
