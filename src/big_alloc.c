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
 *
 * Even so, fresh memory is dear on a virtual machine whose host takes back
 * the pages a guest frees: there the first touch of each page waits for the
 * host (measured on our 2-core Firecracker VM: 140-330 ms to first write
 * 128 MB, 13 ms to write it again).  A fit reads its rows into such memory
 * while one core runs the scan, so a second thread faults the pages in a
 * few megabytes ahead of the writer, on the core that is otherwise idle.
 * And the mappings of a finished fit are kept, lazily freed, for the next
 * one (segment.kept_fit_memory): writing them again costs no fault at all.
 */
#include "postgres.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "access/parallel.h"
#include "lib/ilist.h"
#include "nodes/memnodes.h"
#include "utils/memutils.h"

#include "big_alloc.h"

#define SEG_HUGE_PAGE ((uintptr_t) 2 * 1024 * 1024)
#define SEG_SMALL_PAGE ((uintptr_t) 4096)
/* how far ahead of the writer pages are faulted in, at most */
#define SEG_PREFAULT_AHEAD (4 * SEG_HUGE_PAGE)
/* where the thread resumes, past the writer, once the writer has overtaken it */
#define SEG_PREFAULT_LEAD (2 * SEG_HUGE_PAGE)

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23	/* Linux 5.14; older kernels say EINVAL */
#endif

/*
 * A region: one anonymous mapping, data at map + SEG_BIG_PREFIX.  Its
 * header lives in the owner's memory context, whose reset callback hands
 * the mapping back, so an ERROR (or the end of the query) frees it as it
 * would a palloc'd chunk.
 */
typedef struct BigRegion
{
	char	   *map;
	Size		map_len;
	MemoryContext cxt;
	bool		live;
	bool		fresh;			/* mapped anew (not from the cache): pages not backed yet */
	dlist_node	node;			/* in live_regions */
	MemoryContextCallback on_reset;
} BigRegion;

#define SEG_BIG_PREFIX 64		/* keeps the data cache-line aligned */
/* below this, palloc: mappings are a few per fit, not one per small group */
#define SEG_BIG_MIN ((Size) 2 * 1024 * 1024)
#define SEG_BIG_CACHED 8

/* regions handed out and not yet given back */
static dlist_head live_regions = DLIST_STATIC_INIT(live_regions);

/* Mappings given back, kept as lazily freed memory for the next fit. */
typedef struct CachedMap
{
	char	   *map;
	Size		len;
} CachedMap;
static CachedMap cached[SEG_BIG_CACHED];
static Size cached_bytes = 0;

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

/* The cached mapping that fits len most tightly, taken out of the cache; NULL if none. */
static char *
take_cached(Size len, Size *got)
{
	int			best = -1;
	char	   *map;

	for (int i = 0; i < SEG_BIG_CACHED; i++)
		if (cached[i].map != NULL && cached[i].len >= len &&
			(best < 0 || cached[i].len < cached[best].len))
			best = i;
	if (best < 0)
		return NULL;
	map = cached[best].map;
	*got = cached[best].len;
	cached_bytes -= cached[best].len;
	cached[best].map = NULL;
	return map;
}

int			seg_kept_fit_memory_kb = 512 * 1024;

/* The smallest kept mapping shorter than below, or -1. */
static int
smallest_cached(Size below)
{
	int			small = -1;

	for (int i = 0; i < SEG_BIG_CACHED; i++)
		if (cached[i].map != NULL && cached[i].len < below &&
			(small < 0 || cached[i].len < cached[small].len))
			small = i;
	return small;
}

static void
drop_cached(int i)
{
	(void) munmap(cached[i].map, cached[i].len);
	cached_bytes -= cached[i].len;
	cached[i].map = NULL;
}

void
seg_trim_kept_memory(int limit_kb)
{
	int			i;

	while (cached_bytes > (Size) limit_kb * 1024 && (i = smallest_cached(SIZE_MAX)) >= 0)
		drop_cached(i);
}

/*
 * Keep a mapping for later, as lazily freed memory (MADV_FREE: the kernel
 * takes its pages whenever it needs them, and they stay out of the free
 * lists that a host reclaims), or unmap it: at most SEG_BIG_CACHED mappings
 * and segment.kept_fit_memory in all, smaller ones dropped for a larger.
 */
