/*
 * mlp.c — segment.mlp_fit (an aggregate training a classifier network on
 * (features, label) rows), mlp_predict and mlp_proba, and the gradient
 * check the tests call.
 *
 * Rows are held like kmeans_fit's (segment.rows_state with labels: bounded,
 * seeded sample, canonical order), standardised, split into a stratified
 * validation share, and trained in mini-batches with early stopping that
 * keeps the best epoch's weights.  The model (kind "mlp") stores the scaler,
 * the layers, the class labels and the training curves.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include <cblas.h>

#include "model_cache.h"
#include "model_type.h"
#include "nn.h"
#include "int_set.h"
#include "nn_options.h"
#include "rows_state.h"
#include "validate.h"

#define SEG_MLP_MAX_CLASSES 1000

typedef struct MlpOptions
{
	SegNnOptions n;
	double		dropout;
	bool		batch_norm;
} MlpOptions;

static void
mlp_other_option(const char *fn, const char *key, JsonbValue *v, void *arg)
{
	MlpOptions *o = (MlpOptions *) arg;

	if (strcmp(key, "dropout") == 0)
		o->dropout = seg_nn_number(fn, v, key, 0, 0.95);
	else if (strcmp(key, "batch_norm") == 0)
	{
		if (v->type != jbvBool)
			seg_nn_bad_option(fn, "option \"batch_norm\" must be true or false");
		o->batch_norm = v->val.boolean;
	}
	else
		seg_nn_bad_option(fn, "unknown option \"%s\"", key);
}

/* Options with their defaults (the two-stage method's 100 -> 20, dropout 0.5, batch norm). */
static void
parse_mlp_options(const char *text, MlpOptions *o)
{
	seg_nn_defaults(&o->n);
	o->n.nhidden = 2;
	o->n.hidden[0] = 100;
	o->n.hidden[1] = 20;
	o->dropout = 0.5;
	o->batch_norm = true;
	seg_nn_parse("mlp_fit", text, &o->n, mlp_other_option, o);
}

/* ---------- the aggregate ---------- */

/* mlp_fit(features, label [, options]): rows with a NULL array or label are skipped */
static uint64
mlp_seed(const char *options)
{
	MlpOptions	o;

	parse_mlp_options(options, &o);
	return o.n.seed;
}

PG_FUNCTION_INFO_V1(seg_mlp_fit_transfn);
Datum
seg_mlp_fit_transfn(PG_FUNCTION_ARGS)
{
	return seg_nn_rows_transfn(fcinfo, "mlp_fit", true, mlp_seed);
}

static void
append_curve(StringInfo buf, const char *name, const double *v, int n)
{
	appendStringInfo(buf, ", \"%s\": [", name);
	for (int i = 0; i < n; i++)
		appendStringInfo(buf, "%s%.6g", i ? ", " : "", v[i]);
	appendStringInfoChar(buf, ']');
}

