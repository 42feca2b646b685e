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
#include "portability/instr_time.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#include <cblas.h>

#include "big_alloc.h"
#include "fit_threads.h"
#include "kmeans.h"
#include "vecmath.h"

#define SEG_KM_BLOCK 2048		/* rows per dgemm: the block's distances and rows stay in L2 for the argmin and sums */
#define SEG_KM_BLOCK_MIN 256
#define SEG_KM_SMALL_GEMM 1000000	/* OpenBLAS takes its small-matrix kernels up to M·N·K = 10⁶ */
#define SEG_KM_SCRATCH (1 << 20)	/* doubles of distance scratch per thread, at most */
#define SEG_KM_CHUNK 16384		/* rows per chunk handed to a thread */
#define SEG_KM_CHUNK_STATE (16 << 20)	/* bytes of per-chunk partial sums, at most */

typedef struct Fit
{
	const double *X;
	int64		n;
	int			d;
	int			k;
	const double *xnorm;		/* ‖x‖² per row */
	int			block;			/* rows per dgemm call */
	int64		chunk;			/* rows per chunk (a multiple of block) */
	int64		nchunks;
	size_t		dstride;		/* doubles of scratch per thread */
	double	   *D;				/* threads x dstride distance scratch */
} Fit;

/*
 * Rows per block: SEG_KM_BLOCK, halved (down to SEG_KM_BLOCK_MIN) while a
 * block's product against k centres is too large for OpenBLAS's
 * small-matrix kernels (a third faster at k = 32 and 64 with d = 16), and
 * fewer when k is so large the scratch would not fit.  Only the data's
 * shape decides it, so the result does not depend on anything else.
 */
static int
block_rows(int k, int d)
{
	int			b = SEG_KM_BLOCK;

	while (b > SEG_KM_BLOCK_MIN && (double) b * k * d > SEG_KM_SMALL_GEMM)
		b /= 2;
	return Max(1, Min(b, SEG_KM_SCRATCH / Max(k, 8)));
}

static void *
alloc_rows(int64 n, Size each)
{
	return seg_alloc_big(CurrentMemoryContext, (Size) Max(n, 1) * each);
}

/*
 * Chunks depend only on n, k and d (never on the thread count), so per-chunk
 * partial sums reduced in chunk order give the same bits on any machine.
 */
static void
fit_setup(Fit *f, const double *X, int64 n, int d, int k, const double *xnorm)
{
	int64		per_chunk = (int64) sizeof(double) * ((int64) k * d + 2 * k + 2 * d + 8);
	int64		max_chunks = Max(1, SEG_KM_CHUNK_STATE / per_chunk);

	f->X = X;
	f->n = n;
	f->d = d;
	f->k = k;
	f->xnorm = xnorm;
	f->block = block_rows(k, d);
	f->chunk = TYPEALIGN(f->block, Max(SEG_KM_CHUNK, f->block));
	f->nchunks = (n + f->chunk - 1) / f->chunk;
	if (f->nchunks > max_chunks)
	{
		f->chunk = (n + max_chunks - 1) / max_chunks;
		f->chunk = ((f->chunk + f->block - 1) / f->block) * f->block;
		f->nchunks = (n + f->chunk - 1) / f->chunk;
	}
	f->nchunks = Max(f->nchunks, 1);
	f->dstride = (size_t) f->block * Max(k, 8);
	f->D = MemoryContextAllocHuge(CurrentMemoryContext,
								  sizeof(double) * f->dstride * seg_fit_threads());
}

static void
chunk_range(const Fit *f, int64 c, int64 *lo, int64 *hi)
{
	*lo = c * f->chunk;
	*hi = Min(f->n, *lo + f->chunk);
}

/*
 * -2 x.c for rows [i0, i0 + b) and k centres, into D (b x k).  The centres
 * come transposed (Ct: d x k): with both operands untransposed OpenBLAS
 * may take its small-matrix kernels, which read the rows in place instead
 * of repacking every block (X · Cᵀ with both stored row by row is the one
 * layout its SkylakeX kernels refuse): 1M x 16 against 16 centres, 24 -> 17
 * ms a pass.
 */
static void
block_dot(const Fit *f, int64 i0, int b, const double *Ct, int k, double *D)
{
	cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, k, f->d,
				-2.0, f->X + i0 * f->d, f->d, Ct, k, 0.0, D, k);
}

/* -2 x.c as block_dot, laid out centre by centre: Dt (k x b). */
static void
block_dot_t(const Fit *f, int64 i0, int b, const double *Ct, int k, double *Dt)
{
	cblas_dgemm(CblasRowMajor, CblasTrans, CblasTrans, k, b, f->d,
				-2.0, Ct, k, f->X + i0 * f->d, f->d, 0.0, Dt, b);
}

