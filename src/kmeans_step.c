/*
 * kmeans_step.c — kmeans_step(features, model): one exact Lloyd iteration.
 *
 * The state holds per-cluster counts and sums, so it is O(k d) whatever the
 * number of rows: this is how a model fitted on a sample is refined over a
 * table larger than memory, or over a distributed table, a pass at a time.
 * State type segment.step_state: fixed size, updated in place, with text and
 * binary I/O so parallel workers and Citus nodes can ship it.
 */
#include "postgres.h"

#include <math.h>

#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/memutils.h"

#include "model_cache.h"
#include "model_type.h"
#include "text_form.h"
#include "validate.h"

#define SEG_STEP_MAGIC			0x53454750	/* "SEGP" */
#define SEG_STEP_FORMAT			1
#define SEG_STEP_TEXT_PREFIX	"segp1:"

/* Flat state: this header, the model (padded to 8), counts[k], sums[k x d]. */
typedef struct SegStepState
{
	int32		vl_len_;
	uint32		magic;
	uint16		format;
	uint16		reserved;
	int32		k;
	int32		d;
	int32		model_bytes;	/* padded size of the embedded model */
	int64		rows;
	double		inertia;		/* against the model's centroids */
} SegStepState;

static SegModel *
step_model(SegStepState *st)
{
	return (SegModel *) (st + 1);
}

static int64 *
step_counts(SegStepState *st)
{
	return (int64 *) ((char *) (st + 1) + st->model_bytes);
}

static double *
step_sums(SegStepState *st)
{
	return (double *) (step_counts(st) + st->k);
}

static SegStepState *
step_create(MemoryContext cxt, const SegModel *m, const SegKmeansView *v)
{
	Size		mbytes = TYPEALIGN(8, VARSIZE(m));
	Size		size = sizeof(SegStepState) + mbytes +
		sizeof(int64) * v->k + sizeof(double) * v->k * v->dim;
	SegStepState *st = MemoryContextAllocZero(cxt, size);

	SET_VARSIZE(st, size);
	st->magic = SEG_STEP_MAGIC;
	st->format = SEG_STEP_FORMAT;
	st->k = v->k;
	st->d = v->dim;
	st->model_bytes = mbytes;
	memcpy(step_model(st), m, VARSIZE(m));
	return st;
}

/* Per call site: the last model argument known to equal the state's, and scratch. */
typedef struct StepCache
{
	void	   *model_arg;		/* seg_model_arg's cache */
	const SegModel *same;
	double	   *z;
} StepCache;

static bool
same_model(const SegModel *a, const SegModel *b)
{
	return VARSIZE(a) == VARSIZE(b) && memcmp(a, b, VARSIZE(a)) == 0;
}

PG_FUNCTION_INFO_V1(seg_kmeans_step_transfn);
Datum
seg_kmeans_step_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	SegStepState *st = PG_ARGISNULL(0) ? NULL : (SegStepState *) PG_GETARG_POINTER(0);
	StepCache  *cache = fcinfo->flinfo->fn_extra;
	SegModel   *m;
	SegKmeansView v;
	const double *x;
	const double *cent;
	int			best = 0;
	double		best_d = INFINITY;

	aggcxt = seg_agg_context(fcinfo, "kmeans_step_transfn");
	if (PG_ARGISNULL(1))
		PG_RETURN_POINTER(st);	/* NULL rows are skipped */
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("kmeans_step: model must not be NULL")));
	if (cache == NULL)
		cache = fcinfo->flinfo->fn_extra =
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(StepCache));
	m = seg_model_arg(fcinfo, 2, &cache->model_arg);
	seg_model_kmeans_view(m, &v);
	if (st == NULL)
		st = step_create(aggcxt, m, &v);
	else if (m != cache->same && !same_model(m, step_model(st)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_step: the model must be the same for every row")));
	cache->same = m;
	if (cache->z == NULL)
		cache->z = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(double) * SEG_MAX_FEATURES);

	x = seg_check_vector(PG_GETARG_ARRAYTYPE_P(1), "features", v.dim, NULL);
	if (v.offset)
	{
		for (int j = 0; j < v.dim; j++)
			cache->z[j] = (x[j] - v.offset[j]) / v.factor[j];
		x = cache->z;
	}
	cent = v.centroids;
	for (int i = 0; i < v.k; i++, cent += v.dim)
	{
		double		s = 0.0;

		for (int j = 0; j < v.dim; j++)
		{
			double		t = x[j] - cent[j];

			s += t * t;
		}
		if (s < best_d)
		{
			best_d = s;
			best = i;
		}
	}
	step_counts(st)[best]++;
	{
		double	   *sum = step_sums(st) + (size_t) best * v.dim;

		for (int j = 0; j < v.dim; j++)
			sum[j] += x[j];
	}
	st->inertia += best_d;
	st->rows++;
	PG_RETURN_POINTER(st);
}

