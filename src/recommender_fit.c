/*
 * recommender_fit.c — the final function of segment.recommender_fit: from
 * the raw (user, item, weight [, segment]) rows to a recommender model with
 * implicit-ALS factors, item-item neighbours, popularity per segment and
 * every user's history.
 */
#include "postgres.h"

#include <math.h>

#include "common/pg_prng.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "als.h"
#include "interactions.h"
#include "model_type.h"
#include "nn_options.h"
#include "validate.h"

#define FN "recommender_fit"

typedef enum Weighting
{
	W_LOG1P,
	W_LINEAR,
	W_BINARY
} Weighting;

typedef struct RecOptions
{
	SegAlsOptions als;
	double		alpha;
	int			neighbors;
	Weighting	weighting;
	uint64		seed;
	double		blend[SEG_BLEND_PARAMS];
} RecOptions;

static bool
is(JsonbValue *v, const char *s)
{
	return v->type == jbvString && v->val.string.len == (int) strlen(s) &&
		strncmp(v->val.string.val, s, v->val.string.len) == 0;
}

/*
 * Defaults, chosen by evaluation on three Online Retail time splits (README):
 * ALS with 64 factors, λ 0.1, 15 iterations of 3 CG steps and α 2 on
 * log(1 + weight) (α 40 scored 7 to 12 points lower in hit rate); 50 cosine
 * neighbours kept per item for similar_items(), of which the 5 nearest score
 * (50 scored 5 to 9 points lower: many weak similarities favour the merely
 * popular); ALS and item-item blended half and half.
 */
static void
parse_options(const char *text, RecOptions *o)
{
	Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	o->als.factors = 64;
	o->als.iterations = 15;
	o->als.cg_steps = 3;
	o->als.lambda = 0.1;
	o->alpha = 2;
	o->neighbors = 50;
	o->weighting = W_LOG1P;
	o->seed = 0;
	o->blend[SEG_BLEND_ALS] = 0.5;
	o->blend[SEG_BLEND_ITEM] = 0.5;
	o->blend[SEG_BLEND_POPULARITY] = 0.0;
	o->blend[SEG_BLEND_MIN_HISTORY] = 1;
	o->blend[SEG_BLEND_NEIGHBORS] = 5;
	if (!JB_ROOT_IS_OBJECT(j))
		seg_nn_bad_option(FN, "options must be a JSON object");
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
		if (strcmp(key, "factors") == 0)
			o->als.factors = (int) seg_nn_number(FN, &v, key, 1, 1024);
		else if (strcmp(key, "iterations") == 0)
			o->als.iterations = (int) seg_nn_number(FN, &v, key, 0, 1000);
		else if (strcmp(key, "cg_steps") == 0)
			o->als.cg_steps = (int) seg_nn_number(FN, &v, key, 1, 100);
		else if (strcmp(key, "lambda") == 0)
			o->als.lambda = seg_nn_number(FN, &v, key, 0, 1e6);
		else if (strcmp(key, "alpha") == 0)
			o->alpha = seg_nn_number(FN, &v, key, 0, 1e6);
		else if (strcmp(key, "neighbors") == 0)
			o->neighbors = (int) seg_nn_number(FN, &v, key, 1, 1000);
		else if (strcmp(key, "seed") == 0)
			o->seed = (uint64) seg_nn_number(FN, &v, key, 0, 9007199254740992.0);
		else if (strcmp(key, "als_weight") == 0)
			o->blend[SEG_BLEND_ALS] = seg_nn_number(FN, &v, key, 0, 1e6);
		else if (strcmp(key, "item_weight") == 0)
			o->blend[SEG_BLEND_ITEM] = seg_nn_number(FN, &v, key, 0, 1e6);
		else if (strcmp(key, "popularity_weight") == 0)
			o->blend[SEG_BLEND_POPULARITY] = seg_nn_number(FN, &v, key, 0, 1e6);
		else if (strcmp(key, "min_history") == 0)
			o->blend[SEG_BLEND_MIN_HISTORY] = (int) seg_nn_number(FN, &v, key, 0, 1e6);
		else if (strcmp(key, "score_neighbors") == 0)
			o->blend[SEG_BLEND_NEIGHBORS] = (int) seg_nn_number(FN, &v, key, 1, 1000);
		else if (strcmp(key, "weighting") == 0)
		{
			if (is(&v, "log1p"))
				o->weighting = W_LOG1P;
			else if (is(&v, "linear"))
				o->weighting = W_LINEAR;
			else if (is(&v, "binary"))
				o->weighting = W_BINARY;
			else
				seg_nn_bad_option(FN, "option \"weighting\" must be \"log1p\", \"linear\" or \"binary\"");
		}
		else
			seg_nn_bad_option(FN, "unknown option \"%s\"", key);
	}
	if (o->blend[SEG_BLEND_ALS] + o->blend[SEG_BLEND_ITEM] + o->blend[SEG_BLEND_POPULARITY] <= 0)
		seg_nn_bad_option(FN, "the blend weights must not all be zero");
}