/*
 * labels[r] = the j with the smallest Dt[j][r] + cnorm[j], the first on
 * ties, for the b rows of a block: a branch-free compare-and-select over
 * the centres in order (overlapping clusters cost no mispredictions), for
 * W rows at once in vector lanes.
 */
#define BLOCK_LABELS_STEP(VD, VI, m, idx, at) \
	do { \
		VD			v_; \
		VI			lt_; \
		\
		memcpy(&v_, (at), sizeof(VD)); \
		v_ += cj; \
		lt_ = v_ < m; \
		m = (VD) (((VI) v_ & lt_) | ((VI) m & ~lt_)); \
		idx = (idx & ~lt_) | (jv & lt_); \
	} while (0)

#define BLOCK_LABELS_BODY(VD, VI, W) \
	int			r = 0; \
	\
	/* four vectors of rows at a time: four independent chains in flight */ \
	for (; r + 4 * (W) <= b; r += 4 * (W)) \
	{ \
		VD			m0, \
					m1, \
					m2, \
					m3; \
		VI			i0 = {0}, \
					i1 = {0}, \
					i2 = {0}, \
					i3 = {0}, \
					jv = {0}; \
		\
		memcpy(&m0, Dt + r, sizeof(VD)); \
		memcpy(&m1, Dt + r + (W), sizeof(VD)); \
		memcpy(&m2, Dt + r + 2 * (W), sizeof(VD)); \
		memcpy(&m3, Dt + r + 3 * (W), sizeof(VD)); \
		m0 += cnorm[0]; \
		m1 += cnorm[0]; \
		m2 += cnorm[0]; \
		m3 += cnorm[0]; \
		for (int jj = 1; jj < k; jj++) \
		{ \
			const double *row = Dt + (size_t) jj * b + r; \
			double		cj = cnorm[jj]; \
			\
			jv += 1; \
			BLOCK_LABELS_STEP(VD, VI, m0, i0, row); \
			BLOCK_LABELS_STEP(VD, VI, m1, i1, row + (W)); \
			BLOCK_LABELS_STEP(VD, VI, m2, i2, row + 2 * (W)); \
			BLOCK_LABELS_STEP(VD, VI, m3, i3, row + 3 * (W)); \
		} \
		for (int w = 0; w < (W); w++) \
		{ \
			labels[r + w] = (int32) i0[w]; \
			labels[r + (W) + w] = (int32) i1[w]; \
			labels[r + 2 * (W) + w] = (int32) i2[w]; \
			labels[r + 3 * (W) + w] = (int32) i3[w]; \
		} \
	} \
	for (; r < b; r++) \
	{ \
		double		bestv = Dt[r] + cnorm[0]; \
		int			best = 0; \
		\
		for (int jj = 1; jj < k; jj++) \
		{ \
			double		vv = Dt[(size_t) jj * b + r] + cnorm[jj]; \
			bool		l = vv < bestv; \
			\
			best = l ? jj : best; \
			bestv = l ? vv : bestv; \
		} \
		labels[r] = best; \
	}

static void
block_labels_sse2(const double *Dt, int b, const double *cnorm, int k, int32 *labels)
{
	BLOCK_LABELS_BODY(seg_v2d, seg_v2i, 2)
}

#ifdef SEG_HAVE_AVX2_KERNELS
__attribute__((target("avx2")))
static void
block_labels_avx2(const double *Dt, int b, const double *cnorm, int k, int32 *labels)
{
	BLOCK_LABELS_BODY(seg_v4d, seg_v4i, 4)
}
#endif

/*
 * sums[lab[r]] += row r, for the b rows of a block in row order: each
 * element gets the same additions in the same order whatever the vector
 * width, so the sums have the same bits on every path.
 */
#define BLOCK_SUMS_BODY(VD, W) \
	for (int r = 0; r < b; r++) \
	{ \
		const double *x = X + (size_t) r * d; \
		double	   *sum = sums + (size_t) lab[r] * d; \
		int			t = 0; \
		\
		for (; t + (W) <= d; t += (W)) \
		{ \
			VD			a, \
						c; \
			\
			memcpy(&a, sum + t, sizeof(VD)); \
			memcpy(&c, x + t, sizeof(VD)); \
			a += c; \
			memcpy(sum + t, &a, sizeof(VD)); \
		} \
		for (; t < d; t++) \
			sum[t] += x[t]; \
	}

static void
block_sums_sse2(const double *X, int b, int d, const int32 *lab, double *sums)
{
	BLOCK_SUMS_BODY(seg_v2d, 2)
}

#ifdef SEG_HAVE_AVX2_KERNELS
__attribute__((target("avx2")))
static void
block_sums_avx2(const double *X, int b, int d, const int32 *lab, double *sums)
{
	BLOCK_SUMS_BODY(seg_v4d, 4)
}
#endif

/* Ct (d x k) = C (k x d) transposed, for block_dot and block_dot_t. */
static void
transpose_into(const double *C, int k, int d, double *Ct)
{
	for (int j = 0; j < k; j++)
		for (int t = 0; t < d; t++)
			Ct[(size_t) t * k + j] = C[(size_t) j * d + t];
}

