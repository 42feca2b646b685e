/*
 * classification.c — segment.classification_report(actual, predicted):
 * accuracy and per-class precision, recall, F1 and support, with macro and
 * weighted averages, as scikit-learn's classification_report(output_dict=True)
 * gives them (zero_division = 0).  Rows are label pairs in a segment.rows_state
 * (label_pairs_transfn, shared with adjusted_rand).
 */
#include "postgres.h"

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "int_set.h"
#include "rows_state.h"
#include "validate.h"

typedef struct ClassCounts
{
	int32		label;
	int64		tp;				/* actual = predicted = label */
	int64		support;		/* actual = label */
	int64		predicted;		/* predicted = label */
} ClassCounts;

static int
class_index(const ClassCounts *c, int n, int32 label)
{
	int			lo = 0,
				hi = n - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;

		if (c[mid].label == label)
			return mid;
		if (c[mid].label < label)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	elog(ERROR, "classification_report: label %d missing (cannot happen)", label);
}

static void
append_scores(StringInfo buf, double p, double r, double f1, double support)
{
	appendStringInfo(buf, "{\"precision\": %.17g, \"recall\": %.17g, \"f1-score\": %.17g, \"support\": %.17g}",
					 p, r, f1, support);
}

static double
ratio(int64 a, int64 b)
{
	return b > 0 ? (double) a / (double) b : 0.0;
}

PG_FUNCTION_INFO_V1(seg_classification_report_finalfn);
Datum
seg_classification_report_finalfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	int32	   *actual,
			   *predicted,
			   *labels;
	int64		n;
	int			nl = 0;
	ClassCounts *c;
	int64		correct = 0;
	double		macro[3] = {0},
				weighted[3] = {0};
	StringInfoData buf;

	aggcxt = seg_agg_context(fcinfo, "classification_report");
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	n = seg_exact_label_pairs(fcinfo, aggcxt, "classification_report", &actual, &predicted);

	/* the classes: every label seen as actual or predicted, in order */
	labels = palloc(sizeof(int32) * 2 * Max(n, 1));
	memcpy(labels, actual, sizeof(int32) * n);
	memcpy(labels + n, predicted, sizeof(int32) * n);
	nl = (int) seg_distinct_int32(labels, 2 * n);
	c = palloc0(sizeof(ClassCounts) * Max(nl, 1));
	for (int i = 0; i < nl; i++)
		c[i].label = labels[i];
	for (int64 i = 0; i < n; i++)
	{
		int32		a = actual[i],
					p = predicted[i];

		c[class_index(c, nl, a)].support++;
		c[class_index(c, nl, p)].predicted++;
		if (a == p)
		{
			c[class_index(c, nl, a)].tp++;
			correct++;
		}
	}

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < nl; i++)
	{
		double		prec = ratio(c[i].tp, c[i].predicted);
		double		rec = ratio(c[i].tp, c[i].support);
		double		f1 = prec + rec > 0 ? 2 * prec * rec / (prec + rec) : 0.0;

		appendStringInfo(&buf, "\"%d\": ", c[i].label);
		append_scores(&buf, prec, rec, f1, (double) c[i].support);
		appendStringInfoString(&buf, ", ");
		macro[0] += prec;
		macro[1] += rec;
		macro[2] += f1;
		weighted[0] += prec * c[i].support;
		weighted[1] += rec * c[i].support;
		weighted[2] += f1 * c[i].support;
	}
	appendStringInfo(&buf, "\"accuracy\": %.17g, \"macro avg\": ", ratio(correct, n));
	append_scores(&buf, macro[0] / nl, macro[1] / nl, macro[2] / nl, (double) n);
	appendStringInfoString(&buf, ", \"weighted avg\": ");
	append_scores(&buf, weighted[0] / n, weighted[1] / n, weighted[2] / n, (double) n);
	appendStringInfoChar(&buf, '}');
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
