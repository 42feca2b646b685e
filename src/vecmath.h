/*
 * vecmath.h — small vector kernels shared by training and scoring.
 */
#ifndef SEG_VECMATH_H
#define SEG_VECMATH_H

#include "c.h"

/* Two doubles in one SSE2 register (every x86-64 CPU has SSE2). */
typedef double seg_v2d __attribute__((vector_size(16)));
typedef int64 seg_v2i __attribute__((vector_size(16)));	/* what comparing two seg_v2d gives */

static inline seg_v2d
seg_load2(const double *p)
{
	seg_v2d		v;

	memcpy(&v, p, sizeof(v));	/* an unaligned load */
	return v;
}

/*
 * Whether all of v[0..n-1] are finite, without a branch per element: x - x
 * is +0 for a finite x and NaN for ±Inf or NaN, so the OR of those bit
 * patterns is zero when every element is finite.  (Under a directed
 * rounding mode x - x may be -0: a false alarm, which callers re-check.)
 */
static inline bool
seg_all_finite(const double *v, int64 n)
{
	seg_v2i		acc = {0, 0};
	uint64		tail = 0;
	int64		i = 0;

	for (; i + 4 <= n; i += 4)
	{
		seg_v2d		a = seg_load2(v + i),
					b = seg_load2(v + i + 2);

		acc |= (seg_v2i) (a - a) | (seg_v2i) (b - b);
	}
	for (; i < n; i++)
	{
		double		z = v[i] - v[i];
		uint64		bits;

		memcpy(&bits, &z, sizeof(bits));
		tail |= bits;
	}
	return (acc[0] | acc[1] | (int64) tail) == 0;
}

/*
 * Squared Euclidean distance.  Four accumulators so the additions do not
 * wait on each other, held two by two in SSE2 registers: lane for lane the
 * same operations in the same order as four scalar sums, so the result is
 * bit-identical to the scalar loop, at half the instructions.  Every caller
 * uses this one, so training, scoring and explanations agree to the last bit.
 */
static inline double
seg_sqdist(const double *a, const double *b, int d)
{
	seg_v2d		s01 = {0.0, 0.0},
				s23 = {0.0, 0.0};
	double		s0,
				s1,
				s2,
				s3;
	int			i = 0;

	for (; i + 4 <= d; i += 4)
	{
		seg_v2d		t01 = seg_load2(a + i) - seg_load2(b + i);
		seg_v2d		t23 = seg_load2(a + i + 2) - seg_load2(b + i + 2);

		s01 += t01 * t01;
		s23 += t23 * t23;
	}
	s0 = s01[0];
	s1 = s01[1];
	s2 = s23[0];
	s3 = s23[1];
	for (; i < d; i++)
		s0 += (a[i] - b[i]) * (a[i] - b[i]);
	return (s0 + s1) + (s2 + s3);
}

/*
 * The end of a pair of distances: the elements past the last multiple of
 * four go to lane 0, then the lanes are added as seg_sqdist adds them.
 * p[4] and q[4] are the lane sums for b0 and b1.
 */
static inline void
seg_sqdist_pair_finish(const double *a, const double *b0, const double *b1, int i, int d,
					   const double *p, const double *q, double *d0, double *d1)
{
	double		p0 = p[0],
				q0 = q[0];

	for (; i < d; i++)
	{
		p0 += (a[i] - b0[i]) * (a[i] - b0[i]);
		q0 += (a[i] - b1[i]) * (a[i] - b1[i]);
	}
	*d0 = (p0 + p[1]) + (p[2] + p[3]);
	*d1 = (q0 + q[1]) + (q[2] + q[3]);
}

/*
 * seg_sqdist(a, b0, d) and seg_sqdist(a, b1, d) at once, bit for bit: the
 * same operations per centre, with the loads of a shared and twice the
 * independent additions in flight (scoring a row against its k centres).
 */
static inline void
seg_sqdist_pair(const double *a, const double *b0, const double *b1, int d,
				double *d0, double *d1)
{
	seg_v2d		p01 = {0.0, 0.0},
				p23 = {0.0, 0.0},
				q01 = {0.0, 0.0},
				q23 = {0.0, 0.0};
	int			i = 0;

	for (; i + 4 <= d; i += 4)
	{
		seg_v2d		a01 = seg_load2(a + i);
		seg_v2d		a23 = seg_load2(a + i + 2);
		seg_v2d		t01 = a01 - seg_load2(b0 + i);
		seg_v2d		t23 = a23 - seg_load2(b0 + i + 2);
		seg_v2d		u01 = a01 - seg_load2(b1 + i);
		seg_v2d		u23 = a23 - seg_load2(b1 + i + 2);

		p01 += t01 * t01;
		p23 += t23 * t23;
		q01 += u01 * u01;
		q23 += u23 * u23;
	}
	{
		double		p[4] = {p01[0], p01[1], p23[0], p23[1]};
		double		q[4] = {q01[0], q01[1], q23[0], q23[1]};

		seg_sqdist_pair_finish(a, b0, b1, i, d, p, q, d0, d1);
	}
}

