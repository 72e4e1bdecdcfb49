/* check_dist.c — taming/dist.h in a single process: a plain process is a world
 * of one whose collectives leave every value as it was, bad arguments fail
 * with messages that name the rank, and a process launched as one of several
 * without the MPI module fails with a message that says how to get it. The
 * multi-process path is tests/lua/test_dist_mpi.lua (under mpirun).
 *
 * Each test runs in its own forked process (th_run), so the world state and
 * the environment changes of one test do not reach the next. */
#include "config.h"
#include <stdlib.h>
#include <string.h>
#include "taming/dist.h"
#include "testhelp.h"

static void plain_process(void) {
  unsetenv("OMPI_COMM_WORLD_SIZE");
  unsetenv("OMPI_COMM_WORLD_RANK");
  unsetenv("PMI_SIZE");
  unsetenv("PMI_RANK");
}

#define ASSERT_MSG_HAS(needle)                                                                        \
  ck_assert_msg(strstr(tt_error_message(), (needle)) != NULL, "message lacks '%s': %s", (needle), \
                tt_error_message())

/* bit-for-bit equality, printing the max difference when it fails */
static void assert_same(const char *what, const tt_tensor *a, const tt_tensor *b) {
  ck_assert_int_eq(tt_tensor_numel(a), tt_tensor_numel(b));
  ck_assert_msg(memcmp(tt_tensor_data(a), tt_tensor_data(b), tt_tensor_nbytes(a)) == 0,
                "%s: values changed (max abs diff %g)", what, th_max_abs_diff(a, b));
}

START_TEST(test_world_of_one) {
  plain_process();
  ck_assert_int_eq(tt_dist_size(), 1); /* before init */
  TH_OK(tt_dist_init());
  TH_OK(tt_dist_init()); /* idempotent */
  ck_assert_int_eq(tt_dist_size(), 1);
  ck_assert_int_eq(tt_dist_rank(), 0);
  ck_assert_int_eq(tt_dist_local_rank(), 0);
  ck_assert(!tt_dist_is_mpi());
  ck_assert_str_eq(tt_dist_backend(), "none");
  TH_OK(tt_dist_barrier());
}
END_TEST

START_TEST(test_allreduce_leaves_values) {
  plain_process();
  /* no explicit init: the collective joins the world itself */
  tt_tensor *x = th_randn(7, TT_DIMS(3, 5, 7), 1.0f);
  tt_tensor *ref = tt_clone(x);
  TH_NN(ref);
  TH_OK(tt_dist_allreduce(x, TT_DIST_SUM));
  assert_same("sum over one rank", x, ref);
  TH_OK(tt_dist_allreduce(x, TT_DIST_MEAN));
  assert_same("mean over one rank", x, ref);
  /* a strided view [7, 5] of a [5, 7] slice */
  tt_tensor *v = tt_tensor_view_of(x, 2, (const int64_t[]){7, 5}, (const int64_t[]){1, 7}, 35);
  TH_NN(v);
  TH_OK(tt_dist_allreduce(v, TT_DIST_MEAN));
  assert_same("mean of a strided view", x, ref);
  tt_tensor *empty = tt_zeros(TT_F32, TT_DIMS(0, 4), TT_CPU);
  TH_NN(empty);
  TH_OK(tt_dist_allreduce(empty, TT_DIST_SUM));
  ck_assert_int_eq(tt_dist_size(), 1);
  tt_tensor_unref(empty);
  tt_tensor_unref(v);
  tt_tensor_unref(ref);
  tt_tensor_unref(x);
}
END_TEST

START_TEST(test_allreduce_rejects) {
  plain_process();
  ck_assert_int_eq(tt_dist_allreduce(NULL, TT_DIST_SUM), TT_ERR_INVALID);
  ASSERT_MSG_HAS("rank 0 of 1");
  ASSERT_MSG_HAS("NULL");

  tt_tensor *i = tt_zeros(TT_I64, TT_DIMS(4), TT_CPU);
  TH_NN(i);
  tt_tensor_set_name(i, "step");
  ck_assert_int_eq(tt_dist_allreduce(i, TT_DIST_MEAN), TT_ERR_UNSUPPORTED);
  ASSERT_MSG_HAS("dist.allreduce(step [4])");
  ASSERT_MSG_HAS("rank 0 of 1");
  ASSERT_MSG_HAS("i64");
  ASSERT_MSG_HAS("only f32");

  tt_tensor *f = tt_zeros(TT_F32, TT_DIMS(2, 3), TT_CPU);
  TH_NN(f);
  ck_assert_int_eq(tt_dist_allreduce(f, (tt_dist_op)7), TT_ERR_INVALID);
  ASSERT_MSG_HAS("unknown reduction 7");
  tt_tensor_unref(f);
  tt_tensor_unref(i);
}
END_TEST

START_TEST(test_broadcast) {
  plain_process();
  tt_tensor *x = th_randn(3, TT_DIMS(4, 6), 1.0f);
  tt_tensor *ref = tt_clone(x);
  TH_NN(ref);
  TH_OK(tt_dist_broadcast(x, 0));
  assert_same("broadcast from rank 0 of 1", x, ref);
  /* any dtype travels */
  tt_tensor *idx = tt_full(TT_I64, TT_DIMS(5), 42.0, TT_CPU);
  TH_NN(idx);
  TH_OK(tt_dist_broadcast(idx, 0));
  ck_assert_int_eq(tt_i64(idx)[4], 42);

  ck_assert_int_eq(tt_dist_broadcast(x, 1), TT_ERR_INVALID);
  ASSERT_MSG_HAS("root 1 is not a rank");
  ASSERT_MSG_HAS("ranks 0..0");
  ck_assert_int_eq(tt_dist_broadcast(x, -1), TT_ERR_INVALID);
  ASSERT_MSG_HAS("root -1");
  ck_assert_int_eq(tt_dist_broadcast(NULL, 0), TT_ERR_INVALID);
  ASSERT_MSG_HAS("rank 0 of 1");
  assert_same("failed broadcasts", x, ref);
  tt_tensor_unref(idx);
  tt_tensor_unref(ref);
  tt_tensor_unref(x);
}
END_TEST

