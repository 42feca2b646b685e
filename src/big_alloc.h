/*
 * big_alloc.h — allocations of many megabytes (row buffers, per-row scratch).
 */
#ifndef SEG_BIG_ALLOC_H
#define SEG_BIG_ALLOC_H

#include "c.h"
#include "utils/palloc.h"

/* MemoryContextAllocHuge / repalloc_huge, then ask for transparent huge pages. */
extern void *seg_alloc_big(MemoryContext cxt, Size size);
extern void *seg_realloc_big(void *p, Size size);

#endif							/* SEG_BIG_ALLOC_H */
