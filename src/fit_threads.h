/*
 * fit_threads.h — run numeric chunks of a fit on several threads.
 *
 * The final step of a training aggregate runs in one backend after the
 * parallel workers have gone, so its iterations (Lloyd passes, k-means++
 * scans, final assignment) use a few threads of plain C and BLAS.  The work
 * is cut into chunks whose boundaries depend only on the data's shape, and
 * callers keep one result per chunk and reduce them in chunk order, so the
 * result is the same bit for bit whatever the thread count.
 *
 * A chunk function must not call palloc, ereport or any PostgreSQL function:
 * it runs off the main thread.  Scratch is allocated by the caller before.
 */
#ifndef SEG_FIT_THREADS_H
#define SEG_FIT_THREADS_H

#include "c.h"

/* chunk: which chunk to do; slot: 0..seg_fit_threads()-1, for per-thread scratch */
typedef void (*SegChunkFn) (void *arg, int slot, int64 chunk);

extern int	seg_fit_threads_setting;
extern int	seg_blas_threads;	/* segment.blas_threads (segment.c) */

/*
 * Threads a fit uses now: the setting, or with 0 the parallel-query budget;
 * 1 when OpenBLAS has threads of its own (one level of threading, not two).
 */
extern int	seg_fit_threads(void);

/*
 * Run fn on chunks 0..nchunks-1 with up to seg_fit_threads() threads (the
 * calling thread included), then CHECK_FOR_INTERRUPTS().  A cancel stops
 * further chunks from starting.
 */
extern void seg_run_chunks(int64 nchunks, SegChunkFn fn, void *arg);

#endif							/* SEG_FIT_THREADS_H */
