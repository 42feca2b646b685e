/*
 * segmenter_build.c — segment.segmenter_model(): a train() pipeline model
 * from SQL values.  train() calls it; it also imports a pipeline fitted
 * elsewhere.  Every argument is checked before the model is laid out.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "model_type.h"
#include "segmenter.h"
#include "validate.h"

static void
bad_arg(const char *fmt,...)
pg_attribute_printf(1, 2) pg_attribute_noreturn();

static void
bad_arg(const char *fmt,...)
{
	char		msg[512];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("segmenter_model: %s", msg)));
}

static int32
column_type_of(const char *s, const char *col)
{
	if (strcmp(s, "numeric") == 0)
		return SEG_COL_NUMERIC;
	if (strcmp(s, "boolean") == 0)
		return SEG_COL_BOOLEAN;
	if (strcmp(s, "categorical") == 0)
		return SEG_COL_CATEGORICAL;
	bad_arg("column \"%s\" has type \"%s\"; use numeric, boolean or categorical", col, s);
}

/* The category strings of column `col` in the jsonb object: distinct, non-empty array of strings. */
static char **
categories_of(Jsonb *cats, const char *col, int *n)
{
	JsonbValue	v;
	JsonbValue *e;
	char	  **out;
	int			count;

	if (cats == NULL || !getKeyJsonValueFromContainer(&cats->root, col, strlen(col), &v) ||
		v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
		bad_arg("categorical column \"%s\" needs an array of categories in \"categories\"", col);
	count = JsonContainerSize(v.val.binary.data);
	if (count < 1 || count > SEG_MAX_CATEGORIES)
		bad_arg("column \"%s\" has %d categories (1..%d)", col, count, SEG_MAX_CATEGORIES);
	out = palloc(sizeof(char *) * count);
	for (int i = 0; i < count; i++)
	{
		e = getIthJsonbValueFromContainer(v.val.binary.data, i);
		if (e == NULL || e->type != jbvString)
			bad_arg("category %d of column \"%s\" is not a string", i + 1, col);
		out[i] = pnstrdup(e->val.string.val, e->val.string.len);
		if (strlen(out[i]) != (size_t) e->val.string.len)
			bad_arg("category %d of column \"%s\" holds a zero character", i + 1, col);
		for (int q = 0; q < i; q++)
			if (strcmp(out[q], out[i]) == 0)
				bad_arg("column \"%s\" lists category \"%s\" twice", col, out[i]);
	}
	*n = count;
	return out;
}

/*
 * segmenter_model(columns text[], column_types text[], impute float8[],
 *                 categories jsonb, scale_offset float8[], scale_factor float8[],
 *                 centroids float8[][], segment_labels text[], metrics jsonb)
 */
PG_FUNCTION_INFO_V1(seg_segmenter_model);
Datum
seg_segmenter_model(PG_FUNCTION_ARGS)
{
	int			n_in,
				k,
				d = 0,
				cd;
	char	  **cols;
	char	  **tnames;
	const double *impute;
	Jsonb	   *cats = PG_ARGISNULL(3) ? NULL : PG_GETARG_JSONB_P(3);
	int32	   *types;
	char	  **features;
	int			nfeat = 0;
	const double *cent;
	SegModelBuilder b;
	SegModel   *m;

	for (int a = 0; a < 7; a++)
		if (PG_ARGISNULL(a) && a != 3)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("segmenter_model: argument %d must not be NULL", a + 1)));
	if (cats && !JB_ROOT_IS_OBJECT(cats))
		bad_arg("categories must be a JSON object of column name -> array of categories");
	n_in = ArrayGetNItems(ARR_NDIM(PG_GETARG_ARRAYTYPE_P(0)), ARR_DIMS(PG_GETARG_ARRAYTYPE_P(0)));
	if (n_in < 1)
		bad_arg("no columns");
	cols = seg_check_names(PG_GETARG_ARRAYTYPE_P(0), "columns", n_in);
	tnames = seg_check_names_any(PG_GETARG_ARRAYTYPE_P(1), "column_types", n_in);
	impute = seg_check_vector(PG_GETARG_ARRAYTYPE_P(2), "impute", n_in, NULL);
	cent = seg_check_matrix(PG_GETARG_ARRAYTYPE_P(6), "centroids", &k, &cd);

	seg_builder_init(&b, SEG_KIND_SEGMENTER);
	types = palloc(sizeof(int32) * n_in);
	features = palloc(sizeof(char *) * (SEG_MAX_FEATURES + 1));
	for (int j = 0; j < n_in; j++)
	{
		types[j] = column_type_of(tnames[j], cols[j]);
		if (types[j] == SEG_COL_CATEGORICAL)
		{
			int			ncat;
			char	  **c = categories_of(cats, cols[j], &ncat);

			if (impute[j] != floor(impute[j]) || impute[j] < 0 || impute[j] > ncat)
				bad_arg("impute for categorical column \"%s\" must be a category index 0..%d, got %g",
						cols[j], ncat, impute[j]);
			seg_builder_add_strings(&b, SEG_TAG_CATEGORIES, 0, j, ncat, (const char *const *) c);
			for (int q = 0; q < ncat && nfeat < SEG_MAX_FEATURES; q++)
				features[nfeat++] = psprintf("%s=%s", cols[j], c[q]);
			if (nfeat < SEG_MAX_FEATURES)
				features[nfeat++] = psprintf("%s=(other)", cols[j]);
			d += ncat + 1;
		}
		else
		{
			if (cats && getKeyJsonValueFromContainer(&cats->root, cols[j], strlen(cols[j]), &(JsonbValue) {0}))
				bad_arg("column \"%s\" is %s but has categories", cols[j], tnames[j]);
			if (nfeat < SEG_MAX_FEATURES)
				features[nfeat++] = pstrdup(cols[j]);
			d += 1;
		}
		if (d > SEG_MAX_FEATURES)
			bad_arg("%d encoded features (limit %d)", d, SEG_MAX_FEATURES);
	}
	if (cd != d)
		bad_arg("centroids have %d columns; the columns encode to %d features", cd, d);
	{
		const double *off = seg_check_vector(PG_GETARG_ARRAYTYPE_P(4), "scale_offset", d, NULL);
		const double *fac = seg_check_vector(PG_GETARG_ARRAYTYPE_P(5), "scale_factor", d, NULL);

		for (int i = 0; i < d; i++)
			if (!(fac[i] > 0))
				bad_arg("scale_factor[%d] is %g, must be positive", i + 1, fac[i]);
		seg_builder_add(&b, SEG_TAG_SCALE_OFFSET, SEG_DT_FLOAT8, 0, 0, 1, d, off, sizeof(double) * d);
		seg_builder_add(&b, SEG_TAG_SCALE_FACTOR, SEG_DT_FLOAT8, 0, 0, 1, d, fac, sizeof(double) * d);
	}
	seg_builder_add_strings(&b, SEG_TAG_COLUMNS, 0, 0, n_in, (const char *const *) cols);
	seg_builder_add(&b, SEG_TAG_COLUMN_TYPES, SEG_DT_INT32, 0, 0, 1, n_in, types, sizeof(int32) * n_in);
	seg_builder_add(&b, SEG_TAG_IMPUTE, SEG_DT_FLOAT8, 0, 0, 1, n_in, impute, sizeof(double) * n_in);
	seg_builder_add_strings(&b, SEG_TAG_FEATURES, 0, 0, d, (const char *const *) features);
	seg_builder_add(&b, SEG_TAG_CENTROIDS, SEG_DT_FLOAT8, 0, 0, k, d, cent, sizeof(double) * k * d);
	if (!PG_ARGISNULL(7))
		seg_builder_add_strings(&b, SEG_TAG_SEGMENT_LABELS, 0, 0, k,
								(const char *const *) seg_check_names_any(PG_GETARG_ARRAYTYPE_P(7),
																		  "segment_labels", k));
	if (!PG_ARGISNULL(8))
	{
		Jsonb	   *j = PG_GETARG_JSONB_P(8);
		char	   *txt;

		if (!JB_ROOT_IS_OBJECT(j))
			bad_arg("metrics must be a JSON object");
		txt = JsonbToCString(NULL, &j->root, VARSIZE(j));
		seg_builder_add_strings(&b, SEG_TAG_METRICS, 0, 0, 1, (const char *const *) &txt);
	}
	m = seg_builder_finish(&b);
	seg_model_check(m);
	PG_RETURN_SEGMODEL_P(m);
}

