/*
 * nn.c — the neural-network core (see nn.h).
 *
 * Row-major batches: a batch of n rows of width w is n x w.  Every layer
 * is z = x W' + b (dgemm), then batch norm, activation and dropout.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"

#include <cblas.h>

#include "model_type.h"
#include "nn.h"

#define SEG_BN_MOMENTUM 0.1

static double
uniform(pg_prng_state *rng, double a)
{
	return (2.0 * pg_prng_double(rng) - 1.0) * a;
}

SegNetwork *
seg_net_create(int nlayers, const int *widths, const int *acts, const bool *bn,
			   const double *dropout, int max_batch, pg_prng_state *rng)
{
	SegNetwork	   *net = palloc0(sizeof(SegNetwork));

	net->nlayers = nlayers;
	net->layers = palloc0(sizeof(SegLayer) * nlayers);
	net->max_batch = max_batch;
	for (int l = 0; l < nlayers; l++)
	{
		SegLayer   *L = &net->layers[l];
		int			in = widths[l],
					out = widths[l + 1];
		/* He for ReLU, Glorot otherwise: activations keep their scale through depth */
		double		bound = acts[l] == SEG_ACT_RELU ? sqrt(6.0 / in) : sqrt(6.0 / (in + out));
		Size		bo = sizeof(double) * (Size) max_batch * out;

		L->in = in;
		L->out = out;
		L->act = acts[l];
		L->bn = bn[l];
		L->dropout = dropout[l];
		L->nparams = out * in + out + (L->bn ? 2 * out : 0);
		L->params = palloc0(sizeof(double) * L->nparams);
		L->grads = palloc0(sizeof(double) * L->nparams);
		L->m1 = palloc0(sizeof(double) * L->nparams);
		L->m2 = palloc0(sizeof(double) * L->nparams);
		L->W = L->params;
		L->b = L->W + (size_t) out * in;
		for (int i = 0; i < out * in; i++)
			L->W[i] = uniform(rng, bound);
		if (L->bn)
		{
			L->gamma = L->b + out;
			L->beta = L->gamma + out;
			for (int j = 0; j < out; j++)
				L->gamma[j] = 1.0;
			L->rmean = palloc0(sizeof(double) * out);
			L->rvar = palloc(sizeof(double) * out);
			for (int j = 0; j < out; j++)
				L->rvar[j] = 1.0;
			L->zhat = palloc(bo);
			L->bmean = palloc(sizeof(double) * out);
			L->binvstd = palloc(sizeof(double) * out);
			L->y = palloc(bo);
		}
		L->z = palloc(bo);
		if (!L->bn)
			L->y = L->z;
		L->a = palloc(bo);
		L->mask = palloc(bo);
		L->da = palloc(bo);
		L->dx = palloc(sizeof(double) * (Size) max_batch * in);
	}
	return net;
}

double
seg_activate(int act, double v)
{
	switch (act)
	{
		case SEG_ACT_RELU:
			return v > 0 ? v : 0;
		case SEG_ACT_TANH:
			return tanh(v);
		case SEG_ACT_SIGMOID:
			/* stable on both sides: no exp overflow */
			return v >= 0 ? 1.0 / (1.0 + exp(-v)) : exp(v) / (1.0 + exp(v));
		default:
			return v;
	}
}

/* d act / d y, from y and the activation's value */
static double
activate_grad(int act, double y, double a)
{
	switch (act)
	{
		case SEG_ACT_RELU:
			return y > 0 ? 1.0 : 0.0;
		case SEG_ACT_TANH:
			return 1.0 - a * a;
		case SEG_ACT_SIGMOID:
			return a * (1.0 - a);
		default:
			return 1.0;
	}
}

