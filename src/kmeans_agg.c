/*
 * kmeans_agg.c — kmeans_fit(features, k [, options]): transition, combine, final.
 *
 * The state is a segment.rows_state (a bounded, plan-independent sample of
 * the rows); the final function runs k-means on the rows as they were
 * gathered.  k-means itself is order-free (kmeans.c: seeded init sample,
 * exact sums), so the same seed and data give the same model whether the
 * plan was serial, parallel or distributed.  The rows are sorted in place
 * into their canonical order only when the init draws from all of them
 * (they are then its sample), and always for kmeans_sweep, whose metrics'
 * samples are drawn by position.
 */
#include "postgres.h"

#include "portability/instr_time.h"

#include <math.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "kmeans.h"
#include "metrics.h"
#include "model_type.h"
#include "rows_state.h"
#include "validate.h"

/* ---------- options ---------- */

static void
bad_option(const char *key, const char *want)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("kmeans_fit option \"%s\" must be %s", key, want)));
}

static double
numeric_option(JsonbValue *v, const char *key)
{
	if (v->type != jbvNumeric)
		bad_option(key, "a number");
	return DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
}

static int
int_option(JsonbValue *v, const char *key, int lo, int hi)
{
	double		x = numeric_option(v, key);

	if (x != floor(x) || x < lo || x > hi)
	{
		char		want[64];

		snprintf(want, sizeof(want), "an integer from %d to %d", lo, hi);
		bad_option(key, want);
	}
	return (int) x;
}

/*
 * Parse options (NULL: defaults) into o and a canonical JSON text that every
 * partial state must share.  Defaults follow scikit-learn: n_init is 1 with
 * k-means++ and 10 with random init (n_init = 'auto').
 */
static char *
parse_options(Jsonb *j, int k, SegKmeansOptions *o, int *k_min)
{
	bool		n_init_given = false;
	StringInfoData canon;

	o->k = k;
	o->n_init = 1;
	o->max_iter = 300;
	o->tol = 1e-4;
	o->seed = 0;
	o->init = SEG_INIT_KMEANSPP;
	o->algorithm = SEG_ALGO_LLOYD;
	o->init_sample = -1;
	o->rows_in_key_order = false;

	if (j != NULL)
	{
		JsonbIterator *it;
		JsonbValue	v;
		JsonbIteratorToken tok;
		char	   *key = NULL;

		if (!JB_ROOT_IS_OBJECT(j))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("kmeans_fit options must be a JSON object")));
		it = JsonbIteratorInit(&j->root);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				key = pnstrdup(v.val.string.val, v.val.string.len);
				continue;
			}
			if (tok != WJB_VALUE)
				continue;
			if (strcmp(key, "seed") == 0)
			{
				double		x = numeric_option(&v, key);

				if (x != floor(x) || x < 0 || x > 9007199254740992.0)
					bad_option(key, "an integer from 0 to 2^53");
				o->seed = (uint64) x;
			}
			else if (k_min != NULL && strcmp(key, "k_min") == 0)
				*k_min = int_option(&v, key, 1, SEG_MAX_K);
			else if (strcmp(key, "n_init") == 0)
			{
				o->n_init = int_option(&v, key, 1, 1000);
				n_init_given = true;
			}
			else if (strcmp(key, "max_iter") == 0)
				o->max_iter = int_option(&v, key, 1, 1000000);
			else if (strcmp(key, "init_sample") == 0)
			{
				o->init_sample = int_option(&v, key, 0, PG_INT32_MAX);
				if (o->init_sample > 0 && o->init_sample < k)
					bad_option(key, "0 (every row) or at least k");
			}
			else if (strcmp(key, "tol") == 0)
			{
				o->tol = numeric_option(&v, key);
				if (!(o->tol >= 0) || isinf(o->tol))
					bad_option(key, "a finite number >= 0");
			}
			else if (strcmp(key, "init") == 0 || strcmp(key, "algorithm") == 0)
			{
				char	   *s;

				if (v.type != jbvString)
					bad_option(key, strcmp(key, "init") == 0 ? "\"k-means++\" or \"random\"" : "\"lloyd\" or \"elkan\"");
				s = pnstrdup(v.val.string.val, v.val.string.len);
				if (strcmp(key, "init") == 0 && strcmp(s, "k-means++") == 0)
					o->init = SEG_INIT_KMEANSPP;
				else if (strcmp(key, "init") == 0 && strcmp(s, "random") == 0)
					o->init = SEG_INIT_RANDOM;
				else if (strcmp(key, "algorithm") == 0 && strcmp(s, "lloyd") == 0)
					o->algorithm = SEG_ALGO_LLOYD;
				else if (strcmp(key, "algorithm") == 0 && strcmp(s, "elkan") == 0)
					o->algorithm = SEG_ALGO_ELKAN;
				else
					bad_option(key, strcmp(key, "init") == 0 ? "\"k-means++\" or \"random\"" : "\"lloyd\" or \"elkan\"");
			}
			else
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("unknown kmeans_fit option \"%s\"", key),
						 errhint("Valid options are seed, n_init, max_iter, tol, init, init_sample and algorithm.")));
		}
	}
	if (!n_init_given && o->init == SEG_INIT_RANDOM)
		o->n_init = 10;

	initStringInfo(&canon);
	if (k_min != NULL)
		appendStringInfo(&canon, "{\"k_min\": %d, ", *k_min);
	else
		appendStringInfoChar(&canon, '{');
	appendStringInfo(&canon, "\"seed\": " UINT64_FORMAT ", \"n_init\": %d, \"max_iter\": %d, "
					 "\"tol\": %s, \"init\": \"%s\", \"algorithm\": \"%s\"",
					 o->seed, o->n_init, o->max_iter, float8out_internal(o->tol),
					 o->init == SEG_INIT_KMEANSPP ? "k-means++" : "random",
					 o->algorithm == SEG_ALGO_LLOYD ? "lloyd" : "elkan");
	/* only when given: the default leaves the text (and the models) as they were */
	if (o->init_sample >= 0)
		appendStringInfo(&canon, ", \"init_sample\": %d", o->init_sample);
	appendStringInfoChar(&canon, '}');
	return canon.data;
}

