/*
 * segmenter.c — the train() pipeline model (kind "segmenter"): from a row
 * of a customers table to a segment.
 *
 * A segmenter model records, per input column, its kind (numeric, boolean,
 * categorical), the value that replaces a NULL, and for categorical columns
 * the categories that get a one-hot feature of their own (any other value
 * goes to a last "other" feature); then the scaler of the encoded features
 * and the centroids.  The same C code encodes rows for training
 * (segment_features) and for scoring (segment_of), so the two cannot drift.
 *
 * Columns are found by name in the row's type, bound once per call site and
 * row type: a view or table with extra columns works, a missing or retyped
 * column is an error naming it.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "executor/spi.h"

#include "model_cache.h"
#include "model_type.h"
#include "segmenter.h"
#include "validate.h"
#include "nn.h"
#include "vecmath.h"

/* ---------- the pipeline, read from a model (no copies) ---------- */

void
seg_pipeline_view(const SegModel *m, SegPipeline *p)
{
	const SegSection *cols = seg_model_find(m, SEG_TAG_COLUMNS, 0, 0);
	const SegSection *types = seg_model_find(m, SEG_TAG_COLUMN_TYPES, 0, 0);
	const SegSection *imp = seg_model_find(m, SEG_TAG_IMPUTE, 0, 0);
	const SegSection *cent = seg_model_find(m, SEG_TAG_CENTROIDS, 0, 0);
	const SegSection *off = seg_model_find(m, SEG_TAG_SCALE_OFFSET, 0, 0);
	const SegSection *fac = seg_model_find(m, SEG_TAG_SCALE_FACTOR, 0, 0);
	const SegSection *labels = seg_model_find(m, SEG_TAG_SEGMENT_LABELS, 0, 0);

	if (m->kind != SEG_KIND_SEGMENTER || cols == NULL || types == NULL || imp == NULL || cent == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model of kind \"%s\" is not a segment.train() model",
						seg_model_kind_name(m->kind)),
				 errhint("Score k-means models with segment.kmeans_assign().")));
	p->n_in = cols->nrows;
	p->columns = seg_section_data(m, cols);
	p->columns_bytes = seg_section_nbytes(m, cols);
	p->types = seg_section_data(m, types);
	p->impute = seg_section_data(m, imp);
	p->k = cent->nrows;
	p->cd = cent->ncols;
	{
		const SegSection *feats = seg_model_find(m, SEG_TAG_FEATURES, 0, 0);
		const SegSection *enc = seg_model_find(m, SEG_TAG_LAYER_SPEC, SEG_NET_ENCODER, 0);
		const SegSection *cls = seg_model_find(m, SEG_TAG_LAYER_SPEC, SEG_NET_CLASSIFIER, 0);

		p->d = feats ? feats->nrows : (off ? off->ncols : cent->ncols);
		p->encoder = enc != NULL;
		p->classifier = cls != NULL;
		p->cls_in = cls ? ((const int32 *) seg_section_data(m, cls))[0] : 0;
	}
	p->centroids = seg_section_data(m, cent);
	p->offset = off ? seg_section_data(m, off) : NULL;
	p->factor = fac ? seg_section_data(m, fac) : NULL;
	p->labels = labels ? seg_section_data(m, labels) : NULL;
	p->model = m;
}

/* The categories of input column j: count and the first string. */
static int
column_categories(const SegPipeline *p, int j, const char **first)
{
	const SegSection *s = seg_model_find(p->model, SEG_TAG_CATEGORIES, 0, j);

	*first = s ? seg_section_data(p->model, s) : NULL;
	return s ? s->nrows : 0;
}

/* ---------- binding a row type to the model's columns ---------- */

typedef struct RowBinding
{
	Oid			tuptype;
	int32		tuptypmod;
	char	   *columns;		/* which model columns (names and kinds) this */
	Size		columns_bytes;	/* binding is for: a copy, compared byte for byte */
	int32	   *types;
	bool		all_float8;		/* every column a float8 feature of its own */
	TupleDesc	tupdesc;		/* copy, in fn_mcxt */
	int			n_in;
	int		   *attnum;			/* per model column: 1-based attribute number */
	Oid		   *atttype;
} RowBinding;

