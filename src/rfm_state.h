/*
 * rfm_state.h — segment.rfm_state: the partial state of rfm_score.
 *
 * One small flat varlena per customer (GROUP BY makes many of them, so no
 * expanded object with its own memory context): counts, the compensated
 * sum of amounts, first and last order time, and when order ids are given
 * the set of distinct ids, kept exactly (strings, not hashes) in an
 * open-addressing table so that combining partial states stays exact.
 */
#ifndef SEG_RFM_STATE_H
#define SEG_RFM_STATE_H

#include "c.h"
#include "datatype/timestamp.h"

#define SEG_RFM_MAGIC		0x52464D31	/* "RFM1" */
#define SEG_RFM_HAS_IDS		0x0001	/* order ids given: frequency = distinct ids */
#define SEG_RFM_HAS_AS_OF	0x0002	/* as_of given: rows after it are left out */
#define SEG_RFM_MAX_ID		10000	/* bytes of one order id, at most */

typedef struct SegRfmState
{
	int32		vl_len_;
	uint32		magic;
	uint32		flags;
	int32		n_ids;			/* distinct order ids held */
	int64		rows;			/* rows used */
	int64		skipped;		/* rows with a NULL time, amount or order id */
	int64		after;			/* rows after as_of, left out */
	TimestampTz as_of;			/* with SEG_RFM_HAS_AS_OF */
	TimestampTz first;			/* of the rows used (rows > 0) */
	TimestampTz last;
	double		sum;			/* Neumaier-compensated sum of amounts */
	double		comp;
	int32		slots;			/* hash slots, a power of two, or 0 */
	int32		blob_used;		/* bytes of id records in use */
	int32		blob_cap;
	int32		pad;
	/* uint32 slot[slots] (record offset + 1, or 0), then the id records */
} SegRfmState;

/* An id record in the blob: hash, length, bytes, padded to 4. */
typedef struct SegRfmId
{
	uint32		hash;
	uint32		len;
	char		bytes[FLEXIBLE_ARRAY_MEMBER];
} SegRfmId;

#endif							/* SEG_RFM_STATE_H */