/* Per call site: the last options datum seen and its canonical text. */
typedef struct OptionsCache
{
	Jsonb	   *raw;			/* copy, in fn_mcxt; NULL for no options */
	bool		valid;
	int			k;
	int			k_min;
	char	   *canonical;
	bool		args_stable;	/* options (and k_min) are constants: parse once */
	SegKmeansOptions o;
} OptionsCache;

static OptionsCache *
options_for_row(FunctionCallInfo fcinfo, int optarg, int k, int k_min)
{
	OptionsCache *c = fcinfo->flinfo->fn_extra;
	Jsonb	   *j = (PG_NARGS() > optarg && !PG_ARGISNULL(optarg)) ? PG_GETARG_JSONB_P(optarg) : NULL;
	MemoryContext old;

	if (c == NULL)
	{
		c = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
															  sizeof(OptionsCache));
		c->args_stable = PG_NARGS() <= optarg || get_fn_expr_arg_stable(fcinfo->flinfo, optarg);
	}
	if (c->valid && c->k == k && c->k_min == k_min && c->args_stable)
		return c;
	if (c->valid && c->k == k && c->k_min == k_min &&
		((j == NULL && c->raw == NULL) ||
		 (j != NULL && c->raw != NULL && VARSIZE(j) == VARSIZE(c->raw) &&
		  memcmp(j, c->raw, VARSIZE(j)) == 0)))
		return c;

	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	c->k_min = k_min;
	c->canonical = parse_options(j, k, &c->o, k_min > 0 ? &c->k_min : NULL);
	if (c->raw)
		pfree(c->raw);
	c->raw = NULL;
	if (j)
	{
		c->raw = palloc(VARSIZE(j));
		memcpy(c->raw, j, VARSIZE(j));
	}
	c->k = k;
	c->valid = true;
	MemoryContextSwitchTo(old);
	return c;
}

/* ---------- aggregate support ---------- */

static int
k_argument(FunctionCallInfo fcinfo, int argno, const char *name)
{
	int			k;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", name)));
	k = PG_GETARG_INT32(argno);
	if (k < 1 || k > SEG_MAX_K)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between 1 and %d, not %d", name, SEG_MAX_K, k)));
	return k;
}

