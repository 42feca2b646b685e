/*
 * model_type.c — building, laying out, finding and checking model sections.
 *
 * Every path that produces a model (decoding wire bytes, constructors,
 * training) ends in seg_builder_finish() + seg_model_check(), so a model in
 * memory is always canonical (sections sorted by tag, group, index) and obeys
 * every cross-section invariant listed here once.
 */
#include "postgres.h"

#include <math.h>

#include "common/int.h"
#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include "model_type.h"
#include "validate.h"

/* Report a defective model: always 22P03, whatever path found it. */
void
seg_model_bad(const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	seg_bad_input_v("segment.model", fmt, ap);
}

static const char *const kind_names[] = {
	NULL, "kmeans", "mlp", "autoencoder", "recommender", "segmenter"
};

const char *
seg_model_kind_name(int32 kind)
{
	if (kind < 1 || kind > SEG_KIND_MAX)
		return "unknown";
	return kind_names[kind];
}

const char *
seg_tag_name(int32 tag)
{
	switch (tag)
	{
		case SEG_TAG_COLUMNS:
			return "columns";
		case SEG_TAG_COLUMN_TYPES:
			return "column_types";
		case SEG_TAG_IMPUTE:
			return "impute";
		case SEG_TAG_CATEGORIES:
			return "categories";
		case SEG_TAG_FEATURES:
			return "features";
		case SEG_TAG_SCALE_OFFSET:
			return "scale_offset";
		case SEG_TAG_SCALE_FACTOR:
			return "scale_factor";
		case SEG_TAG_LAYER_SPEC:
			return "layer_spec";
		case SEG_TAG_LAYER_WEIGHTS:
			return "layer_weights";
		case SEG_TAG_LAYER_BIAS:
			return "layer_bias";
		case SEG_TAG_LAYER_BATCHNORM:
			return "layer_batchnorm";
		case SEG_TAG_CENTROIDS:
			return "centroids";
		case SEG_TAG_CLUSTER_SIZES:
			return "cluster_sizes";
		case SEG_TAG_SEGMENT_LABELS:
			return "segment_labels";
		case SEG_TAG_USER_IDS:
			return "user_ids";
		case SEG_TAG_ITEM_IDS:
			return "item_ids";
		case SEG_TAG_USER_FACTORS:
			return "user_factors";
		case SEG_TAG_ITEM_FACTORS:
			return "item_factors";
		case SEG_TAG_ITEM_NEIGHBORS:
			return "item_neighbors";
		case SEG_TAG_NEIGHBOR_SCORES:
			return "neighbor_scores";
		case SEG_TAG_POPULARITY:
			return "popularity";
		case SEG_TAG_HISTORY_PTR:
			return "history_ptr";
		case SEG_TAG_HISTORY:
			return "history";
		case SEG_TAG_USER_SEGMENTS:
			return "user_segments";
		case SEG_TAG_BLEND:
			return "blend";
		case SEG_TAG_METRICS:
			return "metrics";
	}
	return NULL;
}

/* ---------- building ---------- */

void
seg_builder_init(SegModelBuilder *b, int32 kind)
{
	b->kind = kind;
	b->n = 0;
	b->cap = 8;
	b->secs = palloc(sizeof(SegSection) * b->cap);
	b->data = palloc(sizeof(void *) * b->cap);
	b->nbytes = palloc(sizeof(Size) * b->cap);
}

/* Add a section; data is referenced, not copied, until finish. */
void
seg_builder_add(SegModelBuilder *b, int32 tag, int32 dtype, int32 group,
				int32 index, int32 nrows, int32 ncols,
				const void *data, Size nbytes)
{
	SegSection *s;

	if (b->n >= SEG_MAX_SECTIONS)
		seg_model_bad("more than %d sections", SEG_MAX_SECTIONS);
	if (b->n == b->cap)
	{
		b->cap *= 2;
		b->secs = repalloc(b->secs, sizeof(SegSection) * b->cap);
		b->data = repalloc(b->data, sizeof(void *) * b->cap);
		b->nbytes = repalloc(b->nbytes, sizeof(Size) * b->cap);
	}
	s = &b->secs[b->n];
	s->tag = tag;
	s->dtype = dtype;
	s->group = group;
	s->index = index;
	s->nrows = nrows;
	s->ncols = ncols;
	s->offset = 0;
	b->data[b->n] = data;
	b->nbytes[b->n] = nbytes;
	b->n++;
}