const double *
seg_net_forward(SegNetwork *net, const double *X, int n, bool train, pg_prng_state *rng)
{
	const double *x = X;

	for (int l = 0; l < net->nlayers; l++)
	{
		SegLayer   *L = &net->layers[l];
		int			out = L->out;

		L->x = x;
		cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, L->in,
					1.0, x, L->in, L->W, L->in, 0.0, L->z, out);
		for (int r = 0; r < n; r++)
			for (int j = 0; j < out; j++)
				L->z[(size_t) r * out + j] += L->b[j];
		if (L->bn)
		{
			for (int j = 0; j < out; j++)
			{
				double		mean,
							var;

				if (train)
				{
					double		s = 0.0,
								ss = 0.0;

					for (int r = 0; r < n; r++)
						s += L->z[(size_t) r * out + j];
					mean = s / n;
					for (int r = 0; r < n; r++)
					{
						double		d = L->z[(size_t) r * out + j] - mean;

						ss += d * d;
					}
					var = ss / n;
					L->rmean[j] = (1 - SEG_BN_MOMENTUM) * L->rmean[j] + SEG_BN_MOMENTUM * mean;
					L->rvar[j] = (1 - SEG_BN_MOMENTUM) * L->rvar[j] +
						SEG_BN_MOMENTUM * (n > 1 ? ss / (n - 1) : var);
				}
				else
				{
					mean = L->rmean[j];
					var = L->rvar[j];
				}
				L->bmean[j] = mean;
				L->binvstd[j] = 1.0 / sqrt(var + SEG_BN_EPS);
			}
			for (int r = 0; r < n; r++)
				for (int j = 0; j < out; j++)
				{
					size_t		i = (size_t) r * out + j;

					L->zhat[i] = (L->z[i] - L->bmean[j]) * L->binvstd[j];
					L->y[i] = L->gamma[j] * L->zhat[i] + L->beta[j];
				}
		}
		for (size_t i = 0; i < (size_t) n * out; i++)
		{
			double		a = seg_activate(L->act, L->y[i]);

			if (train && L->dropout > 0)
			{
				/* inverted dropout: the expected activation is unchanged */
				L->mask[i] = pg_prng_double(rng) >= L->dropout ? 1.0 / (1.0 - L->dropout) : 0.0;
				a *= L->mask[i];
			}
			L->a[i] = a;
		}
		x = L->a;
	}
	return x;
}

double
seg_net_loss(SegLoss loss, const double *out, int n, int width,
			 const int32 *classes, const double *targets, double *dout)
{
	double		total = 0.0;

	for (int r = 0; r < n; r++)
	{
		const double *z = out + (size_t) r * width;

		if (loss == SEG_LOSS_SOFTMAX_CE)
		{
			double		m = -DBL_MAX,
						s = 0.0,
						lse;

			for (int j = 0; j < width; j++)
				m = Max(m, z[j]);
			for (int j = 0; j < width; j++)
				s += exp(z[j] - m);
			lse = m + log(s);	/* log-sum-exp: no overflow on large logits */
			total += lse - z[classes[r]];
			if (dout)
				for (int j = 0; j < width; j++)
					dout[(size_t) r * width + j] =
						(exp(z[j] - lse) - (j == classes[r] ? 1.0 : 0.0)) / n;
		}
		else
		{
			const double *t = targets + (size_t) r * width;

			for (int j = 0; j < width; j++)
			{
				double		d = z[j] - t[j];

				total += d * d / width;
				if (dout)
					dout[(size_t) r * width + j] = 2.0 * d / ((double) n * width);
			}
		}
	}
	return total / n;
}

