/*
 * fit_threads.c — see fit_threads.h.
 *
 * Threads are created per call (a Lloyd pass takes milliseconds, a thread
 * start microseconds), with every signal blocked so PostgreSQL's handlers
 * only ever run on the backend's own thread.  Chunks are handed out by an
 * atomic counter; the calling thread works too and watches InterruptPending.
 */
#include "postgres.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "miscadmin.h"
#include "optimizer/paths.h"
#include "optimizer/cost.h"

#include "fit_threads.h"

#define SEG_MAX_FIT_THREADS 64

int			seg_fit_threads_setting = 0;

int
seg_fit_threads(void)
{
	long		cpus;
	int			n;

	if (seg_blas_threads > 1)
		return 1;
	if (seg_fit_threads_setting > 0)
		return seg_fit_threads_setting;
	/* as many as one parallel query may use: the leader and its workers */
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	n = max_parallel_workers_per_gather + 1;
	if (cpus > 0 && n > cpus)
		n = (int) cpus;
	return Max(1, Min(n, SEG_MAX_FIT_THREADS));
}

typedef struct ChunkJob
{
	SegChunkFn	fn;
	void	   *arg;
	int64		nchunks;
	int64		next;			/* atomic: the next chunk to hand out */
	int			stop;			/* atomic: a cancel is pending */
} ChunkJob;

typedef struct ChunkWorker
{
	ChunkJob   *job;
	int			slot;
} ChunkWorker;

static void
work_chunks(ChunkJob *job, int slot, bool main_thread)
{
	for (;;)
	{
		int64		c;

		if (__atomic_load_n(&job->stop, __ATOMIC_RELAXED))
			return;
		c = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
		if (c >= job->nchunks)
			return;
		job->fn(job->arg, slot, c);
		if (main_thread && INTERRUPTS_PENDING_CONDITION() && INTERRUPTS_CAN_BE_PROCESSED())
			__atomic_store_n(&job->stop, 1, __ATOMIC_RELAXED);
	}
}

static void *
worker_main(void *p)
{
	ChunkWorker *w = (ChunkWorker *) p;

	work_chunks(w->job, w->slot, false);
	return NULL;
}

void
seg_run_chunks(int64 nchunks, SegChunkFn fn, void *arg)
{
	ChunkJob	job = {fn, arg, nchunks, 0, 0};
	pthread_t	tids[SEG_MAX_FIT_THREADS];
	ChunkWorker workers[SEG_MAX_FIT_THREADS];
	int			nthreads = (int) Min(seg_fit_threads(), nchunks);

	for (;;)
	{
		int			started = 0;

		CHECK_FOR_INTERRUPTS();
		if (nthreads > 1)
		{
			sigset_t	all,
						old;

			sigfillset(&all);
			pthread_sigmask(SIG_SETMASK, &all, &old);
			for (int t = 1; t < nthreads; t++)
			{
				workers[started].job = &job;
				workers[started].slot = t;
				/* if a thread cannot start, the others (and this one) do its chunks */
				if (pthread_create(&tids[started], NULL, worker_main, &workers[started]) != 0)
					break;
				started++;
			}
			pthread_sigmask(SIG_SETMASK, &old, NULL);
		}
		work_chunks(&job, 0, true);
		for (int t = 0; t < started; t++)
			pthread_join(tids[t], NULL);
		/* every chunk handed out was done; a cancel ends here with an ERROR */
		CHECK_FOR_INTERRUPTS();
		if (job.next >= nchunks)
			break;
		/* an interrupt that did not end the query: do the rest */
		job.stop = 0;
	}
}
