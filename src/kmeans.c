/*
 * kmeans.c — k-means on OpenBLAS, with scikit-learn's semantics (see kmeans.h).
 *
 * Distances go through dgemm on blocks of rows (‖x‖² − 2x·c + ‖c‖²), fused
 * with the argmin and the accumulation of the new centroid sums, so one
 * Lloyd iteration is one sweep over X and needs O(block·k + k·d) scratch.
 *
 * The rows come in whatever order the plan gathered them, and the result
 * must not depend on it: the init draws from a sample chosen and ordered by
 * a seeded hash of each row (init_sample), sums are exact (fixed point and
 * exponent bins), and labels near a tie are settled by exact distances.
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
#include "kmeans_sample.h"
#include "vecmath.h"
#include "exact_sums.h"

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
 * ties, best[r] that value and margin[r] = the runner-up's value minus it
 * (how close the row is to a tie), for the b rows of a block: a branch-free
 * compare-and-select over the centres in order (overlapping clusters cost
 * no mispredictions), for W rows at once in vector lanes.
 */
#define BLOCK_LABELS_STEP(VD, VI, m, m2, idx, at) \
	do { \
		VD			v_, \
					w_; \
		VI			lt_, \
					lt2_; \
		\
		memcpy(&v_, (at), sizeof(VD)); \
		v_ += cj; \
		lt_ = v_ < m; \
		w_ = (VD) (((VI) m & lt_) | ((VI) v_ & ~lt_));	/* the loser of v and m */ \
		lt2_ = w_ < m2; \
		m2 = (VD) (((VI) w_ & lt2_) | ((VI) m2 & ~lt2_)); \
		m = (VD) (((VI) v_ & lt_) | ((VI) m & ~lt_)); \
		idx = (idx & ~lt_) | (jv & lt_); \
	} while (0)

#define BLOCK_LABELS_BODY(VD, VI, W) \
	int			r = 0; \
	\
	/* two vectors of rows at a time: two independent chains in flight */ \
	for (; r + 2 * (W) <= b; r += 2 * (W)) \
	{ \
		VD			m0, \
					m1, \
					s0 = ((VD) {0}) + INFINITY, \
					s1 = ((VD) {0}) + INFINITY; \
		VI			i0 = {0}, \
					i1 = {0}, \
					jv = {0}; \
		\
		memcpy(&m0, Dt + r, sizeof(VD)); \
		memcpy(&m1, Dt + r + (W), sizeof(VD)); \
		m0 += cnorm[0]; \
		m1 += cnorm[0]; \
		for (int jj = 1; jj < k; jj++) \
		{ \
			const double *row = Dt + (size_t) jj * b + r; \
			double		cj = cnorm[jj]; \
			\
			jv += 1; \
			BLOCK_LABELS_STEP(VD, VI, m0, s0, i0, row); \
			BLOCK_LABELS_STEP(VD, VI, m1, s1, i1, row + (W)); \
		} \
		s0 -= m0; \
		s1 -= m1; \
		for (int w = 0; w < (W); w++) \
		{ \
			labels[r + w] = (int32) i0[w]; \
			labels[r + (W) + w] = (int32) i1[w]; \
			best[r + w] = m0[w]; \
			best[r + (W) + w] = m1[w]; \
			margin[r + w] = s0[w]; \
			margin[r + (W) + w] = s1[w]; \
		} \
	} \
	for (; r < b; r++) \
	{ \
		double		bestv = Dt[r] + cnorm[0], \
					second = INFINITY; \
		int			bj = 0; \
		\
		for (int jj = 1; jj < k; jj++) \
		{ \
			double		vv = Dt[(size_t) jj * b + r] + cnorm[jj]; \
			bool		l = vv < bestv; \
			double		loser = l ? bestv : vv; \
			\
			second = loser < second ? loser : second; \
			bj = l ? jj : bj; \
			bestv = l ? vv : bestv; \
		} \
		labels[r] = bj; \
		best[r] = bestv; \
		margin[r] = second - bestv; \
	}

SEG_WIDTH_VARIANTS(block_labels,
				   (const double *Dt, int b, const double *cnorm, int k, int32 *labels,
					double *best, double *margin),
				   BLOCK_LABELS_BODY)

/*
 * bsum[lab[r]] += the fixed-point row r (hi parts; lo parts kd further on),
 * for the b rows of a block (int64: a block's sums stay below 2^61).
 * Rounding by the magic number gives the same integers on every vector width.
 */
