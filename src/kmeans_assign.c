/*
 * kmeans_assign.c — nearest-centroid scoring of one feature vector.
 *
 * Two ways to name the model: as a value (IMMUTABLE, for joins with the
 * catalog and for Citus shard queries) or by catalog name (STABLE, through
 * the per-backend model cache).  Segments are numbered 1..k.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"

#include "model_cache.h"
#include "model_type.h"
#include "validate.h"

/* Squared distance from x (scaled as the model says) to centroid c. */
static double
sqdist(const SegKmeansView *v, const double *x, const double *c)
{
	double		s = 0.0;

	for (int j = 0; j < v->dim; j++)
	{
		double		z = v->offset ? (x[j] - v->offset[j]) / v->factor[j] : x[j];
		double		t = z - c[j];

		s += t * t;
	}
	return s;
}

/* Index (0-based) of the nearest centroid; ties go to the lowest index. */
static int
nearest(const SegKmeansView *v, const double *x)
{
	int			best = 0;
	double		best_d = INFINITY;

	for (int i = 0; i < v->k; i++)
	{
		double		dd = sqdist(v, x, v->centroids + (size_t) i * v->dim);

		if (dd < best_d)
		{
			best_d = dd;
			best = i;
		}
	}
	return best;
}

static ArrayType *
distances(const SegKmeansView *v, const double *x)
{
	ArrayType  *r;
	Size		size = ARR_OVERHEAD_NONULLS(1) + sizeof(double) * v->k;
	double	   *out;

	/* build the 1-D result directly instead of boxing k Datums */
	r = palloc0(size);
	SET_VARSIZE(r, size);
	r->ndim = 1;
	r->dataoffset = 0;
	r->elemtype = FLOAT8OID;
	ARR_DIMS(r)[0] = v->k;
	ARR_LBOUND(r)[0] = 1;
	out = (double *) ARR_DATA_PTR(r);
	for (int i = 0; i < v->k; i++)
		out[i] = sqrt(sqdist(v, x, v->centroids + (size_t) i * v->dim));
	return r;
}

static const double *
features_for(ArrayType *a, const SegKmeansView *v)
{
	return seg_check_vector(a, "features", v->dim, NULL);
}

static void
view_of_name(FunctionCallInfo fcinfo, SegKmeansView *v)
{
	SegCachedModel *e = seg_cached_model(fcinfo->flinfo, PG_GETARG_TEXT_PP(1), 0);

	if (e->extra == NULL)
	{
		SegKmeansView *cached = MemoryContextAlloc(e->mcxt, sizeof(SegKmeansView));

		seg_model_kmeans_view(e->model, cached);
		e->extra = cached;
	}
	*v = *(SegKmeansView *) e->extra;
}

/* kmeans_assign(features, model): the segment (1..k) of one row. */
PG_FUNCTION_INFO_V1(seg_kmeans_assign);
Datum
seg_kmeans_assign(PG_FUNCTION_ARGS)
{
	ArrayType  *feat = PG_GETARG_ARRAYTYPE_P(0);
	SegKmeansView v;

	seg_model_kmeans_view(seg_model_arg(fcinfo, 1, &fcinfo->flinfo->fn_extra), &v);
	PG_RETURN_INT32(nearest(&v, features_for(feat, &v)) + 1);
}

/* kmeans_assign(features, model_name): same, with the latest stored version. */
PG_FUNCTION_INFO_V1(seg_kmeans_assign_by_name);
Datum
seg_kmeans_assign_by_name(PG_FUNCTION_ARGS)
{
	ArrayType  *feat = PG_GETARG_ARRAYTYPE_P(0);
	SegKmeansView v;

	view_of_name(fcinfo, &v);
	PG_RETURN_INT32(nearest(&v, features_for(feat, &v)) + 1);
}

/* kmeans_distances(features, model): Euclidean distance to each centroid. */
PG_FUNCTION_INFO_V1(seg_kmeans_distances);
Datum
seg_kmeans_distances(PG_FUNCTION_ARGS)
{
	ArrayType  *feat = PG_GETARG_ARRAYTYPE_P(0);
	SegKmeansView v;

	seg_model_kmeans_view(seg_model_arg(fcinfo, 1, &fcinfo->flinfo->fn_extra), &v);
	PG_RETURN_ARRAYTYPE_P(distances(&v, features_for(feat, &v)));
}

PG_FUNCTION_INFO_V1(seg_kmeans_distances_by_name);
Datum
seg_kmeans_distances_by_name(PG_FUNCTION_ARGS)
{
	ArrayType  *feat = PG_GETARG_ARRAYTYPE_P(0);
	SegKmeansView v;

	view_of_name(fcinfo, &v);
	PG_RETURN_ARRAYTYPE_P(distances(&v, features_for(feat, &v)));
}