/* Add a text section: strings are packed NUL-terminated, back to back. */
void
seg_builder_add_strings(SegModelBuilder *b, int32 tag, int32 group, int32 index,
						int nstrings, const char *const *strings)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < nstrings; i++)
		appendBinaryStringInfo(&buf, strings[i], strlen(strings[i]) + 1);
	seg_builder_add(b, tag, SEG_DT_TEXT, group, index, nstrings, 1,
					buf.data, buf.len);
}

static int
section_cmp(const SegSection *a, const SegSection *b)
{
	if (a->tag != b->tag)
		return a->tag < b->tag ? -1 : 1;
	if (a->group != b->group)
		return a->group < b->group ? -1 : 1;
	if (a->index != b->index)
		return a->index < b->index ? -1 : 1;
	return 0;
}

/* Lay the sections out in canonical order; sections must be unique. */
SegModel *
seg_builder_finish(SegModelBuilder *b)
{
	int		   *order = palloc(sizeof(int) * Max(b->n, 1));
	int64		size;
	SegModel   *m;

	/* insertion sort of indexes: n is small and usually already sorted */
	for (int i = 0; i < b->n; i++)
	{
		int			j = i;

		while (j > 0 && section_cmp(&b->secs[order[j - 1]], &b->secs[i]) > 0)
		{
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
		if (j > 0 && section_cmp(&b->secs[order[j - 1]], &b->secs[i]) == 0)
			seg_model_bad("duplicate section %s (group %d, index %d)",
						  seg_tag_name(b->secs[i].tag) ? seg_tag_name(b->secs[i].tag) : "?",
						  b->secs[i].group, b->secs[i].index);
	}

	size = offsetof(SegModel, sections) + (int64) sizeof(SegSection) * b->n;
	for (int i = 0; i < b->n; i++)
	{
		if (pg_add_s64_overflow(size, (int64) TYPEALIGN(8, b->nbytes[i]), &size) ||
			size > (int64) MaxAllocSize)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("segment.model would exceed the maximum size of %zu bytes",
							(Size) MaxAllocSize)));
	}

	m = palloc0(size);
	SET_VARSIZE(m, size);
	m->magic = SEG_MODEL_MAGIC;
	m->format = SEG_MODEL_FORMAT;
	m->flags = 0;
	m->kind = b->kind;
	m->n_sections = b->n;
	m->reserved = 0;

	size = offsetof(SegModel, sections) + (int64) sizeof(SegSection) * b->n;
	for (int i = 0; i < b->n; i++)
	{
		int			src = order[i];

		m->sections[i] = b->secs[src];
		m->sections[i].offset = size;
		if (b->nbytes[src] > 0)
			memcpy((char *) m + size, b->data[src], b->nbytes[src]);
		size += TYPEALIGN(8, b->nbytes[src]);
	}
	pfree(order);
	return m;
}

void
seg_builder_add_metrics(SegModelBuilder *b, const char *json)
{
	Jsonb	   *jm = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(json)));
	char	   *txt = JsonbToCString(NULL, &jm->root, VARSIZE(jm));

	seg_builder_add_strings(b, SEG_TAG_METRICS, 0, 0, 1, (const char *const *) &txt);
}

SegModel *
seg_builder_finish_copy(SegModelBuilder *b, MemoryContext work)
{
	MemoryContext old = MemoryContextSwitchTo(work);
	SegModel   *m = seg_builder_finish(b);
	SegModel   *result;

	seg_model_check(m);
	MemoryContextSwitchTo(old);
	result = palloc(VARSIZE(m));
	memcpy(result, m, VARSIZE(m));
	MemoryContextDelete(work);
	return result;
}

/* ---------- reading ---------- */

