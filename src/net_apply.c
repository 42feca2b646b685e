/*
 * net_apply.c — run one stored network of a model (encoder, decoder or
 * classifier) on one row: dense layers, batch norm with the stored running
 * statistics, activations (softmax on the output of a classifier).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include <cblas.h>

#include "model_type.h"
#include "nn.h"

double *
seg_model_net_apply(const SegModel *m, int net, const double *x, int in, int *width)
{
	const SegSection *spec = seg_model_find(m, SEG_TAG_LAYER_SPEC, net, 0);
	const int32 *rows = seg_section_data(m, spec);
	double	   *cur = palloc(sizeof(double) * in);

	if (rows[0] != in)
		elog(ERROR, "network %d takes %d inputs, got %d", net, rows[0], in);
	memcpy(cur, x, sizeof(double) * in);
	for (int l = 0; l < spec->nrows; l++)
	{
		int			lin = rows[4 * l],
					out = rows[4 * l + 1],
					act = rows[4 * l + 2];
		const SegSection *bns = seg_model_find(m, SEG_TAG_LAYER_BATCHNORM, net, l);
		double	   *next = palloc(sizeof(double) * out);

		memcpy(next, seg_section_data(m, seg_model_find(m, SEG_TAG_LAYER_BIAS, net, l)),
			   sizeof(double) * out);
		cblas_dgemv(CblasRowMajor, CblasNoTrans, out, lin, 1.0,
					seg_section_data(m, seg_model_find(m, SEG_TAG_LAYER_WEIGHTS, net, l)), lin,
					cur, 1, 1.0, next, 1);
		if (bns)
		{
			const double *st = seg_section_data(m, bns);	/* gamma, beta, mean, var */

			for (int j = 0; j < out; j++)
				next[j] = st[j] * (next[j] - st[2 * out + j]) / sqrt(st[3 * out + j] + SEG_BN_EPS) +
					st[out + j];
		}
		if (act == SEG_ACT_SOFTMAX)
		{
			double		mx = -DBL_MAX,
						sum = 0.0;

			for (int j = 0; j < out; j++)
				mx = Max(mx, next[j]);
			for (int j = 0; j < out; j++)
				sum += (next[j] = exp(next[j] - mx));
			for (int j = 0; j < out; j++)
				next[j] /= sum;
		}
		else
			for (int j = 0; j < out; j++)
				next[j] = seg_activate(act, next[j]);
		pfree(cur);
		cur = next;
		*width = out;
	}
	return cur;
}