#define BLOCK_FIXED_SUMS_BODY(VD, VI, W) \
	for (int r = 0; r < b; r++) \
	{ \
		const double *x = X + (size_t) r * d; \
		int64	   *sum = bsum + (size_t) lab[r] * d; \
		int			t = 0; \
		\
		for (; t + (W) <= d; t += (W)) \
		{ \
			VD			v, \
						sc, \
						h; \
			VI			a, \
						l; \
			\
			memcpy(&v, x + t, sizeof(VD)); \
			memcpy(&sc, scale + t, sizeof(VD)); \
			v = v * sc; \
			h = v + SEG_FIX_MAGIC; \
			memcpy(&a, sum + t, sizeof(VI)); \
			a += (VI) h - SEG_FIX_MAGIC_BITS; \
			memcpy(sum + t, &a, sizeof(VI)); \
			h = (v - (h - SEG_FIX_MAGIC)) * SEG_FIX_LO + SEG_FIX_MAGIC; \
			memcpy(&l, sum + kd + t, sizeof(VI)); \
			l += (VI) h - SEG_FIX_MAGIC_BITS; \
			memcpy(sum + kd + t, &l, sizeof(VI)); \
		} \
		for (; t < d; t++) \
		{ \
			int64		hi, \
						lo; \
			\
			seg_fix_split(x[t], scale[t], &hi, &lo); \
			sum[t] += hi; \
			sum[kd + t] += lo; \
		} \
	}

SEG_WIDTH_VARIANTS(block_fixed_sums,
				   (const double *X, int b, int d, const int32 *lab, const double *scale,
					int64 *bsum, size_t kd),
				   BLOCK_FIXED_SUMS_BODY)

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

/* The first centre: the seeded generator's next draw. */
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
	double		pot = 0.0;
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	for (int64 i = lo; i < hi; i++)
	{
		j->closest[i] = seg_sqdist(f->X + i * f->d, j->centre, f->d);
		pot += j->closest[i];
	}
	j->chunk_pot[c] = pot;
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
 * are brought up to date on the spot.
 */
static void
init_kmeanspp(const Fit *f, pg_prng_state *rng, double *C, double *closest)
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
	job.centre = C;
	seg_run_chunks(f->nchunks, pp_first_chunk, &job);
	job.centre = NULL;			/* closest is up to date */
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
 * What every pass and the update share: the rows' fixed-point scales, and
 * per thread slot the exact sums a pass adds up.
 */
typedef struct Sums
{
	int			k;
	int			d;
	int			slots;
	double	   *scale;			/* d */
	double	   *unscale;		/* d */
	seg_i128   *tot;			/* slots x 2 x k x d: fixed-point centre sums, hi then lo parts */
	int64	   *bsum;			/* slots x 2 x k x d: one block's sums */
	int64	   *counts;			/* slots x k */
	int64	   *changed;		/* slots */
	seg_i128   *bins;			/* slots x SEG_EXP_BINS: inertia */
	double	   *gap;			/* slots: the smallest gap of block_labels_exact (a minimum: order-free) */
	const double *pivot;		/* d: a row of the init sample, for the tolerance */
} Sums;

static void
sums_init(Sums *S, int k, int d, const double *maxabs, const double *pivot)
{
	S->k = k;
	S->d = d;
	S->slots = seg_fit_threads();
	S->scale = palloc(sizeof(double) * d);
	S->unscale = palloc(sizeof(double) * d);
	fixed_scales(maxabs, d, S->scale, S->unscale);
	S->tot = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(seg_i128) * S->slots * 2 * k * d);
	S->bsum = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * S->slots * 2 * k * d);
	memset(S->bsum, 0, sizeof(int64) * S->slots * 2 * k * d);	/* each flush leaves it zero */
	S->counts = palloc(sizeof(int64) * S->slots * k);
	S->changed = palloc(sizeof(int64) * S->slots);
	S->bins = palloc(sizeof(seg_i128) * S->slots * SEG_EXP_BINS);
	S->gap = palloc(sizeof(double) * S->slots);
	S->pivot = pivot;
}

/* Zero what a pass adds to. */
static void
sums_reset(Sums *S)
{
	memset(S->tot, 0, sizeof(seg_i128) * S->slots * 2 * S->k * S->d);
	memset(S->counts, 0, sizeof(int64) * S->slots * S->k);
	memset(S->changed, 0, sizeof(int64) * S->slots);
	memset(S->bins, 0, sizeof(seg_i128) * S->slots * SEG_EXP_BINS);
	for (int sl = 0; sl < S->slots; sl++)
		S->gap[sl] = INFINITY;
}

