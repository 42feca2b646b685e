/*
 * autoencoder.c — segment.autoencoder_fit (an aggregate training a symmetric
 * encoder/decoder on feature rows to reconstruct them) and segment.encode.
 *
 * Rows are standardised (the scaler goes into the model), a seeded share is
 * held out to stop early, and the network d -> hidden... -> code -> ...
 * hidden -> d is trained end to end on mean squared reconstruction error;
 * its first half is stored as the encoder, the second as the decoder.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/pg_prng.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"

#include <cblas.h>

#include "model_cache.h"
#include "model_type.h"
#include "nn.h"
#include "nn_options.h"
#include "rows_state.h"
#include "validate.h"


typedef struct AeOptions
{
	SegNnOptions n;
	int			code;
	int			code_act;
} AeOptions;

static void
ae_other_option(const char *fn, const char *key, JsonbValue *v, void *arg)
{
	AeOptions  *o = (AeOptions *) arg;

	if (strcmp(key, "code_size") == 0)
		o->code = (int) seg_nn_number(fn, v, key, 1, 4096);
	else if (strcmp(key, "code_activation") == 0)
	{
		if (v->type == jbvString && v->val.string.len == 4 && strncmp(v->val.string.val, "tanh", 4) == 0)
			o->code_act = SEG_ACT_TANH;
		else if (v->type == jbvString && v->val.string.len == 8 &&
				 strncmp(v->val.string.val, "identity", 8) == 0)
			o->code_act = SEG_ACT_IDENTITY;
		else
			seg_nn_bad_option(fn, "option \"code_activation\" must be \"identity\" or \"tanh\"");
	}
	else
		seg_nn_bad_option(fn, "unknown option \"%s\"", key);
}

/* Defaults: d -> 32 -> 2 -> 32 -> d, identity code. */
static void
parse_ae_options(const char *text, AeOptions *o)
{
	seg_nn_defaults(&o->n);
	o->n.nhidden = 1;
	o->n.hidden[0] = 32;
	o->code = 2;
	o->code_act = SEG_ACT_IDENTITY;
	seg_nn_parse("autoencoder_fit", text, &o->n, ae_other_option, o);
}

/* autoencoder_fit(features [, options]): NULL rows are skipped */
static uint64
ae_seed(const char *options)
{
	AeOptions	o;

	parse_ae_options(options, &o);
	return o.n.seed;
}

PG_FUNCTION_INFO_V1(seg_autoencoder_fit_transfn);
Datum
seg_autoencoder_fit_transfn(PG_FUNCTION_ARGS)
{
	return seg_nn_rows_transfn(fcinfo, "autoencoder_fit", false, ae_seed);
}

static void
add_layers(SegModelBuilder *b, SegNetwork *net, int first, int count, int net_id)
{
	int32	   *spec = palloc(sizeof(int32) * 4 * count);

	for (int i = 0; i < count; i++)
	{
		SegLayer   *L = &net->layers[first + i];

		spec[4 * i] = L->in;
		spec[4 * i + 1] = L->out;
		spec[4 * i + 2] = L->act;
		spec[4 * i + 3] = 0;
		seg_builder_add(b, SEG_TAG_LAYER_WEIGHTS, SEG_DT_FLOAT8, net_id, i, L->out, L->in, L->W,
						sizeof(double) * L->out * L->in);
		seg_builder_add(b, SEG_TAG_LAYER_BIAS, SEG_DT_FLOAT8, net_id, i, 1, L->out, L->b,
						sizeof(double) * L->out);
	}
	seg_builder_add(b, SEG_TAG_LAYER_SPEC, SEG_DT_INT32, net_id, 0, count, 4, spec,
					sizeof(int32) * 4 * count);
}