START_TEST(test_finalize) {
  plain_process();
  TH_OK(tt_dist_init());
  TH_OK(tt_dist_finalize());
  tt_tensor *x = tt_zeros(TT_F32, TT_DIMS(3), TT_CPU);
  TH_NN(x);
  ck_assert_int_ne(tt_dist_allreduce(x, TT_DIST_SUM), TT_OK);
  ASSERT_MSG_HAS("finalised");
  ck_assert_int_ne(tt_dist_barrier(), TT_OK);
  ck_assert_int_ne(tt_dist_init(), TT_OK);
  ASSERT_MSG_HAS("cannot start twice");
  tt_tensor_unref(x);
}
END_TEST

/* Open MPI's launcher: 3 processes, this one rank 2, and no module to be had */
START_TEST(test_launched_without_module) {
  plain_process();
  setenv("OMPI_COMM_WORLD_SIZE", "3", 1);
  setenv("OMPI_COMM_WORLD_RANK", "2", 1);
  setenv("TAMING_MPI_MODULE", "/nonexistent/libtaming_mpi.so", 1);
  ck_assert_int_eq(tt_dist_init(), TT_ERR_UNSUPPORTED);
  ASSERT_MSG_HAS("rank 2 of 3");
  ASSERT_MSG_HAS("launched as one of 3 processes");
  ASSERT_MSG_HAS("MPI module");
#ifdef HAVE_MPI
  ASSERT_MSG_HAS("TAMING_MPI_MODULE=/nonexistent/libtaming_mpi.so");
#else
  ASSERT_MSG_HAS("configure");
  ASSERT_MSG_HAS("libopenmpi-dev");
#endif
  /* no half-joined world is left behind */
  ck_assert_int_eq(tt_dist_size(), 1);
  ck_assert(!tt_dist_is_mpi());
  tt_tensor *x = tt_zeros(TT_F32, TT_DIMS(2), TT_CPU);
  TH_NN(x);
  ck_assert_int_eq(tt_dist_allreduce(x, TT_DIST_MEAN), TT_ERR_UNSUPPORTED);
  ASSERT_MSG_HAS("dist.allreduce(tensor [2])");
  tt_tensor_unref(x);
}
END_TEST

/* MPICH's and Slurm's variables */
START_TEST(test_launched_pmi_without_module) {
  plain_process();
  setenv("PMI_SIZE", "2", 1);
  setenv("PMI_RANK", "1", 1);
  setenv("TAMING_MPI_MODULE", "/nonexistent/libtaming_mpi.so", 1);
  ck_assert_int_eq(tt_dist_init(), TT_ERR_UNSUPPORTED);
  ASSERT_MSG_HAS("rank 1 of 2");
}
END_TEST

/* `mpirun -np 1` needs no module: a world of one is right either way */
START_TEST(test_launched_alone_without_module) {
  plain_process();
  setenv("OMPI_COMM_WORLD_SIZE", "1", 1);
  setenv("TAMING_MPI_MODULE", "/nonexistent/libtaming_mpi.so", 1);
  TH_OK(tt_dist_init());
  ck_assert_int_eq(tt_dist_size(), 1);
  ck_assert_str_eq(tt_dist_backend(), "none");
}
END_TEST

START_TEST(test_bad_launcher_env) {
  plain_process();
  setenv("OMPI_COMM_WORLD_SIZE", "two", 1);
  ck_assert_int_eq(tt_dist_init(), TT_ERR_INVALID);
  ASSERT_MSG_HAS("OMPI_COMM_WORLD_SIZE=two is not a process count");
}
END_TEST

#ifdef HAVE_MPI
/* The chunk size is checked after the module loads and before MPI starts. */
START_TEST(test_bad_chunk) {
  plain_process();
  unsetenv("TAMING_MPI_MODULE");
  setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
  setenv("TAMING_MPI_CHUNK", "0", 1);
  ck_assert_int_eq(tt_dist_init(), TT_ERR_INVALID);
  ASSERT_MSG_HAS("TAMING_MPI_CHUNK=0");
  ck_assert(!tt_dist_is_mpi());
}
END_TEST
#endif

int main(void) {
  Suite *s = suite_create("dist");
  TCase *tc = tcase_create("single");
  tcase_add_test(tc, test_world_of_one);
  tcase_add_test(tc, test_allreduce_leaves_values);
  tcase_add_test(tc, test_allreduce_rejects);
  tcase_add_test(tc, test_broadcast);
  tcase_add_test(tc, test_finalize);
  tcase_add_test(tc, test_launched_without_module);
  tcase_add_test(tc, test_launched_pmi_without_module);
  tcase_add_test(tc, test_launched_alone_without_module);
  tcase_add_test(tc, test_bad_launcher_env);
#ifdef HAVE_MPI
  tcase_add_test(tc, test_bad_chunk);
#endif
  suite_add_tcase(s, tc);
  return th_run(s);
}
