/*
 * recommend.c — scoring with a recommender model: recommend(),
 * similar_items(), recommend_for_segment() and recommend_items() (the
 * model-as-value form the evaluation uses).
 *
 * A user's score for item j blends three signals, each divided by its
 * largest value over the candidate items so the blend weights (stored in the
 * model) compare like with like:
 *   ALS        x_u · y_j
 *   item-item  Σ over the user's items i of cos(i, j), j among i's neighbours
 *   popularity the share of the user's segment (else of all users) with j
 * Users the model does not know, or with fewer than min_history items, get
 * their segment's popular items when a segmentation applies, else everyone's.
 */
#include "postgres.h"

#include <cblas.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "model_cache.h"
#include "model_type.h"
#include "validate.h"

typedef enum Method
{
	M_HYBRID,
	M_ALS,
	M_ITEM,
	M_POPULARITY
} Method;

/* Pointers into a recommender model, built once per cached model. */
typedef struct RecView
{
	const SegModel *model;
	int32		nu,
				ni,
				f,
				m,
				k;
	bool		user_text,
				item_text;
	const int64 *uid64,
			   *iid64;
	const char **ustr,
			  **istr;
	const double *X,
			   *Y,
			   *nsc,
			   *pop;
	const int32 *nb,
			   *hidx,
			   *useg;
	const int64 *hptr;
	double		blend[SEG_BLEND_PARAMS];
} RecView;

static const char **
string_table(const SegModel *m, const SegSection *s)
{
	const char **v = palloc(sizeof(char *) * s->nrows);
	const char *p = seg_section_data(m, s);

	for (int i = 0; i < s->nrows; i++, p = seg_next_string(p))
		v[i] = p;
	return v;
}

static void
build_view(const SegModel *m, RecView *v)
{
	const SegSection *s;

	if (m->kind != SEG_KIND_RECOMMENDER)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model of kind \"%s\" is not a recommender", seg_model_kind_name(m->kind)),
				 errhint("Train one with segment.recommender_fit or segment.train_recommender.")));
	memset(v, 0, sizeof(*v));
	v->model = m;
	s = seg_model_find(m, SEG_TAG_USER_IDS, 0, 0);
	if (s == NULL || (s = seg_model_find(m, SEG_TAG_HISTORY_PTR, 0, 0)) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recommender model has no users")));
	s = seg_model_find(m, SEG_TAG_USER_IDS, 0, 0);
	v->nu = s->nrows;
	v->user_text = s->dtype == SEG_DT_TEXT;
	if (v->user_text)
		v->ustr = string_table(m, s);
	else
		v->uid64 = seg_section_data(m, s);
	s = seg_model_find(m, SEG_TAG_ITEM_IDS, 0, 0);
	v->ni = s->nrows;
	v->item_text = s->dtype == SEG_DT_TEXT;
	if (v->item_text)
		v->istr = string_table(m, s);
	else
		v->iid64 = seg_section_data(m, s);
	if ((s = seg_model_find(m, SEG_TAG_USER_FACTORS, 0, 0)) != NULL)
	{
		v->f = s->ncols;
		v->X = seg_section_data(m, s);
		v->Y = seg_section_data(m, seg_model_find(m, SEG_TAG_ITEM_FACTORS, 0, 0));
	}
	if ((s = seg_model_find(m, SEG_TAG_ITEM_NEIGHBORS, 0, 0)) != NULL)
	{
		v->m = s->ncols;
		v->nb = seg_section_data(m, s);
		v->nsc = seg_section_data(m, seg_model_find(m, SEG_TAG_NEIGHBOR_SCORES, 0, 0));
	}
	if ((s = seg_model_find(m, SEG_TAG_POPULARITY, 0, 0)) != NULL)
	{
		v->k = s->nrows - 1;
		v->pop = seg_section_data(m, s);
	}
	v->hptr = seg_section_data(m, seg_model_find(m, SEG_TAG_HISTORY_PTR, 0, 0));
	v->hidx = seg_section_data(m, seg_model_find(m, SEG_TAG_HISTORY, 0, 0));
	if ((s = seg_model_find(m, SEG_TAG_USER_SEGMENTS, 0, 0)) != NULL)
		v->useg = seg_section_data(m, s);
	if ((s = seg_model_find(m, SEG_TAG_BLEND, 0, 0)) != NULL)
		memcpy(v->blend, seg_section_data(m, s), sizeof(v->blend));
	else
	{
		v->blend[SEG_BLEND_ALS] = v->blend[SEG_BLEND_ITEM] = 0.5;
		v->blend[SEG_BLEND_MIN_HISTORY] = 1;
		v->blend[SEG_BLEND_NEIGHBORS] = v->m;
	}
}