/* Combine: add counts and sums; copies instead of returning its second argument. */
PG_FUNCTION_INFO_V1(seg_kmeans_step_combinefn);
Datum
seg_kmeans_step_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	SegStepState *a,
			   *b;

	aggcxt = seg_agg_context(fcinfo, "kmeans_step_combinefn");
	if (PG_ARGISNULL(1))
		PG_RETURN_DATUM(PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0));
	b = (SegStepState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(1));
	if (PG_ARGISNULL(0))
	{
		a = MemoryContextAlloc(aggcxt, VARSIZE(b));
		memcpy(a, b, VARSIZE(b));
		PG_RETURN_POINTER(a);
	}
	a = (SegStepState *) PG_GETARG_POINTER(0);
	if (!same_model(step_model(a), step_model(b)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans_step: cannot combine partial states of different models")));
	for (int i = 0; i < a->k; i++)
		step_counts(a)[i] += step_counts(b)[i];
	for (int64 i = 0; i < (int64) a->k * a->d; i++)
		step_sums(a)[i] += step_sums(b)[i];
	a->rows += b->rows;
	a->inertia += b->inertia;
	PG_RETURN_POINTER(a);
}

/* Final: the new centroids (an empty cluster keeps its centroid) in a copy of the model. */
PG_FUNCTION_INFO_V1(seg_kmeans_step_finalfn);
Datum
seg_kmeans_step_finalfn(PG_FUNCTION_ARGS)
{
	SegStepState *st;
	SegModel   *old;
	SegKmeansView v;
	SegModelBuilder b;
	double	   *cent;
	double		shift = 0.0;
	int			empty = 0;
	StringInfoData metrics;
	char	   *mtext;
	SegModel   *m;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (SegStepState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	old = step_model(st);
	seg_model_kmeans_view(old, &v);
	cent = palloc(sizeof(double) * v.k * v.dim);
	for (int i = 0; i < v.k; i++)
	{
		int64		c = step_counts(st)[i];

		for (int j = 0; j < v.dim; j++)
		{
			size_t		p = (size_t) i * v.dim + j;
			double		nc = c > 0 ? step_sums(st)[p] / c : v.centroids[p];

			shift += (nc - v.centroids[p]) * (nc - v.centroids[p]);
			cent[p] = nc;
		}
		if (c == 0)
			empty++;
	}

	initStringInfo(&metrics);
	appendStringInfo(&metrics,
					 "{\"algorithm\": \"kmeans_step\", \"k\": %d, \"n_features\": %d, "
					 "\"inertia\": %s, \"center_shift\": %s, \"empty_clusters\": %d, "
					 "\"rows_seen\": " INT64_FORMAT ", \"rows_used\": " INT64_FORMAT "}",
					 v.k, v.dim, float8out_internal(st->inertia), float8out_internal(shift),
					 empty, st->rows, st->rows);
	mtext = metrics.data;

	seg_builder_init(&b, old->kind);
	for (int i = 0; i < old->n_sections; i++)
	{
		const SegSection *s = &old->sections[i];

		if (s->tag == SEG_TAG_CENTROIDS || s->tag == SEG_TAG_CLUSTER_SIZES ||
			s->tag == SEG_TAG_METRICS)
			continue;
		seg_builder_add(&b, s->tag, s->dtype, s->group, s->index, s->nrows, s->ncols,
						seg_section_data(old, s), seg_section_nbytes(old, s));
	}
	seg_builder_add(&b, SEG_TAG_CENTROIDS, SEG_DT_FLOAT8, 0, 0, v.k, v.dim,
					cent, sizeof(double) * v.k * v.dim);
	seg_builder_add(&b, SEG_TAG_CLUSTER_SIZES, SEG_DT_INT64, 0, 0, 1, v.k,
					step_counts(st), sizeof(int64) * v.k);
	seg_builder_add_strings(&b, SEG_TAG_METRICS, 0, 0, 1, (const char *const *) &mtext);
	m = seg_builder_finish(&b);
	seg_model_check(m);
	PG_RETURN_SEGMODEL_P(m);
}

/* ---------- I/O of segment.step_state ---------- */

static void
step_encode(SegStepState *st, StringInfo buf)
{
	StringInfoData mw;

	initStringInfo(&mw);
	seg_model_encode(step_model(st), &mw);
	pq_sendint32(buf, st->magic);
	pq_sendint16(buf, st->format);
	pq_sendint16(buf, 0);
	pq_sendint64(buf, st->rows);
	pq_sendfloat8(buf, st->inertia);
	pq_sendint32(buf, mw.len);
	pq_sendbytes(buf, mw.data, mw.len);
	for (int i = 0; i < st->k; i++)
		pq_sendint64(buf, step_counts(st)[i]);
	for (int64 i = 0; i < (int64) st->k * st->d; i++)
		pq_sendfloat8(buf, step_sums(st)[i]);
}

static SegStepState *
step_decode(StringInfo buf)
{
	uint32		magic;
	uint16		format,
				reserved;
	int64		rows,
				total = 0;
	double		inertia;
	int32		mlen;
	StringInfoData mbuf;
	SegModel   *m;
	SegKmeansView v;
	SegStepState *st;

	if (buf->len - buf->cursor < 28)
		seg_bad_input("segment.step_state", "truncated header");
	magic = (uint32) pq_getmsgint(buf, 4);
	format = (uint16) pq_getmsgint(buf, 2);
	reserved = (uint16) pq_getmsgint(buf, 2);
	rows = pq_getmsgint64(buf);
	inertia = pq_getmsgfloat8(buf);
	mlen = (int32) pq_getmsgint(buf, 4);
	if (magic != SEG_STEP_MAGIC || format != SEG_STEP_FORMAT || reserved != 0)
		seg_bad_input("segment.step_state", "wrong magic number, format or flags");
	if (rows < 0 || !isfinite(inertia) || inertia < 0)
		seg_bad_input("segment.step_state", "%lld rows with inertia %g", (long long) rows, inertia);
	if (mlen < 0 || mlen > buf->len - buf->cursor)
		seg_bad_input("segment.step_state", "truncated model");
	/* the embedded model is decoded and checked like any other */
	mbuf.data = (char *) pq_getmsgbytes(buf, mlen);
	mbuf.len = mbuf.maxlen = mlen;
	mbuf.cursor = 0;
	m = seg_model_decode(&mbuf);
	if (m->kind != SEG_KIND_KMEANS)
		seg_bad_input("segment.step_state", "the embedded model is not a k-means model");
	seg_model_kmeans_view(m, &v);
	if ((int64) (buf->len - buf->cursor) != 8 * ((int64) v.k + (int64) v.k * v.dim))
		seg_bad_input("segment.step_state", "%d bytes of counts and sums for k = %d and %d features",
				 buf->len - buf->cursor, v.k, v.dim);
	st = step_create(CurrentMemoryContext, m, &v);
	st->rows = rows;
	st->inertia = inertia;
	for (int i = 0; i < v.k; i++)
	{
		int64		c = pq_getmsgint64(buf);

		if (c < 0)
			seg_bad_input("segment.step_state", "cluster %d has a negative count", i + 1);
		step_counts(st)[i] = c;
		total += c;
	}
	if (total != rows)
		seg_bad_input("segment.step_state", "cluster counts add up to %lld, not %lld rows", (long long) total, (long long) rows);
	for (int64 i = 0; i < (int64) v.k * v.dim; i++)
	{
		double		x = pq_getmsgfloat8(buf);

		if (!isfinite(x))
			seg_bad_input("segment.step_state", "a non-finite sum");
		step_sums(st)[i] = x;
	}
	return st;
}

PG_FUNCTION_INFO_V1(seg_step_state_send);
Datum
seg_step_state_send(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	pq_begintypsend(&buf);
	step_encode((SegStepState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0)), &buf);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(seg_step_state_recv);
Datum
seg_step_state_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(step_decode((StringInfo) PG_GETARG_POINTER(0)));
}

PG_FUNCTION_INFO_V1(seg_step_state_out);
Datum
seg_step_state_out(PG_FUNCTION_ARGS)
{
	StringInfoData wire;

	initStringInfo(&wire);
	step_encode((SegStepState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0)), &wire);
	PG_RETURN_CSTRING(seg_text_form_out("segment.step_state", SEG_STEP_TEXT_PREFIX, &wire, NULL));
}

PG_FUNCTION_INFO_V1(seg_step_state_in);
Datum
seg_step_state_in(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	seg_text_form_in("segment.step_state", SEG_STEP_TEXT_PREFIX, PG_GETARG_CSTRING(0), &buf);
	PG_RETURN_POINTER(step_decode(&buf));
}