/* Fold the exact bins of slot 1.. into slot 0's. */
static void
sums_fold_bins(Sums *S)
{
	for (int sl = 1; sl < S->slots; sl++)
		for (int e = 0; e < SEG_EXP_BINS; e++)
			S->bins[e] += S->bins[sl * SEG_EXP_BINS + e];
}

/* Fold slot 1.. into slot 0: integer sums, so the order is of no account. */
static void
sums_fold(Sums *S)
{
	size_t		kd = (size_t) 2 * S->k * S->d;

	for (int sl = 1; sl < S->slots; sl++)
	{
		for (size_t p = 0; p < kd; p++)
			S->tot[p] += S->tot[sl * kd + p];
		for (int j = 0; j < S->k; j++)
			S->counts[j] += S->counts[sl * S->k + j];
		S->changed[0] += S->changed[sl];
		S->gap[0] = Min(S->gap[0], S->gap[sl]);
	}
	sums_fold_bins(S);
}

/* Flush a block's int64 sums into the slot's exact totals. */
static void
sums_flush_block(Sums *S, int slot)
{
	size_t		kd = (size_t) 2 * S->k * S->d;
	int64	   *bsum = S->bsum + slot * kd;
	seg_i128   *tot = S->tot + slot * kd;

	for (size_t p = 0; p < kd; p++)
		tot[p] += bsum[p];
	memset(bsum, 0, sizeof(int64) * kd);
}

/*
 * scikit-learn's _tolerance: tol times the mean per-feature variance, which
 * is (Σ‖x − p‖² − n‖μ − p‖²) / (n d) for any p.  p is a row of the init
 * sample (S->pivot), so no term is far larger than the variance even when
 * the data sit far from the origin; Σ‖x − p‖² is in S->bins, μ from the
 * folded centre sums of a pass that added every row (before any
 * relocation).  Both sums are exact: a function of the multiset of rows.
 */
static double
sums_tolerance(const Sums *S, int64 n, double tol)
{
	long double dev2 = 0.0L,
				var;

	for (int t = 0; t < S->d; t++)
	{
		seg_i128	hi = 0,
					lo = 0;
		long double off;

		for (int j = 0; j < S->k; j++)
		{
			hi += S->tot[(size_t) j * S->d + t];
			lo += S->tot[(size_t) (S->k + j) * S->d + t];
		}
		off = seg_fix_value(hi, lo, S->unscale[t]) / n - S->pivot[t];
		dev2 += off * off;
	}
	var = ((long double) exact_total(S->bins) - n * dev2) / ((long double) n * S->d);
	return tol * (double) (var > 0.0L ? var : 0.0L);
}

/* bins += ‖x − pivot‖² of rows [i0, i0 + b): the tolerance's first sum */
static void
block_pivot_distances(const double *X, int b, int d, const double *pivot, seg_i128 *bins)
{
	for (int r = 0; r < b; r++)
		exact_add(bins, seg_sqdist(X + (size_t) r * d, pivot, d));
}

/*
 * Empty clusters take the rows farthest from their centres (scikit-learn's
 * _relocate_empty_clusters_dense), equal distances ordered by the rows'
 * bytes, not their places, and a row equal to one already taken skipped;
 * the (folded) sums and counts are updated to match.
 */
static void
relocate_empty(const Fit *f, const int32 *labels, const double *dist, Sums *S)
{
	int64	   *counts = S->counts;
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

		if (e > 0 && far[e - 1] < 0)
		{
			far[e] = -1;		/* no distinct row left */
			continue;
		}
		for (int64 i = 0; i < f->n; i++)
		{
			bool		taken = false;

			/* a row equal to one taken would give two equal centres */
			for (int q = 0; q < e && !taken; q++)
				taken = memcmp(f->X + far[q] * f->d, f->X + i * f->d, sizeof(double) * f->d) == 0;
			if (taken)
				continue;
			if (best < 0 || dist[i] > dist[best] ||
				(dist[i] == dist[best] &&
				 memcmp(f->X + i * f->d, f->X + best * f->d, sizeof(double) * f->d) < 0))
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
		if (far[e] < 0)
			break;				/* fewer distinct rows than empty clusters: keep the centre */
		x = f->X + far[e] * f->d;
		old = labels[far[e]];
		for (int t = 0; t < f->d; t++)
		{
			size_t		lo = (size_t) f->k * f->d;
			int64		qh,
						ql;

			seg_fix_split(x[t], S->scale[t], &qh, &ql);
			S->tot[(size_t) old * f->d + t] -= qh;
			S->tot[lo + (size_t) old * f->d + t] -= ql;
			S->tot[(size_t) j * f->d + t] = qh;
			S->tot[lo + (size_t) j * f->d + t] = ql;
		}
		counts[old]--;
		counts[j] = 1;
		e++;
	}
	pfree(far);
}