/*
 * Shared transition of kmeans_fit and kmeans_sweep: validate the row (arg 1),
 * check k and options are constant, offer the row to the sample.
 */
static Datum
kmeans_rows_transfn(FunctionCallInfo fcinfo, int k, int k_min, int optarg)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "kmeans_fit_transfn");
	SegRows    *s = PG_ARGISNULL(0) ? NULL : seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	OptionsCache *opts = options_for_row(fcinfo, optarg, k, k_min);
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(1);
	const double *x;
	int			d;

	if (s != NULL && ARR_NDIM(arr) == 1 && ARR_DIMS(arr)[0] != s->d)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("kmeans_fit: a row has %d features, but the first row had %d",
						ARR_DIMS(arr)[0], s->d)));
	x = seg_check_vector(arr, "features", s ? s->d : -1, &d);

	if (s == NULL)
		s = seg_rows_create(aggcxt, d, k, false, opts->canonical, opts->o.seed,
							Max(seg_rows_budget(d, false, seg_max_fit_memory_kb), k));
	else if (s->k != k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_fit: k must be the same for every row (%d, then %d)", s->k, k)));
	else if (s->checked_options != opts->canonical &&
			 strcmp(s->options, opts->canonical) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_fit: options must be the same for every row"),
				 errdetail("First %s, then %s.", s->options, opts->canonical)));
	/* canonical strings are never freed while the call site lives: a pointer names one */
	s->checked_options = opts->canonical;
	seg_rows_offer(s, x, 0);
	PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
}

/* kmeans_fit transition: NULL rows are skipped, as avg() does. */
PG_FUNCTION_INFO_V1(seg_kmeans_fit_transfn);
Datum
seg_kmeans_fit_transfn(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	return kmeans_rows_transfn(fcinfo, k_argument(fcinfo, 2, "kmeans_fit: k"), 0, 3);
}

/* kmeans_sweep transition: k_max plays k; k_min travels in the options. */
PG_FUNCTION_INFO_V1(seg_kmeans_sweep_transfn);
Datum
seg_kmeans_sweep_transfn(PG_FUNCTION_ARGS)
{
	int			k_min,
				k_max;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	k_min = k_argument(fcinfo, 2, "kmeans_sweep: k_min");
	k_max = k_argument(fcinfo, 3, "kmeans_sweep: k_max");
	if (k_min < 2 || k_max < k_min || k_max - k_min >= 100)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_sweep: k range %d..%d is invalid", k_min, k_max),
				 errhint("Use 2 <= k_min <= k_max, at most 100 values of k.")));
	return kmeans_rows_transfn(fcinfo, k_max, k_min, 4);
}

/* Combine two partial states; never returns its second argument. */
PG_FUNCTION_INFO_V1(seg_rows_combinefn);
Datum
seg_rows_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "rows_combinefn");
	SegRows    *dst;
	const SegRows *src;
	SegRows		view;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		dst = seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
		PG_RETURN_DATUM(EOHPGetRWDatum(&dst->hdr));
	}
	src = seg_rows_view(PG_GETARG_DATUM(1), &view);
	if (PG_ARGISNULL(0))
	{
		/* a fresh state like the first partial, then its rows: one copy */
		dst = seg_rows_create(aggcxt, src->d, src->k, src->has_labels, src->options,
							  src->seed, src->max_rows);
	}
	else
		dst = seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	seg_rows_merge(dst, src);
	PG_RETURN_DATUM(EOHPGetRWDatum(&dst->hdr));
}

/*
 * How many distinct rows, counting no further than limit, in any order:
 * a hash table of the distinct rows met so far (at most limit of them), so
 * usually only the first few rows are looked at.
 */