static double *
transposed(const double *C, int k, int d)
{
	double	   *Ct = palloc(sizeof(double) * k * d);

	transpose_into(C, k, d, Ct);
	return Ct;
}

static void
centre_norms(const double *C, int k, int d, double *cnorm)
{
	for (int j = 0; j < k; j++)
		cnorm[j] = cblas_ddot(d, C + (size_t) j * d, 1, C + (size_t) j * d, 1);
}

/* ---------- initialisation ---------- */

/*
 * One k-means++ scan: what a chunk of rows contributes.  Each step draws
 * candidates, then makes one pass over the rows that first folds the
 * previous step's chosen centre into closest, then sums each candidate's
 * potential: one pass a step instead of an update pass and a candidate pass.
 * The pending centre rides along as one more column of the candidates'
 * product, so the fold costs no distance of its own: closest becomes
 * min(closest, max(0, ‖x‖² − 2 x·c + ‖c‖²)), the value scikit-learn keeps.
 */
typedef struct PlusPlusJob
{
	const Fit  *f;
	double	   *closest;		/* n: squared distance to the nearest centre so far */
	const double *centre;		/* the pending centre, folded into closest first; or NULL */
	const double *cand;			/* the candidates, trials x d, then room for the centre */
	double	   *cand_t;			/* the same, transposed, then the pending centre: d x cols */
	const double *cand_norm;	/* cols: the candidates' ‖c‖², then the centre's */
	int			trials;
	int			cols;			/* trials, + 1 while a centre is pending */
	double	   *partial;		/* nchunks x trials: potential per chunk and candidate */
	double	   *chunk_pot;		/* nchunks: sum of closest per chunk (first scan) */
} PlusPlusJob;

/*
 * The first scan over rows [lo, hi): closest = the exact distance to the
 * first centre (a pass of its own either way), added to pot in row order.
 * Also run by the statistics pass, block by block: the same additions.
 */
static double
first_scan_rows(const Fit *f, const double *c0, int64 lo, int64 hi, double *closest, double pot)
{
	for (int64 i = lo; i < hi; i++)
	{
		closest[i] = seg_sqdist(f->X + i * f->d, c0, f->d);
		pot += closest[i];
	}
	return pot;
}

/* The first restart's first centre: the seeded generator's first draw. */
static int64
first_centre_index(pg_prng_state *rng, int64 n)
{
	return (int64) pg_prng_uint64_range(rng, 0, n - 1);
}

/* min(closest, max(0, dot_part + ‖x‖² + ‖c‖²)): the fold of the pending centre, given -2 x·c */
static inline double
fold_value(double closest, double minus2dot, double xn, double cn)
{
	double		v = (minus2dot + xn) + cn;

	v = v > 0.0 ? v : 0.0;
	return v < closest ? v : closest;
}

/* The fold of the pending centre into row i on its own (where a draw lands, between passes). */
static inline double
fold_centre(const Fit *f, const PlusPlusJob *j, int64 i)
{
	double		dot = -2.0 * cblas_ddot(f->d, f->X + i * f->d, 1, j->centre, 1);

	return fold_value(j->closest[i], dot, f->xnorm[i], j->cand_norm[j->trials]);
}

/* The first scan: closest to the first centre; chunk_pot[c] = sum of closest over the chunk */
static void
pp_first_chunk(void *arg, int slot, int64 c)
{
	PlusPlusJob *j = (PlusPlusJob *) arg;
	const Fit  *f = j->f;
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	j->chunk_pot[c] = first_scan_rows(f, j->centre, lo, hi, j->closest, 0.0);
}

/*
 * pot[t] += min(closest[r], max(0, D[r][t] + xn[r] + cand_norm[t])) over the
 * b rows of a block, for W candidates at a time in vector lanes: each
 * pot[t] still adds its rows in order, so the bits are those of the scalar
 * loop.
 */
#define PP_POTENTIALS_BODY(VD, VI, W) \
	int			t = 0; \
	\
	for (; t + (W) <= trials; t += (W)) \
	{ \
		VD			p, \
					cn; \
		\
		memcpy(&p, pot + t, sizeof(VD)); \
		memcpy(&cn, cand_norm + t, sizeof(VD)); \
		for (int r = 0; r < b; r++) \
		{ \
			VD			v, \
						cl = ((VD) {0}) + closest[r]; \
			VI			m; \
			\
			memcpy(&v, D + (size_t) r * stride + t, sizeof(VD)); \
			v = (v + xn[r]) + cn; \
			m = v > 0.0; \
			v = (VD) ((VI) v & m); \
			m = v < cl; \
			p += (VD) (((VI) v & m) | ((VI) cl & ~m)); \
		} \
		memcpy(pot + t, &p, sizeof(VD)); \
	} \
	for (; t < trials; t++) \
		for (int r = 0; r < b; r++) \
		{ \
			double		v = D[(size_t) r * stride + t] + xn[r] + cand_norm[t]; \
			\
			v = v > 0.0 ? v : 0.0; \
			pot[t] += v < closest[r] ? v : closest[r]; \
		}

