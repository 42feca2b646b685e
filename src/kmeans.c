/*
 * kmeans.c — k-means on OpenBLAS, with scikit-learn's semantics (see kmeans.h).
 *
 * Distances go through dgemm on blocks of rows (‖x‖² − 2x·c + ‖c‖²), fused
 * with the argmin and the accumulation of the new centroid sums, so one
 * Lloyd iteration is one sweep over X and needs O(block·k + k·d) scratch.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include <cblas.h>

#include "kmeans.h"

#define SEG_KM_BLOCK 2048		/* rows per dgemm: block x k stays in cache */
#define SEG_KM_SCRATCH (1 << 20)	/* doubles of distance scratch, at most */

typedef struct Fit
{
	const double *X;
	int64		n;
	int			d;
	int			k;
	const double *xnorm;		/* ‖x‖² per row */
	int			block;			/* rows per dgemm call */
	double	   *D;				/* block x max(k, 8) distance scratch */
} Fit;

/* Rows per block: SEG_KM_BLOCK, fewer when k is so large the scratch would not fit. */
static int
block_rows(int k)
{
	return Max(1, Min(SEG_KM_BLOCK, SEG_KM_SCRATCH / Max(k, 8)));
}

static void *
alloc_rows(int64 n, Size each)
{
	return MemoryContextAllocHuge(CurrentMemoryContext, (Size) Max(n, 1) * each);
}

static double
sqdist(const double *a, const double *b, int d)
{
	double		s = 0.0;

	for (int j = 0; j < d; j++)
	{
		double		t = a[j] - b[j];

		s += t * t;
	}
	return s;
}

/* Squared distances of rows [i0, i0 + b) to the k centres C, into D (b x k). */
static void
block_distances(const Fit *f, int64 i0, int b, const double *C, const double *cnorm, int k)
{
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, k, f->d,
				-2.0, f->X + i0 * f->d, f->d, C, f->d, 0.0, f->D, k);
	for (int r = 0; r < b; r++)
	{
		double	   *row = f->D + (size_t) r * k;
		double		xn = f->xnorm[i0 + r];

		for (int j = 0; j < k; j++)
		{
			double		v = row[j] + xn + cnorm[j];

			row[j] = v > 0.0 ? v : 0.0;
		}
	}
}

static void
centre_norms(const double *C, int k, int d, double *cnorm)
{
	for (int j = 0; j < k; j++)
		cnorm[j] = cblas_ddot(d, C + (size_t) j * d, 1, C + (size_t) j * d, 1);
}

/* ---------- initialisation ---------- */

/*
 * Greedy k-means++ (scikit-learn's _kmeans_plusplus): each new centre is the
 * best of 2 + floor(ln k) candidates drawn in proportion to the squared
 * distance to the nearest centre so far.
 */
static void
init_kmeanspp(const Fit *f, pg_prng_state *rng, double *C)
{
	int			trials = 2 + (int) log((double) f->k);
	double	   *closest = alloc_rows(f->n, sizeof(double));
	double	   *cumsum = alloc_rows(f->n, sizeof(double));
	double	   *cand = palloc(sizeof(double) * trials * f->d);
	double	   *cand_norm = palloc(sizeof(double) * trials);
	double	   *pot = palloc(sizeof(double) * trials);
	int64	   *cand_id = palloc(sizeof(int64) * trials);
	double		current_pot = 0.0;
	int64		first = (int64) pg_prng_uint64_range(rng, 0, f->n - 1);

	memcpy(C, f->X + first * f->d, sizeof(double) * f->d);
	for (int64 i = 0; i < f->n; i++)
	{
		closest[i] = sqdist(f->X + i * f->d, C, f->d);
		current_pot += closest[i];
	}

	for (int c = 1; c < f->k; c++)
	{
		double		acc = 0.0;
		int			best = 0;

		CHECK_FOR_INTERRUPTS();
		for (int64 i = 0; i < f->n; i++)
			cumsum[i] = (acc += closest[i]);
		for (int t = 0; t < trials; t++)
		{
			double		r = pg_prng_double(rng) * current_pot;
			int64		lo = 0,
						hi = f->n;

			/* searchsorted(cumsum, r), side left */
			while (lo < hi)
			{
				int64		mid = lo + (hi - lo) / 2;

				if (cumsum[mid] < r)
					lo = mid + 1;
				else
					hi = mid;
			}
			cand_id[t] = Min(lo, f->n - 1);
			memcpy(cand + (size_t) t * f->d, f->X + cand_id[t] * f->d, sizeof(double) * f->d);
			pot[t] = 0.0;
		}
		centre_norms(cand, trials, f->d, cand_norm);
		for (int64 i0 = 0; i0 < f->n; i0 += f->block)
		{
			int			b = (int) Min(f->block, f->n - i0);

			block_distances(f, i0, b, cand, cand_norm, trials);
			for (int r = 0; r < b; r++)
				for (int t = 0; t < trials; t++)
					pot[t] += Min(closest[i0 + r], f->D[(size_t) r * trials + t]);
			CHECK_FOR_INTERRUPTS();
		}
		for (int t = 1; t < trials; t++)
			if (pot[t] < pot[best])
				best = t;
		memcpy(C + (size_t) c * f->d, cand + (size_t) best * f->d, sizeof(double) * f->d);
		current_pot = 0.0;
		for (int64 i = 0; i < f->n; i++)
		{
			double		dd = sqdist(f->X + i * f->d, C + (size_t) c * f->d, f->d);

			if (dd < closest[i])
				closest[i] = dd;
			current_pot += closest[i];
		}
	}
	pfree(closest);
	pfree(cumsum);
	pfree(cand);
	pfree(cand_norm);
	pfree(pot);
	pfree(cand_id);
}

