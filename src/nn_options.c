/*
 * nn_options.c — see nn_options.h.
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "nn_options.h"
#include "rows_state.h"
#include "validate.h"

void
seg_nn_bad_option(const char *fn, const char *fmt,...)
{
	char		msg[256];
	va_list		ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s: %s", fn, msg)));
}

double
seg_nn_number(const char *fn, JsonbValue *v, const char *key, double lo, double hi)
{
	double		x;

	if (v == NULL || v->type != jbvNumeric)
		seg_nn_bad_option(fn, "option \"%s\" must be a number", key);
	x = DatumGetFloat8(DirectFunctionCall1(numeric_float8, NumericGetDatum(v->val.numeric)));
	if (!(x >= lo && x <= hi))
		seg_nn_bad_option(fn, "option \"%s\" must be in %g..%g, got %g", key, lo, hi, x);
	return x;
}

void
seg_nn_defaults(SegNnOptions *o)
{
	memset(o, 0, sizeof(*o));
	o->validation = 0.1;
	o->t.epochs = 200;
	o->t.batch_size = 64;
	o->t.lr = 1e-3;
	o->t.lr_decay = 1.0;
	o->t.adam = true;
	o->t.momentum = 0.9;
	o->t.beta1 = 0.9;
	o->t.beta2 = 0.999;
	o->t.eps = 1e-8;
	o->t.patience = 20;
}

static bool
is(JsonbValue *v, const char *s)
{
	return v->type == jbvString && v->val.string.len == (int) strlen(s) &&
		strncmp(v->val.string.val, s, v->val.string.len) == 0;
}

void
seg_nn_parse(const char *fn, const char *text, SegNnOptions *o,
			 void (*other) (const char *fn, const char *key, JsonbValue *v, void *arg), void *arg)
{
	Jsonb	   *j = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(text)));
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;
	char	   *key = NULL;

	if (!JB_ROOT_IS_OBJECT(j))
		seg_nn_bad_option(fn, "options must be a JSON object");
	it = JsonbIteratorInit(&j->root);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		if (tok == WJB_KEY)
		{
			key = pnstrdup(v.val.string.val, v.val.string.len);
			continue;
		}
		if (tok != WJB_VALUE || key == NULL)
			continue;
		if (strcmp(key, "hidden") == 0)
		{
			int			n;

			if (v.type != jbvBinary || !JsonContainerIsArray(v.val.binary.data))
				seg_nn_bad_option(fn, "option \"hidden\" must be an array of layer widths");
			n = JsonContainerSize(v.val.binary.data);
			if (n > SEG_NN_MAX_HIDDEN)
				seg_nn_bad_option(fn, "at most %d hidden layers", SEG_NN_MAX_HIDDEN);
			for (int i = 0; i < n; i++)
				o->hidden[i] = (int) seg_nn_number(fn, getIthJsonbValueFromContainer(v.val.binary.data, i),
												   "hidden", 1, 4096);
			o->nhidden = n;
		}
		else if (strcmp(key, "validation") == 0)
			o->validation = seg_nn_number(fn, &v, key, 0, 0.5);
		else if (strcmp(key, "seed") == 0)
			o->seed = (uint64) seg_nn_number(fn, &v, key, 0, 1e15);
		else if (strcmp(key, "epochs") == 0)
			o->t.epochs = (int) seg_nn_number(fn, &v, key, 1, 100000);
		else if (strcmp(key, "batch_size") == 0)
			o->t.batch_size = (int) seg_nn_number(fn, &v, key, 2, 65536);
		else if (strcmp(key, "lr") == 0)
			o->t.lr = seg_nn_number(fn, &v, key, 1e-9, 10);
		else if (strcmp(key, "lr_decay") == 0)
			o->t.lr_decay = seg_nn_number(fn, &v, key, 0.5, 1);
		else if (strcmp(key, "momentum") == 0)
			o->t.momentum = seg_nn_number(fn, &v, key, 0, 0.999);
		else if (strcmp(key, "weight_decay") == 0)
			o->t.weight_decay = seg_nn_number(fn, &v, key, 0, 1);
		else if (strcmp(key, "patience") == 0)
			o->t.patience = (int) seg_nn_number(fn, &v, key, 1, 100000);
		else if (strcmp(key, "optimizer") == 0)
		{
			if (is(&v, "adam"))
				o->t.adam = true;
			else if (is(&v, "sgd"))
				o->t.adam = false;
			else
				seg_nn_bad_option(fn, "option \"optimizer\" must be \"adam\" or \"sgd\"");
		}
		else
			other(fn, key, &v, arg);
		key = NULL;
	}
}

extern int	seg_max_fit_memory_kb;

Datum
seg_nn_rows_transfn(FunctionCallInfo fcinfo, const char *fn, bool labeled,
					uint64 (*seed_of) (const char *options))
{
	MemoryContext aggcxt;
	SegRows    *s;
	int			optarg = labeled ? 3 : 2;
	const double *x;
	int			d;
	char	   *opts;

	aggcxt = seg_agg_context(fcinfo, fn);
	s = PG_ARGISNULL(0) ? NULL : seg_rows_from_datum(PG_GETARG_DATUM(0), aggcxt);
	if (PG_ARGISNULL(1) || (labeled && PG_ARGISNULL(2)))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
	}
	x = seg_check_vector(PG_GETARG_ARRAYTYPE_P(1), "features", s ? s->d : -1, &d);
	opts = (PG_NARGS() > optarg && !PG_ARGISNULL(optarg))
		? JsonbToCString(NULL, &PG_GETARG_JSONB_P(optarg)->root, VARSIZE(PG_GETARG_JSONB_P(optarg)))
		: "{}";
	if (s == NULL)
		s = seg_rows_create(aggcxt, d, 0, labeled, opts, seed_of(opts),
							seg_rows_budget(d, labeled, seg_max_fit_memory_kb));
	else if (strcmp(s->options, opts) != 0)
		seg_nn_bad_option(fn, "options must be the same for every row");
	seg_rows_offer(s, x, labeled ? PG_GETARG_INT32(2) : 0);
	PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
}

void
seg_nn_standardize(const double *data, int64 n, int d, double *X, double *mean, double *sd)
{
	for (int t = 0; t < d; t++)
		mean[t] = sd[t] = 0.0;
	for (int64 i = 0; i < n; i++)
		for (int t = 0; t < d; t++)
			mean[t] += data[i * d + t];
	for (int t = 0; t < d; t++)
		mean[t] /= n;
	for (int64 i = 0; i < n; i++)
		for (int t = 0; t < d; t++)
			sd[t] += (data[i * d + t] - mean[t]) * (data[i * d + t] - mean[t]);
	for (int t = 0; t < d; t++)
	{
		sd[t] = sqrt(sd[t] / n);
		if (!(sd[t] > 0))
			sd[t] = 1.0;
	}
	for (int64 i = 0; i < n; i++)
		for (int t = 0; t < d; t++)
			X[i * d + t] = (data[i * d + t] - mean[t]) / sd[t];
}
