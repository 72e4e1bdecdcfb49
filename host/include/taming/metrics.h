/* metrics.h — sample-set metrics: the Fréchet Inception Distance and the
 * Inception Score, computed as pytorch-fid and torch-fidelity compute them.
 *
 * FID = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr(sqrt(sqrt(S1) S2 sqrt(S1))), in
 * double precision, the square roots through LAPACK's symmetric eigensolver
 * (dsyevd) with eigenvalues within round-off of zero (n * eps * the largest:
 * a rank-deficient covariance) taken as zero. tr(sqrt(sqrt(S1) S2 sqrt(S1))) equals pytorch-fid's
 * tr(sqrtm(S1 S2)) for covariance matrices, without its non-symmetric sqrtm.
 *
 * IS = exp(E_x KL(p(y|x) || p(y))) per split, mean and (population) standard
 * deviation over the splits: torch-fidelity's isc_features_to_metric, which
 * shuffles the rows with numpy's RandomState(2020).permutation first (the
 * TensorFlow original does not shuffle: shuffle_seed < 0). */
#ifndef TAMING_METRICS_H
#define TAMING_METRICS_H
#include "taming/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Streaming mean and covariance of feature rows, in double, around a shift
 * (the first row) so large means do not cancel the spread. */
typedef struct tt_gauss_stats {
  int64_t dim, n;
  double *shift;   /* [dim] */
  double *sum;     /* [dim]: sum of (x - shift) */
  double *cross;   /* [dim, dim]: sum of (x - shift)(x - shift)^T, upper triangle (column-major) */
} tt_gauss_stats;

TT_API tt_status tt_gauss_stats_init(tt_gauss_stats *s, int64_t dim);
TT_API void tt_gauss_stats_free(tt_gauss_stats *s);
/* x [B, dim] f32 or f64, any device. */
TT_API tt_status tt_gauss_stats_add(tt_gauss_stats *s, const tt_tensor *x);
/* mu [dim] and sigma [dim, dim] (f64, CPU): np.mean and np.cov(rowvar=False) (n - 1). Needs n >= 2. */
TT_API tt_status tt_gauss_stats_result(const tt_gauss_stats *s, tt_tensor **mu, tt_tensor **sigma);

/* mu [D], sigma [D, D] each (f32 or f64, CPU); sigmas must be symmetric. */
TT_API tt_status tt_frechet_distance(const tt_tensor *mu1, const tt_tensor *sigma1, const tt_tensor *mu2,
                                     const tt_tensor *sigma2, double *fid);

/* logits [N, C] (f32 or f64, any device), N >= splits >= 1. */
TT_API tt_status tt_inception_score(const tt_tensor *logits, int splits, int64_t shuffle_seed, double *mean,
                                    double *std);

/* numpy's legacy RandomState(seed).permutation(n) (MT19937), into perm[n]. */
TT_API void tt_numpy_permutation(uint32_t seed, int64_t n, int64_t *perm);

#ifdef __cplusplus
}
#endif
#endif
