/*
 * rfm_grade.c — quintile breakpoints of R, F and M across customers, and the
 * grading of one customer's segment.rfm with them: scores 1..5, the RFM code
 * and the named segment.
 *
 * Breakpoints come from an aggregate over segment.rfm values (the rows are
 * held in a segment.rows_state, so it is parallel and Citus-safe).  Real
 * shops have heavy ties (most customers order once), so the cuts are placed
 * between distinct values only: equal values always get equal scores, and
 * the groups are as even as the ties allow (column_cuts).
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "rows_state.h"
#include "validate.h"

#define SEG_RFM_GROUPS 5

/* segment.rfm attribute numbers (1-based) */
#define RFM_ATT_RECENCY 1
#define RFM_ATT_FREQUENCY 2
#define RFM_ATT_MONETARY 3

extern int	seg_max_fit_memory_kb;

/* R, F and M of a segment.rfm; false when it has no recency (no orders used). */
static bool
rfm_values(HeapTupleHeader rfm, double *x)
{
	bool		isnull;
	Datum		v;

	v = GetAttributeByNum(rfm, RFM_ATT_RECENCY, &isnull);
	if (isnull)
		return false;
	x[0] = DatumGetInt32(v);
	v = GetAttributeByNum(rfm, RFM_ATT_FREQUENCY, &isnull);
	if (isnull)
		return false;
	x[1] = (double) DatumGetInt64(v);
	v = GetAttributeByNum(rfm, RFM_ATT_MONETARY, &isnull);
	if (isnull)
		return false;
	x[2] = DatumGetFloat8(v);
	return isfinite(x[2]);
}

PG_FUNCTION_INFO_V1(seg_rfm_breakpoints_transfn);
Datum
seg_rfm_breakpoints_transfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "rfm_breakpoints");
	SegRows    *s = PG_ARGISNULL(0) ? NULL : seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	double		x[3];

	if (PG_ARGISNULL(1) || !rfm_values(PG_GETARG_HEAPTUPLEHEADER(1), x))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
	}
	if (s == NULL)
		s = seg_rows_create(aggcxt, 3, 0, false, "{}", 0,
							seg_rows_budget(3, false, seg_max_fit_memory_kb));
	seg_rows_offer(s, x, 0);
	PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
}

static int
cmp_double(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

/*
 * Cuts for one column: up to 4 ascending values, each the last value of a
 * group.  With m distinct values, m <= 5 gives one group per value.  Else
 * cut g goes after the distinct value whose cumulative count is closest to
 * an even share of what the earlier groups left (so a heavy tie that
 * overshoots one quintile does not squeeze the groups after it), the
 * earlier on a tie, leaving a distinct value for each later group.
 */
static int
column_cuts(double *v, int64 n, double *cuts)
{
	int64		m = 0;
	int64	   *cum;
	double	   *uniq;
	int			ncuts = 0;
	int64		prev = -1;

	qsort(v, n, sizeof(double), cmp_double);
	uniq = palloc(sizeof(double) * Max(n, 1));
	cum = palloc(sizeof(int64) * Max(n, 1));
	for (int64 i = 0; i < n; i++)
	{
		if (m == 0 || v[i] != uniq[m - 1])
			uniq[m++] = v[i];
		cum[m - 1] = i + 1;
	}
	if (m <= SEG_RFM_GROUPS)
	{
		for (int64 j = 0; j + 1 < m; j++)
			cuts[ncuts++] = uniq[j];
	}
	else
	{
		for (int g = 1; g < SEG_RFM_GROUPS; g++)
		{
			int64		done = prev >= 0 ? cum[prev] : 0;
			double		target = done + (double) (n - done) / (SEG_RFM_GROUPS - g + 1);
			int64		hi = m - 1 - (SEG_RFM_GROUPS - 1 - g);	/* room for later groups */
			int64		best = prev + 1;

			for (int64 j = prev + 1; j < hi; j++)
			{
				if (fabs((double) cum[j] - target) < fabs((double) cum[best] - target))
					best = j;
				if (cum[j] > target)
					break;		/* counts only grow from here */
			}
			cuts[ncuts++] = uniq[best];
			prev = best;
		}
	}
	pfree(uniq);
	pfree(cum);
	return ncuts;
}

static Datum
cuts_array(const double *cuts, int n)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(n, 1));

	for (int i = 0; i < n; i++)
		elems[i] = Float8GetDatum(cuts[i]);
	return PointerGetDatum(construct_array(elems, n, FLOAT8OID, sizeof(float8),
										   FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* Final: segment.rfm_breakpoints (recency, frequency, monetary cuts; customers). */
PG_FUNCTION_INFO_V1(seg_rfm_breakpoints_finalfn);
Datum
seg_rfm_breakpoints_finalfn(PG_FUNCTION_ARGS)
{
	SegRows    *s;
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {0};
	double	   *col;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = seg_rows_from_datum(PG_GETARG_DATUM(0), CurrentMemoryContext);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "rfm_breakpoints: return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	col = palloc(sizeof(double) * Max(s->n, 1));
	for (int c = 0; c < 3; c++)
	{
		double		cuts[SEG_RFM_GROUPS - 1];
		int			ncuts;

		for (int64 i = 0; i < s->n; i++)
			col[i] = s->data[i * 3 + c];
		ncuts = column_cuts(col, s->n, cuts);
		values[c] = cuts_array(cuts, ncuts);
	}
	pfree(col);
	values[3] = Int64GetDatum(s->rows_seen);
	values[4] = Int64GetDatum(s->n);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------- grading ---------- */

/* Breakpoints parsed once per call site (they are the same for every row). */
typedef struct GradeCache
{
	Size		len;
	char	   *raw;			/* copy of the composite datum */
	int			ncuts[3];
	double		cuts[3][SEG_RFM_GROUPS - 1];
} GradeCache;

static void
parse_cuts(HeapTupleHeader bp, int c, GradeCache *g)
{
	bool		isnull;
	Datum		v = GetAttributeByNum(bp, c + 1, &isnull);
	ArrayType  *a;
	int			n;

	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("rfm_grade: breakpoints have a NULL column")));
	a = DatumGetArrayTypeP(v);
	n = ArrayGetNItems(ARR_NDIM(a), ARR_DIMS(a));
	if (ARR_ELEMTYPE(a) != FLOAT8OID || ARR_HASNULL(a) || ARR_NDIM(a) > 1 ||
		n > SEG_RFM_GROUPS - 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rfm_grade: each breakpoint array must hold at most %d non-NULL values",
						SEG_RFM_GROUPS - 1)));
	for (int i = 0; i < n; i++)
	{
		double		x = ((double *) ARR_DATA_PTR(a))[i];

		if (isnan(x) || (i > 0 && x <= g->cuts[c][i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rfm_grade: breakpoints must be strictly increasing numbers")));
		g->cuts[c][i] = x;
	}
	g->ncuts[c] = n;
}

static GradeCache *
grade_cache(FunctionCallInfo fcinfo, HeapTupleHeader bp)
{
	GradeCache *g = fcinfo->flinfo->fn_extra;
	Size		len = HeapTupleHeaderGetDatumLength(bp);

	if (g != NULL && g->len == len && memcmp(g->raw, bp, len) == 0)
		return g;
	if (g == NULL)
		g = fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
															  sizeof(GradeCache));
	for (int c = 0; c < 3; c++)
		parse_cuts(bp, c, g);
	if (g->raw)
		pfree(g->raw);
	g->raw = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, len);
	memcpy(g->raw, bp, len);
	g->len = len;
	return g;
}