/* New centres from the folded sums and counts; returns the total squared shift. */
static double
update_centres(const Fit *f, const Sums *S, const double *old, double *new_c, double *shift)
{
	double		total = 0.0;

	for (int j = 0; j < f->k; j++)
	{
		double		s = 0.0;

		for (int t = 0; t < f->d; t++)
		{
			size_t		p = (size_t) j * f->d + t;

			/* a cluster emptied by relocation keeps its centre */
			new_c[p] = S->counts[j] > 0 ?
				(double) (seg_fix_value(S->tot[p], S->tot[(size_t) f->k * f->d + p], S->unscale[t]) /
						  S->counts[j]) : old[p];
			s += (new_c[p] - old[p]) * (new_c[p] - old[p]);
		}
		if (shift)
			shift[j] = sqrt(s);
		total += s;
	}
	return total;
}

/* ---------- assignment ---------- */

/* An assignment pass over the chunks: a Lloyd step, or the final assignment. */
typedef struct PassJob
{
	const Fit  *f;
	const double *C;
	const double *Ct;			/* C transposed, for block_dot_t */
	const double *cnorm;
	double		tie_slack;		/* margins up to tie_slack * (‖x‖² + cnorm_max2) are settled exactly */
	double		cnorm_max2;		/* 2 max ‖c‖² */
	double		gap_floor;		/* gaps at or below it cannot let run_lloyd skip a pass */
	int32	   *labels;
	double	   *dist;			/* final: the exact distance of each row, or NULL */
	Sums	   *S;
	bool		lloyd;			/* a Lloyd step: centre sums; else the exact inertia */
	bool		tolerance;		/* the first Lloyd step: the pivot distances too (into bins) */
} PassJob;

static void
pass_setup(PassJob *job, const Fit *f, const double *C, Sums *S)
{
	double	   *cnorm = palloc(sizeof(double) * f->k);

	centre_norms(C, f->k, f->d, cnorm);
	job->cnorm_max2 = 0.0;
	for (int q = 0; q < f->k; q++)
		job->cnorm_max2 = Max(job->cnorm_max2, 2.0 * cnorm[q]);
	job->f = f;
	job->C = C;
	job->Ct = transposed(C, f->k, f->d);
	job->cnorm = cnorm;
	/*
	 * A dgemm value errs by at most (d + 2) eps (‖x‖² + 2‖c‖²), an exact
	 * distance by 2 d eps (‖x‖² + ‖c‖²): past four times both no other
	 * summation order could pick another centre, so every placement of the
	 * row in a block gives the label that the exact distances give.
	 */
	job->tie_slack = 8.0 * (f->d + 2) * DBL_EPSILON;
	job->S = S;
}

static void
pass_done(PassJob *job)
{
	pfree((double *) job->cnorm);
	pfree((double *) job->Ct);
}

/* The centre nearest x by exact distances, the first on ties. */
static int32
nearest_exact(const double *x, const double *C, int k, int d)
{
	int32		label = 0;
	double		bestd = seg_sqdist(x, C, d);

	for (int q = 1; q < k; q++)
	{
		double		v = seg_sqdist(x, C + (size_t) q * d, d);

		if (v < bestd)
		{
			bestd = v;
			label = q;
		}
	}
	return label;
}

/*
 * The labels of rows [i0, i0 + b) from their block's dgemm values, rows near
 * a tie settled by exact distances (the first centre on an exact tie).
 * Returns the smallest of gap_min and, over the rows, a lower bound on
 * (distance to the second nearest centre) - (distance to the nearest), in
 * exact arithmetic: what run_lloyd needs to know that no label can change.
 * Once below j->gap_floor it can no longer matter and is not refined.
 */
