/*
 * rows_state.h — the transition state of aggregates that hold rows.
 *
 * segment.rows_state keeps up to max_rows feature vectors (and optionally an
 * int label per row).  Past max_rows it keeps the rows with the smallest
 * seeded 64-bit hash (a bottom-m sample), so the rows kept do not depend on
 * how the input was split among parallel workers or Citus shards, nor on
 * their order: merging two samples is "keep the m smallest keys".
 *
 * While an aggregate runs, the state is an expanded object (no copying as it
 * grows); between processes it is a flat varlena with text and binary I/O, as
 * parallel query and Citus require of a non-internal state type.
 */
#ifndef SEG_ROWS_STATE_H
#define SEG_ROWS_STATE_H

#include "fmgr.h"
#include "utils/expandeddatum.h"

#define SEG_ROWS_MAGIC		0x53454752	/* "SEGR" */
#define SEG_ROWS_FORMAT		1

/* Bytes the whole state may take (and its text form stays under 1 GB). */
#define SEG_ROWS_MAX_BYTES	((int64) 512 * 1024 * 1024)

typedef struct SegRows
{
	ExpandedObjectHeader hdr;
	int32		d;				/* width of every row */
	int32		k;				/* aggregate parameter, constant across rows */
	bool		has_labels;
	char	   *options;		/* canonical JSON text of the options, in the object's context */
	uint64		seed;			/* hash seed of the sample */
	int64		rows_seen;		/* non-NULL rows offered */
	int64		n;				/* rows held */
	int64		max_rows;		/* held at most */
	int64		cap;			/* rows allocated */
	double	   *data;			/* n x d */
	uint64	   *keys;			/* n; only the first n_keyed are computed */
	int64		n_keyed;		/* keys are hashed lazily: a sample that never fills
								 * needs them only to sort, on the fit threads */
	int32	   *labels;			/* n, when has_labels */
	int64	   *heap;			/* max-heap of row positions by key, once full */
	struct SegPrefault *prefault;	/* faults data's pages in ahead of the rows */
	const char *checked_options;	/* options text last found equal (not stored) */
} SegRows;

/* A new, empty state in its own context under parent. */
extern SegRows *seg_rows_create(MemoryContext parent, int32 d, int32 k, bool has_labels,
								const char *options, uint64 seed, int64 max_rows);

/* The state behind an aggregate argument, expanded (copied if it arrives flat). */
extern SegRows *seg_rows_from_datum(Datum d, MemoryContext parent);

/* Offer one row; keeps it if the sample has room or its key is small enough. */
extern void seg_rows_offer(SegRows *s, const double *x, int32 label);

/* Offer every row of src (combine). */
/* Free the keys of a sorted state that takes no more rows (final functions). */
extern void seg_rows_drop_keys(SegRows *s);

/*
 * Every label pair of a label_pairs_transfn state (aggregate argument 0),
 * into a[] and b[] (palloc'd); returns their count.  Figures over pairs
 * are exact or nothing: past segment.max_fit_memory it is an ERROR (54000).
 */
extern int64 seg_exact_label_pairs(FunctionCallInfo fcinfo, MemoryContext aggcxt, const char *fn,
								   int32 **a, int32 **b);

/* A read-only view of a state argument, without copying its rows when it can. */
extern const SegRows *seg_rows_view(Datum d, SegRows *view);

extern void seg_rows_merge(SegRows *dst, const SegRows *src);

/*
 * Sort held rows into their canonical order, a function of the rows and the
 * seed only: the same order whatever the plan, and its first rows are a
 * seeded sample.  For final functions.
 */
extern void seg_rows_sort(SegRows *s);

/* The canonical order's key of one row without a label (seed-spread CRC-32C); thread-safe. */
extern uint64 seg_row_order_key(int32 d, uint64 seed, const double *x);

/* Rows-per-byte budget from segment.max_fit_memory for rows of width d. */
extern int64 seg_rows_budget(int32 d, bool has_labels, int64 max_fit_memory_kb);

extern int	seg_max_fit_memory_kb;

#endif							/* SEG_ROWS_STATE_H */
