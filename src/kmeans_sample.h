/*
 * kmeans_sample.h — the facts about the rows and the init sample of a
 * k-means fit (kmeans_sample.c), for kmeans.c.
 */
#ifndef SEG_KMEANS_SAMPLE_H
#define SEG_KMEANS_SAMPLE_H

#include "c.h"

#define SEG_KM_HIST_BITS 12		/* the histogram of the keys' top bits */

typedef struct SegKmRows
{
	const double *X;			/* n x d */
	int64		n;
	int			d;
	double	   *xnorm;			/* n: filled by seg_km_row_facts */
} SegKmRows;

/*
 * One pass over the rows (on the fit threads): ‖x‖² of each row into
 * f->xnorm, the largest |x| per feature into maxabs (d), and when keys is
 * not NULL each row's seeded sample key and, into hist (2^SEG_KM_HIST_BITS,
 * zeroed by the caller), how many keys start with each top-bits value.
 */
extern void seg_km_row_facts(const SegKmRows *f, uint64 seed, uint64 *keys, double *maxabs,
							 int64 *hist);

/*
 * The init sample: the m rows of smallest (key, bytes), in that order (all
 * rows when n <= m), copied to *sample (m x d, a big allocation) with their
 * ‖x‖² in *snorm.  The keys are a seeded hash of each row, so this is a
 * uniform seeded sample, a function of the multiset of rows.  Frees keys (a
 * big allocation) once read.  Returns m.
 */
extern int64 seg_km_init_sample(const SegKmRows *f, uint64 *keys, const int64 *hist, int64 m,
								double **sample, double **snorm);

#endif							/* SEG_KMEANS_SAMPLE_H */
