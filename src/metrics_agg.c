/*
 * metrics_agg.c — cluster-quality aggregates over (features, label):
 * silhouette, davies_bouldin, calinski_harabasz, and adjusted_rand over
 * (label_a, label_b).  They hold their rows in a segment.rows_state, so they
 * are parallel and distributable like kmeans_fit.
 */
#include "postgres.h"

#include <math.h>

#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "metrics.h"
#include "model_type.h"
#include "rows_state.h"
#include "validate.h"

/* Options of silhouette: {"sample_size": n, "seed": s}; canonical text out. */
static char *
parse_metric_options(Jsonb *j, int64 *sample_size, uint64 *seed)
{
	*sample_size = 0;
	*seed = 0;
	if (j != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *key = NULL;

		if (!JB_ROOT_IS_OBJECT(j))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("silhouette options must be a JSON object")));
		it = JsonbIteratorInit(&j->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			double		x;

			if (tok == WJB_KEY)
			{
				key = pnstrdup(v.val.string.val, v.val.string.len);
				continue;
			}
			if (tok != WJB_VALUE)
				continue;
			if (strcmp(key, "sample_size") != 0 && strcmp(key, "seed") != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown silhouette option \"%s\"", key),
						 errhint("Valid options are sample_size and seed.")));
			if (v.type != jbvNumeric)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("silhouette option \"%s\" must be a non-negative integer", key)));
			x = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v.val.numeric)));
			if (x != floor(x) || x < 0 || x > 9007199254740992.0 ||
				(strcmp(key, "sample_size") == 0 && x < 2))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("silhouette option \"%s\" must be an integer, at least %d for sample_size",
								key, 2)));
			if (strcmp(key, "seed") == 0)
				*seed = (uint64) x;
			else
				*sample_size = (int64) x;
		}
	}
	return psprintf("{\"sample_size\": " INT64_FORMAT ", \"seed\": " UINT64_FORMAT "}",
					*sample_size, *seed);
}

/* Transition of silhouette / davies_bouldin / calinski_harabasz. */
PG_FUNCTION_INFO_V1(seg_labeled_rows_transfn);
Datum
seg_labeled_rows_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "labeled_rows_transfn");
	SegRows    *s = PG_ARGISNULL(0) ? NULL : seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	const double *x;
	int			d;

	/* rows with a NULL array or label are skipped */
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
	}
	x = seg_check_vector(PG_GETARG_ARRAYTYPE_P(1), "features", s ? s->d : -1, &d);
	if (s == NULL)
	{
		int64		sample_size;
		uint64		seed;
		char	   *canon = parse_metric_options((PG_NARGS() > 3 && !PG_ARGISNULL(3)) ?
												 PG_GETARG_JSONB_P(3) : NULL,
												 &sample_size, &seed);
		int64		budget = seg_rows_budget(d, true, seg_max_fit_memory_kb);

		s = seg_rows_create(aggcxt, d, 0, true, canon, seed,
							sample_size > 0 ? Min(sample_size, budget) : budget);
	}
	seg_rows_offer(s, x, PG_GETARG_INT32(2));
	PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
}

/* Did the caller ask for a sample (sample_size), or did memory impose one? */
static bool
asked_for_sample(const SegRows *s)
{
	long long	sample_size = 0;

	if (sscanf(s->options, "{\"sample_size\": %lld", &sample_size) != 1)
		elog(ERROR, "unexpected silhouette state options %s (cannot happen)", s->options);
	return sample_size > 0;
}

/* Common start of the final functions: checks, and a NOTICE when sampled. */
static SegRows *
labeled_rows_for_metric(FunctionCallInfo fcinfo, const char *name)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, name);
	SegRows    *s = seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	int64		nlabels = seg_count_labels(s->labels, s->n);

	if (nlabels < 2 || nlabels > s->n - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: the number of labels is %lld; valid values are 2 to the number of rows - 1 (%lld)",
						name, (long long) nlabels, (long long) s->n - 1)));
	if (s->rows_seen > s->n && !asked_for_sample(s))
		ereport(NOTICE,
				(errmsg("%s used a sample of %lld of %lld rows",
						name, (long long) s->n, (long long) s->rows_seen),
				 errhint("Raise segment.max_fit_memory for an exact result.")));
	return s;
}

PG_FUNCTION_INFO_V1(seg_silhouette_finalfn);
Datum
seg_silhouette_finalfn(PG_FUNCTION_ARGS)
{
	SegRows    *s;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = labeled_rows_for_metric(fcinfo, "silhouette");
	PG_RETURN_FLOAT8(seg_silhouette(s->data, s->n, s->d, s->labels));
}

PG_FUNCTION_INFO_V1(seg_davies_bouldin_finalfn);
Datum
seg_davies_bouldin_finalfn(PG_FUNCTION_ARGS)
{
	SegRows    *s;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = labeled_rows_for_metric(fcinfo, "davies_bouldin");
	PG_RETURN_FLOAT8(seg_davies_bouldin(s->data, s->n, s->d, s->labels));
}

PG_FUNCTION_INFO_V1(seg_calinski_harabasz_finalfn);
Datum
seg_calinski_harabasz_finalfn(PG_FUNCTION_ARGS)
{
	SegRows    *s;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = labeled_rows_for_metric(fcinfo, "calinski_harabasz");
	PG_RETURN_FLOAT8(seg_calinski_harabasz(s->data, s->n, s->d, s->labels));
}

/* adjusted_rand transition: the pair (a, b) is held as a 2-wide row. */
PG_FUNCTION_INFO_V1(seg_label_pairs_transfn);
Datum
seg_label_pairs_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "label_pairs_transfn");
	SegRows    *s = PG_ARGISNULL(0) ? NULL : seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	double		pair[2];

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
	}
	if (s == NULL)
		s = seg_rows_create(aggcxt, 2, 0, false, "{}", 0,
							seg_rows_budget(2, false, seg_max_fit_memory_kb));
	pair[0] = PG_GETARG_INT32(1);
	pair[1] = PG_GETARG_INT32(2);
	seg_rows_offer(s, pair, 0);
	PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
}

PG_FUNCTION_INFO_V1(seg_adjusted_rand_finalfn);
Datum
seg_adjusted_rand_finalfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "adjusted_rand");
	int32	   *a,
			   *b;
	int64		n;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	n = seg_exact_label_pairs(fcinfo, aggcxt, "adjusted_rand", &a, &b);
	PG_RETURN_FLOAT8(seg_adjusted_rand(a, b, n));
}

int64
seg_exact_label_pairs(FunctionCallInfo fcinfo, MemoryContext aggcxt, const char *fn,
					  int32 **a, int32 **b)
{
	SegRows    *s = seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);

	/* a sample of pairs would bias every figure, so it is exact or nothing */
	if (s->rows_seen > s->n)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s holds at most %lld pairs within segment.max_fit_memory, and got %lld",
						fn, (long long) s->n, (long long) s->rows_seen),
				 errhint("Raise segment.max_fit_memory.")));
	*a = palloc(sizeof(int32) * Max(s->n, 1));
	*b = palloc(sizeof(int32) * Max(s->n, 1));
	for (int64 i = 0; i < s->n; i++)
	{
		(*a)[i] = (int32) s->data[2 * i];
		(*b)[i] = (int32) s->data[2 * i + 1];
	}
	return s->n;
}