static double
block_labels_exact(const PassJob *j, int64 i0, int b, const double *D, int32 *lab, double gap_min)
{
	const Fit  *f = j->f;
	double		margin[SEG_KM_BLOCK],
				best[SEG_KM_BLOCK];

	SEG_WIDEST_KERNEL(block_labels, D, b, j->cnorm, f->k, lab, best, margin);
	for (int r = 0; r < b; r++)
	{
		double		scale = f->xnorm[i0 + r] + j->cnorm_max2;

		if (margin[r] <= j->tie_slack * scale)
		{
			lab[r] = nearest_exact(f->X + (i0 + r) * f->d, j->C, f->k, f->d);
			gap_min = 0.0;
		}
		else if (gap_min > j->gap_floor)
		{
			/* the exact squared distances are within err of the dgemm values */
			double		err = 0.25 * j->tie_slack * scale,
						d1 = best[r] + f->xnorm[i0 + r] + err,
						d2 = best[r] + margin[r] + f->xnorm[i0 + r] - err,
						s1 = sqrt(d1 > 0.0 ? d1 : 0.0),
						s2 = sqrt(d2 > 0.0 ? d2 : 0.0),
						g = (s2 - s1) - 4.0 * DBL_EPSILON * (s1 + s2);

			gap_min = g < gap_min ? g : gap_min;
		}
	}
	return gap_min;
}

/* ‖x − C[label]‖² of rows [i0, i0 + b) into the inertia (and dist) */
static void
block_inertia(const PassJob *j, int64 i0, int b, const int32 *lab, seg_i128 *bins)
{
	const Fit  *f = j->f;

	for (int r = 0; r < b; r++)
	{
		/* the expansion loses digits: the inertia adds exact distances */
		double		exact = seg_sqdist(f->X + (i0 + r) * f->d,
									   j->C + (size_t) lab[r] * f->d, f->d);

		if (j->dist)
			j->dist[i0 + r] = exact;
		exact_add(bins, exact);
	}
}

/*
 * One chunk of a pass: labels and counts, and the centre sums (a Lloyd
 * step) or the exact inertia (the final assignment).
 */
static void
pass_chunk(void *arg, int slot, int64 c)
{
	PassJob    *j = (PassJob *) arg;
	const Fit  *f = j->f;
	Sums	   *S = j->S;
	int			k = f->k,
				d = f->d;
	double	   *D = f->D + f->dstride * slot;
	int64	   *counts = S->counts + (size_t) slot * k;
	int32		lab[SEG_KM_BLOCK];
	int64		changed = 0,
				lo,
				hi;
	double		gap_min = S->gap[slot];

	chunk_range(f, c, &lo, &hi);
	for (int64 i0 = lo; i0 < hi; i0 += f->block)
	{
		int			b = (int) Min(f->block, hi - i0);

		/* -2 x.c only: ‖x‖² does not change the argmin */
		block_dot_t(f, i0, b, j->Ct, k, D);
		gap_min = block_labels_exact(j, i0, b, D, lab, gap_min);
		for (int r = 0; r < b; r++)
		{
			changed += (j->labels[i0 + r] != lab[r]);
			j->labels[i0 + r] = lab[r];
			counts[lab[r]]++;
		}
		if (j->lloyd)
		{
			SEG_WIDEST_KERNEL(block_fixed_sums, f->X + i0 * d, b, d, lab, S->scale,
							 S->bsum + (size_t) slot * 2 * k * d, (size_t) k * d);
			sums_flush_block(S, slot);
			if (j->tolerance)
				block_pivot_distances(f->X + i0 * d, b, d, S->pivot,
									  S->bins + (size_t) slot * SEG_EXP_BINS);
		}
		else
			block_inertia(j, i0, b, lab, S->bins + (size_t) slot * SEG_EXP_BINS);
	}
	S->changed[slot] += changed;
	S->gap[slot] = gap_min;
}

/*
 * Every row to its nearest centre in C: labels and counts in S (folded),
 * and the centre sums (lloyd) or the exact inertia.  Returns how many
 * labels changed.  A Lloyd pass with gap_floor -∞ is the first: it adds up
 * what the tolerance needs too.
 */
static int64
assign_pass(const Fit *f, const double *C, int32 *labels, double *dist, Sums *S, bool lloyd,
			double gap_floor)
{
	PassJob		job = {0};

	pass_setup(&job, f, C, S);
	job.labels = labels;
	job.dist = dist;
	job.lloyd = lloyd;
	job.tolerance = lloyd && gap_floor == -INFINITY;
	job.gap_floor = lloyd ? gap_floor : INFINITY;
	sums_reset(S);
	seg_run_chunks(f->nchunks, pass_chunk, &job);
	sums_fold(S);
	pass_done(&job);
	return S->changed[0];
}

