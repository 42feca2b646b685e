/*
 * segment.c — module entry: PG_MODULE_MAGIC, GUCs, BLAS threads.
 */
#include "postgres.h"

#include <cblas.h>

#include "fmgr.h"
#include "utils/guc.h"

#include "big_alloc.h"
#include "fit_threads.h"
#include "model_cache.h"
#include "rows_state.h"
#include "vecmath.h"

PG_MODULE_MAGIC;

/* OpenBLAS's own setter; declared here because cblas.h does not always. */
extern void openblas_set_num_threads(int num_threads);

void		_PG_init(void);

int			seg_blas_threads = 1;
int			seg_vector_kernels = SEG_KERNELS_AUTO;

static const struct config_enum_entry vector_kernels_options[] = {
	{"auto", SEG_KERNELS_AUTO, false},
	{"sse2", SEG_KERNELS_SSE2, false},
	{NULL, 0, false}
};

static void
assign_kept_fit_memory(int newval, void *extra)
{
	seg_trim_kept_memory(newval);
}

static void
assign_blas_threads(int newval, void *extra)
{
	openblas_set_num_threads(newval);
}

void
_PG_init(void)
{
	DefineCustomIntVariable("segment.blas_threads",
							"Threads OpenBLAS may use inside one backend.",
							"Parallel query workers are the usual source of parallelism; "
							"valid range is 1..64.",
							&seg_blas_threads,
							1, 1, 64,
							PGC_USERSET, 0,
							NULL, assign_blas_threads, NULL);
	DefineCustomIntVariable("segment.fit_threads",
							"Threads the final step of a fit (k-means iterations) may use.",
							"0 means the leader plus max_parallel_workers_per_gather, at most "
							"the CPUs online; results do not depend on it. Valid range is 0..64.",
							&seg_fit_threads_setting,
							0, 0, 64,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("segment.model_cache_entries",
							"Decoded catalog models each backend keeps between statements.",
							"Models in use by a running statement are never evicted; "
							"valid range is 1..10000.",
							&seg_model_cache_entries,
							16, 1, 10000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("segment.max_fit_memory",
							"Memory for the rows a training aggregate holds; past it, a seeded sample is kept.",
							"Valid range is 64kB..512MB; each parallel worker holds up to this much.",
							&seg_max_fit_memory_kb,
							256 * 1024, 64, 512 * 1024,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, NULL, NULL);
	DefineCustomIntVariable("segment.kept_fit_memory",
							"Memory of finished fits a backend keeps for its next fit.",
							"Row buffers and scratch go back as lazily freed memory, which the "
							"kernel reclaims when it needs it; writing into it again costs no "
							"page faults. 0 gives everything back at once; valid range is 0..1GB.",
							&seg_kept_fit_memory_kb,
							512 * 1024, 0, 1024 * 1024,
							PGC_USERSET, GUC_UNIT_KB,
							NULL, assign_kept_fit_memory, NULL);
	DefineCustomEnumVariable("segment.vector_kernels",
							 "Which vector kernels distances and k-means passes use.",
							 "auto uses AVX2 (and AVX-512 for k-means labels and sums) where the "
							 "CPU has it, sse2 never does; all give the same results bit for bit "
							 "(the tests compare them).",
							 &seg_vector_kernels,
							 SEG_KERNELS_AUTO, vector_kernels_options,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("segment");
	openblas_set_num_threads(seg_blas_threads);
}