PG_FUNCTION_INFO_V1(seg_mlp_fit_finalfn);
Datum
seg_mlp_fit_finalfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "mlp_fit");
	MemoryContext work,
				old;
	SegRows    *s;
	MlpOptions o;
	int			d,
				nc = 0,
				nl;
	int32	   *classes;
	int32	   *y;
	double	   *X,
			   *mean,
			   *sd;
	int64	   *train_idx,
			   *val_idx,
				ntrain = 0,
				nval = 0;
	pg_prng_state rng;
	SegNetwork	   *net;
	int			widths[SEG_NN_MAX_HIDDEN + 2],
				acts[SEG_NN_MAX_HIDDEN + 1];
	bool		bn[SEG_NN_MAX_HIDDEN + 1];
	double		drop[SEG_NN_MAX_HIDDEN + 1];
	double	   *train_curve,
			   *val_curve;
	int			best_epoch,
				epoch;
	SegTrainData data;
	SegTrainResult res;
	double		train_loss,
				train_acc,
				val_loss = NAN,
				val_acc = NAN;
	SegModelBuilder b;
	SegModel   *result;
	StringInfoData metrics;
	char	  **class_names;
	int32	   *spec;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	work = AllocSetContextCreate(CurrentMemoryContext, "segment mlp_fit", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	s = seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	parse_mlp_options(s->options, &o);
	seg_rows_sort(s);			/* the same rows in the same order, whatever the plan */
	d = s->d;
	if (s->n < 2)
		seg_nn_bad_option("mlp_fit", "needs at least 2 rows, got %lld", (long long) s->n);

	/* classes: the distinct labels, in order */
	classes = palloc(sizeof(int32) * s->n);
	memcpy(classes, s->labels, sizeof(int32) * s->n);
	nc = (int) Min(seg_distinct_int32(classes, s->n), PG_INT32_MAX);
	if (nc < 2 || nc > SEG_MLP_MAX_CLASSES)
		seg_nn_bad_option("mlp_fit", "needs 2..%d classes, got %d", SEG_MLP_MAX_CLASSES, nc);
	y = palloc(sizeof(int32) * s->n);
	for (int64 i = 0; i < s->n; i++)
		y[i] = seg_find_int32(classes, nc, s->labels[i]);

	/* standardise: the scaler goes into the model */
	X = palloc(sizeof(double) * s->n * d);
	mean = palloc(sizeof(double) * d);
	sd = palloc(sizeof(double) * d);
	seg_nn_standardize(s->data, s->n, d, X, mean, sd);

	/* stratified validation split, seeded: each class gives its share */
	pg_prng_seed(&rng, o.n.seed);
	train_idx = palloc(sizeof(int64) * s->n);
	val_idx = palloc(sizeof(int64) * s->n);
	for (int c = 0; c < nc; c++)
	{
		int64		cnt = 0,
					nv;
		int64	   *members = palloc(sizeof(int64) * s->n);

		for (int64 i = 0; i < s->n; i++)
			if (y[i] == c)
				members[cnt++] = i;
		for (int64 i = cnt - 1; i > 0; i--)
		{
			int64		j = (int64) pg_prng_uint64_range(&rng, 0, i);
			int64		t = members[i];

			members[i] = members[j];
			members[j] = t;
		}
		nv = cnt > 1 ? (int64) floor(o.n.validation * cnt + 0.5) : 0;
		nv = Min(nv, cnt - 1);
		for (int64 i = 0; i < cnt; i++)
		{
			if (i < nv)
				val_idx[nval++] = members[i];
			else
				train_idx[ntrain++] = members[i];
		}
		pfree(members);
	}

	/* the network: hidden layers (ReLU, batch norm, dropout), then the class logits */
	nl = o.n.nhidden + 1;
	widths[0] = d;
	for (int l = 0; l < o.n.nhidden; l++)
	{
		widths[l + 1] = o.n.hidden[l];
		acts[l] = SEG_ACT_RELU;
		bn[l] = o.batch_norm;
		drop[l] = o.dropout;
	}
	widths[nl] = nc;
	acts[nl - 1] = SEG_ACT_IDENTITY;
	bn[nl - 1] = false;
	drop[nl - 1] = 0.0;
	o.n.t.batch_size = (int) Min(o.n.t.batch_size, Max(ntrain, 2));
	net = seg_net_create(nl, widths, acts, bn, drop, o.n.t.batch_size, &rng);
	data.loss = SEG_LOSS_SOFTMAX_CE;
	data.X = X;
	data.in = d;
	data.classes = y;
	data.targets = NULL;
	data.out = nc;
	seg_net_train(net, &data, train_idx, ntrain, val_idx, nval, &o.n.t, &rng, &res);
	epoch = res.epochs;
	best_epoch = res.best_epoch;
	train_curve = res.train_curve;
	val_curve = res.val_curve;
	train_loss = seg_net_evaluate(net, &data, train_idx, ntrain, &train_acc);
	if (nval > 0)
		val_loss = seg_net_evaluate(net, &data, val_idx, nval, &val_acc);

	/* the model */
	seg_builder_init(&b, SEG_KIND_MLP);
	seg_builder_add(&b, SEG_TAG_SCALE_OFFSET, SEG_DT_FLOAT8, 0, 0, 1, d, mean, sizeof(double) * d);
	seg_builder_add(&b, SEG_TAG_SCALE_FACTOR, SEG_DT_FLOAT8, 0, 0, 1, d, sd, sizeof(double) * d);
	spec = palloc(sizeof(int32) * 4 * nl);
	for (int l = 0; l < nl; l++)
	{
		SegLayer   *L = &net->layers[l];

		spec[4 * l] = L->in;
		spec[4 * l + 1] = L->out;
		spec[4 * l + 2] = l == nl - 1 ? SEG_ACT_SOFTMAX : L->act;
		spec[4 * l + 3] = L->bn ? 1 : 0;
		seg_builder_add(&b, SEG_TAG_LAYER_WEIGHTS, SEG_DT_FLOAT8, SEG_NET_CLASSIFIER, l,
						L->out, L->in, L->W, sizeof(double) * L->out * L->in);
		seg_builder_add(&b, SEG_TAG_LAYER_BIAS, SEG_DT_FLOAT8, SEG_NET_CLASSIFIER, l,
						1, L->out, L->b, sizeof(double) * L->out);
		if (L->bn)
		{
			double	   *st = palloc(sizeof(double) * 4 * L->out);

			memcpy(st, L->gamma, sizeof(double) * L->out);
			memcpy(st + L->out, L->beta, sizeof(double) * L->out);
			memcpy(st + 2 * L->out, L->rmean, sizeof(double) * L->out);
			memcpy(st + 3 * L->out, L->rvar, sizeof(double) * L->out);
			seg_builder_add(&b, SEG_TAG_LAYER_BATCHNORM, SEG_DT_FLOAT8, SEG_NET_CLASSIFIER, l,
							4, L->out, st, sizeof(double) * 4 * L->out);
		}
	}
	seg_builder_add(&b, SEG_TAG_LAYER_SPEC, SEG_DT_INT32, SEG_NET_CLASSIFIER, 0, nl, 4,
					spec, sizeof(int32) * 4 * nl);
	class_names = palloc(sizeof(char *) * nc);
	for (int c = 0; c < nc; c++)
		class_names[c] = psprintf("%d", classes[c]);
	seg_builder_add_strings(&b, SEG_TAG_SEGMENT_LABELS, 0, 0, nc, (const char *const *) class_names);

	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"algorithm\": \"mlp\", \"options\": %s, \"classes\": [", s->options);
	for (int c = 0; c < nc; c++)
		appendStringInfo(&metrics, "%s%d", c ? ", " : "", classes[c]);
	appendStringInfo(&metrics, "], \"rows_seen\": %lld, \"rows_used\": %lld, \"train_rows\": %lld, "
					 "\"validation_rows\": %lld, \"epochs\": %d, \"best_epoch\": %d, "
					 "\"train_loss\": %.17g, \"train_accuracy\": %.17g",
					 (long long) s->rows_seen, (long long) s->n, (long long) ntrain, (long long) nval,
					 epoch, best_epoch + 1, train_loss, train_acc);
	if (nval > 0)
		appendStringInfo(&metrics, ", \"validation_loss\": %.17g, \"validation_accuracy\": %.17g",
						 val_loss, val_acc);
	append_curve(&metrics, "train_curve", train_curve, epoch);
	if (nval > 0)
		append_curve(&metrics, "validation_curve", val_curve, epoch);
	appendStringInfoChar(&metrics, '}');
	seg_builder_add_metrics(&b, metrics.data);
	MemoryContextSwitchTo(old);
	result = seg_builder_finish_copy(&b, work);
	PG_RETURN_SEGMODEL_P(result);
}

