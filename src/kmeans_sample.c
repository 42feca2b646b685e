/*
 * kmeans_sample.c — the rows k-means++ draws from, chosen by the rows alone.
 *
 * One pass over the rows gathers what every later pass needs (‖x‖², the
 * largest |x| per feature) and a seeded key per row; the
 * init sample is the rows of smallest (key, bytes), in that order.  Nothing
 * here depends on the order the rows came in, nor on the thread count.
 */
#include "postgres.h"

#include <math.h>

#include "big_alloc.h"
#include "fit_threads.h"
#include "kmeans_sample.h"
#include "rows_state.h"

#define SEG_KM_FACT_CHUNK 16384	/* rows per chunk of the pass: its results are order-free */

/*
 * One pass for what every later pass needs: ‖x‖² of each row, the largest
 * |x| per feature, and the rows' order keys.
 */
typedef struct KeyJob
{
	const SegKmRows *f;
	uint64		seed;
	uint64	   *keys;			/* n, or NULL */
	double	   *xnorm;			/* n */
	double	   *maxabs;			/* slots x d */
	int64	   *hist;			/* slots x 2^SEG_KM_HIST_BITS: the keys' top bits */
} KeyJob;

static void
key_chunk(void *arg, int slot, int64 c)
{
	KeyJob	   *j = (KeyJob *) arg;
	const SegKmRows *f = j->f;
	int			d = f->d;
	double	   *mx = j->maxabs + (size_t) slot * d;
	int64	   *hist = j->hist + ((size_t) slot << SEG_KM_HIST_BITS);
	int64		lo,
				hi,
				i;

	lo = c * SEG_KM_FACT_CHUNK;
	hi = Min(f->n, lo + SEG_KM_FACT_CHUNK);
	/* four rows at a time: four independent sums, and a quarter of the maxima's updates */
	for (i = lo; i + 4 <= hi; i += 4)
	{
		const double *x0 = f->X + i * d,
				   *x1 = x0 + d,
				   *x2 = x1 + d,
				   *x3 = x2 + d;
		double		n0 = 0.0,
					n1 = 0.0,
					n2 = 0.0,
					n3 = 0.0;

		for (int t = 0; t < d; t++)
		{
			double		a01 = Max(fabs(x0[t]), fabs(x1[t])),
						a23 = Max(fabs(x2[t]), fabs(x3[t])),
						a = Max(a01, a23);

			n0 += x0[t] * x0[t];
			n1 += x1[t] * x1[t];
			n2 += x2[t] * x2[t];
			n3 += x3[t] * x3[t];
			mx[t] = a > mx[t] ? a : mx[t];
		}
		j->xnorm[i] = n0;
		j->xnorm[i + 1] = n1;
		j->xnorm[i + 2] = n2;
		j->xnorm[i + 3] = n3;
	}
	for (; i < hi; i++)
	{
		const double *x = f->X + i * d;
		double		xn = 0.0;

		for (int t = 0; t < d; t++)
		{
			xn += x[t] * x[t];
			mx[t] = fabs(x[t]) > mx[t] ? fabs(x[t]) : mx[t];
		}
		j->xnorm[i] = xn;
	}
	for (i = lo; i < hi && j->keys; i++)
	{
		uint64		key = seg_row_order_key(d, j->seed, f->X + i * d);

		j->keys[i] = key;
		hist[key >> (64 - SEG_KM_HIST_BITS)]++;
	}
}

void
seg_km_row_facts(const SegKmRows *f, uint64 seed, uint64 *keys, double *maxabs, int64 *hist)
{
	int			slots = seg_fit_threads();
	KeyJob		job = {f, seed, keys, f->xnorm,
		palloc0(sizeof(double) * slots * f->d),
	palloc0(sizeof(int64) * ((size_t) slots << SEG_KM_HIST_BITS))};

	seg_run_chunks((f->n + SEG_KM_FACT_CHUNK - 1) / SEG_KM_FACT_CHUNK, key_chunk, &job);
	memset(maxabs, 0, sizeof(double) * f->d);
	for (int sl = 0; sl < slots; sl++)
	{
		for (int t = 0; t < f->d; t++)
			maxabs[t] = Max(maxabs[t], job.maxabs[sl * f->d + t]);
		if (hist)
			for (int b = 0; b < (1 << SEG_KM_HIST_BITS); b++)
				hist[b] += job.hist[((size_t) sl << SEG_KM_HIST_BITS) + b];
	}
	pfree(job.maxabs);
	pfree(job.hist);
}