static void
give_back(char *map, Size len)
{
#ifdef MADV_FREE
	Size		limit = (Size) seg_kept_fit_memory_kb * 1024;

	while (len <= limit)
	{
		int			slot = -1;

		for (int i = 0; i < SEG_BIG_CACHED && slot < 0; i++)
			if (cached[i].map == NULL)
				slot = i;
		if (slot >= 0 && cached_bytes + len <= limit)
		{
			if (madvise(map, len, MADV_FREE) != 0)
				break;
			cached[slot].map = map;
			cached[slot].len = len;
			cached_bytes += len;
			return;
		}
		if ((slot = smallest_cached(len)) < 0)
			break;
		drop_cached(slot);
	}
#endif
	(void) munmap(map, len);
}

/*
 * A region counts as its context's memory, as a palloc'd chunk would:
 * MemoryContextMemAllocated() is what a hash aggregate compares with
 * work_mem to decide when to spill.  Reset callbacks run before the context
 * frees its own blocks, so the count is back to theirs by then.
 */
static void
count_region(MemoryContext cxt, Size add, Size sub)
{
	cxt->mem_allocated += add;
	Assert(cxt->mem_allocated >= sub);
	cxt->mem_allocated -= sub;
}

static void
region_release(BigRegion *r)
{
	if (!r->live)
		return;
	r->live = false;
	dlist_delete(&r->node);
	count_region(r->cxt, 0, r->map_len);
	give_back(r->map, r->map_len);
}

static void
region_reset_callback(void *arg)
{
	region_release((BigRegion *) arg);
}

/* The live region whose data is p, or NULL (p came from palloc). */
static BigRegion *
region_of(void *p)
{
	dlist_iter	it;

	dlist_foreach(it, &live_regions)
	{
		BigRegion  *r = dlist_container(BigRegion, node, it.cur);

		if (r->map + SEG_BIG_PREFIX == (char *) p)
			return r;
	}
	return NULL;
}

static void
no_memory(Size size)
{
	ereport(ERROR,
			(errcode(ERRCODE_OUT_OF_MEMORY),
			 errmsg("out of memory"),
			 errdetail("Failed on a request of size %zu.", size)));
}

/* A new mapping of len bytes (for a request of size), with huge pages asked for. */
static char *
map_anew(Size len, Size size)
{
	char	   *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (map == MAP_FAILED)
		no_memory(size);
	advise_huge(map, len);
	return map;
}

/* A region of at least size data bytes in cxt: a cached mapping if one fits. */
static BigRegion *
region_new(MemoryContext cxt, Size size)
{
	Size		need = TYPEALIGN(SEG_HUGE_PAGE, size + SEG_BIG_PREFIX);
	Size		got = need;
	char	   *map = take_cached(need, &got);
	bool		from_cache = map != NULL;
	BigRegion  *r;

	if (map == NULL)
		map = map_anew(need, size);
	r = MemoryContextAllocZero(cxt, sizeof(BigRegion));
	r->fresh = !from_cache;
	r->map = map;
	r->map_len = got;
	r->cxt = cxt;
	r->live = true;
	count_region(cxt, got, 0);
	dlist_push_head(&live_regions, &r->node);
	r->on_reset.func = region_reset_callback;
	r->on_reset.arg = r;
	MemoryContextRegisterResetCallback(cxt, &r->on_reset);
	return r;
}

void *
seg_alloc_big(MemoryContext cxt, Size size)
{
	if (size < SEG_BIG_MIN)
		return MemoryContextAllocHuge(cxt, size);
	return region_new(cxt, size)->map + SEG_BIG_PREFIX;
}

void *
seg_realloc_big(void *p, Size keep, Size size)
{
	BigRegion  *r = region_of(p);
	Size		need = TYPEALIGN(SEG_HUGE_PAGE, size + SEG_BIG_PREFIX);
	Size		got = need;
	char	   *map;

	if (r == NULL)
	{
		BigRegion  *to;

		if (size < SEG_BIG_MIN)
			return repalloc_huge(p, size);
		to = region_new(GetMemoryChunkContext(p), size);
		memcpy(to->map + SEG_BIG_PREFIX, p, keep);
		pfree(p);
		return to->map + SEG_BIG_PREFIX;
	}
	if (need <= r->map_len)
		return p;
	/* a cached mapping is already backed: copying into it beats faulting */
	map = take_cached(need, &got);
	if (map != NULL)
	{
		memcpy(map + SEG_BIG_PREFIX, p, keep);
		give_back(r->map, r->map_len);
		r->fresh = false;
	}
	else
	{
#ifdef MREMAP_MAYMOVE
		/* Linux moves the page tables: no copy, no second copy of the rows */
		map = mremap(r->map, r->map_len, need, MREMAP_MAYMOVE);
		if (map == MAP_FAILED)
			no_memory(size);
		advise_huge(map, need);
#else
		map = map_anew(need, size);
		memcpy(map + SEG_BIG_PREFIX, p, keep);
		(void) munmap(r->map, r->map_len);
#endif
		r->fresh = true;		/* the new part is */
	}
	count_region(r->cxt, got, r->map_len);
	r->map = map;
	r->map_len = got;
	return map + SEG_BIG_PREFIX;
}

