/*
 * segmenter.h — the train() pipeline model read in place (segmenter.c).
 */
#ifndef SEG_SEGMENTER_H
#define SEG_SEGMENTER_H

#include "model_type.h"

#define SEG_MAX_FEATURES_STACK 256	/* encoded rows this wide need no palloc */
#define SEG_MAX_CATEGORIES 1000		/* one-hot categories per column, at most */

typedef struct SegPipeline
{
	const SegModel *model;
	int			n_in;			/* input columns */
	const char *columns;		/* n_in names, back to back */
	Size		columns_bytes;
	const int32 *types;			/* SegColumnType per column */
	const double *impute;		/* per column: the value for NULL (category index for text) */
	int			k;
	int			d;				/* encoded width: numbers and booleans 1, categories n + 1 */
	int			cd;				/* centroid width: d, or the encoder's code size */
	bool		encoder;		/* rows go through the encoder before the centroids */
	bool		classifier;		/* the classifier network decides the segment */
	int			cls_in;			/* its input width: d, or the code size */
	const double *centroids;	/* k x cd, in scaled units or code space */
	const double *offset;		/* NULL or d */
	const double *factor;
	const char *labels;			/* NULL or k strings */
} SegPipeline;

/* The pipeline of a segmenter model; ERROR for any other kind. */
extern void seg_pipeline_view(const SegModel *m, SegPipeline *p);

#endif							/* SEG_SEGMENTER_H */