typedef struct CallSite
{
	void	   *model_slot;		/* seg_model_arg's cache (model as a value) */
	FmgrInfo	cache_fl;		/* seg_cached_model's call site (model by name) */
	text	   *type_model;		/* model name found for the row type, this statement */
	const SegModel *named;		/* the cached catalog model pipe was read from */
	SegPipeline pipe;
	RowBinding	bind;
	const SegModel *bound_model;	/* bind was checked against this model... */
	bool		columns_checked;	/* segment_of_columns: argument types match bind */
	int		   *argpos;			/* ... and then per model column, its argument */
	Datum	   *values;			/* deformed row, natts of the bound type */
	bool	   *isnull;
} CallSite;

static CallSite *
call_site(FunctionCallInfo fcinfo)
{
	CallSite   *cs = fcinfo->flinfo->fn_extra;

	if (cs == NULL)
	{
		cs = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallSite));
		cs->cache_fl.fn_mcxt = fcinfo->flinfo->fn_mcxt;
		fcinfo->flinfo->fn_extra = cs;
	}
	return cs;
}

static bool
is_number_type(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID || t == FLOAT4OID ||
		t == FLOAT8OID || t == NUMERICOID;
}

static const RowBinding *
bind_type(FunctionCallInfo fcinfo, CallSite *cs, Oid tuptype, int32 tuptypmod, const SegPipeline *p)
{
	RowBinding *b = &cs->bind;
	MemoryContext old;
	TupleDesc	td;
	const char *name;

	/* the same catalog model and row type as the last row: nothing to check */
	if (b->tupdesc && cs->bound_model == p->model && p->model == cs->named &&
		b->tuptype == tuptype && b->tuptypmod == tuptypmod)
		return b;
	/* another model (by value) with the same columns of the same kinds */
	if (b->tupdesc && b->tuptype == tuptype && b->tuptypmod == tuptypmod &&
		b->columns_bytes == p->columns_bytes && b->n_in == p->n_in &&
		memcmp(b->columns, p->columns, p->columns_bytes) == 0 &&
		memcmp(b->types, p->types, sizeof(int32) * p->n_in) == 0)
	{
		cs->bound_model = p->model;
		return b;
	}
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	if (b->tupdesc)
	{
		FreeTupleDesc(b->tupdesc);
		pfree(b->attnum);
		pfree(b->atttype);
		pfree(b->columns);
		pfree(b->types);
		pfree(cs->values);
		pfree(cs->isnull);
		pfree(cs->argpos);
	}
	cs->bound_model = NULL;
	cs->columns_checked = false;
	td = lookup_rowtype_tupdesc_copy(tuptype, tuptypmod);
	cs->values = palloc(sizeof(Datum) * Max(td->natts, 1));
	cs->isnull = palloc(sizeof(bool) * Max(td->natts, 1));
	cs->argpos = palloc(sizeof(int) * Max(p->n_in, 1));
	b->tupdesc = td;
	b->tuptype = tuptype;
	b->tuptypmod = tuptypmod;
	b->columns = palloc(Max(p->columns_bytes, 1));
	memcpy(b->columns, p->columns, p->columns_bytes);
	b->columns_bytes = p->columns_bytes;
	b->types = palloc(sizeof(int32) * Max(p->n_in, 1));
	memcpy(b->types, p->types, sizeof(int32) * p->n_in);
	b->n_in = p->n_in;
	b->attnum = palloc(sizeof(int) * Max(p->n_in, 1));
	b->atttype = palloc(sizeof(Oid) * Max(p->n_in, 1));
	b->all_float8 = p->n_in == p->d;
	MemoryContextSwitchTo(old);

	name = p->columns;
	for (int j = 0; j < p->n_in; j++, name = seg_next_string(name))
	{
		int			found = 0;
		Oid			t = InvalidOid;

		for (int a = 0; a < td->natts; a++)
		{
			Form_pg_attribute att = TupleDescAttr(td, a);

			if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			{
				found = a + 1;
				t = att->atttypid;
				break;
			}
		}
		if (found == 0)
		{
			b->tupdesc = NULL;	/* do not keep a half-made binding */
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("the row has no column \"%s\", which the model was trained on", name),
					 errdetail("Row type %s.", format_type_be(tuptype))));
		}
		if ((p->types[j] == SEG_COL_NUMERIC && !is_number_type(t)) ||
			(p->types[j] == SEG_COL_BOOLEAN && t != BOOLOID))
		{
			b->tupdesc = NULL;
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" is of type %s, but the model was trained on a %s column",
							name, format_type_be(t),
							p->types[j] == SEG_COL_NUMERIC ? "numeric" : "boolean")));
		}
		b->attnum[j] = found;
		b->atttype[j] = t;
		b->all_float8 &= p->types[j] == SEG_COL_NUMERIC && t == FLOAT8OID;
	}
	cs->bound_model = p->model;
	return b;
}

