/*
 * als.h — implicit-feedback ALS (Hu, Koren & Volinsky 2008) and item-item
 * cosine neighbours (Sarwar et al. 2001): plain C and BLAS, no PostgreSQL
 * calls, so the loops run on the fit threads (fit_threads.h).
 */
#ifndef SEG_ALS_H
#define SEG_ALS_H

#include "c.h"

/* A sparse matrix by rows: row r holds idx[ptr[r] .. ptr[r+1]-1] with values val. */
typedef struct SegCsr
{
	int32		nrows;
	int32		ncols;
	const int64 *ptr;
	const int32 *idx;
	const double *val;
} SegCsr;

typedef struct SegAlsOptions
{
	int			factors;
	int			iterations;
	int			cg_steps;		/* conjugate-gradient steps per row and sweep */
	double		lambda;
} SegAlsOptions;

/*
 * Fit X (users x f) and Y (items x f), both initialised by the caller (the
 * warm start of the first sweep).  by_user/by_item hold the same pairs with
 * val = confidence - 1 (alpha * r); preference is 1 on every pair.  loss[it]
 * receives the objective after each iteration.
 */
extern void seg_als_fit(const SegCsr *by_user, const SegCsr *by_item, const SegAlsOptions *o,
						double *X, double *Y, double *loss);

/*
 * For each item (a column of by_user, by_item its transpose), its m most
 * cosine-similar items over the rows (values must be > 0): nb[i*m + r] (item position, -1 when
 * fewer) and sc[i*m + r], best first, ties by position.
 */
extern void seg_item_neighbors(const SegCsr *by_user, const SegCsr *by_item, int m,
							   int32 *nb, double *sc);

#endif							/* SEG_ALS_H */