/* ---------- attaching networks: deep k-means and a segment classifier ---------- */

/* Copy network `from_net` of model src into the builder as `to_net`, folding the scaler (mean, sd) into layer 0. */
static void
attach_net(SegModelBuilder *b, const SegModel *src, int from_net, int to_net, bool softmax_out)
{
	const SegSection *spec = seg_model_find(src, SEG_TAG_LAYER_SPEC, from_net, 0);
	const SegSection *off = seg_model_find(src, SEG_TAG_SCALE_OFFSET, 0, 0);
	const SegSection *fac = seg_model_find(src, SEG_TAG_SCALE_FACTOR, 0, 0);
	int32	   *rows;

	if (spec == NULL)
		bad_arg("the %s model has no network %d", seg_model_kind_name(src->kind), from_net);
	rows = palloc(sizeof(int32) * 4 * spec->nrows);
	memcpy(rows, seg_section_data(src, spec), sizeof(int32) * 4 * spec->nrows);
	if (softmax_out)
		rows[4 * (spec->nrows - 1) + 2] = SEG_ACT_SOFTMAX;
	for (int l = 0; l < spec->nrows; l++)
	{
		int			in = rows[4 * l],
					out = rows[4 * l + 1];
		const SegSection *ws = seg_model_find(src, SEG_TAG_LAYER_WEIGHTS, from_net, l);
		const SegSection *bs = seg_model_find(src, SEG_TAG_LAYER_BIAS, from_net, l);
		const SegSection *bn = seg_model_find(src, SEG_TAG_LAYER_BATCHNORM, from_net, l);
		double	   *W = palloc(sizeof(double) * out * in);
		double	   *bias = palloc(sizeof(double) * out);

		memcpy(W, seg_section_data(src, ws), sizeof(double) * out * in);
		memcpy(bias, seg_section_data(src, bs), sizeof(double) * out);
		if (l == 0 && off)
		{
			/* W (x - m) / s + b = (W / s) x + (b - W m / s): the model's scaler does the rest */
			const double *mean = seg_section_data(src, off);
			const double *sd = seg_section_data(src, fac);

			for (int j = 0; j < out; j++)
				for (int t = 0; t < in; t++)
				{
					bias[j] -= W[j * in + t] * mean[t] / sd[t];
					W[j * in + t] /= sd[t];
				}
		}
		seg_builder_add(b, SEG_TAG_LAYER_WEIGHTS, SEG_DT_FLOAT8, to_net, l, out, in, W, sizeof(double) * out * in);
		seg_builder_add(b, SEG_TAG_LAYER_BIAS, SEG_DT_FLOAT8, to_net, l, 1, out, bias, sizeof(double) * out);
		if (bn)
			seg_builder_add(b, SEG_TAG_LAYER_BATCHNORM, SEG_DT_FLOAT8, to_net, l, 4, out,
							seg_section_data(src, bn), seg_section_nbytes(src, bn));
	}
	seg_builder_add(b, SEG_TAG_LAYER_SPEC, SEG_DT_INT32, to_net, 0, spec->nrows, 4, rows,
					sizeof(int32) * 4 * spec->nrows);
}