/* ---------- encoding ---------- */

static double
number_of(Datum v, Oid t)
{
	switch (t)
	{
		case INT2OID:
			return DatumGetInt16(v);
		case INT4OID:
			return DatumGetInt32(v);
		case INT8OID:
			return (double) DatumGetInt64(v);
		case FLOAT4OID:
			return DatumGetFloat4(v);
		case FLOAT8OID:
			return DatumGetFloat8(v);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, v));
	}
}


/* v, the value of the model's numeric column j, when it is finite; else an error naming the column. */
static inline double
finite_feature(const CallSite *cs, int j, double v)
{
	if (!isfinite(v))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("column \"%s\" holds %g; the model needs finite numbers",
						NameStr(TupleDescAttr(cs->bind.tupdesc, cs->bind.attnum[j] - 1)->attname), v)));
	return v;
}

/* A float8 column's value for the model: its own, or the mean when NULL; finite. */
static inline double
float8_feature(const SegPipeline *p, const CallSite *cs, const NullableDatum *a, int j)
{
	return a->isnull ? p->impute[j] : finite_feature(cs, j, DatumGetFloat8(a->value));
}

/*
 * encode_values when every column is a float8 feature (the common case of
 * numeric customer tables): two features at a time in an SSE2 register,
 * scaled as (v - offset) / factor lane by lane, the same bits as the
 * general path.
 */
static void
encode_float8_args(const SegPipeline *p, const CallSite *cs, const NullableDatum *args, double *x)
{
	int			j = 0;

	for (; j + 2 <= p->d; j += 2)
	{
		seg_v2d		v = {float8_feature(p, cs, &args[cs->argpos[j]], j),
		float8_feature(p, cs, &args[cs->argpos[j + 1]], j + 1)};

		if (p->offset)
			v = (v - seg_load2(p->offset + j)) / seg_load2(p->factor + j);
		memcpy(x + j, &v, sizeof(v));
	}
	for (; j < p->d; j++)
	{
		double		v = float8_feature(p, cs, &args[cs->argpos[j]], j);

		x[j] = p->offset ? (v - p->offset[j]) / p->factor[j] : v;
	}
}

/*
 * The encoded, scaled features of one row into x (p->d values).  The column
 * names are given for errors.
 */
static void
encode_values(const SegPipeline *p, const CallSite *cs, const NullableDatum *args, double *x)
{
	const RowBinding *b = &cs->bind;
	const double *off = p->offset;
	const double *fac = p->factor;
	int			pos = 0;

	if (b->all_float8 && args != NULL)
	{
		encode_float8_args(p, cs, args, x);
		return;
	}

	/*
	 * Each value is scaled as it is written, (v - offset) / factor: exactly
	 * rounded, so the same bits as scaling the whole vector afterwards, but
	 * without reading back, as vectors, the doubles just stored one by one
	 * (a store-forwarding stall per pair).
	 */
#define PUT(v) \
	do { \
		double		v_ = (v); \
		x[pos] = off ? (v_ - off[pos]) / fac[pos] : v_; \
		pos++; \
	} while (0)

	for (int j = 0; j < p->n_in; j++)
	{
		/* a deformed row, or the columns passed as arguments, read in place */
		bool		isnull = args ? args[cs->argpos[j]].isnull : cs->isnull[b->attnum[j] - 1];
		Datum		v = args ? args[cs->argpos[j]].value : cs->values[b->attnum[j] - 1];

		if (p->types[j] == SEG_COL_CATEGORICAL)
		{
			const char *cat;
			int			ncat = column_categories(p, j, &cat);
			int			hit = ncat;	/* "other" */

			if (isnull)
				hit = (int) p->impute[j];
			else
			{
				char	   *s = seg_datum_text(v, b->atttype[j]);

				for (int c = 0; c < ncat; c++, cat = seg_next_string(cat))
					if (strcmp(s, cat) == 0)
					{
						hit = c;
						break;
					}
				pfree(s);
			}
			for (int c = 0; c <= ncat; c++)
				PUT(c == hit);
		}
		else if (isnull)
			PUT(p->impute[j]);
		else if (p->types[j] == SEG_COL_BOOLEAN)
			PUT(DatumGetBool(v) ? 1.0 : 0.0);
		else
			PUT(finite_feature(cs, j, number_of(v, b->atttype[j])));
	}
#undef PUT
	Assert(pos == p->d);
}

