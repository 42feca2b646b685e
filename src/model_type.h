/*
 * model_type.h — the segment.model varlena.
 *
 * A model is a small header plus a directory of typed sections (tensors and
 * string lists), each identified by (tag, group, index).  Every kind of model
 * — k-means, MLP, autoencoder, recommender, the train() pipeline — is a set of
 * sections, so later releases add kinds without changing the layout, and a
 * reader of format 1 can always read models written today.
 *
 * On disk the sections are native-endian and 8-byte aligned so scorers read
 * doubles in place.  On the wire (send/recv, and base64 in the text form) the
 * same content is written in network byte order with no offsets; the decoder
 * rebuilds the canonical on-disk form, so wire -> model -> wire is bit-exact.
 */
#ifndef SEG_MODEL_TYPE_H
#define SEG_MODEL_TYPE_H

#include "fmgr.h"
#include "lib/stringinfo.h"

#define SEG_MODEL_MAGIC			0x5345474D	/* "SEGM" */
#define SEG_MODEL_FORMAT		1

/* Limits, checked before any allocation; together they keep a model < 1 GB. */
#define SEG_MAX_SECTIONS		100000
#define SEG_MAX_DIM				100000000	/* rows or columns of one section */
#define SEG_MAX_K				100000
#define SEG_MAX_FEATURES		100000
#define SEG_MAX_LAYERS			64
#define SEG_MAX_STRING			10000		/* bytes in one name or id */
#define SEG_MAX_JSON			(16 * 1024 * 1024)	/* bytes of the metrics object */

/* Longest string a text section may hold. */
#define SEG_STRING_LIMIT(tag)	((tag) == SEG_TAG_METRICS ? SEG_MAX_JSON : SEG_MAX_STRING)

typedef enum SegModelKind
{
	SEG_KIND_KMEANS = 1,		/* centroids (+ optional scaler) */
	SEG_KIND_MLP = 2,			/* classifier network */
	SEG_KIND_AUTOENCODER = 3,	/* encoder + decoder networks */
	SEG_KIND_RECOMMENDER = 4,	/* id maps, factors, neighbours, popularity */
	SEG_KIND_SEGMENTER = 5		/* train() pipeline: preprocessing, [encoder], centroids, [classifier] */
} SegModelKind;

#define SEG_KIND_MAX SEG_KIND_SEGMENTER

typedef enum SegDtype
{
	SEG_DT_FLOAT8 = 1,			/* finite doubles */
	SEG_DT_INT32 = 2,
	SEG_DT_INT64 = 3,
	SEG_DT_TEXT = 4				/* nrows strings, ncols = 1 */
} SegDtype;

/*
 * Section tags.  The comment gives dtype and shape; "d" is the width of the
 * preprocessed feature vector, "n_in" the number of input columns.
 */
typedef enum SegTag
{
	SEG_TAG_COLUMNS = 1,		/* text n_in: input column names */
	SEG_TAG_COLUMN_TYPES = 2,	/* int32 1 x n_in: SegColumnType */
	SEG_TAG_IMPUTE = 3,			/* float8 1 x n_in: numeric mean, or category index */
	SEG_TAG_CATEGORIES = 4,		/* text n_cat, index = column: one-hot categories */
	SEG_TAG_FEATURES = 5,		/* text d: names of the preprocessed features */
	SEG_TAG_SCALE_OFFSET = 6,	/* float8 1 x d: subtracted first */
	SEG_TAG_SCALE_FACTOR = 7,	/* float8 1 x d, > 0: then divided by */
	SEG_TAG_LAYER_SPEC = 10,	/* int32 n_layers x 4, group = net: in, out, activation, batchnorm */
	SEG_TAG_LAYER_WEIGHTS = 11, /* float8 out x in, group = net, index = layer */
	SEG_TAG_LAYER_BIAS = 12,	/* float8 1 x out */
	SEG_TAG_LAYER_BATCHNORM = 13,	/* float8 4 x out: gamma, beta, mean, var (> 0) */
	SEG_TAG_CENTROIDS = 20,		/* float8 k x c (c = d, or the encoder's code size) */
	SEG_TAG_CLUSTER_SIZES = 21, /* int64 1 x k, >= 0 */
	SEG_TAG_SEGMENT_LABELS = 22,	/* text k; without centroids: the classifier's class labels */
	SEG_TAG_USER_IDS = 30,		/* int64 n_users x 1, or text n_users */
	SEG_TAG_ITEM_IDS = 31,		/* int64 n_items x 1, or text n_items */
	SEG_TAG_USER_FACTORS = 32,	/* float8 n_users x f */
	SEG_TAG_ITEM_FACTORS = 33,	/* float8 n_items x f */
	SEG_TAG_ITEM_NEIGHBORS = 34,	/* int32 n_items x m: item positions, -1 = none */
	SEG_TAG_NEIGHBOR_SCORES = 35,	/* float8 n_items x m */
	SEG_TAG_POPULARITY = 36,	/* float8 (1 + k) x n_items: global row, then per segment */
	SEG_TAG_HISTORY_PTR = 37,	/* int64 1 x (n_users + 1): start of each user's items */
	SEG_TAG_HISTORY = 38,		/* int32 1 x pairs: item positions, ascending per user */
	SEG_TAG_USER_SEGMENTS = 39, /* int32 1 x n_users: 0 = unknown, else 1..k */
	SEG_TAG_METRICS = 40,		/* text 1: a JSON object */
	SEG_TAG_BLEND = 41			/* float8 1 x SEG_BLEND_PARAMS: recommender scoring weights */
} SegTag;

