/*
 * model_sql.c — SQL views of a model and constructors from plain SQL values.
 *
 * model_info() is the human view (jsonb); centroids() and the constructors
 * let a model cross the boundary to other tools (e.g. scikit-learn's
 * cluster_centers_ in, centroids out) without knowing the binary layout.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/jsonb.h"

#include "model_type.h"
#include "validate.h"

/* ---------- model_info ---------- */

static void
append_doubles(StringInfo buf, const double *v, int n)
{
	appendStringInfoChar(buf, '[');
	for (int i = 0; i < n; i++)
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		appendStringInfoString(buf, float8out_internal(v[i]));
	}
	appendStringInfoChar(buf, ']');
}

static void
append_strings(StringInfo buf, const SegModel *m, const SegSection *s)
{
	const char *p = seg_section_data(m, s);

	appendStringInfoChar(buf, '[');
	for (int i = 0; i < s->nrows; i++, p = seg_next_string(p))
	{
		if (i > 0)
			appendStringInfoChar(buf, ',');
		escape_json(buf, p);
	}
	appendStringInfoChar(buf, ']');
}

static const char *
activation_name(int32 a)
{
	static const char *const names[] = {"identity", "relu", "tanh", "sigmoid", "softmax"};

	return (a >= 0 && a < lengthof(names)) ? names[a] : "unknown";
}