/* ---------- ids ---------- */

static int
search_text(const char **tab, int32 n, const char *key)
{
	int32		lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int32		mid = lo + (hi - lo) / 2;
		int			c = strcmp(tab[mid], key);

		if (c == 0)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

static int
search_int(const int64 *tab, int32 n, int64 key)
{
	int32		lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int32		mid = lo + (hi - lo) / 2;

		if (tab[mid] == key)
			return mid;
		if (tab[mid] < key)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}


/* Position of an id argument among the model's ids (users or items), -1 when absent. */
static int
find_id(const int64 *ids64, const char **strs, int32 n, bool is_text, Datum d, Oid type)
{
	if (!is_text && (type == INT2OID || type == INT4OID || type == INT8OID))
		return search_int(ids64, n, type == INT8OID ? DatumGetInt64(d) :
						  type == INT4OID ? DatumGetInt32(d) : DatumGetInt16(d));
	else
	{
		char	   *s = seg_datum_text(d, type);

		if (is_text)
			return search_text(strs, n, s);
		else
		{
			char	   *end;
			long long	x;

			errno = 0;
			x = strtoll(s, &end, 10);
			if (errno != 0 || end == s || *end != '\0')
				return -1;
			return search_int(ids64, n, (int64) x);
		}
	}
}

static Datum
item_datum(const RecView *v, int32 j)
{
	if (v->item_text)
		return CStringGetTextDatum(v->istr[j]);
	return CStringGetTextDatum(psprintf(INT64_FORMAT, v->iid64[j]));
}

/* ---------- scoring ---------- */

typedef struct Scored
{
	double		score;
	int32		j;
	int8		why;			/* 0 ALS, 1 item-item, 2 popularity */
	int32		because;		/* the user's item behind an item-item score */
} Scored;

static int
cmp_scored(const void *a, const void *b)
{
	const Scored *x = a,
			   *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->j > y->j) - (x->j < y->j);
}

/*
 * Put the best n of sc[0..nc) first, in order, and return how many: a
 * bounded heap (worst of the kept on top) so a large catalogue costs
 * O(nc log n), not a full sort.
 */
static int
best_first(Scored *sc, int nc, int n)
{
	int			m = 0;

	if (n >= nc)
	{
		qsort(sc, nc, sizeof(Scored), cmp_scored);
		return nc;
	}
	for (int i = 0; i < nc; i++)
	{
		int			at;

		if (m == n && cmp_scored(&sc[i], &sc[0]) >= 0)
			continue;			/* not better than the worst kept */
		if (m < n)
			at = m++;
		else
			at = 0;				/* replaces the worst: sift down from the top */
		{
			Scored		x = sc[i];

			if (at == 0 && m == n && i > 0)
			{
				for (;;)
				{
					int			l = 2 * at + 1,
								r = l + 1,
								worst = at;

					/* the heap's top is the worst: compare against x, not sc[at] */
					if (l < m && cmp_scored(&sc[l], worst == at ? &x : &sc[worst]) > 0)
						worst = l;
					if (r < m && cmp_scored(&sc[r], worst == at ? &x : &sc[worst]) > 0)
						worst = r;
					if (worst == at)
						break;
					sc[at] = sc[worst];
					at = worst;
				}
				sc[at] = x;
			}
			else
			{
				/* sift up: a worse item rises towards the top */
				while (at > 0 && cmp_scored(&x, &sc[(at - 1) / 2]) > 0)
				{
					sc[at] = sc[(at - 1) / 2];
					at = (at - 1) / 2;
				}
				sc[at] = x;
			}
		}
	}
	qsort(sc, m, sizeof(Scored), cmp_scored);
	return m;
}

static void
scale_by_max(double *s, const bool *cand, int32 n)
{
	double		mx = 0;

	for (int32 j = 0; j < n; j++)
		if (cand[j] && s[j] > mx)
			mx = s[j];
	if (mx > 0)
		for (int32 j = 0; j < n; j++)
			s[j] /= mx;
}

/*
 * The best n items for user position u (-1: unknown) in segment seg (0:
 * unknown).  Returns how many were written into out (palloc'd).
 */