void
seg_net_backward(SegNetwork *net, const double *dout, int n)
{
	const double *da_in = dout;

	for (int l = net->nlayers - 1; l >= 0; l--)
	{
		SegLayer   *L = &net->layers[l];
		int			out = L->out;
		double	   *dz = L->da;
		double	   *gW = L->grads;
		double	   *gb = gW + (size_t) out * L->in;

		/* through dropout and the activation */
		for (size_t i = 0; i < (size_t) n * out; i++)
		{
			double		g = da_in[i];
			double		a = seg_activate(L->act, L->y[i]);

			if (L->dropout > 0)
				g *= L->mask[i];
			dz[i] = g * activate_grad(L->act, L->y[i], a);
		}
		if (L->bn)
		{
			double	   *ggamma = gb + out;
			double	   *gbeta = ggamma + out;

			for (int j = 0; j < out; j++)
			{
				double		sg = 0.0,
							sgz = 0.0,
							dg = 0.0,
							db = 0.0;

				for (int r = 0; r < n; r++)
				{
					size_t		i = (size_t) r * out + j;
					double		dzhat = dz[i] * L->gamma[j];

					dg += dz[i] * L->zhat[i];
					db += dz[i];
					sg += dzhat;
					sgz += dzhat * L->zhat[i];
				}
				ggamma[j] = dg;
				gbeta[j] = db;
				for (int r = 0; r < n; r++)
				{
					size_t		i = (size_t) r * out + j;
					double		dzhat = dz[i] * L->gamma[j];

					dz[i] = L->binvstd[j] / n * (n * dzhat - sg - L->zhat[i] * sgz);
				}
			}
		}
		cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, L->in, n,
					1.0, dz, out, L->x, L->in, 0.0, gW, L->in);
		for (int j = 0; j < out; j++)
		{
			double		s = 0.0;

			for (int r = 0; r < n; r++)
				s += dz[(size_t) r * out + j];
			gb[j] = s;
		}
		if (l > 0)
		{
			cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, L->in, out,
						1.0, dz, out, L->W, L->in, 0.0, L->dx, L->in);
			da_in = L->dx;
		}
	}
}

void
seg_net_step(SegNetwork *net, const SegTrainOptions *o, double lr)
{
	double		c1,
				c2;

	net->step++;
	c1 = 1.0 - pow(o->beta1, net->step);
	c2 = 1.0 - pow(o->beta2, net->step);
	for (int l = 0; l < net->nlayers; l++)
	{
		SegLayer   *L = &net->layers[l];
		int			nw = L->out * L->in;

		for (int i = 0; i < L->nparams; i++)
		{
			double		g = L->grads[i] + (i < nw ? o->weight_decay * L->params[i] : 0.0);

			if (o->adam)
			{
				L->m1[i] = o->beta1 * L->m1[i] + (1 - o->beta1) * g;
				L->m2[i] = o->beta2 * L->m2[i] + (1 - o->beta2) * g * g;
				L->params[i] -= lr * (L->m1[i] / c1) / (sqrt(L->m2[i] / c2) + o->eps);
			}
			else
			{
				L->m1[i] = o->momentum * L->m1[i] + g;
				L->params[i] -= lr * L->m1[i];
			}
		}
	}
}

int64
seg_net_state_size(const SegNetwork *net)
{
	int64		n = 0;

	for (int l = 0; l < net->nlayers; l++)
		n += net->layers[l].nparams + (net->layers[l].bn ? 2 * net->layers[l].out : 0);
	return n;
}

void
seg_net_save(const SegNetwork *net, double *to)
{
	for (int l = 0; l < net->nlayers; l++)
	{
		const SegLayer *L = &net->layers[l];

		memcpy(to, L->params, sizeof(double) * L->nparams);
		to += L->nparams;
		if (L->bn)
		{
			memcpy(to, L->rmean, sizeof(double) * L->out);
			memcpy(to + L->out, L->rvar, sizeof(double) * L->out);
			to += 2 * L->out;
		}
	}
}

void
seg_net_restore(SegNetwork *net, const double *from)
{
	for (int l = 0; l < net->nlayers; l++)
	{
		SegLayer   *L = &net->layers[l];

		memcpy(L->params, from, sizeof(double) * L->nparams);
		from += L->nparams;
		if (L->bn)
		{
			memcpy(L->rmean, from, sizeof(double) * L->out);
			memcpy(L->rvar, from + L->out, sizeof(double) * L->out);
			from += 2 * L->out;
		}
	}
}