/* The exact inertia (and, with dist, each row's distance) of rows whose labels are those of C already. */
static void
inertia_chunk(void *arg, int slot, int64 c)
{
	PassJob    *j = (PassJob *) arg;
	const Fit  *f = j->f;
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	block_inertia(j, lo, (int) (hi - lo), j->labels + lo, j->S->bins + (size_t) slot * SEG_EXP_BINS);
}

static void
inertia_pass(const Fit *f, const double *C, int32 *labels, double *dist, Sums *S)
{
	PassJob		job = {.f = f, .C = C, .labels = labels, .dist = dist, .S = S};

	memset(S->bins, 0, sizeof(seg_i128) * S->slots * SEG_EXP_BINS);
	seg_run_chunks(f->nchunks, inertia_chunk, &job);
	sums_fold_bins(S);
}

/*
 * After a Lloyd pass (and its tolerance: this overwrites the bins), empty
 * clusters take the farthest rows.  Returns whether any was empty.
 */
static bool
relocate_if_empty(const Fit *f, const double *C, int32 *labels, double **dist, Sums *S)
{
	for (int q = 0; q < f->k; q++)
		if (S->counts[q] == 0)
		{
			if (*dist == NULL)
				*dist = alloc_rows(f->n, sizeof(double));	/* most fits never need it */
			inertia_pass(f, C, labels, *dist, S);	/* for its distances */
			relocate_empty(f, labels, *dist, S);
			return true;
		}
	return false;
}

/* ---------- Lloyd ---------- */

/*
 * Runs Lloyd from the centres in C (updated in place); returns iterations.
 * *tol < 0: the first pass's sums set it.  *final is set when the last
 * pass's labels and counts (in S) are those of the returned centres, so
 * the final assignment needs only the inertia.
 *
 * When every row's nearest centre is nearer than its second by more than
 * twice the largest centre shift, no label can change in the next pass (the
 * triangle inequality, with slack for rounding): that pass would find
 * strict convergence and leave the centres as they are, so it is counted
 * without being run.  The model is the one the pass would give.
 */
static int
run_lloyd(const Fit *f, double *C, double *tol, double tol_rel, int max_iter, int restart,
		  int32 *labels, double **dist, Sums *S, bool *converged, bool *final)
{
	double	   *next = palloc(sizeof(double) * f->k * f->d);
	double	   *shifts = palloc(sizeof(double) * f->k);
	int			it;

	*converged = false;
	*final = false;
	for (int64 i = 0; i < f->n; i++)
		labels[i] = -1;
	for (it = 0; it < max_iter; it++)
	{
		int64		changed;
		double		shift,
					max_shift = 0.0;
		bool		relocated;

		CHECK_FOR_INTERRUPTS();
		/*
		 * A skip needs every gap above twice the largest shift, and a pass
		 * that does not converge moves some centre by more than √(tol / k).
		 */
		changed = assign_pass(f, C, labels, NULL, S, true,
							  *tol < 0.0 ? -INFINITY : 2.0 * sqrt(*tol / f->k));
		if (*tol < 0.0)
			*tol = sums_tolerance(S, f->n, tol_rel);
		relocated = relocate_if_empty(f, C, labels, dist, S);
		shift = update_centres(f, S, C, next, shifts);
		/* centres that did not move: this pass assigned the rows to the final ones */
		*final = memcmp(C, next, sizeof(double) * f->k * f->d) == 0;
		memcpy(C, next, sizeof(double) * f->k * f->d);
		ereport(DEBUG1,
				(errmsg_internal("kmeans restart %d iteration %d: %lld labels changed, centre shift %g",
								 restart, it + 1, (long long) changed, shift)));
		if (changed == 0 || shift <= *tol)
		{
			/* strict convergence (no label changed: the centres are final) or within tol */
			*converged = true;
			it++;
			break;
		}
		for (int j = 0; j < f->k; j++)
			max_shift = Max(max_shift, shifts[j]);
		if (!relocated && it + 1 < max_iter && S->gap[0] > 2.0 * max_shift * (1.0 + 1e-9))
		{
			ereport(DEBUG1,
					(errmsg_internal("kmeans restart %d iteration %d: no label can change (every gap exceeds %g, twice the largest shift)",
									 restart, it + 2, 2.0 * max_shift)));
			*converged = true;
			*final = true;		/* S holds the labels' counts; the centres stay */
			it += 2;
			break;
		}
	}
	pfree(next);
	pfree(shifts);
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
		  int32 *labels, double *dist, Sums *S, bool *converged)
{
	int			k = f->k,
				d = f->d;
	double	   *upper = alloc_rows(f->n, sizeof(double));
	double	   *lower = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * f->n * k);
	double	   *half = palloc(sizeof(double) * k * k);
	double	   *next_centre = palloc(sizeof(double) * k);
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
		sums_reset(S);	/* one thread: slot 0 */
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
			S->counts[label]++;
			for (int t = 0; t < d; t++)
			{
				int64		qh,
							ql;

				seg_fix_split(x[t], S->scale[t], &qh, &ql);
				S->tot[(size_t) label * d + t] += qh;
				S->tot[(size_t) (k + label) * d + t] += ql;
			}
			if ((i & 4095) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		relocate_empty(f, labels, dist, S);
		total_shift = update_centres(f, S, C, next, shift);
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
	pfree(next);
	pfree(shift);
	return Min(it, max_iter);
}