/* segment.vector_kernels: auto (AVX2 or AVX-512 where the CPU has it) or sse2 (tests compare them) */
#define SEG_KERNELS_AUTO 0
#define SEG_KERNELS_SSE2 1
extern int	seg_vector_kernels;

#if defined(__x86_64__) && defined(__GNUC__)
#define SEG_HAVE_AVX2_KERNELS 1
/* fn_avx2(...) on CPUs with AVX2, else fn_sse2(...): both give the same bits */
#define SEG_AVX2_OR_SSE2(fn, ...) \
	(seg_vector_kernels == SEG_KERNELS_AUTO && __builtin_cpu_supports("avx2") ? \
	 fn##_avx2(__VA_ARGS__) : fn##_sse2(__VA_ARGS__))
typedef double seg_v4d __attribute__((vector_size(32)));
typedef int64 seg_v4i __attribute__((vector_size(32)));

/*
 * fn_avx512(...) where the CPU has AVX-512F, else as SEG_AVX2_OR_SSE2: for
 * kernels whose lanes only compare, select and add integers or exact
 * products, so every width gives the same bits.
 */
#define SEG_WIDEST_KERNEL(fn, ...) \
	(seg_vector_kernels == SEG_KERNELS_AUTO && __builtin_cpu_supports("avx512f") ? \
	 fn##_avx512(__VA_ARGS__) : SEG_AVX2_OR_SSE2(fn, __VA_ARGS__))
typedef double seg_v8d __attribute__((vector_size(64)));
typedef int64 seg_v8i __attribute__((vector_size(64)));

/*
 * seg_sqdist_pair on AVX2: the four accumulators of seg_sqdist in one
 * 256-bit register, lane for lane the same operations in the same order, so
 * the bits are the same.  Compiled for AVX2 only (not FMA: a fused
 * multiply-add would round differently); callers check the CPU first.
 */
__attribute__((target("avx2")))
static inline void
seg_sqdist_pair_avx2(const double *a, const double *b0, const double *b1, int d,
					 double *d0, double *d1)
{
	seg_v4d		p = {0.0, 0.0, 0.0, 0.0},
				q = {0.0, 0.0, 0.0, 0.0};
	int			i = 0;

	for (; i + 4 <= d; i += 4)
	{
		seg_v4d		av,
					bv,
					cv;

		memcpy(&av, a + i, sizeof(av));
		memcpy(&bv, b0 + i, sizeof(bv));
		memcpy(&cv, b1 + i, sizeof(cv));
		bv = av - bv;
		cv = av - cv;
		p += bv * bv;
		q += cv * cv;
	}
	{
		double		ps[4] = {p[0], p[1], p[2], p[3]};
		double		qs[4] = {q[0], q[1], q[2], q[3]};

		seg_sqdist_pair_finish(a, b0, b1, i, d, ps, qs, d0, d1);
	}
}
#endif

/*
 * name_sse2, name_avx2 and name_avx512 (what SEG_WIDEST_KERNEL picks from),
 * each BODY(vector of doubles, vector of int64, lanes) with the same
 * parameters.
 */
#ifdef SEG_HAVE_AVX2_KERNELS
#define SEG_WIDTH_VARIANTS(name, PARAMS, BODY) \
	static void name##_sse2 PARAMS { BODY(seg_v2d, seg_v2i, 2) } \
	__attribute__((target("avx2"))) static void name##_avx2 PARAMS { BODY(seg_v4d, seg_v4i, 4) } \
	__attribute__((target("avx512f"))) static void name##_avx512 PARAMS { BODY(seg_v8d, seg_v8i, 8) }
#else
#define SEG_AVX2_OR_SSE2(fn, ...) fn##_sse2(__VA_ARGS__)
#define SEG_WIDEST_KERNEL(fn, ...) fn##_sse2(__VA_ARGS__)
#define SEG_WIDTH_VARIANTS(name, PARAMS, BODY) \
	static void name##_sse2 PARAMS { BODY(seg_v2d, seg_v2i, 2) }
#endif

#endif							/* SEG_VECMATH_H */