/*
 * Nearest centroid (0-based; ties to the lowest), and the squared distances
 * when asked.  The choice is branch-free: which centroid wins changes from
 * row to row, and a branch on it is mispredicted about every other row.
 */
#define NEAREST_BODY(pair_fn) \
	const double *C = p->centroids; \
	int			cd = p->cd; \
	int			best = 0; \
	double		best_d = INFINITY; \
	int			c = 0; \
	\
	for (; c + 2 <= p->k; c += 2) \
	{ \
		double		dd[2]; \
		\
		pair_fn(x, C + (size_t) c * cd, C + (size_t) (c + 1) * cd, cd, &dd[0], &dd[1]); \
		for (int t = 0; t < 2; t++) \
		{ \
			bool		lt = dd[t] < best_d; \
			\
			if (dist) \
				dist[c + t] = dd[t]; \
			best = lt ? c + t : best; \
			best_d = lt ? dd[t] : best_d; \
		} \
	} \
	if (c < p->k) \
	{ \
		double		dd = seg_sqdist(x, C + (size_t) c * cd, cd); \
		\
		if (dist) \
			dist[c] = dd; \
		if (dd < best_d) \
			best = c; \
	} \
	return best

static int
nearest_sse2(const SegPipeline *p, const double *x, double *dist)
{
	NEAREST_BODY(seg_sqdist_pair);
}

#ifdef SEG_HAVE_AVX2_KERNELS
__attribute__((target("avx2")))
static int
nearest_avx2(const SegPipeline *p, const double *x, double *dist)
{
	NEAREST_BODY(seg_sqdist_pair_avx2);
}
#endif

static int
nearest(const SegPipeline *p, const double *x, double *dist)
{
	return SEG_AVX2_OR_SSE2(nearest, p, x, dist);
}

/*
 * The segment (0-based) of an encoded row x (p->d values): through the
 * encoder when there is one, then the classifier's choice when there is
 * one, else the nearest centroid.  dist, when given, gets the squared
 * distances to the centroids (k values, in code space with an encoder).
 */
static int
decide(const SegPipeline *p, const double *x, double *dist)
{
	const double *z = x;
	double	   *code = NULL;
	int			w,
				best;

	if (p->encoder)
		z = code = seg_model_net_apply(p->model, SEG_NET_ENCODER, x, p->d, &w);
	best = nearest(p, z, dist);
	if (p->classifier)
	{
		double	   *probs = seg_model_net_apply(p->model, SEG_NET_CLASSIFIER,
												p->cls_in == p->d ? x : z, p->cls_in, &w);

		best = 0;
		for (int c = 1; c < w; c++)
			if (probs[c] > probs[best])
				best = c;
		pfree(probs);
	}
	if (code)
		pfree(code);
	return best;
}

static ArrayType *
float8_array(const double *v, int n)
{
	Size		size = ARR_OVERHEAD_NONULLS(1) + sizeof(double) * n;
	ArrayType  *r = palloc0(size);

	SET_VARSIZE(r, size);
	r->ndim = 1;
	r->elemtype = FLOAT8OID;
	ARR_DIMS(r)[0] = n;
	ARR_LBOUND(r)[0] = 1;
	memcpy(ARR_DATA_PTR(r), v, sizeof(double) * n);
	return r;
}