/* k distinct rows drawn uniformly (Floyd's algorithm). */
static void
init_random(const Fit *f, pg_prng_state *rng, double *C)
{
	int64	   *chosen = palloc(sizeof(int64) * f->k);
	int			m = 0;

	for (int64 j = f->n - f->k; j < f->n; j++)
	{
		int64		t = (int64) pg_prng_uint64_range(rng, 0, j);
		bool		seen = false;

		for (int i = 0; i < m && !seen; i++)
			seen = (chosen[i] == t);
		chosen[m++] = seen ? j : t;
	}
	for (int c = 0; c < f->k; c++)
		memcpy(C + (size_t) c * f->d, f->X + chosen[c] * f->d, sizeof(double) * f->d);
	pfree(chosen);
}

/* ---------- the centre update ---------- */

/*
 * Empty clusters take the rows farthest from their centres (scikit-learn's
 * _relocate_empty_clusters_dense); sums/counts are updated to match.
 */
static void
relocate_empty(const Fit *f, const int32 *labels, const double *dist,
			   double *sums, int64 *counts)
{
	int			n_empty = 0;
	int64	   *far;

	for (int j = 0; j < f->k; j++)
		if (counts[j] == 0)
			n_empty++;
	if (n_empty == 0)
		return;

	/* the n_empty largest distances, largest first */
	far = palloc(sizeof(int64) * n_empty);
	for (int e = 0; e < n_empty; e++)
	{
		int64		best = -1;

		for (int64 i = 0; i < f->n; i++)
		{
			bool		taken = false;

			for (int q = 0; q < e && !taken; q++)
				taken = (far[q] == i);
			if (!taken && (best < 0 || dist[i] > dist[best]))
				best = i;
		}
		far[e] = best;
	}
	for (int j = 0, e = 0; j < f->k && e < n_empty; j++)
	{
		const double *x;
		int			old;

		if (counts[j] != 0)
			continue;
		x = f->X + far[e] * f->d;
		old = labels[far[e]];
		for (int t = 0; t < f->d; t++)
		{
			sums[(size_t) old * f->d + t] -= x[t];
			sums[(size_t) j * f->d + t] = x[t];
		}
		counts[old]--;
		counts[j] = 1;
		e++;
	}
	pfree(far);
}

/* New centres from sums and counts; returns the total squared shift. */
static double
update_centres(const Fit *f, const double *sums, const int64 *counts,
			   const double *old, double *new_c, double *shift)
{
	double		total = 0.0;

	for (int j = 0; j < f->k; j++)
	{
		double		s = 0.0;

		for (int t = 0; t < f->d; t++)
		{
			size_t		p = (size_t) j * f->d + t;

			/* a cluster emptied by relocation keeps its centre */
			new_c[p] = counts[j] > 0 ? sums[p] / counts[j] : old[p];
			s += (new_c[p] - old[p]) * (new_c[p] - old[p]);
		}
		if (shift)
			shift[j] = sqrt(s);
		total += s;
	}
	return total;
}