/* Options are checked at the first row, not after the whole scan. */
void
seg_recommender_check_options(const char *text)
{
	RecOptions	o;

	parse_options(text, &o);
}

/* ---------- ids ---------- */

static const SegStrings *sort_strings;

static int
cmp_string_index(const void *a, const void *b)
{
	return strcmp(seg_strings_get(sort_strings, *(const int64 *) a),
				  seg_strings_get(sort_strings, *(const int64 *) b));
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Dense positions 0..n-1 for the ids of one side, in ascending id order.
 * Rewrites ids[] (raw values or string indexes) in place to positions and
 * returns the count; *sorted gets the distinct values (int64 ids) or string
 * indexes (text ids), in position order.
 */
static int32
dense_ids(int64 *ids, int64 n, bool is_text, const SegStrings *strs, int64 **sorted)
{
	int64		nd;
	int64	   *d;

	if (is_text)
	{
		int64	   *pos = palloc(sizeof(int64) * Max(strs->n, 1));

		nd = strs->n;
		d = palloc(sizeof(int64) * Max(nd, 1));
		for (int64 i = 0; i < nd; i++)
			d[i] = i;
		sort_strings = strs;
		qsort(d, nd, sizeof(int64), cmp_string_index);
		for (int64 i = 0; i < nd; i++)
			pos[d[i]] = i;
		for (int64 r = 0; r < n; r++)
			ids[r] = pos[ids[r]];
		pfree(pos);
	}
	else
	{
		d = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int64) * Max(n, 1));
		memcpy(d, ids, sizeof(int64) * n);
		qsort(d, n, sizeof(int64), cmp_int64);
		nd = 0;
		for (int64 i = 0; i < n; i++)
			if (nd == 0 || d[nd - 1] != d[i])
				d[nd++] = d[i];
		for (int64 r = 0; r < n; r++)
		{
			int64		lo = 0,
						hi = nd - 1;

			while (lo < hi)
			{
				int64		mid = (lo + hi) / 2;

				if (d[mid] < ids[r])
					lo = mid + 1;
				else
					hi = mid;
			}
			ids[r] = lo;
		}
	}
	if (nd > SEG_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("recommender_fit: %lld distinct ids exceed the limit of %d",
						(long long) nd, SEG_MAX_DIM)));
	*sorted = d;
	return (int32) nd;
}

static void
add_ids(SegModelBuilder *b, int32 tag, int32 n, bool is_text, const SegStrings *strs,
		const int64 *sorted)
{
	if (is_text)
	{
		const char **names = palloc(sizeof(char *) * n);

		for (int32 i = 0; i < n; i++)
			names[i] = seg_strings_get(strs, sorted[i]);
		seg_builder_add_strings(b, tag, 0, 0, n, names);
	}
	else
		seg_builder_add(b, tag, SEG_DT_INT64, 0, 0, n, 1, sorted, sizeof(int64) * n);
}

/* ---------- pairs ---------- */

typedef struct Pair
{
	int32		u;
	int32		i;
	double		w;
	int32		seg;
} Pair;

