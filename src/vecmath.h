/*
 * vecmath.h — small vector kernels shared by training and scoring.
 */
#ifndef SEG_VECMATH_H
#define SEG_VECMATH_H

#include "c.h"

/*
 * Squared Euclidean distance.  Four accumulators so the additions do not
 * wait on each other; every caller uses this one, so training, scoring and
 * explanations agree to the last bit.
 */
static inline double
seg_sqdist(const double *a, const double *b, int d)
{
	double		s0 = 0.0,
				s1 = 0.0,
				s2 = 0.0,
				s3 = 0.0;
	int			i = 0;

	for (; i + 4 <= d; i += 4)
	{
		double		t0 = a[i] - b[i],
					t1 = a[i + 1] - b[i + 1],
					t2 = a[i + 2] - b[i + 2],
					t3 = a[i + 3] - b[i + 3];

		s0 += t0 * t0;
		s1 += t1 * t1;
		s2 += t2 * t2;
		s3 += t3 * t3;
	}
	for (; i < d; i++)
		s0 += (a[i] - b[i]) * (a[i] - b[i]);
	return (s0 + s1) + (s2 + s3);
}

#endif							/* SEG_VECMATH_H */