/* The recommender's scoring parameters, in the order of SEG_TAG_BLEND. */
typedef enum SegBlendParam
{
	SEG_BLEND_ALS = 0,			/* weight of the ALS score */
	SEG_BLEND_ITEM,				/* weight of the item-item score */
	SEG_BLEND_POPULARITY,		/* weight of the (segment) popularity prior */
	SEG_BLEND_MIN_HISTORY,		/* users with fewer items get popularity only */
	SEG_BLEND_NEIGHBORS,		/* nearest neighbours of each owned item that score */
	SEG_BLEND_PARAMS
} SegBlendParam;

typedef enum SegNet
{
	SEG_NET_ENCODER = 1,
	SEG_NET_DECODER = 2,
	SEG_NET_CLASSIFIER = 3
} SegNet;

typedef enum SegColumnType
{
	SEG_COL_NUMERIC = 0,
	SEG_COL_BOOLEAN = 1,
	SEG_COL_CATEGORICAL = 2
} SegColumnType;

typedef enum SegActivation
{
	SEG_ACT_IDENTITY = 0,
	SEG_ACT_RELU = 1,
	SEG_ACT_TANH = 2,
	SEG_ACT_SIGMOID = 3,
	SEG_ACT_SOFTMAX = 4
} SegActivation;

/* One directory entry: 32 bytes, so payloads that follow stay 8-aligned. */
typedef struct SegSection
{
	int32		tag;
	int32		dtype;
	int32		group;
	int32		index;
	int32		nrows;
	int32		ncols;
	int64		offset;			/* payload start, from the start of the SegModel */
} SegSection;

/* Payload end of section i: the next one's offset, or the end of the datum. */
typedef struct SegModel
{
	int32		vl_len_;		/* varlena header; use SET_VARSIZE/VARSIZE */
	uint32		magic;			/* SEG_MODEL_MAGIC */
	uint16		format;			/* SEG_MODEL_FORMAT; bump on any layout change */
	uint16		flags;			/* must be zero until a bit is defined */
	int32		kind;			/* SegModelKind */
	int32		n_sections;
	int32		reserved;		/* keeps sections[] 8-aligned; must be zero */
	SegSection	sections[FLEXIBLE_ARRAY_MEMBER];
} SegModel;

#define DatumGetSegModelP(X)	((SegModel *) PG_DETOAST_DATUM(X))
#define PG_GETARG_SEGMODEL_P(n) DatumGetSegModelP(PG_GETARG_DATUM(n))
#define PG_RETURN_SEGMODEL_P(x) PG_RETURN_POINTER(x)

/* Building a model: collect sections, then lay them out canonically. */
typedef struct SegModelBuilder
{
	int32		kind;
	int			n;
	int			cap;
	SegSection *secs;			/* offset unused while building */
	const void **data;			/* payload per section (not copied) */
	Size	   *nbytes;
} SegModelBuilder;

extern void seg_builder_init(SegModelBuilder *b, int32 kind);
extern void seg_builder_add(SegModelBuilder *b, int32 tag, int32 dtype,
							int32 group, int32 index, int32 nrows, int32 ncols,
							const void *data, Size nbytes);
extern void seg_builder_add_strings(SegModelBuilder *b, int32 tag, int32 group,
									int32 index, int nstrings, const char *const *strings);
extern SegModel *seg_builder_finish(SegModelBuilder *b);

/* The metrics section from JSON text, stored as jsonb prints it (keys sorted). */
extern void seg_builder_add_metrics(SegModelBuilder *b, const char *json);

/*
 * Finish and check the model, copy it into the current memory context, and
 * delete `work`, the context holding what the builder points to.
 */
extern SegModel *seg_builder_finish_copy(SegModelBuilder *b, MemoryContext work);

/* Reading sections. */
extern const SegSection *seg_model_find(const SegModel *m, int32 tag, int32 group, int32 index);
extern Size seg_section_nbytes(const SegModel *m, const SegSection *s);
extern const char *seg_model_kind_name(int32 kind);
extern const char *seg_tag_name(int32 tag);

static inline const void *
seg_section_data(const SegModel *m, const SegSection *s)
{
	return (const char *) m + s->offset;
}

/* Strings of a text section: NUL-terminated, back to back; walk with this. */
static inline const char *
seg_next_string(const char *p)
{
	return p + strlen(p) + 1;
}

/* Report a defective model (22P03). */
extern void seg_model_bad(const char *fmt,...) pg_attribute_printf(1, 2) pg_attribute_noreturn();

/* Decode wire bytes into a validated model (22P03 on any defect). */
extern SegModel *seg_model_decode(StringInfo buf);
extern void seg_model_encode(const SegModel *m, StringInfo buf);
extern void seg_model_check(const SegModel *m);

/* k-means view of a model: centroids k x c, used by every scorer. */
typedef struct SegKmeansView
{
	int			k;
	int			dim;			/* input width the caller must supply */
	const double *centroids;	/* k x dim */
	const double *offset;		/* NULL or dim values */
	const double *factor;		/* NULL or dim values */
} SegKmeansView;

extern void seg_model_kmeans_view(const SegModel *m, SegKmeansView *v);

#endif							/* SEG_MODEL_TYPE_H */