static int
score_user(const RecView *v, int32 u, int32 seg, int n, bool include_owned, Method method,
		   Scored **out)
{
	int32		ni = v->ni;
	double	   *als = palloc0(sizeof(double) * ni);
	double	   *item = palloc0(sizeof(double) * ni);
	int32	   *because = palloc(sizeof(int32) * ni);
	bool	   *cand = palloc(sizeof(bool) * ni);
	const double *pop;
	double		w[3];
	int64		h = u >= 0 ? v->hptr[u + 1] - v->hptr[u] : 0;
	Scored	   *sc;
	int			nc = 0;

	if (u >= 0 && v->useg && seg == 0)
		seg = v->useg[u];
	pop = v->pop + (int64) (seg > 0 && seg <= v->k ? seg : 0) * ni;
	memcpy(w, v->blend, sizeof(w));
	if (method == M_ALS)
		w[0] = 1, w[1] = w[2] = 0;
	else if (method == M_ITEM)
		w[1] = 1, w[0] = w[2] = 0;
	if (u < 0 || method == M_POPULARITY ||
		(method == M_HYBRID && h < v->blend[SEG_BLEND_MIN_HISTORY]))
		w[2] = 1, w[0] = w[1] = 0;

	for (int32 j = 0; j < ni; j++)
		cand[j] = true;
	if (u >= 0 && !include_owned)
		for (int64 e = v->hptr[u]; e < v->hptr[u + 1]; e++)
			cand[v->hidx[e]] = false;

	if (w[0] > 0 && v->X)
		cblas_dgemv(CblasRowMajor, CblasNoTrans, ni, v->f, 1.0, v->Y, v->f,
					v->X + (int64) u * v->f, 1, 0.0, als, 1);
	if (w[1] > 0 && v->nb)
	{
		double	   *best = palloc0(sizeof(double) * ni);

		for (int64 e = v->hptr[u]; e < v->hptr[u + 1]; e++)
		{
			int32		i = v->hidx[e];

			for (int r = 0; r < Min(v->m, (int) v->blend[SEG_BLEND_NEIGHBORS]); r++)
			{
				int32		j = v->nb[(int64) i * v->m + r];
				double		s = v->nsc[(int64) i * v->m + r];

				if (j < 0)
					break;
				item[j] += s;
				if (s > best[j])
					best[j] = s, because[j] = i;
			}
		}
	}
	scale_by_max(als, cand, ni);
	scale_by_max(item, cand, ni);

	sc = palloc(sizeof(Scored) * ni);
	for (int32 j = 0; j < ni; j++)
	{
		double		parts[3];

		if (!cand[j])
			continue;
		parts[0] = w[0] * als[j];
		parts[1] = w[1] * item[j];
		parts[2] = w[2] * pop[j];
		sc[nc].j = j;
		sc[nc].score = parts[0] + parts[1] + parts[2];
		/* the reason is the largest part; popularity alone when it is all there is */
		if (w[0] == 0 && w[1] == 0)
			sc[nc].why = 2;
		else if (item[j] > 0 && parts[1] >= parts[0] && parts[1] >= parts[2])
			sc[nc].why = 1;
		else
			sc[nc].why = parts[2] > parts[0] ? 2 : 0;
		sc[nc].because = sc[nc].why == 1 ? because[j] : -1;
		nc++;
	}
	*out = sc;
	return best_first(sc, nc, n);
}

static char *
reason(const RecView *v, const Scored *s, int32 seg, bool unknown)
{
	switch (s->why)
	{
		case 0:
			return "customers with similar purchases bought it";
		case 1:
			if (v->item_text)
				return psprintf("often bought with %s, which you bought", v->istr[s->because]);
			return psprintf("often bought with " INT64_FORMAT ", which you bought", v->iid64[s->because]);
		default:
			if (seg > 0)
				return psprintf("popular in your segment (%d)%s", seg, unknown ? "; you are new here" : "");
			return unknown ? "popular with all customers; you are new here" : "popular with all customers";
	}
}

/* ---------- finding the model ---------- */

/* The single stored recommender name, when none is given. */
static text *
default_model_name(void)
{
	uint64		n;
	char	   *names = seg_model_names("SELECT DISTINCT name FROM segment.models "
										"WHERE kind = 'recommender' ORDER BY name",
										0, NULL, NULL, &n);

	if (n == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no recommender model is stored"),
				 errhint("Train one with segment.train_recommender(name, source, user_col, item_col).")));
	if (n > 1)
		ereport(ERROR,
				(errcode(ERRCODE_AMBIGUOUS_FUNCTION),
				 errmsg("several recommender models are stored: %s", names),
				 errhint("Name the model, for example recommend(user_id, 10, 'name').")));
	return cstring_to_text(names);
}

static const RecView *
view_of_entry(SegCachedModel *e)
{
	if (e->extra == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(e->mcxt);
		RecView    *v = palloc(sizeof(RecView));

		build_view(e->model, v);
		e->extra = v;
		MemoryContextSwitchTo(old);
	}
	return e->extra;
}