/* ---------- scoring ---------- */

/* Class probabilities of one row (length = classes); returns the class count. */
static int
mlp_forward_row(const SegModel *m, const double *x, int d, double **probs)
{
	const SegSection *spec = seg_model_find(m, SEG_TAG_LAYER_SPEC, SEG_NET_CLASSIFIER, 0);
	const SegSection *off = seg_model_find(m, SEG_TAG_SCALE_OFFSET, 0, 0);
	const SegSection *fac = seg_model_find(m, SEG_TAG_SCALE_FACTOR, 0, 0);
	const int32 *rows;
	double	   *cur;
	int			width;

	if (m->kind != SEG_KIND_MLP || spec == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model of kind \"%s\" is not an mlp model", seg_model_kind_name(m->kind))));
	rows = seg_section_data(m, spec);
	if (d != rows[0])
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("features has %d elements, the model takes %d", d, rows[0])));
	cur = palloc(sizeof(double) * d);
	for (int t = 0; t < d; t++)
		cur[t] = off ? (x[t] - ((const double *) seg_section_data(m, off))[t]) /
			((const double *) seg_section_data(m, fac))[t] : x[t];
	*probs = seg_model_net_apply(m, SEG_NET_CLASSIFIER, cur, d, &width);
	return width;
}

static int32
class_label(const SegModel *m, int c)
{
	const SegSection *s = seg_model_find(m, SEG_TAG_SEGMENT_LABELS, 0, 0);
	const char *p;

	if (s == NULL)
		return c + 1;
	p = seg_section_data(m, s);
	for (int i = 0; i < c; i++)
		p = seg_next_string(p);
	return pg_strtoint32(p);
}