/* by user, item, then weight: summing duplicates in this order is plan-independent */
static int
cmp_pair(const void *a, const void *b)
{
	const Pair *x = a,
			   *y = b;

	if (x->u != y->u)
		return x->u < y->u ? -1 : 1;
	if (x->i != y->i)
		return x->i < y->i ? -1 : 1;
	if (x->w != y->w)
		return x->w < y->w ? -1 : 1;
	return (x->seg > y->seg) - (x->seg < y->seg);
}

/* CSR of the pairs (sorted by user, then item) and its transpose */
static void
build_csr(const Pair *p, int64 np, int32 nu, int32 ni, const double *val,
		  SegCsr *by_user, SegCsr *by_item, int64 **uptr_out, int32 **uidx_out)
{
	int64	   *uptr = palloc0(sizeof(int64) * (nu + 1));
	int32	   *uidx = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * Max(np, 1));
	int64	   *iptr = palloc0(sizeof(int64) * (ni + 1));
	int32	   *iidx = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(int32) * Max(np, 1));
	double	   *ival = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(double) * Max(np, 1));
	int64	   *fill = palloc(sizeof(int64) * (ni + 1));

	for (int64 e = 0; e < np; e++)
	{
		uptr[p[e].u + 1]++;
		iptr[p[e].i + 1]++;
		uidx[e] = p[e].i;
	}
	for (int32 u = 0; u < nu; u++)
		uptr[u + 1] += uptr[u];
	for (int32 i = 0; i < ni; i++)
		iptr[i + 1] += iptr[i];
	memcpy(fill, iptr, sizeof(int64) * (ni + 1));
	for (int64 e = 0; e < np; e++)
	{
		int64		at = fill[p[e].i]++;

		iidx[at] = p[e].u;
		ival[at] = val[e];
	}
	*by_user = (SegCsr) {nu, ni, uptr, uidx, val};
	*by_item = (SegCsr) {ni, nu, iptr, iidx, ival};
	*uptr_out = uptr;
	*uidx_out = uidx;
	pfree(fill);
}

/* Seeded N(0, 1) by Box-Muller. */
static double
normal(pg_prng_state *rng)
{
	double		u1 = pg_prng_double(rng),
				u2 = pg_prng_double(rng);

	return sqrt(-2.0 * log(1.0 - u1)) * cos(2.0 * M_PI * u2);
}

static void
append_array(StringInfo buf, const char *key, const double *v, int n)
{
	appendStringInfo(buf, ", \"%s\": [", key);
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s%.17g", i ? ", " : "", v[i]);
	appendStringInfoChar(buf, ']');
}

/*
 * The model must fit in one value (< 1 GB): say so before hours of ALS, with
 * the sizes that decide it.
 */
static void
check_model_size(int32 nu, int32 ni, int64 np, int32 k, const RecOptions *o)
{
	double		bytes = ((double) nu + ni) * o->als.factors * sizeof(double) +
		(double) ni * o->neighbors * (sizeof(double) + sizeof(int32)) +
		((double) k + 1) * ni * sizeof(double) +
		(double) np * sizeof(int32) + (double) nu * (sizeof(int64) + sizeof(int32)) +
		(double) ni * sizeof(int64);

	if (bytes > (double) MaxAllocSize * 0.9)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a recommender of %d users, %d items and %d segments with %d factors would take %.0f MB, more than one value can hold (1 GB)",
						nu, ni, k, o->als.factors, bytes / (1024.0 * 1024.0)),
				 errhint("Use fewer factors or neighbors, or train on a sample of users.")));
}

