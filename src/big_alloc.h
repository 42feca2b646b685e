/*
 * big_alloc.h — allocations of many megabytes (row buffers, per-row scratch).
 */
#ifndef SEG_BIG_ALLOC_H
#define SEG_BIG_ALLOC_H

#include "c.h"
#include "utils/palloc.h"

/*
 * Like MemoryContextAllocHuge / repalloc_huge / pfree (memory freed with
 * cxt), but a request of megabytes gets a mapping of its own, with huge
 * pages, which goes back to a small per-backend cache of lazily freed
 * mappings for the next fit.  Free such memory with seg_free_big only.
 * The contents of new memory are undefined, as palloc's.
 */
extern void *seg_alloc_big(MemoryContext cxt, Size size);
/* keep: how many bytes at the front of p to carry over */
extern void *seg_realloc_big(void *p, Size keep, Size size);
extern void seg_free_big(void *p);

/* Whether p's pages may still be unbacked (a new mapping, not one kept from an earlier fit). */
extern bool seg_big_fresh(void *p);

/* segment.kept_fit_memory (kB): what that cache may hold; trimming it to a new limit */
extern int	seg_kept_fit_memory_kb;
extern void seg_trim_kept_memory(int limit_kb);

/*
 * Fault in a buffer's pages on a thread of its own, a few megabytes ahead
 * of a writer that fills it front to back (see big_alloc.c for why).
 * *written_rows * row_bytes is how far the writer has got; it is read
 * without a lock, as a hint.  Stop it before the buffer is freed, moved or
 * read by other threads; stopping is also registered as a reset callback
 * of cxt, so an ERROR cannot free the buffer under the thread.
 */
typedef struct SegPrefault SegPrefault;
extern SegPrefault *seg_prefault_start(MemoryContext cxt, void *base, Size size,
									   const int64 *written_rows, Size row_bytes);
extern void seg_prefault_stop(SegPrefault *pf);

#endif							/* SEG_BIG_ALLOC_H */