/* ---------- training ---------- */

/* Copy rows idx[0..b) of the data into the batch buffers. */
static void
gather_batch(const SegTrainData *data, const int64 *idx, int b, double *xb, int32 *cb, double *tb)
{
	for (int r = 0; r < b; r++)
	{
		memcpy(xb + (size_t) r * data->in, data->X + idx[r] * data->in, sizeof(double) * data->in);
		if (data->loss == SEG_LOSS_SOFTMAX_CE)
			cb[r] = data->classes[idx[r]];
		else
			memcpy(tb + (size_t) r * data->out, data->targets + idx[r] * data->out,
				   sizeof(double) * data->out);
	}
}

double
seg_net_evaluate(SegNetwork *net, const SegTrainData *data, const int64 *idx, int64 n, double *acc)
{
	double	   *xb = palloc(sizeof(double) * net->max_batch * data->in);
	int32	   *cb = palloc(sizeof(int32) * net->max_batch);
	double	   *tb = palloc(sizeof(double) * net->max_batch * data->out);
	double		total = 0.0;
	int64		correct = 0;

	for (int64 i0 = 0; i0 < n; i0 += net->max_batch)
	{
		int			b = (int) Min(net->max_batch, n - i0);
		const double *out;

		gather_batch(data, idx + i0, b, xb, cb, tb);
		out = seg_net_forward(net, xb, b, false, NULL);
		total += seg_net_loss(data->loss, out, b, data->out, cb, tb, NULL) * b;
		if (data->loss == SEG_LOSS_SOFTMAX_CE)
			for (int r = 0; r < b; r++)
			{
				int			best = 0;

				for (int c = 1; c < data->out; c++)
					if (out[(size_t) r * data->out + c] > out[(size_t) r * data->out + best])
						best = c;
				correct += (best == cb[r]);
			}
	}
	pfree(xb);
	pfree(cb);
	pfree(tb);
	if (acc)
		*acc = n > 0 ? (double) correct / n : NAN;
	return n > 0 ? total / n : NAN;
}

void
seg_net_train(SegNetwork *net, const SegTrainData *data, int64 *train_idx, int64 ntrain,
			  const int64 *val_idx, int64 nval, const SegTrainOptions *o,
			  pg_prng_state *rng, SegTrainResult *res)
{
	int			bs = net->max_batch;
	double	   *xb = palloc(sizeof(double) * bs * data->in);
	int32	   *cb = palloc(sizeof(int32) * bs);
	double	   *tb = palloc(sizeof(double) * bs * data->out);
	double	   *dout = palloc(sizeof(double) * bs * data->out);
	double	   *best = palloc(sizeof(double) * seg_net_state_size(net));
	bool		has_bn = false;
	double		best_loss = INFINITY,
				lr = o->lr;
	int			since_best = 0,
				epoch;

	for (int l = 0; l < net->nlayers; l++)
		has_bn |= net->layers[l].bn;
	res->train_curve = palloc(sizeof(double) * o->epochs);
	res->val_curve = palloc(sizeof(double) * o->epochs);
	res->best_epoch = 0;
	seg_net_save(net, best);
	for (epoch = 0; epoch < o->epochs; epoch++)
	{
		double		total = 0.0,
					val;
		int64		seen = 0;

		CHECK_FOR_INTERRUPTS();
		/* a new seeded order each epoch */
		for (int64 i = ntrain - 1; i > 0; i--)
		{
			int64		j = (int64) pg_prng_uint64_range(rng, 0, i);
			int64		t = train_idx[i];

			train_idx[i] = train_idx[j];
			train_idx[j] = t;
		}
		for (int64 i0 = 0; i0 < ntrain; i0 += bs)
		{
			int			b = (int) Min(bs, ntrain - i0);
			const double *out;

			if (b < 2 && has_bn)
				continue;		/* batch statistics of one row mean nothing */
			CHECK_FOR_INTERRUPTS();	/* an epoch over many rows takes seconds */
			gather_batch(data, train_idx + i0, b, xb, cb, tb);
			out = seg_net_forward(net, xb, b, true, rng);
			total += seg_net_loss(data->loss, out, b, data->out, cb, tb, dout) * b;
			seen += b;
			seg_net_backward(net, dout, b);
			seg_net_step(net, o, lr);
		}
		res->train_curve[epoch] = seen ? total / seen : NAN;
		val = nval > 0 ? seg_net_evaluate(net, data, val_idx, nval, NULL) : res->train_curve[epoch];
		res->val_curve[epoch] = val;
		if (val < best_loss)
		{
			best_loss = val;
			res->best_epoch = epoch;
			since_best = 0;
			seg_net_save(net, best);
		}
		else if (++since_best >= o->patience)
		{
			epoch++;
			break;
		}
		lr *= o->lr_decay;
	}
	res->epochs = epoch;
	seg_net_restore(net, best);
	pfree(xb);
	pfree(cb);
	pfree(tb);
	pfree(dout);
	pfree(best);
}

