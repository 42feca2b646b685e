/*
 * interactions.h — segment.interactions, the state of recommender_fit.
 *
 * It holds every (user, item, weight [, segment]) row the aggregate has seen.
 * Integer ids are kept as int64; ids of any other type as their text form,
 * interned once per state (Online Retail repeats each stock code hundreds of
 * times).  Rows are not summed here: the final function sorts and sums them,
 * so the model does not depend on how rows were split among workers.
 *
 * While the aggregate runs the state is an expanded object updated in place;
 * between processes (parallel query, Citus) it is a flat varlena with text
 * and binary I/O whose decoder checks every byte.
 */
#ifndef SEG_INTERACTIONS_H
#define SEG_INTERACTIONS_H

#include "fmgr.h"
#include "utils/expandeddatum.h"

#define SEG_IDS_UNKNOWN	2		/* id kind before the first row */

/* Distinct strings, each with a dense index (its order of arrival). */
typedef struct SegStrings
{
	int64		n;
	int64		cap;
	int64	   *offsets;		/* n: start of each string in arena */
	char	   *arena;			/* NUL-terminated strings back to back */
	int64		arena_len;
	int64		arena_cap;
	int64	   *slots;			/* hash table of indexes, -1 = empty */
	int64		nslots;			/* a power of two, > 2n */
} SegStrings;

typedef struct SegPairs
{
	ExpandedObjectHeader hdr;
	uint8		user_text;		/* 0: int64 ids, 1: text ids, SEG_IDS_UNKNOWN */
	uint8		item_text;
	bool		has_segments;
	char	   *options;		/* canonical JSON text of the options */
	int64		n;
	int64		cap;
	int64	   *users;			/* the id, or an index into ustr */
	int64	   *items;
	double	   *weights;
	int32	   *segments;		/* 0 = unknown, else 1..k; only with has_segments */
	SegStrings	ustr;
	SegStrings	istr;
	const void *last_options;	/* options datum last found equal (not stored) */
} SegPairs;

/* ERROR 22023 on options recommender_fit does not take (recommender_fit.c). */
extern void seg_recommender_check_options(const char *text);

/* The state behind an aggregate argument, expanded (copied if it arrives flat). */
extern SegPairs *seg_pairs_from_datum(Datum d, MemoryContext parent);

/* The string with index i. */
static inline const char *
seg_strings_get(const SegStrings *s, int64 i)
{
	return s->arena + s->offsets[i];
}

#endif							/* SEG_INTERACTIONS_H */