/* mlp_predict(features, model) → int: the most probable class label */
PG_FUNCTION_INFO_V1(seg_mlp_predict);
Datum
seg_mlp_predict(PG_FUNCTION_ARGS)
{
	int			d;
	const double *x = seg_check_vector(PG_GETARG_ARRAYTYPE_P(0), "features", -1, &d);
	SegModel   *m = seg_model_arg(fcinfo, 1, &fcinfo->flinfo->fn_extra);
	double	   *p;
	int			nc = mlp_forward_row(m, x, d, &p);
	int			best = 0;

	for (int c = 1; c < nc; c++)
		if (p[c] > p[best])
			best = c;
	PG_RETURN_INT32(class_label(m, best));
}

/* mlp_proba(features, model) → float8[]: probabilities in the order of the model's classes */
PG_FUNCTION_INFO_V1(seg_mlp_proba);
Datum
seg_mlp_proba(PG_FUNCTION_ARGS)
{
	int			d;
	const double *x = seg_check_vector(PG_GETARG_ARRAYTYPE_P(0), "features", -1, &d);
	SegModel   *m = seg_model_arg(fcinfo, 1, &fcinfo->flinfo->fn_extra);
	double	   *p;
	int			nc = mlp_forward_row(m, x, d, &p);
	Datum	   *e = palloc(sizeof(Datum) * nc);

	for (int c = 0; c < nc; c++)
		e[c] = Float8GetDatum(p[c]);
	PG_RETURN_ARRAYTYPE_P(construct_array(e, nc, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

/* _nn_gradient_check(loss text, seed bigint) → float8: largest relative gradient error */
PG_FUNCTION_INFO_V1(seg_nn_gradient_check);
Datum
seg_nn_gradient_check(PG_FUNCTION_ARGS)
{
	char	   *loss = text_to_cstring(PG_GETARG_TEXT_PP(0));
	SegLoss		l;

	if (strcmp(loss, "cross_entropy") == 0)
		l = SEG_LOSS_SOFTMAX_CE;
	else if (strcmp(loss, "mse") == 0)
		l = SEG_LOSS_MSE;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("loss must be cross_entropy or mse")));
	PG_RETURN_FLOAT8(seg_net_gradient_check(l, (uint64) PG_GETARG_INT64(1)));
}