/* The model named by argument argno (NULL: the only recommender stored). */
static const RecView *
named_view(FunctionCallInfo fcinfo, int argno, SegCachedModel **entry)
{
	text	   *name = PG_ARGISNULL(argno) ? default_model_name() : PG_GETARG_TEXT_PP(argno);

	*entry = seg_cached_model(fcinfo->flinfo, name, 0);
	return view_of_entry(*entry);
}

/*
 * The segment of a user the model has not seen, from the segmented table
 * train_recommender recorded (0 when there is none or the user is absent).
 */
static int32
segment_of_new_user(SegCachedModel *e, Datum user, Oid type)
{
	Oid			argtypes[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		args[3];
	bool		isnull;
	char	   *source,
			   *key,
			   *seg_model;
	int32		seg_version,
				result = 0;
	Oid			relid;
	AttrNumber	att;
	StringInfoData q;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	args[0] = CStringGetTextDatum(e->name);
	args[1] = Int32GetDatum(e->version);
	if (SPI_execute_with_args("SELECT s ->> 'source', s ->> 'key', s ->> 'model', (s ->> 'version')::int, "
							  "to_regclass(s ->> 'source')::oid "
							  "FROM segment.models m, LATERAL (SELECT m.metrics -> 'segments') x(s) "
							  "WHERE m.name = $1 AND m.version = $2 AND s IS NOT NULL",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the recommender's segmentation failed");
	if (SPI_processed == 0)
	{
		SPI_finish();
		return 0;
	}
	source = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	key = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	seg_model = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
	seg_version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4, &isnull));
	relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5, &isnull));
	if (isnull || key == NULL || seg_model == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the customers table %s of recommender \"%s\" no longer exists",
						source ? source : "?", e->name)));
	att = get_attnum(relid, key);
	if (att == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of %s no longer exists", key, source)));
	initStringInfo(&q);
	appendStringInfo(&q, "SELECT segment.segment_of(c, m.model) FROM %s c, segment.models m "
					 "WHERE m.name = $1 AND m.version = $2 AND c.%s = CAST($3 AS %s) LIMIT 1",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												get_rel_name(relid)),
					 quote_identifier(key), format_type_be(get_atttype(relid, att)));
	args[0] = CStringGetTextDatum(seg_model);
	args[1] = Int32GetDatum(seg_version);
	args[2] = CStringGetTextDatum(seg_datum_text(user, type));
	if (SPI_execute_with_args(q.data, 3, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "looking up the segment of a new user failed");
	if (SPI_processed > 0)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		result = isnull ? 0 : DatumGetInt32(d);
	}
	SPI_finish();
	return result;
}

static int
check_n(FunctionCallInfo fcinfo, int argno)
{
	int			n = PG_GETARG_INT32(argno);

	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("n must be 0 or more, got %d", n)));
	return n;
}

/*
 * The common start of the set-returning functions: no rows for a NULL first
 * argument or n (argument 1), an error for n < 0, then the model named by
 * argument 2.  Returns NULL when there is nothing to return.
 */
static const RecView *
srf_start(FunctionCallInfo fcinfo, SegCachedModel **e, int *n)
{
	const RecView *v;

	InitMaterializedSRF(fcinfo, 0);
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		return NULL;
	*n = check_n(fcinfo, 1);
	v = named_view(fcinfo, 2, e);
	return *n > 0 ? v : NULL;
}

/* One result row: (item_id, score [, reason]) */
static void
put_item(FunctionCallInfo fcinfo, const RecView *v, int32 j, double score, const char *why)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Datum		values[3];
	bool		nulls[3] = {0};

	values[0] = item_datum(v, j);
	values[1] = Float8GetDatum(score);
	if (why)
		values[2] = CStringGetTextDatum(why);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* recommend(user_id, n, model, include_owned) → (item_id, score, reason) */
PG_FUNCTION_INFO_V1(seg_recommend);
Datum
seg_recommend(PG_FUNCTION_ARGS)
{
	SegCachedModel *e;
	Oid			type = get_fn_expr_argtype(fcinfo->flinfo, 0);
	bool		include_owned = !PG_ARGISNULL(3) && PG_GETARG_BOOL(3);
	int			n,
				u,
				seg = 0,
				got;
	Scored	   *sc;
	const RecView *v = srf_start(fcinfo, &e, &n);

	if (v == NULL)
		return (Datum) 0;
	u = find_id(v->uid64, v->ustr, v->nu, v->user_text, PG_GETARG_DATUM(0), type);
	if (u < 0 && v->k > 0)
		seg = segment_of_new_user(e, PG_GETARG_DATUM(0), type);
	got = score_user(v, u, seg, n, include_owned, M_HYBRID, &sc);
	if (u >= 0 && v->useg)
		seg = v->useg[u];
	for (int r = 0; r < got; r++)
		put_item(fcinfo, v, sc[r].j, sc[r].score, reason(v, &sc[r], seg, u < 0));
	return (Datum) 0;
}

