/*
 * nn.h — a small, exact neural-network core on OpenBLAS.
 *
 * A network is a chain of dense layers, each optionally followed by batch
 * normalisation, an activation and dropout.  Training runs mini-batches
 * through forward and backward passes (GEMM for every layer), with
 * softmax cross-entropy or mean-squared-error losses, and Adam or SGD with
 * momentum.  Everything is deterministic given the caller's PRNG state.
 * Memory comes from CurrentMemoryContext; no PostgreSQL calls beyond palloc
 * and CHECK_FOR_INTERRUPTS in the training loop.
 */
#ifndef SEG_NN_H
#define SEG_NN_H

#include "c.h"
#include "common/pg_prng.h"

#define SEG_BN_EPS 1e-5

/* An activation (not softmax) of one value; sigmoid is stable on both sides. */
extern double seg_activate(int act, double v);

typedef enum SegLoss
{
	SEG_LOSS_SOFTMAX_CE = 0,	/* targets: class indices */
	SEG_LOSS_MSE = 1			/* targets: vectors of the output width */
} SegLoss;

typedef struct SegLayer
{
	int			in;
	int			out;
	int			act;			/* SegActivation (no softmax: the loss applies it) */
	bool		bn;
	double		dropout;		/* probability of zeroing a unit while training */

	/* parameters: W (out x in), b (out), gamma, beta (out, when bn), in one block */
	int			nparams;
	double	   *params;
	double	   *grads;
	double	   *m1;				/* optimiser state */
	double	   *m2;
	double	   *W,
			   *b,
			   *gamma,
			   *beta;
	double	   *rmean,
			   *rvar;			/* batch-norm running statistics (not trained by gradient) */

	/* per batch, for the backward pass (batch x out unless said) */
	const double *x;			/* batch x in, the input */
	double	   *z;				/* pre-normalisation */
	double	   *zhat;			/* normalised */
	double	   *bmean,
			   *binvstd;		/* out */
	double	   *y;				/* after the affine batch-norm step (= z without bn) */
	double	   *a;				/* output: activation, times the dropout mask */
	double	   *mask;			/* dropout multipliers, 0 or 1 / (1 - p) */
	double	   *da;				/* gradient scratch */
	double	   *dx;				/* batch x in: gradient to the input */
} SegLayer;

typedef struct SegNetwork
{
	int			nlayers;
	SegLayer   *layers;
	int			max_batch;
	int			step;			/* optimiser steps taken (Adam bias correction) */
} SegNetwork;

typedef struct SegTrainOptions
{
	int			epochs;
	int			batch_size;
	double		lr;
	double		lr_decay;		/* the learning rate is multiplied by this after every epoch */
	bool		adam;			/* else SGD with momentum */
	double		momentum;
	double		beta1,
				beta2,
				eps;
	double		weight_decay;
	int			patience;		/* epochs without a better validation loss before stopping */
} SegTrainOptions;

/* A network of widths[0] -> widths[1] -> ... -> widths[nlayers], He-initialised. */
extern SegNetwork *seg_net_create(int nlayers, const int *widths, const int *acts, const bool *bn,
							  const double *dropout, int max_batch, pg_prng_state *rng);

/* Forward over a batch of rows (n <= max_batch); returns the last layer's output (n x out). */
extern const double *seg_net_forward(SegNetwork *net, const double *X, int n, bool train,
									 pg_prng_state *rng);

/* Loss of outputs (n x out) against targets, and (when dout) its gradient. */
extern double seg_net_loss(SegLoss loss, const double *out, int n, int width,
						   const int32 *classes, const double *targets, double *dout);

/* Backward from dout (n x out): fills every layer's grads. */
extern void seg_net_backward(SegNetwork *net, const double *dout, int n);

/* One optimiser step with the current grads, learning rate lr. */
extern void seg_net_step(SegNetwork *net, const SegTrainOptions *o, double lr);

/*
 * Training data for seg_net_train / seg_net_evaluate: rows X (n x in) and,
 * per the loss, class indices or target rows (n x out).
 */
typedef struct SegTrainData
{
	SegLoss		loss;
	const double *X;
	int			in;
	const int32 *classes;		/* softmax cross-entropy */
	const double *targets;		/* mean squared error */
	int			out;
} SegTrainData;

typedef struct SegTrainResult
{
	int			epochs;			/* run (early stopping may end before the budget) */
	int			best_epoch;		/* 0-based; its weights are the network's */
	double	   *train_curve;	/* per epoch: mean training loss */
	double	   *val_curve;		/* per epoch: validation loss (training loss without validation) */
} SegTrainResult;

/*
 * Mini-batch training of rows train_idx (shuffled in place every epoch with
 * rng), early stopping on rows val_idx (none: on the training loss), the
 * best epoch's weights restored at the end.
 */
extern void seg_net_train(SegNetwork *net, const SegTrainData *data, int64 *train_idx, int64 ntrain,
						  const int64 *val_idx, int64 nval, const SegTrainOptions *o,
						  pg_prng_state *rng, SegTrainResult *res);

/* Mean loss (and accuracy for cross-entropy, when acc) in evaluation mode on rows idx. */
extern double seg_net_evaluate(SegNetwork *net, const SegTrainData *data, const int64 *idx, int64 n,
							   double *acc);

/* Copy parameters and running statistics (to keep the best epoch). */
extern void seg_net_save(const SegNetwork *net, double *to);
extern void seg_net_restore(SegNetwork *net, const double *from);
extern int64 seg_net_state_size(const SegNetwork *net);

/*
 * Finite-difference check of every parameter's gradient on a tiny network
 * with every layer type, for the given loss; returns the largest relative
 * error.  (Dropout off, batch norm in training mode.)
 */
extern double seg_net_gradient_check(SegLoss loss, uint64 seed);

/*
 * Network `net` (SEG_NET_*) of a stored model on one row x of width in
 * (already scaled); returns the output (palloc'd) and its width.
 */
struct SegModel;
extern double *seg_model_net_apply(const struct SegModel *m, int net, const double *x, int in,
								   int *width);

#endif							/* SEG_NN_H */