PG_FUNCTION_INFO_V1(seg_autoencoder_fit_finalfn);
Datum
seg_autoencoder_fit_finalfn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "autoencoder_fit");
	MemoryContext work,
				old;
	SegRows    *s;
	AeOptions	o;
	int			d,
				nl,
				half;
	double	   *X,
			   *mean,
			   *sd;
	int64	   *idx,
				nval,
				ntrain;
	int			widths[2 * SEG_NN_MAX_HIDDEN + 3],
				acts[2 * SEG_NN_MAX_HIDDEN + 2];
	bool		bn[2 * SEG_NN_MAX_HIDDEN + 2] = {0};
	double		drop[2 * SEG_NN_MAX_HIDDEN + 2] = {0};
	pg_prng_state rng;
	SegNetwork *net;
	SegTrainData data;
	SegTrainResult res;
	double		train_err,
				val_err = NAN;
	SegModelBuilder b;
	SegModel   *result;
	StringInfoData metrics;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	work = AllocSetContextCreate(CurrentMemoryContext, "segment autoencoder_fit", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	s = seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	parse_ae_options(s->options, &o);
	seg_rows_sort(s);
	d = s->d;
	if (s->n < 2)
		seg_nn_bad_option("autoencoder_fit", "needs at least 2 rows, got %lld", (long long) s->n);

	X = palloc(sizeof(double) * s->n * d);
	mean = palloc(sizeof(double) * d);
	sd = palloc(sizeof(double) * d);
	seg_nn_standardize(s->data, s->n, d, X, mean, sd);

	/* d -> hidden... -> code -> ...hidden -> d */
	half = o.n.nhidden + 1;
	nl = 2 * half;
	widths[0] = d;
	for (int l = 0; l < o.n.nhidden; l++)
		widths[l + 1] = o.n.hidden[l];
	widths[half] = o.code;
	for (int l = 0; l < o.n.nhidden; l++)
		widths[half + 1 + l] = o.n.hidden[o.n.nhidden - 1 - l];
	widths[nl] = d;
	for (int l = 0; l < nl; l++)
		acts[l] = SEG_ACT_RELU;
	acts[half - 1] = o.code_act;
	acts[nl - 1] = SEG_ACT_IDENTITY;

	pg_prng_seed(&rng, o.n.seed);
	idx = palloc(sizeof(int64) * s->n);
	for (int64 i = 0; i < s->n; i++)
		idx[i] = i;
	for (int64 i = s->n - 1; i > 0; i--)
	{
		int64		j = (int64) pg_prng_uint64_range(&rng, 0, i);
		int64		t = idx[i];

		idx[i] = idx[j];
		idx[j] = t;
	}
	nval = Min((int64) floor(o.n.validation * s->n + 0.5), s->n - 1);
	ntrain = s->n - nval;
	o.n.t.batch_size = (int) Min(o.n.t.batch_size, Max(ntrain, 2));
	net = seg_net_create(nl, widths, acts, bn, drop, o.n.t.batch_size, &rng);
	data.loss = SEG_LOSS_MSE;
	data.X = X;
	data.in = d;
	data.classes = NULL;
	data.targets = X;
	data.out = d;
	seg_net_train(net, &data, idx + nval, ntrain, idx, nval, &o.n.t, &rng, &res);
	train_err = seg_net_evaluate(net, &data, idx + nval, ntrain, NULL);
	if (nval > 0)
		val_err = seg_net_evaluate(net, &data, idx, nval, NULL);

	seg_builder_init(&b, SEG_KIND_AUTOENCODER);
	seg_builder_add(&b, SEG_TAG_SCALE_OFFSET, SEG_DT_FLOAT8, 0, 0, 1, d, mean, sizeof(double) * d);
	seg_builder_add(&b, SEG_TAG_SCALE_FACTOR, SEG_DT_FLOAT8, 0, 0, 1, d, sd, sizeof(double) * d);
	add_layers(&b, net, 0, half, SEG_NET_ENCODER);
	add_layers(&b, net, half, half, SEG_NET_DECODER);
	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"algorithm\": \"autoencoder\", \"options\": %s, \"code_size\": %d, "
					 "\"rows_seen\": %lld, \"rows_used\": %lld, \"train_rows\": %lld, \"validation_rows\": %lld, "
					 "\"epochs\": %d, \"best_epoch\": %d, \"reconstruction_error\": %.17g",
					 s->options, o.code, (long long) s->rows_seen, (long long) s->n, (long long) ntrain,
					 (long long) nval, res.epochs, res.best_epoch + 1, train_err);
	if (nval > 0)
		appendStringInfo(&metrics, ", \"validation_reconstruction_error\": %.17g", val_err);
	appendStringInfoString(&metrics, ", \"train_curve\": [");
	for (int e = 0; e < res.epochs; e++)
		appendStringInfo(&metrics, "%s%.6g", e ? ", " : "", res.train_curve[e]);
	appendStringInfoString(&metrics, "]}");
	seg_builder_add_metrics(&b, metrics.data);
	MemoryContextSwitchTo(old);
	result = seg_builder_finish_copy(&b, work);
	PG_RETURN_SEGMODEL_P(result);
}

