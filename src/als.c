/*
 * als.c — implicit ALS with a conjugate-gradient solver, and item-item
 * cosine neighbours.  See als.h.
 *
 * ALS: each half-sweep solves, for every row a of one side against the other
 * side's factors B, (BᵀB + λI + Bᵀ(C_a − I)B) x = Bᵀ C_a p with a few CG
 * steps warm-started from the current x (Takács, Pilászy & Tikk 2011), so a
 * row costs O(f² + nnz_a·f) per step instead of O(f³ + nnz_a·f²).  CG never
 * raises a convex quadratic from its starting point, so the loss cannot
 * increase from one iteration to the next.  Rows are cut into fixed chunks
 * and per-chunk sums reduced in order: the same factors with any thread count.
 */
#include "postgres.h"

#include <cblas.h>
#include <math.h>

#include "als.h"
#include "fit_threads.h"

#define ALS_CHUNK 256

typedef struct HalfJob
{
	const SegCsr *m;
	const double *B;			/* other side, ncols x f */
	const double *G;			/* BᵀB + λI, f x f */
	double	   *A;				/* this side, nrows x f, updated */
	int			f;
	int			steps;
	double	   *scratch;		/* 3f per thread slot */
} HalfJob;

/* out = G v + Σ c_j (b_j·v) b_j over the row's pairs */
static void
apply(const HalfJob *job, int64 lo, int64 hi, const double *v, double *out)
{
	const SegCsr *m = job->m;
	int			f = job->f;

	cblas_dsymv(CblasRowMajor, CblasUpper, f, 1.0, job->G, f, v, 1, 0.0, out, 1);
	for (int64 e = lo; e < hi; e++)
	{
		const double *b = job->B + (int64) m->idx[e] * f;
		double		t = m->val[e] * cblas_ddot(f, b, 1, v, 1);

		cblas_daxpy(f, t, b, 1, out, 1);
	}
}

static void
half_chunk(void *arg, int slot, int64 chunk)
{
	const HalfJob *job = arg;
	const SegCsr *m = job->m;
	int			f = job->f;
	double	   *r = job->scratch + (int64) slot * 3 * f;
	double	   *p = r + f;
	double	   *Ap = p + f;
	int64		end = Min((chunk + 1) * ALS_CHUNK, m->nrows);

	for (int64 a = chunk * ALS_CHUNK; a < end; a++)
	{
		double	   *x = job->A + a * f;
		int64		lo = m->ptr[a],
					hi = m->ptr[a + 1];
		double		rs;

		/* r = Bᵀ C_a p − A_a x, with C_a = 1 + val on the row's pairs */
		apply(job, lo, hi, x, Ap);
		for (int i = 0; i < f; i++)
			r[i] = -Ap[i];
		for (int64 e = lo; e < hi; e++)
			cblas_daxpy(f, 1.0 + m->val[e], job->B + (int64) m->idx[e] * f, 1, r, 1);
		memcpy(p, r, sizeof(double) * f);
		rs = cblas_ddot(f, r, 1, r, 1);
		for (int s = 0; s < job->steps && rs > 1e-20; s++)
		{
			double		pAp,
						alpha,
						rs_new;

			apply(job, lo, hi, p, Ap);
			pAp = cblas_ddot(f, p, 1, Ap, 1);
			if (pAp <= 0)
				break;
			alpha = rs / pAp;
			cblas_daxpy(f, alpha, p, 1, x, 1);
			cblas_daxpy(f, -alpha, Ap, 1, r, 1);
			rs_new = cblas_ddot(f, r, 1, r, 1);
			for (int i = 0; i < f; i++)
				p[i] = r[i] + (rs_new / rs) * p[i];
			rs = rs_new;
		}
	}
}

/* G = BᵀB + λI (full symmetric, row-major) */
static void
gram(const double *B, int64 n, int f, double lambda, double *G)
{
	cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, f, n, 1.0, B, f, 0.0, G, f);
	for (int i = 0; i < f; i++)
	{
		G[i * f + i] += lambda;
		for (int j = 0; j < i; j++)
			G[i * f + j] = G[j * f + i];
	}
}

static void
half_sweep(const SegCsr *m, const double *B, double *A, int f, const SegAlsOptions *o,
		   double *G, double *scratch)
{
	HalfJob		job = {m, B, G, A, f, o->cg_steps, scratch};

	gram(B, m->ncols, f, o->lambda, G);
	seg_run_chunks((m->nrows + ALS_CHUNK - 1) / ALS_CHUNK, half_chunk, &job);
}

typedef struct LossJob
{
	const SegCsr *m;
	const double *X;
	const double *Y;
	int			f;
	double	   *part;			/* one per chunk */
} LossJob;

/* Σ over the chunk's observed pairs of c(1 − s)² − s², s = x·y */
static void
loss_chunk(void *arg, int slot, int64 chunk)
{
	const LossJob *job = arg;
	const SegCsr *m = job->m;
	int64		end = Min((chunk + 1) * ALS_CHUNK, m->nrows);
	double		sum = 0;

	for (int64 a = chunk * ALS_CHUNK; a < end; a++)
		for (int64 e = m->ptr[a]; e < m->ptr[a + 1]; e++)
		{
			double		s = cblas_ddot(job->f, job->X + a * job->f, 1,
									   job->Y + (int64) m->idx[e] * job->f, 1);

			sum += (1.0 + m->val[e]) * (1 - s) * (1 - s) - s * s;
		}
	job->part[chunk] = sum;
}

