/*
 * exact_sums.h — sums that do not depend on the order of their terms.
 *
 * A row's dgemm value may differ in its last bits with the row's place in a
 * block (OpenBLAS's edge kernels add in another order), and floating-point
 * sums depend on the order of their terms; the rows a k-means fit holds are
 * in whatever order the plan delivered them.  So its centre sums are exact
 * integer sums of the rows in fixed point (per feature a power-of-two scale
 * that brings its largest |x| just under 2^50, and 50 more bits below the
 * point; sums of a block of 2048 rows fit in int64), and its inertia an
 * exact sum of the distances' binary mantissas by exponent.  Integer sums
 * do not care in which order, or on which thread, rows are added.
 */
#ifndef SEG_EXACT_SUMS_H
#define SEG_EXACT_SUMS_H

#include <math.h>

#define SEG_FIX_BITS 50
#define SEG_FIX_MAGIC 6755399441055744.0	/* 1.5 * 2^52: v + it rounds v to an integer in the low bits */
#define SEG_FIX_MAGIC_BITS INT64CONST(0x4338000000000000)
#define SEG_EXP_BINS 2048

typedef __int128 seg_i128;

/* round(v) for |v| < 2^51, by the magic number: the same bits as the vector kernels */
static inline int64
seg_fix_round(double v)
{
	double		t = v + SEG_FIX_MAGIC;
	int64		q;

	memcpy(&q, &t, sizeof(q));
	return q - SEG_FIX_MAGIC_BITS;
}

/* Per feature: x * scale[t] is below 2^50 in magnitude; unscale[t] = 1 / scale[t]. */
static inline void
fixed_scales(const double *maxabs, int d, double *scale, double *unscale)
{
	for (int t = 0; t < d; t++)
	{
		int			e = 0;

		if (maxabs[t] > 0.0)
			(void) frexp(maxabs[t], &e);	/* maxabs < 2^e */
		/* 2^1023 at most: features below 2^-973 keep fewer bits, never overflow */
		e = Max(Min(SEG_FIX_BITS - e, 1023), -1022);
		scale[t] = ldexp(1.0, e);
		unscale[t] = ldexp(1.0, -e);
	}
}

/* bins[exponent] += mantissa: an exact sum of non-negative finite doubles */
static inline void
exact_add(seg_i128 *bins, double v)
{
	uint64		bits;
	int			e;
	uint64		m;

	memcpy(&bits, &v, sizeof(bits));
	e = (int) (bits >> 52) & 2047;
	m = bits & ((UINT64CONST(1) << 52) - 1);
	if (e != 0)
		m |= UINT64CONST(1) << 52;
	bins[e] += m;
}

/* The value of exact sums, added from the smallest exponent up: a function of the bins only. */
static inline double
exact_total(const seg_i128 *bins)
{
	long double t = 0.0L;

	for (int e = 0; e < SEG_EXP_BINS; e++)
		if (bins[e] != 0)
			t += ldexpl((long double) bins[e], Max(e, 1) - 1075);
	return (double) t;
}

/*
 * A value in fixed point is two integers: hi = round(x * scale) and lo =
 * round((x * scale - hi) * 2^50), so every x within 2^48 of its feature's
 * largest |x| is held exactly (the mean of equal rows is that row, bit for
 * bit).  Both are below 2^50 in magnitude.
 */
#define SEG_FIX_LO 1125899906842624.0	/* 2^50 */

static inline void
seg_fix_split(double x, double scale, int64 *hi, int64 *lo)
{
	double		v = x * scale,
				h = (v + SEG_FIX_MAGIC) - SEG_FIX_MAGIC;

	*hi = seg_fix_round(v);
	*lo = seg_fix_round((v - h) * SEG_FIX_LO);
}

/* The value of fixed-point sums hi + lo / 2^50, unscaled: a function of the integers alone. */
static inline long double
seg_fix_value(seg_i128 hi, seg_i128 lo, double unscale)
{
	return ((long double) hi + (long double) lo / SEG_FIX_LO) * unscale;
}

#endif							/* SEG_EXACT_SUMS_H */