bool
seg_big_fresh(void *p)
{
	BigRegion  *r = region_of(p);

	return r == NULL || r->fresh;
}

void
seg_free_big(void *p)
{
	BigRegion  *r = region_of(p);

	if (r == NULL)
		pfree(p);
	else
		region_release(r);
}

struct SegPrefault
{
	uintptr_t	base;
	uintptr_t	end;
	const int64 *written_rows;
	Size		row_bytes;
	int			stop;			/* atomic: set by seg_prefault_stop */
	bool		running;
	pthread_t	tid;
	MemoryContextCallback on_reset;
};

/* at most one per backend: the buffer being filled now */
static SegPrefault *current_prefault = NULL;

/* Fault in [p, p + len) without changing what it holds (the writer may be there). */
static void
populate(uintptr_t p, Size len, bool *use_madvise)
{
	if (*use_madvise && madvise((void *) p, len, MADV_POPULATE_WRITE) == 0)
		return;
	*use_madvise = false;
	/* an atomic add of zero is a write fault that keeps any byte written meanwhile */
	for (uintptr_t q = p; q < p + len; q += SEG_SMALL_PAGE)
		(void) __atomic_fetch_add((char *) q, 0, __ATOMIC_RELAXED);
}

static void *
prefault_main(void *arg)
{
	SegPrefault *pf = (SegPrefault *) arg;
	uintptr_t	next = TYPEALIGN(SEG_HUGE_PAGE, pf->base);
	bool		use_madvise = true;

	while (next < pf->end && !__atomic_load_n(&pf->stop, __ATOMIC_RELAXED))
	{
		/* a hint, read without a lock: at worst a page is faulted twice */
		uintptr_t	written = pf->base +
			(uintptr_t) __atomic_load_n(pf->written_rows, __ATOMIC_RELAXED) * pf->row_bytes;

		/*
		 * Ahead by at most an eighth of what is written, so a state that
		 * stops growing soon (one of many groups) holds little it never
		 * uses; a large one gets the full distance.
		 */
		Size		ahead = Min(SEG_PREFAULT_AHEAD,
								TYPEALIGN_DOWN(SEG_HUGE_PAGE, (written - pf->base) / 8));

		if (next < written)
		{
			/*
			 * Overtaken: the writer faults its own pages now.  Leave it the
			 * next few and fault further on, so two faults are in flight
			 * instead of one waiting for the other on the same page.
			 */
			next = TYPEALIGN(SEG_HUGE_PAGE, written) + Min(SEG_PREFAULT_LEAD, ahead);
		}
		else if (next >= written + ahead)
		{
			struct timespec nap = {0, 100 * 1000};

			nanosleep(&nap, NULL);
		}
		else
		{
			Size		len = Min(SEG_HUGE_PAGE, pf->end - next);

			populate(next, len, &use_madvise);
			next += len;
		}
	}
	return NULL;
}

static void
prefault_reset_callback(void *arg)
{
	seg_prefault_stop((SegPrefault *) arg);
}

SegPrefault *
seg_prefault_start(MemoryContext cxt, void *base, Size size, const int64 *written_rows,
				   Size row_bytes)
{
	SegPrefault *pf;
	sigset_t	all,
				old;

	if (size < 4 * SEG_PREFAULT_AHEAD)
		return NULL;
	seg_prefault_stop(current_prefault);
	pf = MemoryContextAllocZero(cxt, sizeof(SegPrefault));
	pf->base = (uintptr_t) base;
	pf->end = TYPEALIGN_DOWN(SEG_SMALL_PAGE, (uintptr_t) base + size);
	pf->written_rows = written_rows;
	pf->row_bytes = row_bytes;
	/* signals stay with the backend's own thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pf->running = pthread_create(&pf->tid, NULL, prefault_main, pf) == 0;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!pf->running)
	{
		pfree(pf);
		return NULL;			/* only an optimisation */
	}
	pf->on_reset.func = prefault_reset_callback;
	pf->on_reset.arg = pf;
	MemoryContextRegisterResetCallback(cxt, &pf->on_reset);
	current_prefault = pf;
	return pf;
}

void
seg_prefault_stop(SegPrefault *pf)
{
	if (pf == NULL || !pf->running)
		return;
	__atomic_store_n(&pf->stop, 1, __ATOMIC_RELAXED);
	pthread_join(pf->tid, NULL);
	pf->running = false;
	if (current_prefault == pf)
		current_prefault = NULL;
}