/* ---------- Lloyd ---------- */

/*
 * One Lloyd step: assign every row to its nearest centre in C, accumulate
 * sums and counts.  Returns how many labels changed; dist gets each row's
 * squared distance to its centre.
 */
static int64
lloyd_assign(const Fit *f, const double *C, int32 *labels, double *dist,
			 double *sums, int64 *counts)
{
	double	   *cnorm = palloc(sizeof(double) * f->k);
	int64		changed = 0;

	centre_norms(C, f->k, f->d, cnorm);
	memset(sums, 0, sizeof(double) * f->k * f->d);
	memset(counts, 0, sizeof(int64) * f->k);
	for (int64 i0 = 0; i0 < f->n; i0 += f->block)
	{
		int			b = (int) Min(f->block, f->n - i0);

		/* -2 x.c only: ‖x‖² does not change the argmin, so it is added once per row */
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, f->k, f->d,
					-2.0, f->X + i0 * f->d, f->d, C, f->d, 0.0, f->D, f->k);
		for (int r = 0; r < b; r++)
		{
			const double *row = f->D + (size_t) r * f->k;
			const double *x = f->X + (i0 + r) * f->d;
			double	   *sum;
			double		bestv = row[0] + cnorm[0];
			int			best = 0;

			for (int j = 1; j < f->k; j++)
			{
				double		v = row[j] + cnorm[j];

				if (v < bestv)
				{
					bestv = v;
					best = j;
				}
			}
			changed += (labels[i0 + r] != best);
			labels[i0 + r] = best;
			bestv += f->xnorm[i0 + r];
			dist[i0 + r] = bestv > 0.0 ? bestv : 0.0;
			counts[best]++;
			sum = sums + (size_t) best * f->d;
			for (int t = 0; t < f->d; t++)
				sum[t] += x[t];
		}
		CHECK_FOR_INTERRUPTS();
	}
	pfree(cnorm);
	return changed;
}

/* Runs Lloyd from the centres in C (updated in place); returns iterations. */
static int
run_lloyd(const Fit *f, double *C, double tol, int max_iter, int restart,
		  int32 *labels, double *dist, bool *converged)
{
	double	   *sums = palloc(sizeof(double) * f->k * f->d);
	int64	   *counts = palloc(sizeof(int64) * f->k);
	double	   *next = palloc(sizeof(double) * f->k * f->d);
	int			it;

	*converged = false;
	for (int64 i = 0; i < f->n; i++)
		labels[i] = -1;
	for (it = 0; it < max_iter; it++)
	{
		int64		changed;
		double		shift;

		CHECK_FOR_INTERRUPTS();
		changed = lloyd_assign(f, C, labels, dist, sums, counts);
		relocate_empty(f, labels, dist, sums, counts);
		shift = update_centres(f, sums, counts, C, next, NULL);
		memcpy(C, next, sizeof(double) * f->k * f->d);
		ereport(DEBUG1,
				(errmsg_internal("kmeans restart %d iteration %d: %lld labels changed, centre shift %g",
								 restart, it + 1, (long long) changed, shift)));
		if (changed == 0)
		{
			*converged = true;	/* strict convergence: the centres are final */
			it++;
			break;
		}
		if (shift <= tol)
		{
			*converged = true;
			it++;
			break;
		}
	}
	pfree(sums);
	pfree(counts);
	pfree(next);
	return Min(it, max_iter);
}

/* ---------- Elkan ---------- */

static void
half_distances(const double *C, int k, int d, double *half, double *next_centre)
{
	for (int a = 0; a < k; a++)
	{
		next_centre[a] = DBL_MAX;
		for (int b = 0; b < k; b++)
		{
			double		h = a == b ? 0.0 : 0.5 * sqrt(sqdist(C + (size_t) a * d, C + (size_t) b * d, d));

			half[(size_t) a * k + b] = h;
			if (a != b && h < next_centre[a])
				next_centre[a] = h;
		}
	}
}

/*
 * Elkan's algorithm with scikit-learn's bounds (_k_means_elkan.pyx): the
 * triangle inequality skips most distance computations; same result as
 * Lloyd up to ties.
 */
