/* check_nccl.c — NCCL on the CUDA backend's own memory, in one process.
 *
 * The data-parallel module (host/dist/dist_mpi.c) reduces device gradients with
 * ncclAllReduce, in place, on tensors the CUDA backend allocated; it needs an
 * MPI launcher to start. This suite checks the NCCL half alone, with no MPI:
 * a one-rank communicator on the backend's GPU (TAMING_CUDA_DEVICE, else 0),
 * an in-place and an out-of-place sum all-reduce over tensors from the
 * backend's pool (odd and multi-chunk sizes), compared bit for bit with the
 * input (a sum over one rank is the input). It prints one line
 *   NCCL allreduce ranks=1 n=N max_abs_diff=D
 * per case.
 *
 * Without a usable GPU (module not built, no device) it prints why and exits
 * 77 (skip). The suite does not fork: a CUDA context does not survive fork(). */
#include "config.h"
#include <cuda_runtime_api.h>
#include <math.h>
#include <nccl.h>
#include <stdlib.h>
#include "testhelp.h"

#define NCCL_OK(expr)                                                                                   \
  do {                                                                                                  \
    ncclResult_t nc_r_ = (expr);                                                                        \
    ck_assert_msg(nc_r_ == ncclSuccess, "%s failed: %s", #expr, ncclGetErrorString(nc_r_));             \
  } while (0)
#define CUDA_OK(expr)                                                                                   \
  do {                                                                                                  \
    cudaError_t cu_e_ = (expr);                                                                         \
    ck_assert_msg(cu_e_ == cudaSuccess, "%s failed: %s", #expr, cudaGetErrorString(cu_e_));             \
  } while (0)

/* A copy of t on the GPU. */
static tt_tensor *to_cuda(const tt_tensor *t) {
  tt_tensor *c = tt_tensor_new(t->dtype, t->ndim, t->shape, TT_CUDA);
  TH_NN(c);
  TH_OK(tt_copy_(c, (tt_tensor *)t));
  return c;
}

/* max |a - b| with a on the CPU and b anywhere. */
static double diff_to_host(const tt_tensor *a, const tt_tensor *b) {
  int64_t n = tt_tensor_numel(a);
  float *hb = malloc(sizeof(float) * (size_t)(n ? n : 1));
  ck_assert_ptr_nonnull(hb);
  TH_OK(tt_tensor_read(b, hb));
  double d = 0;
  const float *ha = tt_f32(a);
  for (int64_t i = 0; i < n; i++) {
    double e = fabs((double)ha[i] - (double)hb[i]);
    if (!(e <= d)) d = e; /* a NaN makes the difference NaN */
  }
  free(hb);
  return d;
}

START_TEST(test_one_rank_allreduce) {
  int version = 0, device = -1;
  NCCL_OK(ncclGetVersion(&version));
  CUDA_OK(cudaGetDevice(&device));
  printf("NCCL %d on GPU %d\n", version, device);
  ncclUniqueId id;
  NCCL_OK(ncclGetUniqueId(&id));
  ncclComm_t comm;
  NCCL_OK(ncclCommInitRank(&comm, 1, id, 0));
  cudaStream_t st;
  CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  const int64_t sizes[] = {1, 1000003, (int64_t)1 << 24};
  for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
    int64_t n = sizes[k];
    tt_tensor *x = th_randn(900 + k, TT_DIMS(n), 1.0f);
    tt_tensor *gx = to_cuda(x), *out = tt_tensor_new(TT_F32, TT_DIMS(n), TT_CUDA);
    TH_NN(out);
    TH_OK(tt_device_synchronize(TT_CUDA)); /* the backend's stream is not NCCL's */
    NCCL_OK(ncclAllReduce(tt_tensor_data(gx), tt_tensor_data(out), (size_t)n, ncclFloat, ncclSum, comm, st));
    NCCL_OK(ncclAllReduce(tt_tensor_data(gx), tt_tensor_data(gx), (size_t)n, ncclFloat, ncclSum, comm, st));
    CUDA_OK(cudaStreamSynchronize(st));
    double d_out = diff_to_host(x, out), d_in = diff_to_host(x, gx);
    printf("NCCL allreduce ranks=1 n=%lld max_abs_diff=%g (out of place) %g (in place)\n", (long long)n, d_out, d_in);
    ck_assert_msg(d_out == 0 && d_in == 0, "a one-rank sum must be the input: differences %g, %g", d_out, d_in);
    tt_tensor_unref(x);
    tt_tensor_unref(gx);
    tt_tensor_unref(out);
  }
  CUDA_OK(cudaStreamDestroy(st));
  NCCL_OK(ncclCommDestroy(comm));
}
END_TEST

int main(void) {
  if (!tt_device_available(TT_CUDA)) {
    tt_backend_get(TT_CUDA); /* sets the reason */
    printf("check_nccl: SKIP: %s\n", tt_error_message());
    return 77;
  }
  printf("cuda device: %s\n", tt_device_describe(TT_CUDA));
  Suite *s = suite_create("nccl");
  TCase *tc = tcase_create("one rank");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_one_rank_allreduce);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
