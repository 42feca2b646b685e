/*
 * moments.c — segment.moments(float8): count, mean and population variance
 * that do not depend on the order of the rows.
 *
 * train() standardises features with these.  avg() and var_pop() over
 * float8 round after every row, so a table whose rows moved on disk (an
 * UPDATE placed where pruning made room, a parallel plan) can give a mean
 * one ulp apart; the scaled rows then hash differently, their canonical
 * order changes and so does the seeded k-means++.  Sums kept in double-double
 * (about 106 bits, error-free transformations) round to the same double
 * whatever the order, unless the exact value lies within ~2^-100 of a
 * rounding boundary.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"

#include "validate.h"

typedef struct DD
{
	double		hi;
	double		lo;
} DD;

static inline DD
two_sum(double a, double b)
{
	double		s = a + b;
	double		bb = s - a;

	return (DD) {s, (a - (s - bb)) + (b - bb)};
}

static inline DD
dd_add(DD x, DD y)
{
	DD			s = two_sum(x.hi, y.hi);
	double		e = s.lo + x.lo + y.lo;
	double		hi = s.hi + e;

	return (DD) {hi, e - (hi - s.hi)};
}

/* x * y exactly, as hi + lo (fma gives the rounding error of the product) */
static inline DD
two_prod(double a, double b)
{
	double		p = a * b;

	return (DD) {p, fma(a, b, -p)};
}

static inline DD
dd_mul_d(DD x, double b)
{
	DD			p = two_prod(x.hi, b);
	double		lo = p.lo + x.lo * b;
	double		hi = p.hi + lo;

	return (DD) {hi, lo - (hi - p.hi)};
}

static inline DD
dd_mul(DD x, DD y)
{
	DD			p = two_prod(x.hi, y.hi);
	double		lo = p.lo + (x.hi * y.lo + x.lo * y.hi);
	double		hi = p.hi + lo;

	return (DD) {hi, lo - (hi - p.hi)};
}

static inline DD
dd_div_d(DD x, double b)
{
	double		q1 = x.hi / b;
	DD			r = dd_add(x, dd_mul_d((DD) {-q1, 0.0}, b));
	double		q2 = r.hi / b;
	double		hi = q1 + q2;

	return (DD) {hi, q2 - (hi - q1)};
}

/* state: float8[5] = {n, sum.hi, sum.lo, sumsq.hi, sumsq.lo} */
#define MOMENTS_N 5

static double *
state_of(ArrayType *a)
{
	if (ARR_NDIM(a) != 1 || ARR_DIMS(a)[0] != MOMENTS_N || ARR_HASNULL(a) ||
		ARR_ELEMTYPE(a) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segment.moments state must be float8[%d]", MOMENTS_N)));
	return (double *) ARR_DATA_PTR(a);
}

static ArrayType *
new_state(void)
{
	Datum		z[MOMENTS_N];

	for (int i = 0; i < MOMENTS_N; i++)
		z[i] = Float8GetDatum(0.0);
	return construct_array(z, MOMENTS_N, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* moments_transfn(state, x): updates the state in place, as float8_accum does */
PG_FUNCTION_INFO_V1(seg_moments_transfn);
Datum
seg_moments_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "moments");
	ArrayType  *a;
	double	   *s;
	double		x;
	DD			sum,
				sq;

	if (PG_ARGISNULL(0))
	{
		MemoryContext old = MemoryContextSwitchTo(aggcxt);

		a = new_state();
		MemoryContextSwitchTo(old);
	}
	else
		a = PG_GETARG_ARRAYTYPE_P(0);
	if (PG_ARGISNULL(1))
		PG_RETURN_ARRAYTYPE_P(a);
	x = PG_GETARG_FLOAT8(1);
	if (!isfinite(x))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a column holds %g; train() needs finite numbers", x)));
	s = state_of(a);
	sum = dd_add((DD) {s[1], s[2]}, (DD) {x, 0.0});
	sq = dd_add((DD) {s[3], s[4]}, two_prod(x, x));
	s[0] += 1;
	s[1] = sum.hi;
	s[2] = sum.lo;
	s[3] = sq.hi;
	s[4] = sq.lo;
	PG_RETURN_ARRAYTYPE_P(a);
}

PG_FUNCTION_INFO_V1(seg_moments_combinefn);
Datum
seg_moments_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "moments");
	ArrayType  *r;
	double	   *d,
			   *s1,
			   *s2;
	DD			sum,
				sq;

	if (PG_ARGISNULL(0) && PG_ARGISNULL(1))
		PG_RETURN_NULL();
	{
		MemoryContext old = MemoryContextSwitchTo(aggcxt);

		r = new_state();
		MemoryContextSwitchTo(old);
	}
	d = state_of(r);
	for (int i = 0; i < 2; i++)
	{
		if (PG_ARGISNULL(i))
			continue;
		s1 = state_of(PG_GETARG_ARRAYTYPE_P(i));
		s2 = d;
		sum = dd_add((DD) {s2[1], s2[2]}, (DD) {s1[1], s1[2]});
		sq = dd_add((DD) {s2[3], s2[4]}, (DD) {s1[3], s1[4]});
		d[0] += s1[0];
		d[1] = sum.hi;
		d[2] = sum.lo;
		d[3] = sq.hi;
		d[4] = sq.lo;
	}
	PG_RETURN_ARRAYTYPE_P(r);
}

/* {count, mean, var_pop}; NULL without rows */
PG_FUNCTION_INFO_V1(seg_moments_finalfn);
Datum
seg_moments_finalfn(PG_FUNCTION_ARGS)
{
	double	   *s;
	double		n;
	DD			mean,
				var;
	Datum		out[3];

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = state_of(PG_GETARG_ARRAYTYPE_P(0));
	n = s[0];
	if (n == 0)
		PG_RETURN_NULL();
	mean = dd_div_d((DD) {s[1], s[2]}, n);
	/* (Σx² − (Σx)²/n) / n, in double-double so the subtraction keeps its digits */
	var = dd_div_d(dd_add((DD) {s[3], s[4]}, dd_mul((DD) {-mean.hi, -mean.lo}, (DD) {s[1], s[2]})), n);
	out[0] = Float8GetDatum(n);
	out[1] = Float8GetDatum(mean.hi + mean.lo);
	out[2] = Float8GetDatum(Max(var.hi + var.lo, 0.0));
	PG_RETURN_ARRAYTYPE_P(construct_array(out, 3, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