/*
 * segmenter_attach(base, autoencoder, centroids, classifier): the base
 * segmenter with the autoencoder's encoder (its scaler folded in) and
 * centroids in code space, and/or a classifier (an mlp model trained on the
 * base's encoded features or on the codes, whose classes are the segments
 * 1..k) that then decides the segment.
 */
PG_FUNCTION_INFO_V1(seg_segmenter_attach);
Datum
seg_segmenter_attach(PG_FUNCTION_ARGS)
{
	SegModel   *base;
	SegModelBuilder b;
	SegModel   *m;
	bool		has_encoder = !PG_ARGISNULL(1);

	if (PG_ARGISNULL(0))
		bad_arg("the base model must not be NULL");
	base = PG_GETARG_SEGMODEL_P(0);
	if (base->kind != SEG_KIND_SEGMENTER)
		bad_arg("the base must be a segmenter model, not %s", seg_model_kind_name(base->kind));
	if (has_encoder != !PG_ARGISNULL(2))
		bad_arg("an encoder needs the centroids in its code space, and only then");
	seg_builder_init(&b, SEG_KIND_SEGMENTER);
	for (int i = 0; i < base->n_sections; i++)
	{
		const SegSection *s = &base->sections[i];

		if ((has_encoder && s->tag == SEG_TAG_CENTROIDS) ||
			s->tag == SEG_TAG_LAYER_SPEC || s->tag == SEG_TAG_LAYER_WEIGHTS ||
			s->tag == SEG_TAG_LAYER_BIAS || s->tag == SEG_TAG_LAYER_BATCHNORM)
			continue;
		seg_builder_add(&b, s->tag, s->dtype, s->group, s->index, s->nrows, s->ncols,
						seg_section_data(base, s), seg_section_nbytes(base, s));
	}
	if (has_encoder)
	{
		SegModel   *ae = PG_GETARG_SEGMODEL_P(1);
		int			k,
					cd;
		const double *cent = seg_check_matrix(PG_GETARG_ARRAYTYPE_P(2), "centroids", &k, &cd);

		if (ae->kind != SEG_KIND_AUTOENCODER)
			bad_arg("the encoder must come from an autoencoder model, not %s", seg_model_kind_name(ae->kind));
		attach_net(&b, ae, SEG_NET_ENCODER, SEG_NET_ENCODER, false);
		seg_builder_add(&b, SEG_TAG_CENTROIDS, SEG_DT_FLOAT8, 0, 0, k, cd, cent, sizeof(double) * k * cd);
	}
	if (!PG_ARGISNULL(3))
	{
		SegModel   *cls = PG_GETARG_SEGMODEL_P(3);

		const SegSection *classes;
		const char *c;

		if (cls->kind != SEG_KIND_MLP)
			bad_arg("the classifier must be an mlp model, not %s", seg_model_kind_name(cls->kind));
		/* its outputs must be the segments 1..k, in order */
		classes = seg_model_find(cls, SEG_TAG_SEGMENT_LABELS, 0, 0);
		c = classes ? seg_section_data(cls, classes) : NULL;
		for (int i = 0; classes && i < classes->nrows; i++, c = seg_next_string(c))
			if (strcmp(c, psprintf("%d", i + 1)) != 0)
				bad_arg("the classifier's classes must be the segments 1..k; class %d is %s", i + 1, c);
		attach_net(&b, cls, SEG_NET_CLASSIFIER, SEG_NET_CLASSIFIER, true);
	}
	m = seg_builder_finish(&b);
	seg_model_check(m);
	PG_RETURN_SEGMODEL_P(m);
}
