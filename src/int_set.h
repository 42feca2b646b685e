/*
 * int_set.h — sorted int32 label sets (classes of a classifier or a report).
 */
#ifndef SEG_INT_SET_H
#define SEG_INT_SET_H

#include "c.h"

static inline int
seg_cmp_int32(const void *a, const void *b)
{
	int32		x = *(const int32 *) a,
				y = *(const int32 *) b;

	return x < y ? -1 : x > y;
}

/* Sort v[0..n) and keep one of each value; returns the distinct count. */
static inline int64
seg_distinct_int32(int32 *v, int64 n)
{
	int64		m = 0;

	qsort(v, n, sizeof(int32), seg_cmp_int32);
	for (int64 i = 0; i < n; i++)
		if (m == 0 || v[i] != v[m - 1])
			v[m++] = v[i];
	return m;
}

/* Position of x in the sorted set s[0..n), or -1. */
static inline int
seg_find_int32(const int32 *s, int n, int32 x)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (s[mid] == x)
			return mid;
		if (s[mid] < x)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

#endif							/* SEG_INT_SET_H */
