/*
 * kmeans.h — the k-means algorithm: plain C + OpenBLAS, no fmgr calls.
 *
 * Semantics follow scikit-learn's KMeans (1.2+) so results can be compared
 * one to one: tolerance relative to the mean feature variance, greedy
 * k-means++ with 2 + floor(ln k) local trials (drawn from a seeded sample of
 * max(65536, 512 k) rows, all rows when fewer), Lloyd or Elkan iterations,
 * strict convergence when no label changes, relocation of empty clusters to
 * the points farthest from their centres, n_init restarts keeping the lowest
 * inertia, and a final assignment so labels, sizes and inertia match the
 * returned centroids.
 */
#ifndef SEG_KMEANS_H
#define SEG_KMEANS_H

#include "c.h"

typedef enum SegKmeansInit
{
	SEG_INIT_KMEANSPP = 0,		/* greedy k-means++ */
	SEG_INIT_RANDOM = 1			/* k distinct rows drawn uniformly */
} SegKmeansInit;

typedef enum SegKmeansAlgo
{
	SEG_ALGO_LLOYD = 0,
	SEG_ALGO_ELKAN = 1
} SegKmeansAlgo;

typedef struct SegKmeansOptions
{
	int			k;				/* 1 <= k <= n */
	int			n_init;			/* >= 1 restarts; the lowest inertia wins */
	int			max_iter;		/* >= 1 iterations per restart */
	double		tol;			/* >= 0, relative to the mean feature variance */
	uint64		seed;			/* same seed and same rows, in any order -> same result */
	SegKmeansInit init;
	SegKmeansAlgo algorithm;
	int			init_sample;	/* rows the init draws from: 0 all, -1 max(65536, 512 k) */
	bool		rows_in_key_order;	/* X is sorted by seeded order key (seg_rows_sort): its
									 * first rows are the init sample, no copy */
} SegKmeansOptions;

typedef struct SegKmeansResult
{
	double	   *centroids;		/* k x d, allocated by the caller */
	int64	   *sizes;			/* k, allocated by the caller */
	double		inertia;		/* sum of squared distances to the nearest centroid */
	int			n_iter;			/* iterations of the winning restart */
	bool		converged;		/* the winning restart converged before max_iter */
	int			best_init;		/* which restart won, 0-based */
	double		tolerance;		/* tol times the mean feature variance: the shift convergence means */
} SegKmeansResult;

/*
 * Fit k-means on X (n x d, row-major, finite), rows in any order: the result
 * depends on the multiset of rows and the options only (init drawn from a
 * seeded sample in key order, exact sums; see kmeans.c).  Scratch memory
 * comes from CurrentMemoryContext (the caller runs this in a private
 * context); the caller has checked that X holds at least k distinct rows.
 * Calls CHECK_FOR_INTERRUPTS() at least once per iteration and per chunk.
 */
extern void seg_kmeans_run(const double *X, int64 n, int d,
						   const SegKmeansOptions *opt, SegKmeansResult *res);

/* How many of n rows the init draws from under opt (all of them when it returns >= n). */
extern int64 seg_kmeans_init_rows(const SegKmeansOptions *opt, int64 n);

/*
 * Nearest centroid of every row of X, in blocks through BLAS: labels (0-based)
 * and, when dist is not NULL, the squared distance to it.  Returns the inertia.
 */
extern double seg_kmeans_assign_all(const double *X, int64 n, int d,
									const double *centroids, int k,
									int32 *labels, double *dist);

#endif							/* SEG_KMEANS_H */