static ArrayType *
float8_array(const double *v, int n)
{
	Datum	   *e = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		e[i] = Float8GetDatum(v[i]);
	return construct_array(e, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* encode(features, model) → float8[]: the code of one row */
PG_FUNCTION_INFO_V1(seg_encode);
Datum
seg_encode(PG_FUNCTION_ARGS)
{
	int			d,
				width;
	const double *x = seg_check_vector(PG_GETARG_ARRAYTYPE_P(0), "features", -1, &d);
	SegModel   *m = seg_model_arg(fcinfo, 1, &fcinfo->flinfo->fn_extra);
	const SegSection *spec = seg_model_find(m, SEG_TAG_LAYER_SPEC, SEG_NET_ENCODER, 0);
	const SegSection *off = seg_model_find(m, SEG_TAG_SCALE_OFFSET, 0, 0);
	const SegSection *fac = seg_model_find(m, SEG_TAG_SCALE_FACTOR, 0, 0);
	double	   *z;

	if (spec == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model of kind \"%s\" has no encoder", seg_model_kind_name(m->kind))));
	if (d != ((const int32 *) seg_section_data(m, spec))[0])
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("features has %d elements, the model takes %d", d,
						((const int32 *) seg_section_data(m, spec))[0])));
	z = palloc(sizeof(double) * d);
	for (int t = 0; t < d; t++)
		z[t] = off ? (x[t] - ((const double *) seg_section_data(m, off))[t]) /
			((const double *) seg_section_data(m, fac))[t] : x[t];
	z = seg_model_net_apply(m, SEG_NET_ENCODER, z, d, &width);
	PG_RETURN_ARRAYTYPE_P(float8_array(z, width));
}

/* reconstruct(features, model) → float8[]: decode(encode(x)), in original units */
PG_FUNCTION_INFO_V1(seg_reconstruct);
Datum
seg_reconstruct(PG_FUNCTION_ARGS)
{
	int			d,
				cw,
				ow;
	const double *x = seg_check_vector(PG_GETARG_ARRAYTYPE_P(0), "features", -1, &d);
	SegModel   *m = seg_model_arg(fcinfo, 1, &fcinfo->flinfo->fn_extra);
	const SegSection *off = seg_model_find(m, SEG_TAG_SCALE_OFFSET, 0, 0);
	const SegSection *fac = seg_model_find(m, SEG_TAG_SCALE_FACTOR, 0, 0);
	double	   *z,
			   *out;

	if (m->kind != SEG_KIND_AUTOENCODER)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model of kind \"%s\" is not an autoencoder", seg_model_kind_name(m->kind))));
	if (d != ((const int32 *) seg_section_data(m, seg_model_find(m, SEG_TAG_LAYER_SPEC, SEG_NET_ENCODER, 0)))[0])
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("features has %d elements, the model takes another number", d)));
	z = palloc(sizeof(double) * d);
	for (int t = 0; t < d; t++)
		z[t] = (x[t] - ((const double *) seg_section_data(m, off))[t]) /
			((const double *) seg_section_data(m, fac))[t];
	z = seg_model_net_apply(m, SEG_NET_ENCODER, z, d, &cw);
	out = seg_model_net_apply(m, SEG_NET_DECODER, z, cw, &ow);
	for (int t = 0; t < ow; t++)
		out[t] = out[t] * ((const double *) seg_section_data(m, fac))[t] +
			((const double *) seg_section_data(m, off))[t];
	PG_RETURN_ARRAYTYPE_P(float8_array(out, ow));
}