const SegSection *
seg_model_find(const SegModel *m, int32 tag, int32 group, int32 index)
{
	/* binary search: sections are sorted by (tag, group, index) */
	SegSection	key = {.tag = tag,.group = group,.index = index};
	int			lo = 0,
				hi = m->n_sections - 1;

	while (lo <= hi)
	{
		int			mid = (lo + hi) / 2;
		int			c = section_cmp(&m->sections[mid], &key);

		if (c == 0)
			return &m->sections[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return NULL;
}

static Size
dtype_size(int32 dtype)
{
	switch (dtype)
	{
		case SEG_DT_FLOAT8:
		case SEG_DT_INT64:
			return 8;
		case SEG_DT_INT32:
			return 4;
	}
	return 0;					/* text: variable */
}

/* Bytes of payload (for text: up to the next section, padding included). */
Size
seg_section_nbytes(const SegModel *m, const SegSection *s)
{
	int			i = s - m->sections;
	int64		end;

	if (s->dtype != SEG_DT_TEXT)
		return (Size) s->nrows * s->ncols * dtype_size(s->dtype);
	end = (i + 1 < m->n_sections) ? m->sections[i + 1].offset : VARSIZE(m);
	return end - s->offset;
}

/* ---------- checking ---------- */

typedef struct TagRule
{
	int32		tag;
	int32		dtype;			/* SEG_DT_*; ids accept INT64 or TEXT */
	bool		indexed;		/* group/index carry meaning */
} TagRule;

static const TagRule tag_rules[] = {
	{SEG_TAG_COLUMNS, SEG_DT_TEXT, false},
	{SEG_TAG_COLUMN_TYPES, SEG_DT_INT32, false},
	{SEG_TAG_IMPUTE, SEG_DT_FLOAT8, false},
	{SEG_TAG_CATEGORIES, SEG_DT_TEXT, true},
	{SEG_TAG_FEATURES, SEG_DT_TEXT, false},
	{SEG_TAG_SCALE_OFFSET, SEG_DT_FLOAT8, false},
	{SEG_TAG_SCALE_FACTOR, SEG_DT_FLOAT8, false},
	{SEG_TAG_LAYER_SPEC, SEG_DT_INT32, true},
	{SEG_TAG_LAYER_WEIGHTS, SEG_DT_FLOAT8, true},
	{SEG_TAG_LAYER_BIAS, SEG_DT_FLOAT8, true},
	{SEG_TAG_LAYER_BATCHNORM, SEG_DT_FLOAT8, true},
	{SEG_TAG_CENTROIDS, SEG_DT_FLOAT8, false},
	{SEG_TAG_CLUSTER_SIZES, SEG_DT_INT64, false},
	{SEG_TAG_SEGMENT_LABELS, SEG_DT_TEXT, false},
	{SEG_TAG_USER_IDS, SEG_DT_INT64, false},
	{SEG_TAG_ITEM_IDS, SEG_DT_INT64, false},
	{SEG_TAG_USER_FACTORS, SEG_DT_FLOAT8, false},
	{SEG_TAG_ITEM_FACTORS, SEG_DT_FLOAT8, false},
	{SEG_TAG_ITEM_NEIGHBORS, SEG_DT_INT32, false},
	{SEG_TAG_NEIGHBOR_SCORES, SEG_DT_FLOAT8, false},
	{SEG_TAG_POPULARITY, SEG_DT_FLOAT8, false},
	{SEG_TAG_HISTORY_PTR, SEG_DT_INT64, false},
	{SEG_TAG_HISTORY, SEG_DT_INT32, false},
	{SEG_TAG_USER_SEGMENTS, SEG_DT_INT32, false},
	{SEG_TAG_BLEND, SEG_DT_FLOAT8, false},
	{SEG_TAG_METRICS, SEG_DT_TEXT, false},
};

static const TagRule *
tag_rule(int32 tag)
{
	for (int i = 0; i < lengthof(tag_rules); i++)
		if (tag_rules[i].tag == tag)
			return &tag_rules[i];
	return NULL;
}

/* Shape and content of one section, on its own. */
static void
check_section(const SegModel *m, const SegSection *s)
{
	const TagRule *rule = tag_rule(s->tag);
	const char *name = seg_tag_name(s->tag);
	bool		is_id = (s->tag == SEG_TAG_USER_IDS || s->tag == SEG_TAG_ITEM_IDS);

	if (rule == NULL)
		seg_model_bad("unknown section tag %d", s->tag);
	if (s->dtype != rule->dtype && !(is_id && s->dtype == SEG_DT_TEXT))
		seg_model_bad("section %s has data type %d", name, s->dtype);
	if (!rule->indexed && (s->group != 0 || s->index != 0))
		seg_model_bad("section %s has group %d and index %d, expected 0",
					  name, s->group, s->index);
	if (s->nrows < 1 || s->nrows > SEG_MAX_DIM || s->ncols < 1 || s->ncols > SEG_MAX_DIM)
		seg_model_bad("section %s has shape %d x %d", name, s->nrows, s->ncols);
	if (s->dtype == SEG_DT_TEXT && s->ncols != 1)
		seg_model_bad("text section %s has %d columns", name, s->ncols);

	if (s->dtype == SEG_DT_FLOAT8)
	{
		const double *v = seg_section_data(m, s);
		int64		n = (int64) s->nrows * s->ncols;

		for (int64 i = 0; i < n; i++)
			if (!isfinite(v[i]))
				seg_model_bad("section %s holds a non-finite value at position %lld",
							  name, (long long) i + 1);
	}
	else if (s->dtype == SEG_DT_TEXT)
	{
		const char *p = seg_section_data(m, s);
		const char *end = p + seg_section_nbytes(m, s);

		for (int i = 0; i < s->nrows; i++)
		{
			size_t		len = strnlen(p, end - p);

			if (p + len >= end)
				seg_model_bad("section %s is shorter than its %d strings", name, s->nrows);
			if (len > SEG_STRING_LIMIT(s->tag))
				seg_model_bad("section %s holds a string of %zu bytes (limit %d)",
							  name, len, SEG_STRING_LIMIT(s->tag));
			if (!pg_verify_mbstr(GetDatabaseEncoding(), p, len, true))
				seg_model_bad("section %s holds a string that is not valid %s",
							  name, GetDatabaseEncodingName());
			p += len + 1;
		}
		/* only zero padding may follow */
		for (; p < end; p++)
			if (*p != '\0')
				seg_model_bad("section %s has trailing bytes", name);
	}
}

static const SegSection *
need(const SegModel *m, int32 tag, int32 group, int32 index, const char *why)
{
	const SegSection *s = seg_model_find(m, tag, group, index);

	if (s == NULL)
		seg_model_bad("section %s (group %d, index %d) is missing: %s",
					  seg_tag_name(tag), group, index, why);
	return s;
}

static void
expect_shape(const SegSection *s, int32 nrows, int32 ncols)
{
	if (s->nrows != nrows || s->ncols != ncols)
		seg_model_bad("section %s (group %d, index %d) is %d x %d, expected %d x %d",
					  seg_tag_name(s->tag), s->group, s->index,
					  s->nrows, s->ncols, nrows, ncols);
}

/* Preprocessing: columns, categories, features, scaler.  Returns d or -1. */
static int
check_preprocessing(const SegModel *m)
{
	const SegSection *cols = seg_model_find(m, SEG_TAG_COLUMNS, 0, 0);
	const SegSection *types = seg_model_find(m, SEG_TAG_COLUMN_TYPES, 0, 0);
	const SegSection *impute = seg_model_find(m, SEG_TAG_IMPUTE, 0, 0);
	const SegSection *feats = seg_model_find(m, SEG_TAG_FEATURES, 0, 0);
	const SegSection *off = seg_model_find(m, SEG_TAG_SCALE_OFFSET, 0, 0);
	const SegSection *fac = seg_model_find(m, SEG_TAG_SCALE_FACTOR, 0, 0);
	int			d = -1;

	if ((types || impute) && cols == NULL)
		seg_model_bad("column types or imputation values without column names");
	for (int i = 0; i < m->n_sections; i++)
	{
		const SegSection *s = &m->sections[i];

		if (s->tag != SEG_TAG_CATEGORIES)
			continue;
		if (types == NULL || s->group != 0 || s->index < 0 || s->index >= cols->nrows)
			seg_model_bad("categories for column %d, which is not a categorical column", s->index);
	}
	if (cols)
	{
		int64		width = 0;

		if (cols->nrows > SEG_MAX_FEATURES)
			seg_model_bad("%d columns (limit %d)", cols->nrows, SEG_MAX_FEATURES);
		if (types == NULL)
			seg_model_bad("column names without column types");
		expect_shape(types, 1, cols->nrows);
		if (impute)
			expect_shape(impute, 1, cols->nrows);
		for (int j = 0; j < cols->nrows; j++)
		{
			int32		t = ((const int32 *) seg_section_data(m, types))[j];
			const SegSection *cats = seg_model_find(m, SEG_TAG_CATEGORIES, 0, j);

			if (t != SEG_COL_NUMERIC && t != SEG_COL_BOOLEAN && t != SEG_COL_CATEGORICAL)
				seg_model_bad("column %d has unknown type %d", j + 1, t);
			if ((t == SEG_COL_CATEGORICAL) != (cats != NULL))
				seg_model_bad("column %d: categories must be given exactly for categorical columns", j + 1);
			width += cats ? cats->nrows + 1 : 1;	/* one-hot plus "other" */
			if (impute && cats)
			{
				double		v = ((const double *) seg_section_data(m, impute))[j];

				if (v != floor(v) || v < 0 || v > cats->nrows)
					seg_model_bad("column %d imputes category %g of %d", j + 1, v, cats->nrows);
			}
		}
		if (width > SEG_MAX_FEATURES)
			seg_model_bad("%lld features (limit %d)", (long long) width, SEG_MAX_FEATURES);
		d = (int) width;
	}
	if ((off == NULL) != (fac == NULL))
		seg_model_bad("scale offset and scale factor must come together");
	if (off)
	{
		const double *f = seg_section_data(m, fac);

		if (d >= 0)
			expect_shape(off, 1, d);
		d = off->ncols;
		expect_shape(fac, 1, d);
		for (int j = 0; j < d; j++)
			if (!(f[j] > 0))
				seg_model_bad("scale factor %d is %g, must be positive", j + 1, f[j]);
	}
	if (feats)
	{
		if (d >= 0)
			expect_shape(feats, d, 1);
		d = feats->nrows;
	}
	return d;
}

/* One network: returns {input width, output width} or -1s when absent. */
static void
check_network(const SegModel *m, int32 net, int *in, int *out)
{
	const SegSection *spec = seg_model_find(m, SEG_TAG_LAYER_SPEC, net, 0);
	const int32 *rows;

	*in = *out = -1;
	if (spec == NULL)
		return;
	if (spec->ncols != 4 || spec->nrows > SEG_MAX_LAYERS)
		seg_model_bad("network %d layer spec is %d x %d (at most %d layers of 4 values)",
					  net, spec->nrows, spec->ncols, SEG_MAX_LAYERS);
	rows = seg_section_data(m, spec);
	for (int l = 0; l < spec->nrows; l++)
	{
		int32		lin = rows[4 * l],
					lout = rows[4 * l + 1],
					act = rows[4 * l + 2],
					bn = rows[4 * l + 3];
		const SegSection *bns;

		if (lin < 1 || lin > SEG_MAX_FEATURES || lout < 1 || lout > SEG_MAX_FEATURES)
			seg_model_bad("network %d layer %d has shape %d -> %d", net, l, lin, lout);
		if (l > 0 && lin != rows[4 * (l - 1) + 1])
			seg_model_bad("network %d layer %d takes %d inputs but the previous layer gives %d",
						  net, l, lin, rows[4 * (l - 1) + 1]);
		if (act < SEG_ACT_IDENTITY || act > SEG_ACT_SOFTMAX || (bn != 0 && bn != 1))
			seg_model_bad("network %d layer %d has activation %d, batchnorm %d", net, l, act, bn);
		expect_shape(need(m, SEG_TAG_LAYER_WEIGHTS, net, l, "the layer spec names it"), lout, lin);
		expect_shape(need(m, SEG_TAG_LAYER_BIAS, net, l, "the layer spec names it"), 1, lout);
		bns = seg_model_find(m, SEG_TAG_LAYER_BATCHNORM, net, l);
		if ((bns != NULL) != (bn == 1))
			seg_model_bad("network %d layer %d: batch-norm statistics must be given exactly when enabled", net, l);
		if (bns)
		{
			const double *var = (const double *) seg_section_data(m, bns) + 3 * lout;

			expect_shape(bns, 4, lout);
			for (int j = 0; j < lout; j++)
				if (!(var[j] > 0))
					seg_model_bad("network %d layer %d has batch-norm variance %g", net, l, var[j]);
		}
	}
	*in = rows[0];
	*out = rows[4 * (spec->nrows - 1) + 1];
}

/* Layer sections must belong to a declared layer of a known network. */
static void
check_layer_ownership(const SegModel *m)
{
	for (int i = 0; i < m->n_sections; i++)
	{
		const SegSection *s = &m->sections[i];
		const SegSection *spec;

		if (s->tag < SEG_TAG_LAYER_SPEC || s->tag > SEG_TAG_LAYER_BATCHNORM)
			continue;
		if (s->group < SEG_NET_ENCODER || s->group > SEG_NET_CLASSIFIER)
			seg_model_bad("section %s names unknown network %d", seg_tag_name(s->tag), s->group);
		if (s->tag == SEG_TAG_LAYER_SPEC)
		{
			if (s->index != 0)
				seg_model_bad("layer spec with index %d", s->index);
			continue;
		}
		spec = seg_model_find(m, SEG_TAG_LAYER_SPEC, s->group, 0);
		if (spec == NULL || s->index < 0 || s->index >= spec->nrows)
			seg_model_bad("section %s for undeclared layer %d of network %d",
						  seg_tag_name(s->tag), s->index, s->group);
	}
}

/* Ids ascending and distinct (numbers by value, text by bytes): scorers binary-search them. */
static void
check_sorted_ids(const SegModel *m, const SegSection *ids, const char *what)
{
	if (ids == NULL)
		return;
	if (ids->dtype == SEG_DT_INT64)
	{
		const int64 *v = seg_section_data(m, ids);

		for (int i = 1; i < ids->nrows; i++)
			if (v[i - 1] >= v[i])
				seg_model_bad("%s ids are not ascending at position %d", what, i + 1);
	}
	else
	{
		const char *prev = seg_section_data(m, ids);
		const char *p = seg_next_string(prev);

		for (int i = 1; i < ids->nrows; i++, prev = p, p = seg_next_string(p))
			if (strcmp(prev, p) >= 0)
				seg_model_bad("%s ids are not ascending at position %d", what, i + 1);
	}
}

/* Each user's items (ascending positions) and segment. */
static void
check_history(const SegModel *m, const SegSection *uids, const SegSection *iids,
			  const SegSection *pop)
{
	const SegSection *hp = seg_model_find(m, SEG_TAG_HISTORY_PTR, 0, 0);
	const SegSection *h = seg_model_find(m, SEG_TAG_HISTORY, 0, 0);
	const SegSection *us = seg_model_find(m, SEG_TAG_USER_SEGMENTS, 0, 0);

	if ((hp || h || us) && (uids == NULL || iids == NULL))
		seg_model_bad("user histories without user and item ids");
	if ((hp == NULL) != (h == NULL))
		seg_model_bad("history and history_ptr must come together");
	if (hp)
	{
		const int64 *ptr = seg_section_data(m, hp);
		const int32 *idx = seg_section_data(m, h);

		expect_shape(hp, 1, uids->nrows + 1);
		if (h->nrows != 1 || ptr[0] != 0 || ptr[uids->nrows] != h->ncols)
			seg_model_bad("history_ptr does not span the history");
		for (int u = 0; u < uids->nrows; u++)
		{
			if (ptr[u + 1] < ptr[u])
				seg_model_bad("history_ptr decreases at user %d", u + 1);
			for (int64 e = ptr[u]; e < ptr[u + 1]; e++)
				if (idx[e] < 0 || idx[e] >= iids->nrows || (e > ptr[u] && idx[e] <= idx[e - 1]))
					seg_model_bad("history of user %d is not ascending item positions", u + 1);
		}
	}
	if (us)
	{
		const int32 *v = seg_section_data(m, us);
		int			k = pop ? pop->nrows - 1 : 0;

		expect_shape(us, 1, uids->nrows);
		for (int u = 0; u < uids->nrows; u++)
			if (v[u] < 0 || v[u] > k)
				seg_model_bad("user %d has segment %d of %d", u + 1, v[u], k);
	}
}

static void
check_recommender(const SegModel *m)
{
	const SegSection *uids = seg_model_find(m, SEG_TAG_USER_IDS, 0, 0);
	const SegSection *iids = seg_model_find(m, SEG_TAG_ITEM_IDS, 0, 0);
	const SegSection *uf = seg_model_find(m, SEG_TAG_USER_FACTORS, 0, 0);
	const SegSection *itf = seg_model_find(m, SEG_TAG_ITEM_FACTORS, 0, 0);
	const SegSection *nb = seg_model_find(m, SEG_TAG_ITEM_NEIGHBORS, 0, 0);
	const SegSection *ns = seg_model_find(m, SEG_TAG_NEIGHBOR_SCORES, 0, 0);
	const SegSection *pop = seg_model_find(m, SEG_TAG_POPULARITY, 0, 0);
	const SegSection *s;

	if (uids && uids->ncols != 1)
		seg_model_bad("user ids have %d columns", uids->ncols);
	if (uf)
		expect_shape(uf, need(m, SEG_TAG_USER_IDS, 0, 0, "user factors need user ids")->nrows,
					 uf->ncols);
	if ((itf || nb || ns || pop) && iids == NULL)
		seg_model_bad("item data without item ids");
	if (iids && iids->ncols != 1)
		seg_model_bad("item ids have %d columns", iids->ncols);
	if (itf)
	{
		expect_shape(itf, iids->nrows, itf->ncols);
		if (uf && uf->ncols != itf->ncols)
			seg_model_bad("user factors have %d columns, item factors %d", uf->ncols, itf->ncols);
	}
	if ((nb == NULL) != (ns == NULL))
		seg_model_bad("item neighbours and their scores must come together");
	if (nb)
	{
		const int32 *v = seg_section_data(m, nb);

		expect_shape(nb, iids->nrows, nb->ncols);
		expect_shape(ns, nb->nrows, nb->ncols);
		for (int64 i = 0; i < (int64) nb->nrows * nb->ncols; i++)
			if (v[i] < -1 || v[i] >= iids->nrows)
				seg_model_bad("item neighbour %d is out of range", v[i]);
	}
	if (pop)
		expect_shape(pop, pop->nrows, iids->nrows);
	check_sorted_ids(m, uids, "user");
	check_sorted_ids(m, iids, "item");
	check_history(m, uids, iids, pop);
	if ((s = seg_model_find(m, SEG_TAG_BLEND, 0, 0)) != NULL)
	{
		const double *b = seg_section_data(m, s);

		expect_shape(s, 1, SEG_BLEND_PARAMS);
		for (int i = 0; i < SEG_BLEND_PARAMS; i++)
			if (b[i] < 0)
				seg_model_bad("blend parameter %d is negative", i + 1);
	}
}

/*
 * Metrics must be JSON that jsonb will take back: model_info() and the
 * catalog's metrics column convert them.  pg_parse_json alone accepts numbers
 * numeric cannot hold (1e999999) and nests until the stack overflows, so
 * bound the depth and require every number to be a finite float8.
 */
#define SEG_METRICS_MAX_DEPTH 32

typedef struct MetricsCheck
{
	int			depth;
} MetricsCheck;

static void
metrics_enter(void *state)
{
	MetricsCheck *mc = (MetricsCheck *) state;

	if (++mc->depth > SEG_METRICS_MAX_DEPTH)
		seg_model_bad("metrics nest deeper than %d levels", SEG_METRICS_MAX_DEPTH);
}

static void
metrics_leave(void *state)
{
	((MetricsCheck *) state)->depth--;
}

static void
metrics_scalar(void *state, char *token, JsonTokenType type)
{
	if (type == JSON_TOKEN_NUMBER)
	{
		char	   *end;
		double		v;

		errno = 0;
		v = strtod(token, &end);
		if (errno == ERANGE || *end != '\0' || !isfinite(v))
			seg_model_bad("metrics hold a number out of float8 range");
	}
}

static void
check_metrics(const SegModel *m)
{
	const SegSection *s = seg_model_find(m, SEG_TAG_METRICS, 0, 0);
	const char *json;
	JsonLexContext *lex;
	MetricsCheck mc = {0};
	JsonSemAction sem = {0};

	if (s == NULL)
		return;
	expect_shape(s, 1, 1);
	json = seg_section_data(m, s);
	if (json[0] != '{')
		seg_model_bad("metrics are not a JSON object");
	sem.semstate = &mc;
	sem.object_start = metrics_enter;
	sem.object_end = metrics_leave;
	sem.array_start = metrics_enter;
	sem.array_end = metrics_leave;
	sem.scalar = metrics_scalar;
	lex = makeJsonLexContextCstringLen((char *) json, strlen(json), GetDatabaseEncoding(), true);
	if (pg_parse_json(lex, &sem) != JSON_SUCCESS)
		seg_model_bad("metrics are not valid JSON");
}

/* Every invariant of a model; raises 22P03 on the first one broken. */
void
seg_model_check(const SegModel *m)
{
	const SegSection *s_labels;
	int			d,
				enc_in,
				enc_out,
				dec_in,
				dec_out,
				cls_in,
				cls_out;
	const SegSection *cent;

	if (m->magic != SEG_MODEL_MAGIC)
		seg_model_bad("wrong magic number %08X", m->magic);
	if (m->format != SEG_MODEL_FORMAT)
		seg_model_bad("unknown format version %u", m->format);
	if (m->flags != 0 || m->reserved != 0)
		seg_model_bad("unknown flags %u", m->flags);
	if (m->kind < 1 || m->kind > SEG_KIND_MAX)
		seg_model_bad("unknown model kind %d", m->kind);

	for (int i = 0; i < m->n_sections; i++)
		check_section(m, &m->sections[i]);

	d = check_preprocessing(m);
	check_layer_ownership(m);
	check_network(m, SEG_NET_ENCODER, &enc_in, &enc_out);
	check_network(m, SEG_NET_DECODER, &dec_in, &dec_out);
	check_network(m, SEG_NET_CLASSIFIER, &cls_in, &cls_out);
	if (d >= 0 && enc_in >= 0 && enc_in != d)
		seg_model_bad("the encoder takes %d inputs but there are %d features", enc_in, d);
	if (dec_in >= 0 && (dec_in != enc_out || dec_out != enc_in))
		seg_model_bad("the decoder (%d -> %d) does not mirror the encoder (%d -> %d)",
					  dec_in, dec_out, enc_in, enc_out);
	if (d >= 0 && cls_in >= 0 && cls_in != d && cls_in != enc_out)
		seg_model_bad("the classifier takes %d inputs, neither the %d features nor the code size",
					  cls_in, d);

	cent = seg_model_find(m, SEG_TAG_CENTROIDS, 0, 0);
	if (cent)
	{
		int			want = enc_out >= 0 ? enc_out : d;
		const SegSection *s;

		if (cent->nrows > SEG_MAX_K)
			seg_model_bad("%d centroids (limit %d)", cent->nrows, SEG_MAX_K);
		if (want >= 0 && cent->ncols != want)
			seg_model_bad("centroids have %d columns, expected %d", cent->ncols, want);
		if ((s = seg_model_find(m, SEG_TAG_CLUSTER_SIZES, 0, 0)) != NULL)
		{
			expect_shape(s, 1, cent->nrows);
			for (int j = 0; j < cent->nrows; j++)
				if (((const int64 *) seg_section_data(m, s))[j] < 0)
					seg_model_bad("cluster %d has a negative size", j + 1);
		}
		if ((s = seg_model_find(m, SEG_TAG_SEGMENT_LABELS, 0, 0)) != NULL)
			expect_shape(s, cent->nrows, 1);
		if (cls_out >= 0 && cls_out != cent->nrows)
			seg_model_bad("the classifier has %d outputs for %d segments", cls_out, cent->nrows);
	}
	else if (seg_model_find(m, SEG_TAG_CLUSTER_SIZES, 0, 0))
		seg_model_bad("cluster sizes without centroids");
	else if ((s_labels = seg_model_find(m, SEG_TAG_SEGMENT_LABELS, 0, 0)) != NULL)
	{
		/* without centroids, labels name the classifier's outputs (an mlp's classes) */
		if (cls_out < 0)
			seg_model_bad("labels without centroids or a classifier");
		expect_shape(s_labels, cls_out, 1);
	}
	check_recommender(m);
	check_metrics(m);

	switch ((SegModelKind) m->kind)
	{
		case SEG_KIND_KMEANS:
			need(m, SEG_TAG_CENTROIDS, 0, 0, "a kmeans model needs centroids");
			break;
		case SEG_KIND_MLP:
			need(m, SEG_TAG_LAYER_SPEC, SEG_NET_CLASSIFIER, 0, "an mlp model needs a classifier");
			break;
		case SEG_KIND_AUTOENCODER:
			need(m, SEG_TAG_LAYER_SPEC, SEG_NET_ENCODER, 0, "an autoencoder needs an encoder");
			need(m, SEG_TAG_LAYER_SPEC, SEG_NET_DECODER, 0, "an autoencoder needs a decoder");
			break;
		case SEG_KIND_RECOMMENDER:
			need(m, SEG_TAG_ITEM_IDS, 0, 0, "a recommender needs item ids");
			break;
		case SEG_KIND_SEGMENTER:
			need(m, SEG_TAG_COLUMNS, 0, 0, "a segmenter needs its input columns");
			need(m, SEG_TAG_CENTROIDS, 0, 0, "a segmenter needs centroids");
			break;
	}
}

/* The nearest-centroid view of a kmeans model (segmenters come with train()). */
void
seg_model_kmeans_view(const SegModel *m, SegKmeansView *v)
{
	const SegSection *cent = seg_model_find(m, SEG_TAG_CENTROIDS, 0, 0);
	const SegSection *off = seg_model_find(m, SEG_TAG_SCALE_OFFSET, 0, 0);
	const SegSection *fac = seg_model_find(m, SEG_TAG_SCALE_FACTOR, 0, 0);

	if (m->kind != SEG_KIND_KMEANS || cent == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model of kind \"%s\" is not a k-means model",
						seg_model_kind_name(m->kind))));
	v->k = cent->nrows;
	v->dim = cent->ncols;
	v->centroids = seg_section_data(m, cent);
	v->offset = off ? seg_section_data(m, off) : NULL;
	v->factor = fac ? seg_section_data(m, fac) : NULL;
}