/* Encode argument 0 (a row) with the pipeline; x has room for p->d values. */
static void
encode_arg(FunctionCallInfo fcinfo, CallSite *cs, const SegPipeline *p, double *x)
{
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(0);
	HeapTupleData tuple;

	bind_type(fcinfo, cs, HeapTupleHeaderGetTypeId(row), HeapTupleHeaderGetTypMod(row), p);
	tuple.t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&(tuple.t_self));
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = row;
	/* one pass over the row, not one per column */
	heap_deform_tuple(&tuple, cs->bind.tupdesc, cs->values, cs->isnull);
	encode_values(p, cs, NULL, x);
}

/* ---------- SQL: the model as a value ---------- */

#define SEG_ROW_ARG_CHECK() \
	do { \
		if (!type_is_rowtype(get_fn_expr_argtype(fcinfo->flinfo, 0))) \
			ereport(ERROR, \
					(errcode(ERRCODE_DATATYPE_MISMATCH), \
					 errmsg("the first argument must be a row (e.g. the table alias: segment_of(c) FROM customers c)"))); \
	} while (0)

static void
pipeline_of_arg(FunctionCallInfo fcinfo, CallSite *cs, int argno, SegPipeline *p)
{
	seg_pipeline_view(seg_model_arg(fcinfo, argno, &cs->model_slot), p);
}

/* The latest version of the named model, decoded once per backend and version. */
static void
pipeline_of_name(CallSite *cs, text *name, SegPipeline *p)
{
	const SegModel *m = seg_cached_model(&cs->cache_fl, name, 0)->model;

	/* a pinned cache entry's model does not move: read its sections once */
	if (m != cs->named)
	{
		seg_pipeline_view(m, &cs->pipe);
		cs->named = m;
	}
	*p = cs->pipe;
}

/*
 * The model trained on this row's type: the one name in segment.latest_models
 * whose source_type is the row's type, found once per call site.
 */
static text *
model_name_for_type(FunctionCallInfo fcinfo, CallSite *cs, Oid t)
{
	char	   *tname;
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	char	   *names;
	uint64		n;

	if (cs->type_model)
		return cs->type_model;
	/* as register_model() records it: format_type() with only pg_catalog on the path */
	tname = format_type_be_qualified(t);
	args[0] = CStringGetTextDatum(tname);
	names = seg_model_names("SELECT name FROM segment.latest_models "
							"WHERE source_type = $1 AND kind = 'segmenter' ORDER BY name",
							1, argtypes, args, &n);
	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no model was trained on rows of type %s", tname),
				 errhint("Train one with segment.train(name, '%s'), or name the model: segment_of(row, 'name').",
						 tname)));
	if (n > 1)
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_FUNCTION),
				 errmsg("several models were trained on rows of type %s: %s", tname, names),
				 errhint("Name the model: segment_of(row, 'name').")));
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		cs->type_model = cstring_to_text(names);
		MemoryContextSwitchTo(old);
	}
	return cs->type_model;
}

/*
 * The pipeline behind argument 1 as the SQL signature has it: a model value,
 * a model name, or (no argument) the model trained on the row's type.
 */
static void
pipeline_for_call(FunctionCallInfo fcinfo, CallSite *cs, SegPipeline *p)
{
	if (PG_NARGS() < 2)
		pipeline_of_name(cs, model_name_for_type(fcinfo, cs, get_fn_expr_argtype(fcinfo->flinfo, 0)), p);
	else if (get_fn_expr_argtype(fcinfo->flinfo, 1) == TEXTOID)
		pipeline_of_name(cs, PG_GETARG_TEXT_PP(1), p);
	else
		pipeline_of_arg(fcinfo, cs, 1, p);
}

/* segment_features(row, model) → float8[]: the encoded, scaled features */
PG_FUNCTION_INFO_V1(seg_segment_features);
Datum
seg_segment_features(PG_FUNCTION_ARGS)
{
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;
	double	   *x;

	SEG_ROW_ARG_CHECK();
	pipeline_of_arg(fcinfo, cs, 1, &p);
	x = palloc(sizeof(double) * p.d);
	encode_arg(fcinfo, cs, &p, x);
	PG_RETURN_ARRAYTYPE_P(float8_array(x, p.d));
}