static void
pp_block_potentials_sse2(const double *D, int stride, int b, int trials, const double *xn,
						 const double *closest, const double *cand_norm, double *pot)
{
	PP_POTENTIALS_BODY(seg_v2d, seg_v2i, 2)
}

#ifdef SEG_HAVE_AVX2_KERNELS
__attribute__((target("avx2")))
static void
pp_block_potentials_avx2(const double *D, int stride, int b, int trials, const double *xn,
						 const double *closest, const double *cand_norm, double *pot)
{
	PP_POTENTIALS_BODY(seg_v4d, seg_v4i, 4)
}
#endif

/*
 * closest := min(closest, ‖x − centre‖²) when a centre is pending, then
 * partial[c * trials + t] = sum over the chunk of min(closest, ‖x − cand_t‖²)
 */
static void
pp_candidates_chunk(void *arg, int slot, int64 c)
{
	PlusPlusJob *j = (PlusPlusJob *) arg;
	const Fit  *f = j->f;
	double	   *D = f->D + f->dstride * slot;
	double	   *pot = j->partial + c * j->trials;
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	for (int t = 0; t < j->trials; t++)
		pot[t] = 0.0;
	for (int64 i0 = lo; i0 < hi; i0 += f->block)
	{
		int			b = (int) Min(f->block, hi - i0);

		block_dot(f, i0, b, j->cand_t, j->cols, D);
		if (j->centre)
		{
			double		cn = j->cand_norm[j->trials];

			for (int r = 0; r < b; r++)
				j->closest[i0 + r] = fold_value(j->closest[i0 + r],
												D[(size_t) r * j->cols + j->trials],
												f->xnorm[i0 + r], cn);
		}
		SEG_AVX2_OR_SSE2(pp_block_potentials, D, j->cols, b, j->trials, f->xnorm + i0,
						 j->closest + i0, j->cand_norm, pot);
	}
}

/*
 * Greedy k-means++ (scikit-learn's _kmeans_plusplus): each new centre is the
 * best of 2 + floor(ln k) candidates drawn in proportion to the squared
 * distance to the nearest centre so far.  closest is n doubles of scratch.
 *
 * The potentials that candidates are drawn from are, per chunk, the winning
 * candidate's sums from the step before (closest itself is brought up to
 * date only by the next pass); the rows of the few chunks a draw lands in
 * are brought up to date on the spot.  first_pot, when set, is the first
 * scan's chunk sums, done by the statistics pass with closest filled in.
 */
