/*
 * vecmath.h — small vector kernels shared by training and scoring.
 */
#ifndef SEG_VECMATH_H
#define SEG_VECMATH_H

#include "c.h"

/* Two doubles in one SSE2 register (every x86-64 CPU has SSE2). */
typedef double seg_v2d __attribute__((vector_size(16)));

static inline seg_v2d
seg_load2(const double *p)
{
	seg_v2d		v;

	memcpy(&v, p, sizeof(v));	/* an unaligned load */
	return v;
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
 * x[i] = (x[i] - off[i]) / fac[i]: two at a time; IEEE subtraction and
 * division are exactly rounded lane by lane, so this equals the scalar loop.
 */
static inline void
seg_apply_scaler(double *x, const double *off, const double *fac, int d)
{
	int			i = 0;

	for (; i + 2 <= d; i += 2)
	{
		seg_v2d		v = (seg_load2(x + i) - seg_load2(off + i)) / seg_load2(fac + i);

		memcpy(x + i, &v, sizeof(v));
	}
	for (; i < d; i++)
		x[i] = (x[i] - off[i]) / fac[i];
}

#endif							/* SEG_VECMATH_H */