/* segment_of(row, model) → int: the segment, 1..k */
PG_FUNCTION_INFO_V1(seg_segment_of);
Datum
seg_segment_of(PG_FUNCTION_ARGS)
{
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;
	double		x[SEG_MAX_FEATURES_STACK];
	double	   *xp;
	int			s;

	SEG_ROW_ARG_CHECK();
	pipeline_for_call(fcinfo, cs, &p);
	xp = p.d <= SEG_MAX_FEATURES_STACK ? x : palloc(sizeof(double) * p.d);
	encode_arg(fcinfo, cs, &p, xp);
	s = decide(&p, xp, NULL);
	PG_RETURN_INT32(s + 1);
}

/* segment_distances(row, model) → float8[]: Euclidean distance to each centroid */
PG_FUNCTION_INFO_V1(seg_segment_distances);
Datum
seg_segment_distances(PG_FUNCTION_ARGS)
{
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;
	double	   *x;
	double	   *dist;

	SEG_ROW_ARG_CHECK();
	pipeline_for_call(fcinfo, cs, &p);
	x = palloc(sizeof(double) * p.d);
	dist = palloc(sizeof(double) * p.k);
	encode_arg(fcinfo, cs, &p, x);
	decide(&p, x, dist);
	for (int c = 0; c < p.k; c++)
		dist[c] = sqrt(dist[c]);
	PG_RETURN_ARRAYTYPE_P(float8_array(dist, p.k));
}

/* segment_label(row, model) → text: the segment's label, or "segment N" */
PG_FUNCTION_INFO_V1(seg_segment_label);
Datum
seg_segment_label(PG_FUNCTION_ARGS)
{
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;
	double	   *x;
	int			s;
	const char *label;

	SEG_ROW_ARG_CHECK();
	pipeline_for_call(fcinfo, cs, &p);
	x = palloc(sizeof(double) * p.d);
	encode_arg(fcinfo, cs, &p, x);
	s = decide(&p, x, NULL);
	if (p.labels == NULL)
		PG_RETURN_TEXT_P(cstring_to_text(psprintf("segment %d", s + 1)));
	label = p.labels;
	for (int i = 0; i < s; i++)
		label = seg_next_string(label);
	PG_RETURN_TEXT_P(cstring_to_text(label));
}

/* ---------- column by column: what the planner makes of segment_of(c) ---------- */

/*
 * The columns of a row, passed one by one after the row type (arguments
 * first..), encoded.  The first call checks them against the bound row type
 * (the plan was made for it: a changed type replans first) and notes where
 * each model column is; later calls read the arguments in place.
 */
static void
encode_columns(FunctionCallInfo fcinfo, CallSite *cs, const SegPipeline *p, int first, double *x)
{
	TupleDesc	td;
	int			arg = first;
	int		   *attarg;

	bind_type(fcinfo, cs, PG_GETARG_OID(0), -1, p);
	if (cs->columns_checked)
	{
		encode_values(p, cs, fcinfo->args, x);
		return;
	}
	td = cs->bind.tupdesc;
	attarg = palloc(sizeof(int) * Max(td->natts, 1));
	for (int a = 0; a < td->natts; a++)
	{
		Form_pg_attribute att = TupleDescAttr(td, a);

		attarg[a] = -1;
		if (att->attisdropped)
			continue;
		if (arg >= PG_NARGS() || get_fn_expr_argtype(fcinfo->flinfo, arg) != att->atttypid)
			elog(ERROR, "segment_of: columns passed do not match row type %s",
				 format_type_be(PG_GETARG_OID(0)));
		attarg[a] = arg++;
	}
	if (arg != PG_NARGS())
		elog(ERROR, "segment_of: columns passed do not match row type %s",
			 format_type_be(PG_GETARG_OID(0)));
	for (int j = 0; j < p->n_in; j++)
		cs->argpos[j] = attarg[cs->bind.attnum[j] - 1];
	pfree(attarg);
	cs->columns_checked = true;
	encode_values(p, cs, fcinfo->args, x);
}

static Datum
segment_of_columns(FunctionCallInfo fcinfo, SegPipeline *p, int first)
{
	CallSite   *cs = call_site(fcinfo);
	double		x[SEG_MAX_FEATURES_STACK];
	double	   *xp = p->d <= SEG_MAX_FEATURES_STACK ? x : palloc(sizeof(double) * p->d);

	encode_columns(fcinfo, cs, p, first, xp);
	PG_RETURN_INT32(decide(p, xp, NULL) + 1);
}