/*
 * The objective Σ_all c (p − x·y)² + λ(‖X‖² + ‖Y‖²): the unobserved pairs
 * (c = 1, p = 0) sum to trace(XᵀX YᵀY), so only observed pairs are visited.
 */
static double
als_loss(const SegCsr *m, const double *X, const double *Y, int f, double lambda,
		 double *G1, double *G2, double *part)
{
	int64		nchunks = (m->nrows + ALS_CHUNK - 1) / ALS_CHUNK;
	LossJob		job = {m, X, Y, f, part};
	double		loss = 0,
				reg = 0;

	gram(X, m->nrows, f, 0.0, G1);
	gram(Y, m->ncols, f, 0.0, G2);
	for (int i = 0; i < f * f; i++)
		loss += G1[i] * G2[i];
	for (int i = 0; i < f; i++)
		reg += G1[i * f + i] + G2[i * f + i];
	seg_run_chunks(nchunks, loss_chunk, &job);
	for (int64 c = 0; c < nchunks; c++)
		loss += part[c];
	return loss + lambda * reg;
}

void
seg_als_fit(const SegCsr *by_user, const SegCsr *by_item, const SegAlsOptions *o,
			double *X, double *Y, double *loss)
{
	int			f = o->factors;
	double	   *G = palloc(sizeof(double) * f * f);
	double	   *G2 = palloc(sizeof(double) * f * f);
	double	   *scratch = palloc(sizeof(double) * 3 * f * Max(seg_fit_threads(), 1));
	double	   *part = palloc(sizeof(double) * ((by_user->nrows + ALS_CHUNK - 1) / ALS_CHUNK + 1));

	for (int it = 0; it < o->iterations; it++)
	{
		half_sweep(by_user, Y, X, f, o, G, scratch);
		half_sweep(by_item, X, Y, f, o, G, scratch);
		loss[it] = als_loss(by_user, X, Y, f, o->lambda, G, G2, part);
	}
	pfree(G);
	pfree(G2);
	pfree(scratch);
	pfree(part);
}

/* ---------- item-item cosine ---------- */

typedef struct Cand
{
	double		s;
	int32		j;
} Cand;

typedef struct NeighborJob
{
	const SegCsr *by_user;
	const SegCsr *by_item;
	const double *norm;			/* per item */
	int			m;
	int32	   *nb;
	double	   *sc;
	double	   *acc;			/* n_items per slot, kept zero between items */
	int32	   *touched;		/* n_items per slot */
	Cand	   *cand;			/* n_items per slot */
} NeighborJob;

static int
cmp_cand(const void *a, const void *b)
{
	const Cand *x = a,
			   *y = b;

	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return (x->j > y->j) - (x->j < y->j);
}

static void
neighbor_chunk(void *arg, int slot, int64 chunk)
{
	const NeighborJob *job = arg;
	int32		nitems = job->by_item->nrows;
	double	   *acc = job->acc + (int64) slot * nitems;
	int32	   *touched = job->touched + (int64) slot * nitems;
	Cand	   *cand = job->cand + (int64) slot * nitems;
	int64		end = Min((chunk + 1) * ALS_CHUNK, nitems);

	for (int64 i = chunk * ALS_CHUNK; i < end; i++)
	{
		int			nt = 0,
					nc = 0;

		for (int64 e = job->by_item->ptr[i]; e < job->by_item->ptr[i + 1]; e++)
		{
			int32		u = job->by_item->idx[e];
			double		vu = job->by_item->val[e];

			for (int64 g = job->by_user->ptr[u]; g < job->by_user->ptr[u + 1]; g++)
			{
				int32		j = job->by_user->idx[g];

				if (acc[j] == 0)
					touched[nt++] = j;
				acc[j] += vu * job->by_user->val[g];
			}
		}
		for (int t = 0; t < nt; t++)
		{
			int32		j = touched[t];

			if (j != i && acc[j] > 0)
			{
				cand[nc].s = acc[j] / (job->norm[i] * job->norm[j]);
				cand[nc].j = j;
				nc++;
			}
			acc[j] = 0;
		}
		qsort(cand, nc, sizeof(Cand), cmp_cand);
		for (int r = 0; r < job->m; r++)
		{
			job->nb[i * job->m + r] = r < nc ? cand[r].j : -1;
			job->sc[i * job->m + r] = r < nc ? cand[r].s : 0;
		}
	}
}

void
seg_item_neighbors(const SegCsr *by_user, const SegCsr *by_item, int m, int32 *nb, double *sc)
{
	int32		nitems = by_item->nrows;
	int			slots = Max(seg_fit_threads(), 1);
	NeighborJob job;
	double	   *norm = palloc(sizeof(double) * Max(nitems, 1));

	for (int32 i = 0; i < nitems; i++)
	{
		double		s = 0;

		for (int64 e = by_item->ptr[i]; e < by_item->ptr[i + 1]; e++)
			s += by_item->val[e] * by_item->val[e];
		norm[i] = s > 0 ? sqrt(s) : 1;
	}
	job.by_user = by_user;
	job.by_item = by_item;
	job.norm = norm;
	job.m = m;
	job.nb = nb;
	job.sc = sc;
	job.acc = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * nitems * slots);
	memset(job.acc, 0, sizeof(double) * nitems * slots);
	job.touched = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * nitems * slots);
	job.cand = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(Cand) * nitems * slots);
	seg_run_chunks((nitems + ALS_CHUNK - 1) / ALS_CHUNK, neighbor_chunk, &job);
	pfree(job.acc);
	pfree(job.touched);
	pfree(job.cand);
	pfree(norm);
}