static void
append_columns(StringInfo buf, const SegModel *m, const SegSection *cols)
{
	const int32 *types = seg_section_data(m, seg_model_find(m, SEG_TAG_COLUMN_TYPES, 0, 0));
	const SegSection *imp = seg_model_find(m, SEG_TAG_IMPUTE, 0, 0);
	const char *name = seg_section_data(m, cols);
	static const char *const type_names[] = {"numeric", "boolean", "categorical"};

	appendStringInfoString(buf, ",\"columns\":[");
	for (int j = 0; j < cols->nrows; j++, name = seg_next_string(name))
	{
		const SegSection *cats = seg_model_find(m, SEG_TAG_CATEGORIES, 0, j);

		appendStringInfoString(buf, j > 0 ? ",{\"name\":" : "{\"name\":");
		escape_json(buf, name);
		appendStringInfo(buf, ",\"type\":\"%s\"", type_names[types[j]]);
		if (imp)
			appendStringInfo(buf, ",\"impute\":%s",
							 float8out_internal(((const double *) seg_section_data(m, imp))[j]));
		if (cats)
		{
			appendStringInfoString(buf, ",\"categories\":");
			append_strings(buf, m, cats);
		}
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoChar(buf, ']');
}

static void
append_networks(StringInfo buf, const SegModel *m)
{
	static const char *const net_names[] = {NULL, "encoder", "decoder", "classifier"};
	bool		first = true;

	for (int net = SEG_NET_ENCODER; net <= SEG_NET_CLASSIFIER; net++)
	{
		const SegSection *spec = seg_model_find(m, SEG_TAG_LAYER_SPEC, net, 0);
		const int32 *r;

		if (spec == NULL)
			continue;
		r = seg_section_data(m, spec);
		appendStringInfo(buf, "%s\"%s\":[", first ? ",\"networks\":{" : ",", net_names[net]);
		for (int l = 0; l < spec->nrows; l++, r += 4)
			appendStringInfo(buf, "%s{\"in\":%d,\"out\":%d,\"activation\":\"%s\",\"batchnorm\":%s}",
							 l > 0 ? "," : "", r[0], r[1], activation_name(r[2]),
							 r[3] ? "true" : "false");
		appendStringInfoChar(buf, ']');
		first = false;
	}
	if (!first)
		appendStringInfoChar(buf, '}');
}

static void
append_recommender(StringInfo buf, const SegModel *m)
{
	const SegSection *u = seg_model_find(m, SEG_TAG_USER_IDS, 0, 0);
	const SegSection *i = seg_model_find(m, SEG_TAG_ITEM_IDS, 0, 0);
	const SegSection *f = seg_model_find(m, SEG_TAG_ITEM_FACTORS, 0, 0);
	const SegSection *nb = seg_model_find(m, SEG_TAG_ITEM_NEIGHBORS, 0, 0);

	if (i == NULL)
		return;
	appendStringInfo(buf, ",\"recommender\":{\"users\":%d,\"items\":%d,\"id_type\":\"%s\",\"factors\":%d,\"neighbors\":%d}",
					 u ? u->nrows : 0, i->nrows, i->dtype == SEG_DT_TEXT ? "text" : "bigint",
					 f ? f->ncols : 0, nb ? nb->ncols : 0);
}

/* The whole model as jsonb, for people and for tests. */
PG_FUNCTION_INFO_V1(seg_model_info);
Datum
seg_model_info(PG_FUNCTION_ARGS)
{
	SegModel   *m = PG_GETARG_SEGMODEL_P(0);
	const SegSection *s;
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"kind\":\"%s\",\"format\":%u,\"size_bytes\":%u",
					 seg_model_kind_name(m->kind), m->format, VARSIZE(m));
	if ((s = seg_model_find(m, SEG_TAG_CENTROIDS, 0, 0)) != NULL)
		appendStringInfo(&buf, ",\"k\":%d,\"dim\":%d", s->nrows, s->ncols);
	if ((s = seg_model_find(m, SEG_TAG_FEATURES, 0, 0)) != NULL)
	{
		appendStringInfoString(&buf, ",\"features\":");
		append_strings(&buf, m, s);
	}
	if ((s = seg_model_find(m, SEG_TAG_COLUMNS, 0, 0)) != NULL)
		append_columns(&buf, m, s);
	if ((s = seg_model_find(m, SEG_TAG_SCALE_OFFSET, 0, 0)) != NULL)
	{
		appendStringInfoString(&buf, ",\"scaler\":{\"offset\":");
		append_doubles(&buf, seg_section_data(m, s), s->ncols);
		s = seg_model_find(m, SEG_TAG_SCALE_FACTOR, 0, 0);
		appendStringInfoString(&buf, ",\"factor\":");
		append_doubles(&buf, seg_section_data(m, s), s->ncols);
		appendStringInfoChar(&buf, '}');
	}
	append_networks(&buf, m);
	if ((s = seg_model_find(m, SEG_TAG_CLUSTER_SIZES, 0, 0)) != NULL)
	{
		appendStringInfoString(&buf, ",\"cluster_sizes\":[");
		for (int j = 0; j < s->ncols; j++)
			appendStringInfo(&buf, "%s" INT64_FORMAT, j > 0 ? "," : "",
							 ((const int64 *) seg_section_data(m, s))[j]);
		appendStringInfoChar(&buf, ']');
	}
	if ((s = seg_model_find(m, SEG_TAG_SEGMENT_LABELS, 0, 0)) != NULL)
	{
		appendStringInfoString(&buf, ",\"segment_labels\":");
		append_strings(&buf, m, s);
	}
	append_recommender(&buf, m);
	if ((s = seg_model_find(m, SEG_TAG_METRICS, 0, 0)) != NULL)
		appendStringInfo(&buf, ",\"metrics\":%s", (const char *) seg_section_data(m, s));

	appendStringInfoString(&buf, ",\"sections\":[");
	for (int i = 0; i < m->n_sections; i++)
	{
		s = &m->sections[i];
		appendStringInfo(&buf, "%s{\"name\":\"%s\",\"group\":%d,\"index\":%d,\"shape\":[%d,%d],\"bytes\":%zu}",
						 i > 0 ? "," : "", seg_tag_name(s->tag), s->group, s->index,
						 s->nrows, s->ncols, seg_section_nbytes(m, s));
	}
	appendStringInfoString(&buf, "]}");

	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}

/* Kind as text: the catalog's generated column and quick filters use it. */
PG_FUNCTION_INFO_V1(seg_model_kind);
Datum
seg_model_kind(PG_FUNCTION_ARGS)
{
	SegModel   *m = PG_GETARG_SEGMODEL_P(0);

	PG_RETURN_TEXT_P(cstring_to_text(seg_model_kind_name(m->kind)));
}