static int
group_of(const GradeCache *g, int c, double v)
{
	int			group = 1;

	for (int i = 0; i < g->ncuts[c]; i++)
		group += v > g->cuts[c][i];
	return group;
}

/*
 * The named segments on R and FM = round-half-up((F + M) / 2), the grid
 * popularised by Putler: rows are R 5..1, columns FM 1..5.
 */
static const char *const segment_grid[5][5] = {
	/* R=5 */ {"New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"},
	/* R=4 */ {"Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Champions"},
	/* R=3 */ {"Promising", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"},
	/* R=2 */ {"Hibernating", "Hibernating", "At Risk", "At Risk", "Can't Lose Them"},
	/* R=1 */ {"Lost", "Lost", "At Risk", "Can't Lose Them", "Can't Lose Them"},
};

const char *seg_rfm_segment_name(int r, int f, int m);

const char *
seg_rfm_segment_name(int r, int f, int m)
{
	int			fm = (f + m + 1) / 2;

	return segment_grid[5 - r][fm - 1];
}

/* rfm_grade(rfm, breakpoints) → segment.rfm_grade */
PG_FUNCTION_INFO_V1(seg_rfm_grade);
Datum
seg_rfm_grade(PG_FUNCTION_ARGS)
{
	HeapTupleHeader rfm = PG_GETARG_HEAPTUPLEHEADER(0);
	GradeCache *g = grade_cache(fcinfo, PG_GETARG_HEAPTUPLEHEADER(1));
	TupleDesc	tupdesc;
	double		x[3];
	int			score[3];
	char		code[4];
	Datum		values[5];
	bool		nulls[5] = {0};

	if (!rfm_values(rfm, x))
		PG_RETURN_NULL();		/* a customer without orders has no scores */
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "rfm_grade: return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	/* recency: fewer days is better, so the scale is turned over */
	score[0] = g->ncuts[0] + 2 - group_of(g, 0, x[0]);
	score[1] = group_of(g, 1, x[1]);
	score[2] = group_of(g, 2, x[2]);
	snprintf(code, sizeof(code), "%d%d%d", score[0], score[1], score[2]);
	for (int c = 0; c < 3; c++)
		values[c] = Int32GetDatum(score[c]);
	values[3] = CStringGetTextDatum(code);
	values[4] = CStringGetTextDatum(seg_rfm_segment_name(score[0], score[1], score[2]));
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}