typedef struct KeyedRow
{
	uint64		key;
	int64		row;
} KeyedRow;

/* Sort by key (LSD radix, 8 bits a pass; passes where all share the byte are skipped). */
static void
radix_sort_keyed(KeyedRow *a, int64 n)
{
	KeyedRow   *tmp = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(KeyedRow) * Max(n, 1));
	int64		count[256];

	for (int shift = 0; shift < 64; shift += 8)
	{
		int64		pos = 0;
		bool		one = false;
		KeyedRow   *t;

		memset(count, 0, sizeof(count));
		for (int64 i = 0; i < n; i++)
			count[(a[i].key >> shift) & 255]++;
		for (int b = 0; b < 256; b++)
		{
			int64		c = count[b];

			one = one || c == n;
			count[b] = pos;
			pos += c;
		}
		if (one)
			continue;
		for (int64 i = 0; i < n; i++)
			tmp[count[(a[i].key >> shift) & 255]++] = a[i];
		t = a;
		memcpy(t, tmp, sizeof(KeyedRow) * n);
	}
	pfree(tmp);
}

/*
 * The rows k-means++ and random init draw from: the m rows with the
 * smallest (order key, bytes), in that order, copied to *sample (m x d) with
 * their ‖x‖² in *snorm.  The keys are a seeded hash of each row, so this is
 * a uniform seeded sample, and all rows in the canonical order when n <= m:
 * a function of the multiset of rows, not of the order they came in.
 */
int64
seg_km_init_sample(const SegKmRows *f, uint64 *keys, const int64 *hist, int64 m,
				   double **sample, double **snorm)
{
	uint64		bound = PG_UINT64_MAX;
	int64		c = 0,
				held = f->n;
	KeyedRow   *a;
	int			d = f->d;

	if (m < f->n)
	{
		/* every row whose key's top bits are within the first buckets holding m rows */
		int64		cum = 0;
		int			b;

		for (b = 0; b < (1 << SEG_KM_HIST_BITS) - 1; b++)
			if ((cum += hist[b]) >= m)
				break;
		if (b < (1 << SEG_KM_HIST_BITS) - 1)
		{
			bound = (((uint64) b + 1) << (64 - SEG_KM_HIST_BITS)) - 1;
			held = cum;
		}
	}
	a = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(KeyedRow) * Max(held, 1));
	for (int64 i = 0; i < f->n; i++)
		if (keys[i] <= bound)
		{
			a[c].key = keys[i];
			a[c++].row = i;
		}
	Assert(c == held);
	seg_free_big(keys);			/* before the sample is allocated: a lower peak */
	radix_sort_keyed(a, c);
	/* equal keys: by the rows' bytes (rows with equal bytes are interchangeable) */
	for (int64 i = 1; i < c; i++)
		for (int64 y = i; y > 0 && a[y].key == a[y - 1].key &&
			 memcmp(f->X + a[y].row * d, f->X + a[y - 1].row * d, sizeof(double) * d) < 0; y--)
		{
			KeyedRow	t = a[y];

			a[y] = a[y - 1];
			a[y - 1] = t;
		}
	m = Min(m, c);
	*sample = seg_alloc_big(CurrentMemoryContext, Max(m, 1) * sizeof(double) * d);
	*snorm = seg_alloc_big(CurrentMemoryContext, Max(m, 1) * sizeof(double));
	for (int64 i = 0; i < m; i++)
	{
		memcpy(*sample + i * d, f->X + a[i].row * d, sizeof(double) * d);
		(*snorm)[i] = f->xnorm[a[i].row];
	}
	pfree(a);
	return m;
}