static int64
distinct_rows(const SegRows *s, int64 limit)
{
	HASHCTL		ctl = {0};
	HTAB	   *seen;
	int64		count = 0;

	ctl.keysize = ctl.entrysize = sizeof(double) * s->d;
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("kmeans distinct rows", Min(limit, 1024), &ctl,
					   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	for (int64 i = 0; i < s->n && count < limit; i++)
	{
		bool		found;

		(void) hash_search(seen, s->data + i * s->d, HASH_ENTER, &found);
		count += !found;
		if ((i & 65535) == 65535)
			CHECK_FOR_INTERRUPTS();
	}
	hash_destroy(seen);
	return count;
}

static SegModel *
kmeans_model_from(const SegRows *s, const SegKmeansOptions *o, const SegKmeansResult *r)
{
	SegModelBuilder b;
	StringInfoData metrics;
	char	   *mtext;

	initStringInfo(&metrics);
	appendStringInfo(&metrics,
					 "{\"algorithm\": \"kmeans\", \"k\": %d, \"n_features\": %d, \"inertia\": %s, "
					 "\"n_iter\": %d, \"converged\": %s, \"best_init\": %d, \"tolerance\": %s, "
					 "\"init_rows\": " INT64_FORMAT ", "
					 "\"rows_seen\": " INT64_FORMAT ", \"rows_used\": " INT64_FORMAT ", "
					 "\"sampled\": %s, \"options\": %s}",
					 o->k, s->d, float8out_internal(r->inertia), r->n_iter,
					 r->converged ? "true" : "false", r->best_init, float8out_internal(r->tolerance),
					 Min(s->n, seg_kmeans_init_rows(o, s->n)),
					 s->rows_seen, s->n, s->rows_seen > s->n ? "true" : "false", s->options);
	mtext = metrics.data;

	seg_builder_init(&b, SEG_KIND_KMEANS);
	seg_builder_add(&b, SEG_TAG_CENTROIDS, SEG_DT_FLOAT8, 0, 0, o->k, s->d,
					r->centroids, sizeof(double) * o->k * s->d);
	seg_builder_add(&b, SEG_TAG_CLUSTER_SIZES, SEG_DT_INT64, 0, 0, 1, o->k,
					r->sizes, sizeof(int64) * o->k);
	seg_builder_add_strings(&b, SEG_TAG_METRICS, 0, 0, 1, (const char *const *) &mtext);
	return seg_builder_finish(&b);
}

/*
 * Prepare a state for fitting, in the caller's (private) context: options
 * back from their canonical text, the canonical row order, and the checks
 * that need every row.
 */
static SegRows *
prepare_fit(FunctionCallInfo fcinfo, const char *name, SegKmeansOptions *o, int *k_min,
			bool sort)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, name);
	SegRows    *s = seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	int64		ndistinct;
	instr_time	t0,
				t1;

	parse_options(DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(s->options))),
				  s->k, o, k_min);
	if (s->n < o->k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: k (%d) exceeds the number of input rows (%lld)",
						name, o->k, (long long) s->n),
				 errhint("Use a smaller k or add rows.")));
	INSTR_TIME_SET_CURRENT(t0);
	/* when the init draws from every row, rows in key order are its sample: no copy */
	sort = sort || seg_kmeans_init_rows(o, s->n) >= s->n;
	if (sort)
		seg_rows_sort(s);
	o->rows_in_key_order = sort;
	ndistinct = distinct_rows(s, o->k);
	INSTR_TIME_SET_CURRENT(t1);
	INSTR_TIME_SUBTRACT(t1, t0);
	ereport(DEBUG1,
			(errmsg_internal("%s: %lld rows %sin %.1f ms, %.1f ms into the statement", name,
							 (long long) s->n, sort ? "in canonical order " : "checked ",
							 INSTR_TIME_GET_MILLISEC(t1),
							 (double) (GetCurrentTimestamp() - GetCurrentStatementStartTimestamp()) / 1000.0)));
	if (ndistinct < o->k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s: k (%d) exceeds the number of distinct input rows (%lld)",
						name, o->k, (long long) ndistinct),
				 errhint("Use a smaller k.")));
	if (s->rows_seen > s->n)
		ereport(NOTICE,
				(errmsg("%s used a sample of %lld of %lld rows",
						name, (long long) s->n, (long long) s->rows_seen),
				 errdetail("The rows held are limited by segment.max_fit_memory (%d kB).",
						   seg_max_fit_memory_kb),
				 errhint("Raise segment.max_fit_memory, or refine the model over all rows with kmeans_step.")));
	return s;
}