/* similar_items(item_id, n, model) → (item_id, score): the cosine neighbours */
PG_FUNCTION_INFO_V1(seg_similar_items);
Datum
seg_similar_items(PG_FUNCTION_ARGS)
{
	SegCachedModel *e;
	int			n,
				i;
	const RecView *v = srf_start(fcinfo, &e, &n);

	if (v == NULL || v->nb == NULL)
		return (Datum) 0;
	i = find_id(v->iid64, v->istr, v->ni, v->item_text, PG_GETARG_DATUM(0),
				get_fn_expr_argtype(fcinfo->flinfo, 0));
	for (int r = 0; i >= 0 && r < Min(n, v->m) && v->nb[(int64) i * v->m + r] >= 0; r++)
		put_item(fcinfo, v, v->nb[(int64) i * v->m + r], v->nsc[(int64) i * v->m + r], NULL);
	return (Datum) 0;
}

/* recommend_for_segment(segment, n, model) → (item_id, score): the segment's popular items */
PG_FUNCTION_INFO_V1(seg_recommend_for_segment);
Datum
seg_recommend_for_segment(PG_FUNCTION_ARGS)
{
	SegCachedModel *e;
	int			n,
				seg,
				got;
	Scored	   *sc;
	const RecView *v = srf_start(fcinfo, &e, &n);

	if (v == NULL)
		return (Datum) 0;
	seg = PG_GETARG_INT32(0);
	if (seg < 1 || seg > v->k)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("segment %d is not one of the model's segments (1..%d)", seg, v->k),
				 v->k == 0 ? errhint("Train the recommender with a segmentation model (option \"segments\").") : 0));
	got = score_user(v, -1, seg, n, false, M_POPULARITY, &sc);
	for (int r = 0; r < got; r++)
		put_item(fcinfo, v, sc[r].j, sc[r].score, NULL);
	return (Datum) 0;
}

/*
 * recommend_items(model, user_id, n, method) → text[]: the top n item ids by
 * one method (hybrid, als, item_item, popularity), for evaluation in SQL.
 */
PG_FUNCTION_INFO_V1(seg_recommend_items);
Datum
seg_recommend_items(PG_FUNCTION_ARGS)
{
	SegModel   *m;
	RecView    *v;
	char	   *mname = text_to_cstring(PG_GETARG_TEXT_PP(3));
	Method		method;
	int			n = check_n(fcinfo, 2),
				u,
				got;
	Scored	   *sc;
	Datum	   *items;
	void	  **slot = &fcinfo->flinfo->fn_extra;

	if (strcmp(mname, "hybrid") == 0)
		method = M_HYBRID;
	else if (strcmp(mname, "als") == 0)
		method = M_ALS;
	else if (strcmp(mname, "item_item") == 0)
		method = M_ITEM;
	else if (strcmp(mname, "popularity") == 0)
		method = M_POPULARITY;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown method \"%s\"", mname),
				 errhint("Use hybrid, als, item_item or popularity.")));
	/* fn_extra: [0] the model argument cache, [1] its view */
	if (*slot == NULL)
		*slot = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, 2 * sizeof(void *));
	m = seg_model_arg(fcinfo, 0, &((void **) *slot)[0]);
	v = ((void **) *slot)[1];
	if (v == NULL || v->model != m)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);

		if (v != NULL)
		{
			if (v->ustr)
				pfree(v->ustr);
			if (v->istr)
				pfree(v->istr);
			pfree(v);
		}
		v = palloc(sizeof(RecView));
		build_view(m, v);
		((void **) *slot)[1] = v;
		MemoryContextSwitchTo(old);
	}
	u = find_id(v->uid64, v->ustr, v->nu, v->user_text, PG_GETARG_DATUM(1),
				get_fn_expr_argtype(fcinfo->flinfo, 1));
	got = score_user(v, u, 0, n, false, method, &sc);
	items = palloc(sizeof(Datum) * Max(got, 1));
	for (int r = 0; r < got; r++)
		items[r] = item_datum(v, sc[r].j);
	PG_RETURN_ARRAYTYPE_P(construct_array(items, got, TEXTOID, -1, false, TYPALIGN_INT));
}
