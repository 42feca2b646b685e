/*
 * big_alloc.c — see big_alloc.h.
 *
 * A fit writes hundreds of megabytes into fresh memory once and then scans
 * it every iteration.  With 4 kB pages that is one page fault per 4 kB
 * (expensive under virtualisation) and a TLB miss per page per scan; with
 * transparent huge pages it is one per 2 MB.  Where THP is "madvise" (the
 * kernel's default), only an madvise() gets them.  It is advice: failure is
 * harmless, and memory is still charged only as pages are touched.
 * Parallel workers do not ask: their partial states are written once and
 * flattened once, and huge-page faults there stalled them (defrag=madvise
 * compacts memory on the fault).
 */
#include "postgres.h"

#include <sys/mman.h>

#include "access/parallel.h"
#include "utils/memutils.h"

#include "big_alloc.h"

#define SEG_HUGE_PAGE ((uintptr_t) 2 * 1024 * 1024)

static void
advise_huge(void *p, Size size)
{
#ifdef MADV_HUGEPAGE
	uintptr_t	lo = TYPEALIGN(SEG_HUGE_PAGE, (uintptr_t) p);
	uintptr_t	hi = TYPEALIGN_DOWN(SEG_HUGE_PAGE, (uintptr_t) p + size);

	if (size >= 2 * SEG_HUGE_PAGE && hi > lo && !IsParallelWorker())
		(void) madvise((void *) lo, hi - lo, MADV_HUGEPAGE);
#endif
}

void *
seg_alloc_big(MemoryContext cxt, Size size)
{
	void	   *p = MemoryContextAllocHuge(cxt, size);

	advise_huge(p, size);
	return p;
}

void *
seg_realloc_big(void *p, Size size)
{
	p = repalloc_huge(p, size);
	advise_huge(p, size);
	return p;
}