/* segment_of_columns(row_type, VARIADIC "any"): the model trained on row_type */
PG_FUNCTION_INFO_V1(seg_segment_of_columns);
Datum
seg_segment_of_columns(PG_FUNCTION_ARGS)
{
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;

	pipeline_of_name(cs, model_name_for_type(fcinfo, cs, PG_GETARG_OID(0)), &p);
	return segment_of_columns(fcinfo, &p, 1);
}

/* segment_of_columns_named(row_type, name, VARIADIC "any") */
PG_FUNCTION_INFO_V1(seg_segment_of_columns_named);
Datum
seg_segment_of_columns_named(PG_FUNCTION_ARGS)
{
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();		/* segment_of(c, NULL) is NULL: it is strict */
	pipeline_of_name(cs, PG_GETARG_TEXT_PP(1), &p);
	return segment_of_columns(fcinfo, &p, 2);
}

/* segment_of_columns_model(row_type, model, VARIADIC "any") */
PG_FUNCTION_INFO_V1(seg_segment_of_columns_model);
Datum
seg_segment_of_columns_model(PG_FUNCTION_ARGS)
{
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;

	if (PG_ARGISNULL(1))
		PG_RETURN_NULL();
	pipeline_of_arg(fcinfo, cs, 1, &p);
	return segment_of_columns(fcinfo, &p, 2);
}

/* ---------- why is this customer in this segment ---------- */

/*
 * segment_explain(row [, model]) → per encoded feature: the row's value and
 * the segment's mean (original units), and the feature's share of the
 * squared distance to the segment's centroid and to the runner-up's.
 */
PG_FUNCTION_INFO_V1(seg_segment_explain);
Datum
seg_segment_explain(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	CallSite   *cs = call_site(fcinfo);
	SegPipeline p;
	double	   *x;
	double	   *dist;
	int			best,
				second = -1;
	double		d_best,
				d_second = 0;
	const SegSection *fs;
	const char *feature;

	SEG_ROW_ARG_CHECK();
	InitMaterializedSRF(fcinfo, 0);
	pipeline_for_call(fcinfo, cs, &p);
	if (p.encoder)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("segment_explain does not explain models with an encoder"),
				 errdetail("Their distances are measured in the encoder's code space, not per feature.")));
	x = palloc(sizeof(double) * p.d);
	dist = palloc(sizeof(double) * p.k);
	encode_arg(fcinfo, cs, &p, x);
	best = decide(&p, x, dist);
	for (int c = 0; c < p.k; c++)
		if (c != best && (second < 0 || dist[c] < dist[second]))
			second = c;
	d_best = dist[best];
	if (second >= 0)
		d_second = dist[second];
	fs = seg_model_find(p.model, SEG_TAG_FEATURES, 0, 0);
	feature = fs ? seg_section_data(p.model, fs) : NULL;
	for (int j = 0; j < p.d; j++)
	{
		Datum		values[8];
		bool		nulls[8] = {0};
		double		off = p.offset ? p.offset[j] : 0.0;
		double		fac = p.factor ? p.factor[j] : 1.0;
		const double *cb = p.centroids + (size_t) best * p.d;
		double		e = (x[j] - cb[j]) * (x[j] - cb[j]);

		values[0] = Int32GetDatum(best + 1);
		values[1] = Int32GetDatum(second + 1);
		nulls[1] = second < 0;
		values[2] = CStringGetTextDatum(feature ? feature : psprintf("feature %d", j + 1));
		values[3] = Float8GetDatum(x[j] * fac + off);
		values[4] = Float8GetDatum(cb[j] * fac + off);
		values[5] = Float8GetDatum(d_best > 0 ? e / d_best : 0.0);
		if (second >= 0)
		{
			const double *cr = p.centroids + (size_t) second * p.d;
			double		r = (x[j] - cr[j]) * (x[j] - cr[j]);

			values[6] = Float8GetDatum(cr[j] * fac + off);
			values[7] = Float8GetDatum(d_second > 0 ? r / d_second : 0.0);
		}
		else
			nulls[6] = nulls[7] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		if (feature)
			feature = seg_next_string(feature);
	}
	return (Datum) 0;
}