/* kmeans_fit final: k-means on the canonical rows, the model. */
PG_FUNCTION_INFO_V1(seg_kmeans_fit_finalfn);
Datum
seg_kmeans_fit_finalfn(PG_FUNCTION_ARGS)
{
	MemoryContext work,
				old;
	SegRows    *s;
	SegKmeansOptions o;
	SegKmeansResult r;
	SegModel   *m;
	SegModel   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();			/* no rows: NULL, as avg() */
	work = AllocSetContextCreate(CurrentMemoryContext, "segment kmeans", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	s = prepare_fit(fcinfo, "kmeans_fit", &o, NULL, false);	/* k-means does not need the order */
	seg_rows_drop_keys(s);

	r.centroids = palloc(sizeof(double) * o.k * s->d);
	r.sizes = palloc(sizeof(int64) * o.k);
	seg_kmeans_run(s->data, s->n, s->d, &o, &r);
	if (!r.converged)
		ereport(NOTICE,
				(errmsg("kmeans_fit did not converge in %d iterations", o.max_iter),
				 errhint("Raise max_iter or scale the features.")));
	m = kmeans_model_from(s, &o, &r);

	MemoryContextSwitchTo(old);
	out = palloc(VARSIZE(m));
	memcpy(out, m, VARSIZE(m));
	MemoryContextDelete(work);
	PG_RETURN_SEGMODEL_P(out);
}

/* Rows used for the silhouette in a sweep: a seeded sample (the sort is by hash). */
#define SEG_SWEEP_SILHOUETTE_ROWS 10000

/*
 * kmeans_sweep final: for each k, k-means and the quality metrics, from one
 * read of the data.  Returns a jsonb array, one object per k.
 */
PG_FUNCTION_INFO_V1(seg_kmeans_sweep_finalfn);
Datum
seg_kmeans_sweep_finalfn(PG_FUNCTION_ARGS)
{
	MemoryContext work,
				old;
	SegRows    *s;
	SegKmeansOptions o;
	SegKmeansResult r;
	int			k_min = 2,
				k_max;
	int32	   *labels;
	int64		sil_n;
	StringInfoData out;
	Datum		result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	work = AllocSetContextCreate(CurrentMemoryContext, "segment kmeans sweep", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	s = prepare_fit(fcinfo, "kmeans_sweep", &o, &k_min, true);
	k_max = o.k;
	if (s->n <= k_max)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_sweep: k_max (%d) must be below the number of rows (%lld)",
						k_max, (long long) s->n)));
	labels = MemoryContextAllocHuge(work, sizeof(int32) * s->n);
	r.centroids = palloc(sizeof(double) * k_max * s->d);
	r.sizes = palloc(sizeof(int64) * k_max);
	sil_n = Min(s->n, SEG_SWEEP_SILHOUETTE_ROWS);

	initStringInfo(&out);
	appendStringInfoChar(&out, '[');
	for (int k = k_min; k <= k_max; k++)
	{
		int64		sil_labels;

		o.k = k;
		seg_kmeans_run(s->data, s->n, s->d, &o, &r);
		seg_kmeans_assign_all(s->data, s->n, s->d, r.centroids, k, labels, NULL);
		sil_labels = seg_count_labels(labels, sil_n);
		appendStringInfo(&out, "%s{\"k\": %d, \"inertia\": %s, \"silhouette\": %s, "
						 "\"davies_bouldin\": %s, \"calinski_harabasz\": %s, "
						 "\"n_iter\": %d, \"converged\": %s}",
						 k > k_min ? ", " : "", k, float8out_internal(r.inertia),
						 (sil_labels >= 2 && sil_labels < sil_n) ?
						 float8out_internal(seg_silhouette(s->data, sil_n, s->d, labels)) : "null",
						 float8out_internal(seg_davies_bouldin(s->data, s->n, s->d, labels)),
						 float8out_internal(seg_calinski_harabasz(s->data, s->n, s->d, labels)),
						 r.n_iter, r.converged ? "true" : "false");
	}
	appendStringInfoChar(&out, ']');
	MemoryContextSwitchTo(old);
	result = DirectFunctionCall1(jsonb_in, CStringGetDatum(out.data));
	MemoryContextDelete(work);
	PG_RETURN_DATUM(result);
}