/* ---------- driver ---------- */

#define SEG_KM_INIT_ROWS 65536	/* k-means++ draws from this many rows at least, 512 per cluster */

/* Elkan's tolerance: the column sums (as a Lloyd pass with one cluster would add them) and pivot distances. */
static void
column_sums_chunk(void *arg, int slot, int64 c)
{
	PassJob    *j = (PassJob *) arg;
	const Fit  *f = j->f;
	Sums	   *S = j->S;
	int32		zero[SEG_KM_BLOCK] = {0};
	int64		lo,
				hi;

	chunk_range(f, c, &lo, &hi);
	for (int64 i0 = lo; i0 < hi; i0 += f->block)
	{
		int			b = (int) Min(f->block, hi - i0);

		SEG_WIDEST_KERNEL(block_fixed_sums, f->X + i0 * f->d, b, f->d, zero, S->scale,
						 S->bsum + (size_t) slot * 2 * S->k * S->d, (size_t) S->k * S->d);
		sums_flush_block(S, slot);
		block_pivot_distances(f->X + i0 * f->d, b, f->d, S->pivot,
							  S->bins + (size_t) slot * SEG_EXP_BINS);
	}
}

static double
tolerance_pass(const Fit *f, Sums *S, double tol)
{
	PassJob		job = {.f = f, .S = S};

	sums_reset(S);
	seg_run_chunks(f->nchunks, column_sums_chunk, &job);
	sums_fold(S);
	return sums_tolerance(S, f->n, tol);
}

double
seg_kmeans_assign_all(const double *X, int64 n, int d, const double *centroids, int k,
					  int32 *labels, double *dist)
{
	double	   *xnorm = alloc_rows(n, sizeof(double));
	double	   *maxabs = palloc(sizeof(double) * d);
	SegKmRows	rows = {X, n, d, xnorm};
	Fit			f;
	Sums		S;
	double		inertia;

	fit_setup(&f, X, n, d, k, xnorm);
	seg_km_row_facts(&rows, 0, NULL, maxabs, NULL);
	sums_init(&S, k, d, maxabs, X);	/* no tolerance here */
	(void) assign_pass(&f, centroids, labels, dist, &S, false, INFINITY);
	inertia = exact_total(S.bins);
	seg_free_big(xnorm);
	pfree(f.D);
	return inertia;
}

int64
seg_kmeans_init_rows(const SegKmeansOptions *opt, int64 n)
{
	if (opt->init_sample == 0)
		return n;
	return opt->init_sample > 0 ? opt->init_sample : Max(SEG_KM_INIT_ROWS, (int64) 512 * opt->k);
}