PG_FUNCTION_INFO_V1(seg_recommender_fit_finalfn);
Datum
seg_recommender_fit_finalfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, FN);
	MemoryContext work,
				old;
	SegPairs   *s;
	RecOptions	o;
	int64	   *uids,
			   *iids,
			   *usorted,
			   *isorted,
				np;
	int32		nu,
				ni,
				k = 0;
	Pair	   *p;
	double	   *val,
			   *binary,
			   *X,
			   *Y,
			   *loss,
			   *pop,
			   *nsc;
	int32	   *nb,
			   *useg,
			   *hidx;
	int64	   *hptr;
	SegCsr		by_user,
				by_item,
				bin_user,
				bin_item;
	pg_prng_state rng;
	SegModelBuilder b;
	StringInfoData metrics;
	SegModel   *result;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = seg_pairs_from_datum(PG_GETARG_DATUM(0), aggcxt);
	if (s->n == 0)
		PG_RETURN_NULL();
	work = AllocSetContextCreate(CurrentMemoryContext, "segment recommender_fit", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	parse_options(s->options, &o);

	/* dense, sorted ids; then the rows as pairs, duplicates summed */
	uids = MemoryContextAllocHuge(work, sizeof(int64) * s->n);
	iids = MemoryContextAllocHuge(work, sizeof(int64) * s->n);
	memcpy(uids, s->users, sizeof(int64) * s->n);
	memcpy(iids, s->items, sizeof(int64) * s->n);
	nu = dense_ids(uids, s->n, s->user_text == 1, &s->ustr, &usorted);
	ni = dense_ids(iids, s->n, s->item_text == 1, &s->istr, &isorted);
	p = MemoryContextAllocHuge(work, sizeof(Pair) * s->n);
	for (int64 r = 0; r < s->n; r++)
	{
		p[r].u = (int32) uids[r];
		p[r].i = (int32) iids[r];
		p[r].w = s->weights[r];
		p[r].seg = s->has_segments ? s->segments[r] : 0;
	}
	pfree(uids);
	pfree(iids);
	qsort(p, s->n, sizeof(Pair), cmp_pair);
	useg = palloc0(sizeof(int32) * nu);
	np = 0;
	for (int64 r = 0; r < s->n; r++)
	{
		/* a user's segment: the smallest known one on its rows */
		if (p[r].seg > 0 && (useg[p[r].u] == 0 || p[r].seg < useg[p[r].u]))
			useg[p[r].u] = p[r].seg;
		k = Max(k, p[r].seg);
		if (np > 0 && p[np - 1].u == p[r].u && p[np - 1].i == p[r].i)
			p[np - 1].w += p[r].w;
		else
			p[np++] = p[r];
	}
	CHECK_FOR_INTERRUPTS();
	check_model_size(nu, ni, np, k, &o);

	/* confidence − 1 = α·r for ALS; 1 per pair for the cosine neighbours */
	val = MemoryContextAllocHuge(work, sizeof(double) * np);
	binary = MemoryContextAllocHuge(work, sizeof(double) * np);
	for (int64 e = 0; e < np; e++)
	{
		double		r = o.weighting == W_LOG1P ? log1p(p[e].w) :
			o.weighting == W_LINEAR ? p[e].w : 1.0;

		if (!isfinite(r))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("recommender_fit: the summed weight of a (user, item) pair overflows")));
		val[e] = o.alpha * r;
		binary[e] = 1.0;
	}
	build_csr(p, np, nu, ni, val, &by_user, &by_item, &hptr, &hidx);
	build_csr(p, np, nu, ni, binary, &bin_user, &bin_item, &hptr, &hidx);

	/* ALS, warm-started from small seeded normal factors */
	X = MemoryContextAllocHuge(work, sizeof(double) * nu * o.als.factors);
	Y = MemoryContextAllocHuge(work, sizeof(double) * ni * o.als.factors);
	pg_prng_seed(&rng, o.seed);
	for (int64 i = 0; i < (int64) nu * o.als.factors; i++)
		X[i] = 0.01 * normal(&rng);
	for (int64 i = 0; i < (int64) ni * o.als.factors; i++)
		Y[i] = 0.01 * normal(&rng);
	loss = palloc(sizeof(double) * Max(o.als.iterations, 1));
	seg_als_fit(&by_user, &by_item, &o.als, X, Y, loss);
	for (int it = 0; it < o.als.iterations; it++)
		ereport(DEBUG1, (errmsg("recommender_fit: ALS iteration %d loss %.6g", it + 1, loss[it])));

	/* item-item cosine on binary purchases */
	nb = MemoryContextAllocHuge(work, sizeof(int32) * ni * o.neighbors);
	nsc = MemoryContextAllocHuge(work, sizeof(double) * ni * o.neighbors);
	seg_item_neighbors(&bin_user, &bin_item, o.neighbors, nb, nsc);

	/* popularity: share of all users, then of each segment's users, who have the item */
	pop = palloc0(sizeof(double) * (k + 1) * ni);
	{
		int64	   *seg_users = palloc0(sizeof(int64) * (k + 1));

		for (int32 u = 0; u < nu; u++)
		{
			seg_users[0]++;
			if (useg[u] > 0)
				seg_users[useg[u]]++;
			for (int64 e = hptr[u]; e < hptr[u + 1]; e++)
			{
				pop[hidx[e]] += 1;
				if (useg[u] > 0)
					pop[(int64) useg[u] * ni + hidx[e]] += 1;
			}
		}
		for (int32 g = 0; g <= k; g++)
			for (int32 i = 0; i < ni; i++)
				pop[(int64) g * ni + i] /= Max(seg_users[g], 1);
	}

	seg_builder_init(&b, SEG_KIND_RECOMMENDER);
	add_ids(&b, SEG_TAG_USER_IDS, nu, s->user_text == 1, &s->ustr, usorted);
	add_ids(&b, SEG_TAG_ITEM_IDS, ni, s->item_text == 1, &s->istr, isorted);
	if (o.als.factors > 0)
	{
		seg_builder_add(&b, SEG_TAG_USER_FACTORS, SEG_DT_FLOAT8, 0, 0, nu, o.als.factors, X,
						sizeof(double) * nu * o.als.factors);
		seg_builder_add(&b, SEG_TAG_ITEM_FACTORS, SEG_DT_FLOAT8, 0, 0, ni, o.als.factors, Y,
						sizeof(double) * ni * o.als.factors);
	}
	seg_builder_add(&b, SEG_TAG_ITEM_NEIGHBORS, SEG_DT_INT32, 0, 0, ni, o.neighbors, nb,
					sizeof(int32) * ni * o.neighbors);
	seg_builder_add(&b, SEG_TAG_NEIGHBOR_SCORES, SEG_DT_FLOAT8, 0, 0, ni, o.neighbors, nsc,
					sizeof(double) * ni * o.neighbors);
	seg_builder_add(&b, SEG_TAG_POPULARITY, SEG_DT_FLOAT8, 0, 0, k + 1, ni, pop,
					sizeof(double) * (k + 1) * ni);
	seg_builder_add(&b, SEG_TAG_HISTORY_PTR, SEG_DT_INT64, 0, 0, 1, nu + 1, hptr,
					sizeof(int64) * (nu + 1));
	seg_builder_add(&b, SEG_TAG_HISTORY, SEG_DT_INT32, 0, 0, 1, (int32) np, hidx,
					sizeof(int32) * np);
	if (s->has_segments)
		seg_builder_add(&b, SEG_TAG_USER_SEGMENTS, SEG_DT_INT32, 0, 0, 1, nu, useg,
						sizeof(int32) * nu);
	seg_builder_add(&b, SEG_TAG_BLEND, SEG_DT_FLOAT8, 0, 0, 1, SEG_BLEND_PARAMS, o.blend,
					sizeof(o.blend));

	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"algorithm\": \"hybrid\", \"options\": %s, \"rows\": %lld, "
					 "\"users\": %d, \"items\": %d, \"pairs\": %lld, \"segments\": %d, "
					 "\"density\": %.17g",
					 s->options, (long long) s->n, nu, ni, (long long) np, k,
					 (double) np / ((double) nu * ni));
	append_array(&metrics, "loss_curve", loss, o.als.iterations);
	appendStringInfoChar(&metrics, '}');
	seg_builder_add_metrics(&b, metrics.data);
	MemoryContextSwitchTo(old);
	result = seg_builder_finish_copy(&b, work);
	PG_RETURN_SEGMODEL_P(result);
}