static void
init_kmeanspp(const Fit *f, pg_prng_state *rng, double *C, double *closest,
			  const double *first_pot)
{
	int			trials = 2 + (int) log((double) f->k);
	double	   *cand = palloc(sizeof(double) * (trials + 1) * f->d);
	double	   *cand_norm = palloc(sizeof(double) * (trials + 1));
	double	   *pot = palloc(sizeof(double) * trials);
	double	   *draw = palloc(sizeof(double) * trials);
	int		   *order = palloc(sizeof(int) * trials);
	int64	   *cand_id = palloc(sizeof(int64) * trials);
	double	   *chunk_pot = palloc(sizeof(double) * f->nchunks);
	double		current_pot = 0.0;
	int64		first = first_centre_index(rng, f->n);
	PlusPlusJob job = {
		.f = f, .closest = closest, .cand = cand,
		.cand_t = palloc(sizeof(double) * (trials + 1) * f->d), .cand_norm = cand_norm,
		.trials = trials, .partial = palloc(sizeof(double) * f->nchunks * trials),
		.chunk_pot = chunk_pot,
	};

	memcpy(C, f->X + first * f->d, sizeof(double) * f->d);
	if (first_pot)
		memcpy(chunk_pot, first_pot, sizeof(double) * f->nchunks);	/* closest is filled */
	else
	{
		job.centre = C;
		seg_run_chunks(f->nchunks, pp_first_chunk, &job);
		job.centre = NULL;		/* closest is up to date */
	}
	for (int64 c = 0; c < f->nchunks; c++)
		current_pot += chunk_pot[c];

	for (int c = 1; c < f->k; c++)
	{
		double		acc = 0.0;
		int			best = 0,
					next = 0;

		/* candidates: searchsorted(cumsum(closest), r), one scan for all draws */
		for (int t = 0; t < trials; t++)
		{
			draw[t] = pg_prng_double(rng) * current_pot;
			order[t] = t;
			cand_id[t] = f->n - 1;
		}
		for (int t = 1; t < trials; t++)	/* insertion sort of the draws */
			for (int u = t; u > 0 && draw[order[u]] < draw[order[u - 1]]; u--)
			{
				int			tmp = order[u];

				order[u] = order[u - 1];
				order[u - 1] = tmp;
			}
		/*
		 * cumsum(closest) is the chunks' potentials added in order, then the
		 * rows within a chunk: find the chunk of each draw, scan only it.
		 */
		for (int64 ch = 0; ch < f->nchunks && next < trials; ch++)
		{
			int64		lo,
						hi;
			double		chunk_acc;

			if (acc + chunk_pot[ch] < draw[order[next]] && ch + 1 < f->nchunks)
			{
				acc += chunk_pot[ch];
				continue;
			}
			chunk_range(f, ch, &lo, &hi);
			chunk_acc = 0.0;
			for (int64 i = lo; i < hi && next < trials; i++)
			{
				chunk_acc += job.centre ? fold_centre(f, &job, i) : closest[i];
				while (next < trials && acc + chunk_acc >= draw[order[next]])
					cand_id[order[next++]] = i;
			}
			acc += chunk_pot[ch];
		}
		for (int t = 0; t < trials; t++)
			memcpy(cand + (size_t) t * f->d, f->X + cand_id[t] * f->d, sizeof(double) * f->d);
		/* the pending centre, if any, is the last column */
		job.cols = trials;
		if (job.centre)
			memcpy(cand + (size_t) job.cols++ * f->d, job.centre, sizeof(double) * f->d);
		centre_norms(cand, job.cols, f->d, cand_norm);
		transpose_into(cand, job.cols, f->d, job.cand_t);

		/* folds the previous step's centre (job.centre) into closest on the way */
		seg_run_chunks(f->nchunks, pp_candidates_chunk, &job);
		for (int t = 0; t < trials; t++)
			pot[t] = 0.0;
		for (int64 ch = 0; ch < f->nchunks; ch++)
			for (int t = 0; t < trials; t++)
				pot[t] += job.partial[ch * trials + t];
		for (int t = 1; t < trials; t++)
			if (pot[t] < pot[best])
				best = t;
		memcpy(C + (size_t) c * f->d, cand + (size_t) best * f->d, sizeof(double) * f->d);

		/* the next draws: the winner's potentials; the next pass folds it in */
		job.centre = C + (size_t) c * f->d;
		centre_norms(job.centre, 1, f->d, cand_norm + trials);	/* for draws before the pass */
		current_pot = 0.0;
		for (int64 ch = 0; ch < f->nchunks; ch++)
		{
			chunk_pot[ch] = job.partial[ch * trials + best];
			current_pot += chunk_pot[ch];
		}
	}
	pfree(cand);
	pfree(cand_norm);
	pfree(pot);
	pfree(draw);
	pfree(order);
	pfree(cand_id);
	pfree(job.partial);
	pfree(job.cand_t);
	pfree(chunk_pot);
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

/* An assignment pass over the chunks: a Lloyd step, or the final assignment. */
typedef struct PassJob
{
	const Fit  *f;
	const double *C;
	const double *Ct;			/* C transposed, for block_dot_t */
	const double *cnorm;
	int32	   *labels;
	double	   *dist;
	double	   *sums;			/* Lloyd: nchunks x k x d */
	int64	   *counts;			/* Lloyd: nchunks x k */
	int64	   *changed;		/* Lloyd: nchunks */
	double	   *inertia;		/* final: nchunks */
} PassJob;

/* Assign a chunk's rows to their nearest centres; the chunk's sums and counts. */
static void
lloyd_chunk(void *arg, int slot, int64 c)
{
	PassJob    *j = (PassJob *) arg;
	const Fit  *f = j->f;
	int			k = f->k,
				d = f->d;
	double	   *D = f->D + f->dstride * slot;
	double	   *sums = j->sums + (size_t) c * k * d;
	int64	   *counts = j->counts + (size_t) c * k;
	int32		lab[SEG_KM_BLOCK];
	int64		changed = 0,
				lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	memset(sums, 0, sizeof(double) * k * d);
	memset(counts, 0, sizeof(int64) * k);
	for (int64 i0 = lo; i0 < hi; i0 += f->block)
	{
		int			b = (int) Min(f->block, hi - i0);

		/* -2 x.c only: ‖x‖² does not change the argmin, so it is added once per row */
		block_dot_t(f, i0, b, j->Ct, k, D);

		/* the block's labels first (several rows at a time), then the sums, in row order */
		SEG_AVX2_OR_SSE2(block_labels, D, b, j->cnorm, k, lab);
		for (int r = 0; r < b; r++)
		{
			changed += (j->labels[i0 + r] != lab[r]);
			j->labels[i0 + r] = lab[r];
			counts[lab[r]]++;
		}
		SEG_AVX2_OR_SSE2(block_sums, f->X + i0 * d, b, d, lab, sums);
	}
	j->changed[c] = changed;
}

/* dist[i] = ‖x_i − C[labels[i]]‖², for the relocation of empty clusters */
static void
label_dist_chunk(void *arg, int slot, int64 c)
{
	PassJob    *j = (PassJob *) arg;
	const Fit  *f = j->f;
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	for (int64 i = lo; i < hi; i++)
		j->dist[i] = seg_sqdist(f->X + i * f->d, j->C + (size_t) j->labels[i] * f->d, f->d);
}

/*
 * One Lloyd step: assign every row to its nearest centre in C, accumulate
 * sums and counts.  Returns how many labels changed.  When a cluster is
 * left empty, dist gets each row's squared distance to its centre.
 */
static int64
lloyd_assign(const Fit *f, const double *C, int32 *labels, double *dist,
			 double *sums, int64 *counts, PassJob *job)
{
	double	   *cnorm = palloc(sizeof(double) * f->k);
	size_t		kd = (size_t) f->k * f->d;
	int64		changed = 0;
	double	   *Ct = transposed(C, f->k, f->d);

	centre_norms(C, f->k, f->d, cnorm);
	job->f = f;
	job->C = C;
	job->Ct = Ct;
	job->cnorm = cnorm;
	job->labels = labels;
	job->dist = dist;
	seg_run_chunks(f->nchunks, lloyd_chunk, job);
	memset(sums, 0, sizeof(double) * kd);
	memset(counts, 0, sizeof(int64) * f->k);
	for (int64 c = 0; c < f->nchunks; c++)
	{
		const double *cs = job->sums + c * kd;
		const int64 *cc = job->counts + c * f->k;

		for (size_t p = 0; p < kd; p++)
			sums[p] += cs[p];
		for (int q = 0; q < f->k; q++)
			counts[q] += cc[q];
		changed += job->changed[c];
	}
	/* distances only when a cluster is empty: most passes never need them */
	for (int q = 0; q < f->k; q++)
		if (counts[q] == 0)
		{
			seg_run_chunks(f->nchunks, label_dist_chunk, job);
			break;
		}
	pfree(cnorm);
	pfree(Ct);
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
	PassJob		job = {0};
	int			it;

	job.sums = MemoryContextAllocHuge(CurrentMemoryContext,
									  sizeof(double) * f->nchunks * f->k * f->d);
	job.counts = MemoryContextAllocHuge(CurrentMemoryContext,
										sizeof(int64) * f->nchunks * f->k);
	job.changed = palloc(sizeof(int64) * f->nchunks);
	*converged = false;
	for (int64 i = 0; i < f->n; i++)
		labels[i] = -1;
	for (it = 0; it < max_iter; it++)
	{
		int64		changed;
		double		shift;

		CHECK_FOR_INTERRUPTS();
		changed = lloyd_assign(f, C, labels, dist, sums, counts, &job);
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
	pfree(job.sums);
	pfree(job.counts);
	pfree(job.changed);
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
			double		h = a == b ? 0.0 : 0.5 * sqrt(seg_sqdist(C + (size_t) a * d, C + (size_t) b * d, d));

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
		double		ub = sqrt(seg_sqdist(x, C, d));

		lower[i * k] = ub;
		for (int j = 1; j < k; j++)
		{
			if (ub > half[(size_t) best * k + j])
			{
				double		dd = sqrt(seg_sqdist(x, C + (size_t) j * d, d));

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
						ub = sqrt(seg_sqdist(x, C + (size_t) label * d, d));
						lower[i * k + label] = ub;
						tight = true;
					}
					if (ub > lower[i * k + j] || ub > half[(size_t) label * k + j])
					{
						double		dd = sqrt(seg_sqdist(x, C + (size_t) j * d, d));

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
		/*
		 * Strict convergence: no label changed in this iteration.  The first
		 * iteration assigns from the same centres as the initial bounds, so
		 * it never changes a label; scikit-learn's labels_old starts at -1
		 * for this reason, and so the first iteration never counts.
		 */
		if (changed == 0 && it > 0)
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
	seg_free_big(upper);
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

/* Per-chunk statistics: ‖x‖² of each row, and each feature's mean and M2. */
typedef struct StatsJob
{
	const Fit  *f;
	double	   *xnorm;			/* n */
	double	   *mean;			/* nchunks x d */
	double	   *m2;				/* nchunks x d */
	double	   *block_moments;	/* per thread: a block's mean and m2, 2 x d */
	/* k-means++'s first scan on the way, when first_centre is set */
	const double *first_centre;
	double	   *closest;		/* n: the rows' exact distance to it */
	double	   *first_pot;		/* nchunks: their sum per chunk, in row order */
} StatsJob;

/*
 * The body of stats_chunk, on SSE2 lanes: ‖x‖² of two rows side by side,
 * and the feature sums two features at a time.  Every sum is still added in
 * row order and feature order, as the plain loops would, so the bits are
 * the same.
 */
static void
chunk_moments(const double *X, int d, int64 lo, int64 hi, double *xnorm, double *mean, double *m2)
{
	int64		i = lo;
	int			t;

	memset(mean, 0, sizeof(double) * d);
	memset(m2, 0, sizeof(double) * d);
	for (; i + 2 <= hi; i += 2)
	{
		const double *xa = X + i * d;
		const double *xb = xa + d;
		seg_v2d		n2 = {0.0, 0.0};

		for (t = 0; t < d; t++)
		{
			seg_v2d		v = {xa[t], xb[t]};

			n2 += v * v;
		}
		xnorm[i] = n2[0];
		xnorm[i + 1] = n2[1];
		for (t = 0; t + 2 <= d; t += 2)
		{
			seg_v2d		m = seg_load2(mean + t);

			m += seg_load2(xa + t);
			m += seg_load2(xb + t);
			memcpy(mean + t, &m, sizeof(m));
		}
		for (; t < d; t++)
		{
			mean[t] += xa[t];
			mean[t] += xb[t];
		}
	}
	for (; i < hi; i++)
	{
		const double *x = X + i * d;
		double		xn = 0.0;

		for (t = 0; t < d; t++)
		{
			xn += x[t] * x[t];
			mean[t] += x[t];
		}
		xnorm[i] = xn;
	}
	for (t = 0; t < d; t++)
		mean[t] /= (double) (hi - lo);
	/* two passes within a chunk: stable for large offsets */
	for (i = lo; i < hi; i++)
	{
		const double *x = X + i * d;

		for (t = 0; t + 2 <= d; t += 2)
		{
			seg_v2d		dev = seg_load2(x + t) - seg_load2(mean + t);
			seg_v2d		m = seg_load2(m2 + t) + dev * dev;

			memcpy(m2 + t, &m, sizeof(m));
		}
		for (; t < d; t++)
		{
			double		dev = x[t] - mean[t];

			m2[t] += dev * dev;
		}
	}
}

/*
 * A chunk's moments, block by block (a block's second pass reads it from
 * the cache, not from memory), the blocks merged in order by Chan's formula.
 */
static void
stats_chunk(void *arg, int slot, int64 c)
{
	StatsJob   *j = (StatsJob *) arg;
	const Fit  *f = j->f;
	int			d = f->d;
	double	   *mean = j->mean + (size_t) c * d;
	double	   *m2 = j->m2 + (size_t) c * d;
	double	   *bmean = j->block_moments + (size_t) slot * 2 * d;
	double	   *bm2 = bmean + d;
	double		pot = 0.0;
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	for (int64 b0 = lo; b0 < hi; b0 += f->block)
	{
		int64		b1 = Min(hi, b0 + f->block),
					na = b0 - lo,
					nb = b1 - b0;

		if (na == 0)
			chunk_moments(f->X, d, b0, b1, j->xnorm, mean, m2);
		else
		{
			chunk_moments(f->X, d, b0, b1, j->xnorm, bmean, bm2);
			for (int t = 0; t < d; t++)
			{
				double		delta = bmean[t] - mean[t];

				mean[t] += delta * nb / (double) (na + nb);
				m2[t] += bm2[t] + delta * delta * na * (double) nb / (double) (na + nb);
			}
		}
		/* while the block is in cache: what pp_first_chunk would compute */
		if (j->first_centre)
			pot = first_scan_rows(f, j->first_centre, b0, b1, j->closest, pot);
	}
	if (j->first_centre)
		j->first_pot[c] = pot;
}

/*
 * ‖x‖² of every row, and scikit-learn's _tolerance: tol times the mean
 * per-feature variance (chunks merged with Chan's formula, in chunk order).
 */
static double
row_norms_and_tolerance(const Fit *f, double *xnorm, double tol, const double *first_centre,
						 double *closest, double *first_pot)
{
	StatsJob	job = {f, xnorm,
		MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * f->nchunks * f->d),
		MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * f->nchunks * f->d),
		MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * 2 * f->d * seg_fit_threads()),
	first_centre, closest, first_pot};
	double		total = 0.0;

	seg_run_chunks(f->nchunks, stats_chunk, &job);
	for (int t = 0; t < f->d; t++)
	{
		double		mean = 0.0,
					m2 = 0.0;
		int64		count = 0;

		for (int64 c = 0; c < f->nchunks; c++)
		{
			int64		lo,
						hi,
						nb;
			double		delta;

			chunk_range(f, c, &lo, &hi);
			nb = hi - lo;
			delta = job.mean[c * f->d + t] - mean;
			mean += delta * nb / (double) (count + nb);
			m2 += job.m2[c * f->d + t] + delta * delta * count * (double) nb / (double) (count + nb);
			count += nb;
		}
		total += m2 / f->n;
	}
	pfree(job.mean);
	pfree(job.m2);
	pfree(job.block_moments);
	return tol * total / f->d;
}

/* Final assignment: exact distances to the nearest centre, inertia per chunk. */
static void
assign_chunk(void *arg, int slot, int64 c)
{
	PassJob    *j = (PassJob *) arg;
	const Fit  *f = j->f;
	int			k = f->k,
				d = f->d;
	double	   *D = f->D + f->dstride * slot;
	double		inertia = 0.0;
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	for (int64 i0 = lo; i0 < hi; i0 += f->block)
	{
		int			b = (int) Min(f->block, hi - i0);

		block_dot_t(f, i0, b, j->Ct, k, D);
		/* labels first, then distances (see lloyd_chunk) */
		SEG_AVX2_OR_SSE2(block_labels, D, b, j->cnorm, k, j->labels + i0);
		for (int r = 0; r < b; r++)
		{
			/* the expansion loses digits: the reported distance is exact */
			double		exact = seg_sqdist(f->X + (i0 + r) * d,
										   j->C + (size_t) j->labels[i0 + r] * d, d);

			if (j->dist)
				j->dist[i0 + r] = exact;
			inertia += exact;
		}
	}
	j->inertia[c] = inertia;
}

static double
assign_all(const Fit *f, const double *C, int32 *labels, double *dist)
{
	double	   *cnorm = palloc(sizeof(double) * f->k);
	PassJob		job = {.f = f, .C = C, .Ct = transposed(C, f->k, f->d), .cnorm = cnorm,
		.labels = labels, .dist = dist, .inertia = palloc(sizeof(double) * f->nchunks)};
	double		inertia = 0.0;

	centre_norms(C, f->k, f->d, cnorm);
	seg_run_chunks(f->nchunks, assign_chunk, &job);
	for (int64 c = 0; c < f->nchunks; c++)
		inertia += job.inertia[c];
	pfree(cnorm);
	pfree((double *) job.Ct);
	pfree(job.inertia);
	return inertia;
}

double
seg_kmeans_assign_all(const double *X, int64 n, int d, const double *centroids, int k,
					  int32 *labels, double *dist)
{
	double	   *xnorm = alloc_rows(n, sizeof(double));
	Fit			f;
	double		inertia;

	fit_setup(&f, X, n, d, k, xnorm);
	(void) row_norms_and_tolerance(&f, xnorm, 0.0, NULL, NULL, NULL);
	inertia = assign_all(&f, centroids, labels, dist);
	seg_free_big(xnorm);
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
	double		tol;
	double	   *first_pot = NULL;
	pg_prng_state rng;
	Fit			f;

	fit_setup(&f, X, n, d, k, xnorm);
	pg_prng_seed(&rng, opt->seed);
	if (opt->init == SEG_INIT_KMEANSPP)
	{
		/* the first restart's first centre is the rng's first draw: its scan rides along */
		pg_prng_state peek = rng;
		int64		first = first_centre_index(&peek, n);

		first_pot = palloc(sizeof(double) * f.nchunks);
		tol = row_norms_and_tolerance(&f, xnorm, opt->tol, X + first * d, dist, first_pot);
	}
	else
		tol = row_norms_and_tolerance(&f, xnorm, opt->tol, NULL, NULL, NULL);

	res->inertia = INFINITY;
	for (int r = 0; r < opt->n_init; r++)
	{
		bool		converged;
		int			iters;
		double		inertia;
		instr_time	t0,
					t1,
					t2,
					t3;

		INSTR_TIME_SET_CURRENT(t0);
		if (opt->init == SEG_INIT_KMEANSPP)
			init_kmeanspp(&f, &rng, C, dist, r == 0 ? first_pot : NULL);	/* dist is free until Lloyd */
		else
			init_random(&f, &rng, C);
		INSTR_TIME_SET_CURRENT(t1);
		if (opt->algorithm == SEG_ALGO_ELKAN && k > 1)
			iters = run_elkan(&f, C, tol, opt->max_iter, r, labels, dist, &converged);
		else
			iters = run_lloyd(&f, C, tol, opt->max_iter, r, labels, dist, &converged);
		INSTR_TIME_SET_CURRENT(t2);
		/* labels, sizes and inertia of the returned centres */
		inertia = assign_all(&f, C, labels, NULL);
		INSTR_TIME_SET_CURRENT(t3);
		INSTR_TIME_SUBTRACT(t3, t2);
		INSTR_TIME_SUBTRACT(t2, t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		ereport(DEBUG1,
				(errmsg_internal("kmeans restart %d: init %.1f ms, %d iterations %.1f ms, final assignment %.1f ms (%d threads)",
								 r, INSTR_TIME_GET_MILLISEC(t1), iters, INSTR_TIME_GET_MILLISEC(t2),
								 INSTR_TIME_GET_MILLISEC(t3), seg_fit_threads())));
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
	seg_free_big(xnorm);
	seg_free_big(labels);
	seg_free_big(dist);
	if (first_pot)
		pfree(first_pot);
	pfree(C);
	pfree(f.D);
}
