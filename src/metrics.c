/*
 * metrics.c — cluster-quality metrics with scikit-learn's definitions.
 *
 * Labels are mapped to 0..L-1 first.  The silhouette needs every pairwise
 * distance: they come from dgemm on blocks of rows against chunks of all
 * rows, so memory stays O(block x chunk + block x L), never O(n^2).
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "utils/memutils.h"

#include <cblas.h>

#include "metrics.h"

#define SEG_MET_BLOCK	256
#define SEG_MET_CHUNK	4096

static void *
alloc_rows(int64 n, Size each)
{
	return MemoryContextAllocHuge(CurrentMemoryContext, (Size) Max(n, 1) * each);
}

static int
cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a,
				y = *(const int32 *) b;

	return (x > y) - (x < y);
}

/* Sorted distinct labels of labels[0..n), and their count. */
static int32 *
distinct_labels(const int32 *labels, int64 n, int64 *count)
{
	int32	   *u = alloc_rows(n, sizeof(int32));
	int64		m = 0;

	memcpy(u, labels, sizeof(int32) * n);
	qsort(u, n, sizeof(int32), cmp_int32);
	for (int64 i = 0; i < n; i++)
		if (m == 0 || u[m - 1] != u[i])
			u[m++] = u[i];
	*count = m;
	return u;
}

int64
seg_count_labels(const int32 *labels, int64 n)
{
	int64		m;

	pfree(distinct_labels(labels, n, &m));
	return m;
}

/* Labels as dense indexes 0..L-1 (L returned in *nlab). */
static int32 *
dense_labels(const int32 *labels, int64 n, int *nlab)
{
	int64		m;
	int32	   *u = distinct_labels(labels, n, &m);
	int32	   *dense = alloc_rows(n, sizeof(int32));

	for (int64 i = 0; i < n; i++)
	{
		int32	   *p = bsearch(&labels[i], u, m, sizeof(int32), cmp_int32);

		dense[i] = (int32) (p - u);
	}
	pfree(u);
	*nlab = (int) m;
	return dense;
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

/* Cluster sizes and means. */
static void
cluster_means(const double *X, int64 n, int d, const int32 *lab, int L,
			  int64 *size, double *mean)
{
	memset(size, 0, sizeof(int64) * L);
	memset(mean, 0, sizeof(double) * L * d);
	for (int64 i = 0; i < n; i++)
	{
		size[lab[i]]++;
		for (int t = 0; t < d; t++)
			mean[(size_t) lab[i] * d + t] += X[i * d + t];
	}
	for (int c = 0; c < L; c++)
		for (int t = 0; t < d; t++)
			mean[(size_t) c * d + t] /= size[c];
}

double
seg_silhouette(const double *X, int64 n, int d, const int32 *labels)
{
	int			L;
	int32	   *lab = dense_labels(labels, n, &L);
	int64	   *size = palloc0(sizeof(int64) * L);
	double	   *norm = alloc_rows(n, sizeof(double));
	double	   *D = palloc(sizeof(double) * SEG_MET_BLOCK * SEG_MET_CHUNK);
	double	   *acc = palloc(sizeof(double) * SEG_MET_BLOCK * L);
	double		total = 0.0;

	for (int64 i = 0; i < n; i++)
	{
		size[lab[i]]++;
		norm[i] = cblas_ddot(d, X + i * d, 1, X + i * d, 1);
	}
	for (int64 i0 = 0; i0 < n; i0 += SEG_MET_BLOCK)
	{
		int			b = (int) Min(SEG_MET_BLOCK, n - i0);

		memset(acc, 0, sizeof(double) * b * L);
		for (int64 j0 = 0; j0 < n; j0 += SEG_MET_CHUNK)
		{
			int			c = (int) Min(SEG_MET_CHUNK, n - j0);

			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, c, d,
						-2.0, X + i0 * d, d, X + j0 * d, d, 0.0, D, c);
			for (int r = 0; r < b; r++)
			{
				double	   *a = acc + (size_t) r * L;
				const double *row = D + (size_t) r * c;

				for (int q = 0; q < c; q++)
				{
					double		v = row[q] + norm[i0 + r] + norm[j0 + q];

					/* the distance of a row to itself is exactly 0 */
					if (i0 + r != j0 + q && v > 0.0)
						a[lab[j0 + q]] += sqrt(v);
				}
			}
			CHECK_FOR_INTERRUPTS();
		}
		for (int r = 0; r < b; r++)
		{
			const double *a = acc + (size_t) r * L;
			int			own = lab[i0 + r];
			double		intra,
						inter = INFINITY,
						s;

			if (size[own] <= 1)
				continue;		/* singleton: 0, as scikit-learn's nan_to_num */
			intra = a[own] / (size[own] - 1);
			for (int c2 = 0; c2 < L; c2++)
				if (c2 != own && a[c2] / size[c2] < inter)
					inter = a[c2] / size[c2];
			s = (inter - intra) / Max(intra, inter);
			if (isfinite(s))
				total += s;
		}
	}
	pfree(lab);
	pfree(size);
	pfree(norm);
	pfree(D);
	pfree(acc);
	return total / n;
}