void
seg_kmeans_run(const double *X, int64 n, int d, const SegKmeansOptions *opt,
			   SegKmeansResult *res)
{
	int			k = opt->k;
	double	   *xnorm = alloc_rows(n, sizeof(double));
	SegKmRows	rows = {X, n, d, xnorm};
	int32	   *labels;
	double	   *dist = NULL;	/* Elkan's bounds, or Lloyd's relocation of empty clusters */
	bool		presorted = opt->rows_in_key_order;
	uint64	   *keys = presorted ? NULL : alloc_rows(n, sizeof(uint64));
	int64	   *hist = presorted ? NULL : palloc0(sizeof(int64) << SEG_KM_HIST_BITS);
	double	   *maxabs = palloc(sizeof(double) * d);
	double	   *C = palloc(sizeof(double) * k * d);
	double	   *sample,
			   *snorm,
			   *closest;
	int64		m = Min(n, seg_kmeans_init_rows(opt, n));
	double		tol = -1.0;		/* Lloyd's first pass computes it */
	pg_prng_state rng;
	Fit			f,
				fs;
	Sums		S;
	instr_time	t0,
				t1;

	INSTR_TIME_SET_CURRENT(t0);
	fit_setup(&f, X, n, d, k, xnorm);
	seg_km_row_facts(&rows, opt->seed, keys, maxabs, hist);
	if (presorted)
	{
		/* in key order already: the first m rows are the sample */
		sample = (double *) X;
		snorm = xnorm;
	}
	else
		m = seg_km_init_sample(&rows, keys, hist, m, &sample, &snorm);	/* frees keys */
	labels = alloc_rows(n, sizeof(int32));	/* after the sample: a lower peak */
	if (hist)
		pfree(hist);
	fit_setup(&fs, sample, m, d, k, snorm);
	closest = alloc_rows(m, sizeof(double));
	sums_init(&S, k, d, maxabs, sample);	/* the first sampled row: the tolerance's pivot */
	if (opt->algorithm == SEG_ALGO_ELKAN && k > 1)
	{
		tol = tolerance_pass(&f, &S, opt->tol);
		dist = alloc_rows(n, sizeof(double));
	}
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	ereport(DEBUG1,
			(errmsg_internal("kmeans: norms, keys and an init sample of %lld rows in %.1f ms",
							 (long long) m, INSTR_TIME_GET_MILLISEC(t1))));

	pg_prng_seed(&rng, opt->seed);
	res->inertia = INFINITY;
	res->tolerance = tol;		/* Lloyd: set again after the first pass */
	for (int r = 0; r < opt->n_init; r++)
	{
		bool		converged,
					final = false;
		int			iters;
		double		inertia;
		instr_time	t2,
					t3;

		INSTR_TIME_SET_CURRENT(t0);
		if (opt->init == SEG_INIT_KMEANSPP)
			init_kmeanspp(&fs, &rng, C, closest);
		else
			init_random(&fs, &rng, C);
		INSTR_TIME_SET_CURRENT(t1);
		if (opt->algorithm == SEG_ALGO_ELKAN && k > 1)
			iters = run_elkan(&f, C, tol, opt->max_iter, r, labels, dist, &S, &converged);
		else
			iters = run_lloyd(&f, C, &tol, opt->tol, opt->max_iter, r, labels, &dist, &S,
							  &converged, &final);
		INSTR_TIME_SET_CURRENT(t2);
		/* labels, sizes and inertia of the returned centres */
		if (final)
			inertia_pass(&f, C, labels, NULL, &S);
		else
			(void) assign_pass(&f, C, labels, NULL, &S, false, INFINITY);
		inertia = exact_total(S.bins);
		INSTR_TIME_SET_CURRENT(t3);
		INSTR_TIME_SUBTRACT(t3, t2);
		INSTR_TIME_SUBTRACT(t2, t1);
		INSTR_TIME_SUBTRACT(t1, t0);
		ereport(DEBUG1,
				(errmsg_internal("kmeans restart %d: init %.1f ms, %d iterations %.1f ms, final assignment %.1f ms (%d threads)",
								 r, INSTR_TIME_GET_MILLISEC(t1), iters, INSTR_TIME_GET_MILLISEC(t2),
								 INSTR_TIME_GET_MILLISEC(t3), seg_fit_threads())));
		ereport(DEBUG1,
				(errmsg_internal("kmeans restart %d: inertia %.17g after %d iterations%s (tolerance %.17g)",
								 r, inertia, iters, converged ? "" : " (not converged)", tol)));
		res->tolerance = tol;
		if (inertia < res->inertia)
		{
			res->inertia = inertia;
			res->n_iter = iters;
			res->converged = converged;
			res->best_init = r;
			memcpy(res->centroids, C, sizeof(double) * k * d);
			memcpy(res->sizes, S.counts, sizeof(int64) * k);
		}
	}
	seg_free_big(xnorm);
	seg_free_big(labels);
	if (dist)
		seg_free_big(dist);
	if (!presorted)
	{
		seg_free_big(sample);
		seg_free_big(snorm);
	}
	seg_free_big(closest);
	pfree(C);
	pfree(f.D);
	pfree(fs.D);
}