/* ---------- gradient check ---------- */

static double
check_loss(SegNetwork *net, SegLoss loss, const double *X, int n, const int32 *cls, const double *T,
		   double *dout, pg_prng_state *rng)
{
	const double *out = seg_net_forward(net, X, n, true, rng);

	return seg_net_loss(loss, out, n, net->layers[net->nlayers - 1].out, cls, T, dout);
}

double
seg_net_gradient_check(SegLoss loss, uint64 seed)
{
	/* 3 -> 4 (ReLU, batch norm) -> 5 (tanh, batch norm) -> 4 (sigmoid) -> 3 (identity) */
	int			widths[] = {3, 4, 5, 4, 3};
	int			acts[] = {SEG_ACT_RELU, SEG_ACT_TANH, SEG_ACT_SIGMOID, SEG_ACT_IDENTITY};
	bool		bn[] = {true, true, false, false};
	double		dropout[] = {0, 0, 0, 0};
	const int	n = 6;
	pg_prng_state rng;
	SegNetwork	   *net;
	double		X[6 * 3],
				T[6 * 3],
				dout[6 * 3];
	int32		cls[6];
	double		worst = 0.0;
	const double h = 1e-6;

	pg_prng_seed(&rng, seed);
	net = seg_net_create(4, widths, acts, bn, dropout, n, &rng);
	for (int i = 0; i < n * 3; i++)
	{
		X[i] = uniform(&rng, 2.0);
		T[i] = uniform(&rng, 1.0);
	}
	for (int r = 0; r < n; r++)
		cls[r] = r % 3;
	/* biases and beta away from zero, so every path carries gradient */
	for (int l = 0; l < net->nlayers; l++)
		for (int i = net->layers[l].out * net->layers[l].in; i < net->layers[l].nparams; i++)
			net->layers[l].params[i] += uniform(&rng, 0.5);

	check_loss(net, loss, X, n, cls, T, dout, &rng);
	seg_net_backward(net, dout, n);
	for (int l = 0; l < net->nlayers; l++)
	{
		SegLayer   *L = &net->layers[l];

		for (int i = 0; i < L->nparams; i++)
		{
			double		keep = L->params[i];
			double		up,
						down,
						numeric,
						analytic = L->grads[i],
						denom;

			L->params[i] = keep + h;
			up = check_loss(net, loss, X, n, cls, T, NULL, &rng);
			L->params[i] = keep - h;
			down = check_loss(net, loss, X, n, cls, T, NULL, &rng);
			L->params[i] = keep;
			numeric = (up - down) / (2 * h);
			denom = fabs(numeric) + fabs(analytic);
			if (denom > 1e-7)
				worst = Max(worst, fabs(numeric - analytic) / denom);
		}
	}
	return worst;
}