/* Names of the model's input features (NULL when it has none). */
PG_FUNCTION_INFO_V1(seg_model_features);
Datum
seg_model_features(PG_FUNCTION_ARGS)
{
	SegModel   *m = PG_GETARG_SEGMODEL_P(0);
	const SegSection *s = seg_model_find(m, SEG_TAG_COLUMNS, 0, 0);
	Datum	   *elems;
	const char *p;

	if (s == NULL)
		s = seg_model_find(m, SEG_TAG_FEATURES, 0, 0);
	if (s == NULL)
		PG_RETURN_NULL();
	elems = palloc(sizeof(Datum) * s->nrows);
	p = seg_section_data(m, s);
	for (int i = 0; i < s->nrows; i++, p = seg_next_string(p))
		elems[i] = CStringGetTextDatum(p);
	PG_RETURN_ARRAYTYPE_P(construct_array(elems, s->nrows, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Centroids as a k x d float8[][] (in the model's scaled space). */
PG_FUNCTION_INFO_V1(seg_model_centroids);
Datum
seg_model_centroids(PG_FUNCTION_ARGS)
{
	SegModel   *m = PG_GETARG_SEGMODEL_P(0);
	const SegSection *s = seg_model_find(m, SEG_TAG_CENTROIDS, 0, 0);
	const double *c;
	Datum	   *elems;
	int			dims[2],
				lbs[2] = {1, 1};
	int64		n;

	if (s == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model of kind \"%s\" has no centroids", seg_model_kind_name(m->kind))));
	dims[0] = s->nrows;
	dims[1] = s->ncols;
	n = (int64) s->nrows * s->ncols;
	c = seg_section_data(m, s);
	elems = palloc(sizeof(Datum) * n);
	for (int64 i = 0; i < n; i++)
		elems[i] = Float8GetDatum(c[i]);
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, NULL, 2, dims, lbs, FLOAT8OID,
											 sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/*
 * kmeans_model(centroids, feature_names, scale_offset, scale_factor, metrics):
 * import a k-means model trained elsewhere.  With a scaler, features are
 * transformed (x - offset) / factor before the nearest-centroid search, as a
 * scikit-learn StandardScaler (mean_, scale_) would.
 */
PG_FUNCTION_INFO_V1(seg_kmeans_model);
Datum
seg_kmeans_model(PG_FUNCTION_ARGS)
{
	ArrayType  *cent_a;
	int			k,
				d;
	const double *cent;
	SegModelBuilder b;
	SegModel   *m;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	cent_a = PG_GETARG_ARRAYTYPE_P(0);
	cent = seg_check_matrix(cent_a, "centroids", &k, &d);

	seg_builder_init(&b, SEG_KIND_KMEANS);
	seg_builder_add(&b, SEG_TAG_CENTROIDS, SEG_DT_FLOAT8, 0, 0, k, d,
					cent, sizeof(double) * k * d);
	if (!PG_ARGISNULL(1))
		seg_builder_add_strings(&b, SEG_TAG_FEATURES, 0, 0, d,
								(const char *const *) seg_check_names(PG_GETARG_ARRAYTYPE_P(1),
																	  "feature_names", d));
	if (PG_ARGISNULL(2) != PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("scale_offset and scale_factor must be given together")));
	if (!PG_ARGISNULL(2))
	{
		const double *off = seg_check_vector(PG_GETARG_ARRAYTYPE_P(2), "scale_offset", d, NULL);
		const double *fac = seg_check_vector(PG_GETARG_ARRAYTYPE_P(3), "scale_factor", d, NULL);

		for (int j = 0; j < d; j++)
			if (!(fac[j] > 0))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("scale_factor[%d] is %g, must be positive", j + 1, fac[j])));
		seg_builder_add(&b, SEG_TAG_SCALE_OFFSET, SEG_DT_FLOAT8, 0, 0, 1, d, off, sizeof(double) * d);
		seg_builder_add(&b, SEG_TAG_SCALE_FACTOR, SEG_DT_FLOAT8, 0, 0, 1, d, fac, sizeof(double) * d);
	}
	if (!PG_ARGISNULL(4))
	{
		Jsonb	   *j = PG_GETARG_JSONB_P(4);
		char	   *txt;

		if (!JB_ROOT_IS_OBJECT(j))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("metrics must be a JSON object")));
		txt = JsonbToCString(NULL, &j->root, VARSIZE(j));
		seg_builder_add_strings(&b, SEG_TAG_METRICS, 0, 0, 1, (const char *const *) &txt);
	}
	m = seg_builder_finish(&b);
	seg_model_check(m);
	PG_RETURN_SEGMODEL_P(m);
}