static int
run_elkan(const Fit *f, double *C, double tol, int max_iter, int restart,
		  int32 *labels, double *dist, bool *converged)
{
	int			k = f->k,
				d = f->d;
	double	   *upper = alloc_rows(f->n, sizeof(double));
	double	   *lower = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * f->n * k);
	double	   *half = palloc(sizeof(double) * k * k);
	double	   *next_centre = palloc(sizeof(double) * k);
	double	   *sums = palloc(sizeof(double) * k * d);
	int64	   *counts = palloc(sizeof(int64) * k);
	double	   *next = palloc(sizeof(double) * k * d);
	double	   *shift = palloc(sizeof(double) * k);
	int			it;

	*converged = false;
	half_distances(C, k, d, half, next_centre);
	/* initial bounds (_init_bounds_dense) */
	for (int64 i = 0; i < f->n; i++)
	{
		const double *x = f->X + i * d;
		int			best = 0;
		double		ub = sqrt(sqdist(x, C, d));

		lower[i * k] = ub;
		for (int j = 1; j < k; j++)
		{
			if (ub > half[(size_t) best * k + j])
			{
				double		dd = sqrt(sqdist(x, C + (size_t) j * d, d));

				lower[i * k + j] = dd;
				if (dd < ub)
				{
					best = j;
					ub = dd;
				}
			}
			else
				lower[i * k + j] = 0.0;
		}
		labels[i] = best;
		upper[i] = ub;
		if ((i & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
	}

	for (it = 0; it < max_iter; it++)
	{
		int64		changed = 0;
		double		total_shift;

		CHECK_FOR_INTERRUPTS();
		memset(sums, 0, sizeof(double) * k * d);
		memset(counts, 0, sizeof(int64) * k);
		for (int64 i = 0; i < f->n; i++)
		{
			const double *x = f->X + i * d;
			int			label = labels[i];
			double		ub = upper[i];
			bool		tight = false;

			if (!(next_centre[label] >= ub))
			{
				for (int j = 0; j < k; j++)
				{
					if (j == label || !(ub > lower[i * k + j]) ||
						!(ub > half[(size_t) label * k + j]))
						continue;
					if (!tight)
					{
						ub = sqrt(sqdist(x, C + (size_t) label * d, d));
						lower[i * k + label] = ub;
						tight = true;
					}
					if (ub > lower[i * k + j] || ub > half[(size_t) label * k + j])
					{
						double		dd = sqrt(sqdist(x, C + (size_t) j * d, d));

						lower[i * k + j] = dd;
						if (dd < ub)
						{
							label = j;
							ub = dd;
						}
					}
				}
			}
			if (label != labels[i])
				changed++;
			labels[i] = label;
			upper[i] = ub;
			dist[i] = ub * ub;
			counts[label]++;
			for (int t = 0; t < d; t++)
				sums[(size_t) label * d + t] += x[t];
			if ((i & 4095) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		relocate_empty(f, labels, dist, sums, counts);
		total_shift = update_centres(f, sums, counts, C, next, shift);
		memcpy(C, next, sizeof(double) * k * d);
		half_distances(C, k, d, half, next_centre);
		for (int64 i = 0; i < f->n; i++)
		{
			upper[i] += shift[labels[i]];
			for (int j = 0; j < k; j++)
			{
				double		l = lower[i * k + j] - shift[j];

				lower[i * k + j] = l > 0.0 ? l : 0.0;
			}
		}
		ereport(DEBUG1,
				(errmsg_internal("kmeans (elkan) restart %d iteration %d: %lld labels changed, centre shift %g",
								 restart, it + 1, (long long) changed, total_shift)));
		/* labels unchanged since the initial bounds count too, as in scikit-learn */
		if (changed == 0)
		{
			*converged = true;
			it++;
			break;
		}
		if (total_shift <= tol)
		{
			*converged = true;
			it++;
			break;
		}
	}
	pfree(upper);
	pfree(lower);
	pfree(half);
	pfree(next_centre);
	pfree(sums);
	pfree(counts);
	pfree(next);
	pfree(shift);
	return Min(it, max_iter);
}

/* ---------- driver ---------- */

/* scikit-learn's _tolerance: tol times the mean per-feature variance. */
static double
scaled_tolerance(const double *X, int64 n, int d, double tol)
{
	double		total = 0.0;

	if (tol == 0.0)
		return 0.0;
	for (int t = 0; t < d; t++)
	{
		double		mean = 0.0,
					m2 = 0.0;

		/* Welford: stable for large n and offsets */
		for (int64 i = 0; i < n; i++)
		{
			double		x = X[i * d + t];
			double		delta = x - mean;

			mean += delta / (i + 1);
			m2 += delta * (x - mean);
		}
		total += m2 / n;
	}
	return tol * total / d;
}

double
seg_kmeans_assign_all(const double *X, int64 n, int d, const double *centroids, int k,
					  int32 *labels, double *dist)
{
	double	   *xnorm = alloc_rows(n, sizeof(double));
	double	   *cnorm = palloc(sizeof(double) * k);
	Fit			f = {X, n, d, k, xnorm, block_rows(k), NULL};
	double		inertia = 0.0;

	f.D = palloc(sizeof(double) * f.block * Max(k, 8));
	for (int64 i = 0; i < n; i++)
		xnorm[i] = cblas_ddot(d, X + i * d, 1, X + i * d, 1);
	centre_norms(centroids, k, d, cnorm);
	for (int64 i0 = 0; i0 < n; i0 += f.block)
	{
		int			b = (int) Min(f.block, n - i0);

		block_distances(&f, i0, b, centroids, cnorm, k);
		for (int r = 0; r < b; r++)
		{
			const double *row = f.D + (size_t) r * k;
			int			best = 0;
			double		exact;

			for (int j = 1; j < k; j++)
				if (row[j] < row[best])
					best = j;
			/* the expansion loses digits: the reported distance is exact */
			exact = sqdist(X + (i0 + r) * d, centroids + (size_t) best * d, d);
			labels[i0 + r] = best;
			if (dist)
				dist[i0 + r] = exact;
			inertia += exact;
		}
		CHECK_FOR_INTERRUPTS();
	}
	pfree(xnorm);
	pfree(cnorm);
	pfree(f.D);
	return inertia;
}

void
seg_kmeans_run(const double *X, int64 n, int d, const SegKmeansOptions *opt,
			   SegKmeansResult *res)
{
	int			k = opt->k;
	double	   *xnorm = alloc_rows(n, sizeof(double));
	int32	   *labels = alloc_rows(n, sizeof(int32));
	double	   *dist = alloc_rows(n, sizeof(double));
	double	   *C = palloc(sizeof(double) * k * d);
	double		tol = scaled_tolerance(X, n, d, opt->tol);
	pg_prng_state rng;
	Fit			f;

	for (int64 i = 0; i < n; i++)
		xnorm[i] = cblas_ddot(d, X + i * d, 1, X + i * d, 1);
	f.X = X;
	f.n = n;
	f.d = d;
	f.k = k;
	f.xnorm = xnorm;
	f.block = block_rows(k);
	f.D = palloc(sizeof(double) * f.block * Max(k, 8));

	pg_prng_seed(&rng, opt->seed);
	res->inertia = INFINITY;
	for (int r = 0; r < opt->n_init; r++)
	{
		bool		converged;
		int			iters;
		double		inertia;

		if (opt->init == SEG_INIT_KMEANSPP)
			init_kmeanspp(&f, &rng, C);
		else
			init_random(&f, &rng, C);
		if (opt->algorithm == SEG_ALGO_ELKAN && k > 1)
			iters = run_elkan(&f, C, tol, opt->max_iter, r, labels, dist, &converged);
		else
			iters = run_lloyd(&f, C, tol, opt->max_iter, r, labels, dist, &converged);
		/* labels, sizes and inertia of the returned centres */
		inertia = seg_kmeans_assign_all(X, n, d, C, k, labels, NULL);
		ereport(DEBUG1,
				(errmsg_internal("kmeans restart %d: inertia %.17g after %d iterations%s",
								 r, inertia, iters, converged ? "" : " (not converged)")));
		if (inertia < res->inertia)
		{
			res->inertia = inertia;
			res->n_iter = iters;
			res->converged = converged;
			res->best_init = r;
			memcpy(res->centroids, C, sizeof(double) * k * d);
			memset(res->sizes, 0, sizeof(int64) * k);
			for (int64 i = 0; i < n; i++)
				res->sizes[labels[i]]++;
		}
	}
	pfree(xnorm);
	pfree(labels);
	pfree(dist);
	pfree(C);
	pfree(f.D);
}