/* numpy.allclose(v, 0): every |v| <= 1e-8 */
static bool
all_near_zero(const double *v, int64 m)
{
	for (int64 i = 0; i < m; i++)
		if (fabs(v[i]) > 1e-8)
			return false;
	return true;
}

double
seg_davies_bouldin(const double *X, int64 n, int d, const int32 *labels)
{
	int			L;
	int32	   *lab = dense_labels(labels, n, &L);
	int64	   *size = palloc(sizeof(int64) * L);
	double	   *mean = palloc(sizeof(double) * L * d);
	double	   *intra = palloc0(sizeof(double) * L);
	double	   *cdist = palloc(sizeof(double) * L * L);
	double		total = 0.0;

	cluster_means(X, n, d, lab, L, size, mean);
	for (int64 i = 0; i < n; i++)
		intra[lab[i]] += sqrt(sqdist(X + i * d, mean + (size_t) lab[i] * d, d));
	for (int c = 0; c < L; c++)
		intra[c] /= size[c];
	for (int a = 0; a < L; a++)
		for (int b = 0; b < L; b++)
			cdist[(size_t) a * L + b] = sqrt(sqdist(mean + (size_t) a * d, mean + (size_t) b * d, d));
	if (all_near_zero(intra, L) || all_near_zero(cdist, (int64) L * L))
		return 0.0;
	for (int a = 0; a < L; a++)
	{
		double		worst = -INFINITY;

		for (int b = 0; b < L; b++)
		{
			double		cd = cdist[(size_t) a * L + b];
			double		r = (intra[a] + intra[b]) / (cd == 0.0 ? INFINITY : cd);

			if (r > worst)
				worst = r;
		}
		total += worst;
	}
	return total / L;
}

double
seg_calinski_harabasz(const double *X, int64 n, int d, const int32 *labels)
{
	int			L;
	int32	   *lab = dense_labels(labels, n, &L);
	int64	   *size = palloc(sizeof(int64) * L);
	double	   *mean = palloc(sizeof(double) * L * d);
	double	   *all = palloc0(sizeof(double) * d);
	double		extra = 0.0,
				intra = 0.0;

	cluster_means(X, n, d, lab, L, size, mean);
	for (int64 i = 0; i < n; i++)
		for (int t = 0; t < d; t++)
			all[t] += X[i * d + t];
	for (int t = 0; t < d; t++)
		all[t] /= n;
	for (int c = 0; c < L; c++)
		extra += size[c] * sqdist(mean + (size_t) c * d, all, d);
	for (int64 i = 0; i < n; i++)
		intra += sqdist(X + i * d, mean + (size_t) lab[i] * d, d);
	if (intra == 0.0)
		return 1.0;
	return extra * (n - L) / (intra * (L - 1.0));
}

typedef struct Pair
{
	int32		a;
	int32		b;
} Pair;

static int
cmp_pair(const void *x, const void *y)
{
	const Pair *p = x,
			   *q = y;

	if (p->a != q->a)
		return (p->a > q->a) - (p->a < q->a);
	return (p->b > q->b) - (p->b < q->b);
}

/* Sum over groups of equal values of count^2 (values sorted). */
static int64
sum_sq_runs(const int32 *v, int64 n)
{
	int64		total = 0,
				run = 0;

	for (int64 i = 0; i < n; i++)
	{
		run++;
		if (i + 1 == n || v[i + 1] != v[i])
		{
			total += run * run;
			run = 0;
		}
	}
	return total;
}

/*
 * Adjusted Rand index through the pair confusion matrix, as scikit-learn
 * 1.2 computes it, with 128-bit products where Python uses big integers.
 */
double
seg_adjusted_rand(const int32 *a, const int32 *b, int64 n)
{
	Pair	   *pairs = alloc_rows(n, sizeof(Pair));
	int32	   *v = alloc_rows(n, sizeof(int32));
	int64		ss = 0,
				sum_c,
				sum_k,
				run = 0;
	int64		tn,
				fp,
				fn,
				tp;
	__int128	num,
				den;

	for (int64 i = 0; i < n; i++)
	{
		pairs[i].a = a[i];
		pairs[i].b = b[i];
	}
	qsort(pairs, n, sizeof(Pair), cmp_pair);
	for (int64 i = 0; i < n; i++)
	{
		run++;
		if (i + 1 == n || cmp_pair(&pairs[i], &pairs[i + 1]) != 0)
		{
			ss += run * run;
			run = 0;
		}
	}
	memcpy(v, a, sizeof(int32) * n);
	qsort(v, n, sizeof(int32), cmp_int32);
	sum_c = sum_sq_runs(v, n);
	memcpy(v, b, sizeof(int32) * n);
	qsort(v, n, sizeof(int32), cmp_int32);
	sum_k = sum_sq_runs(v, n);
	pfree(pairs);
	pfree(v);

	tp = ss - n;
	fp = sum_k - ss;
	fn = sum_c - ss;
	tn = n * n - fp - fn - ss;
	if (fn == 0 && fp == 0)
		return 1.0;
	num = (__int128) 2 * ((__int128) tp * tn - (__int128) fn * fp);
	den = (__int128) (tp + fn) * (fn + tn) + (__int128) (tp + fp) * (fp + tn);
	return (double) num / (double) den;
}
