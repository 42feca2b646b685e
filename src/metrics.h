/*
 * metrics.h — cluster-quality metrics: plain C + OpenBLAS, no fmgr calls.
 *
 * Each equals scikit-learn's function of the same name (sklearn.metrics) on
 * the same rows and labels, to about 1e-12 relative.  Labels are arbitrary
 * int32 values (not necessarily 0..k-1); X is n x d, row-major, finite.
 * Scratch memory comes from CurrentMemoryContext; long loops call
 * CHECK_FOR_INTERRUPTS().
 */
#ifndef SEG_METRICS_H
#define SEG_METRICS_H

#include "c.h"

/*
 * Mean silhouette coefficient (sklearn.metrics.silhouette_score, Euclidean):
 * exact over all n rows, pairwise distances in blocks through BLAS.  Samples
 * in singleton clusters score 0.  The caller has checked 2 <= labels <= n-1.
 */
extern double seg_silhouette(const double *X, int64 n, int d, const int32 *labels);

/* sklearn.metrics.davies_bouldin_score.  Caller checked 2 <= labels <= n-1. */
extern double seg_davies_bouldin(const double *X, int64 n, int d, const int32 *labels);

/* sklearn.metrics.calinski_harabasz_score.  Caller checked 2 <= labels <= n-1. */
extern double seg_calinski_harabasz(const double *X, int64 n, int d, const int32 *labels);

/* sklearn.metrics.adjusted_rand_score of two labelings of n items. */
extern double seg_adjusted_rand(const int32 *a, const int32 *b, int64 n);

/* Number of distinct labels. */
extern int64 seg_count_labels(const int32 *labels, int64 n);

#endif							/* SEG_METRICS_H */
