/*
 * nn_options.h — the jsonb options shared by the network trainers
 * (mlp_fit, autoencoder_fit): layers, the optimiser and the schedule.
 */
#ifndef SEG_NN_OPTIONS_H
#define SEG_NN_OPTIONS_H

#include "fmgr.h"
#include "utils/jsonb.h"

#include "nn.h"

#define SEG_NN_MAX_HIDDEN 16

typedef struct SegNnOptions
{
	int			nhidden;
	int			hidden[SEG_NN_MAX_HIDDEN];
	double		validation;
	uint64		seed;
	SegTrainOptions t;
} SegNnOptions;

/* ERROR 22023 "<fn>: <message>". */
extern void seg_nn_bad_option(const char *fn, const char *fmt,...)
			pg_attribute_printf(2, 3) pg_attribute_noreturn();

/* A number option within lo..hi. */
extern double seg_nn_number(const char *fn, JsonbValue *v, const char *key, double lo, double hi);

/* Defaults: Adam (lr 1e-3), 200 epochs, batch 64, patience 20, validation 0.1, seed 0. */
extern void seg_nn_defaults(SegNnOptions *o);

/*
 * Parse jsonb text: the shared keys into o; any other key goes to `other`
 * (which errors on keys it does not know).
 */
extern void seg_nn_parse(const char *fn, const char *text, SegNnOptions *o,
						 void (*other) (const char *fn, const char *key, JsonbValue *v, void *arg),
						 void *arg);

/*
 * The transition of a trainer aggregate: arguments (state, features [, label]
 * [, options]); rows with a NULL features or label are skipped.  `seed_of`
 * parses the options text (so bad options fail at the first row) and
 * returns the sample seed.
 */
extern Datum seg_nn_rows_transfn(FunctionCallInfo fcinfo, const char *fn, bool labeled,
								 uint64 (*seed_of) (const char *options));

/* Standardise rows (n x d) into X: mean and deviation per column (1 for a constant column). */
extern void seg_nn_standardize(const double *data, int64 n, int d, double *X, double *mean, double *sd);

#endif							/* SEG_NN_OPTIONS_H */
