/*
 * rows_state.c — segment.rows_state: a bounded, plan-independent row sample.
 *
 * See rows_state.h for the idea.  This file holds the expanded object (what
 * aggregates update in place), its flat form (what crosses process
 * boundaries), the text and binary I/O of the SQL type, and the sample logic.
 */
#include "postgres.h"

#include <math.h>

#include "common/hashfn.h"
#include "common/int.h"
#include "common/jsonapi.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "port/pg_crc32c.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "big_alloc.h"
#include "fit_threads.h"
#include "model_type.h"
#include "rows_state.h"
#include "text_form.h"
#include "validate.h"

#define SEG_ROWS_TEXT_PREFIX	"segr1:"
#define SEG_ROWS_MAX_OPTIONS	(1024 * 1024)

int			seg_max_fit_memory_kb = 256 * 1024;

/* The flat form: this header, options text (NUL, padded to 8), data, keys, labels. */
typedef struct SegRowsFlat
{
	int32		vl_len_;
	uint32		magic;
	uint16		format;
	uint16		has_labels;
	int32		d;
	int32		k;
	int32		opts_bytes;		/* padded size of the options text */
	int64		rows_seen;
	int64		n;
	int64		max_rows;
	uint64		seed;
} SegRowsFlat;

static Size
row_bytes(int32 d)
{
	return sizeof(double) * (Size) d;
}

/* The sample key of a row: its seeded hash (and its label's, when it has one). */
static uint64
row_key(int32 d, uint64 seed, const double *x, bool has_labels, int32 label)
{
	uint64		key = hash_bytes_extended((const unsigned char *) x, row_bytes(d), seed);

	if (has_labels)
		key = hash_combine64(key, hash_bytes_uint32_extended((uint32) label, seed));
	return key;
}

/* The rows are all in, or the buffer is about to move: no more faulting ahead. */
static void
stop_prefault(SegRows *s)
{
	seg_prefault_stop(s->prefault);
	s->prefault = NULL;
}

/* ---------- expanded object ---------- */

static Size
flat_opts_bytes(const SegRows *s)
{
	return TYPEALIGN(8, strlen(s->options) + 1);
}

static Size
rows_get_flat_size(ExpandedObjectHeader *eohptr)
{
	SegRows    *s = (SegRows *) eohptr;

	stop_prefault(s);
	return sizeof(SegRowsFlat) + flat_opts_bytes(s) +
		s->n * (row_bytes(s->d) + sizeof(uint64)) +
		(s->has_labels ? TYPEALIGN(8, s->n * sizeof(int32)) : 0);
}

static void
rows_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	SegRows    *s = (SegRows *) eohptr;
	SegRowsFlat *f = (SegRowsFlat *) result;
	char	   *p;

	memset(result, 0, allocated_size);
	SET_VARSIZE(f, allocated_size);
	f->magic = SEG_ROWS_MAGIC;
	f->format = SEG_ROWS_FORMAT;
	f->has_labels = s->has_labels;
	f->d = s->d;
	f->k = s->k;
	f->opts_bytes = flat_opts_bytes(s);
	f->rows_seen = s->rows_seen;
	f->n = s->n;
	f->max_rows = s->max_rows;
	f->seed = s->seed;
	p = (char *) (f + 1);
	strcpy(p, s->options);
	p += f->opts_bytes;
	memcpy(p, s->data, s->n * row_bytes(s->d));
	p += s->n * row_bytes(s->d);
	{
		/* keys not computed yet, or dropped: they are a function of the row */
		uint64	   *keys = (uint64 *) p;
		int64		have = s->keys ? s->n_keyed : 0;

		if (have > 0)
			memcpy(keys, s->keys, have * sizeof(uint64));
		for (int64 i = have; i < s->n; i++)
			keys[i] = row_key(s->d, s->seed, s->data + i * s->d, s->has_labels,
							  s->has_labels ? s->labels[i] : 0);
	}
	p += s->n * sizeof(uint64);
	if (s->has_labels)
		memcpy(p, s->labels, s->n * sizeof(int32));
}

static const ExpandedObjectMethods rows_methods = {
	rows_get_flat_size,
	rows_flatten_into
};

SegRows *
seg_rows_create(MemoryContext parent, int32 d, int32 k, bool has_labels,
				const char *options, uint64 seed, int64 max_rows)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "segment rows state",
											  ALLOCSET_DEFAULT_SIZES);
	SegRows    *s = MemoryContextAllocZero(cxt, sizeof(SegRows));

	EOH_init_header(&s->hdr, &rows_methods, cxt);
	s->d = d;
	s->k = k;
	s->has_labels = has_labels;
	s->options = MemoryContextStrdup(cxt, options);
	s->seed = seed;
	s->max_rows = Max(max_rows, 1);
	return s;
}

/* Room for newcap rows (data, keys, labels). */
static void
grow_to(SegRows *s, int64 newcap)
{
	MemoryContext old = MemoryContextSwitchTo(s->hdr.eoh_context);

	stop_prefault(s);
	/* big buffers grow by mremap (no copy, no 2x peak) or into a kept mapping */
	s->data = s->data ? seg_realloc_big(s->data, s->n * row_bytes(s->d), newcap * row_bytes(s->d))
		: seg_alloc_big(s->hdr.eoh_context, newcap * row_bytes(s->d));
	s->keys = s->keys ? seg_realloc_big(s->keys, s->n_keyed * sizeof(uint64), newcap * sizeof(uint64))
		: seg_alloc_big(s->hdr.eoh_context, newcap * sizeof(uint64));
	if (s->has_labels)
		s->labels = s->labels ? seg_realloc_big(s->labels, s->n * sizeof(int32), newcap * sizeof(int32))
			: seg_alloc_big(s->hdr.eoh_context, newcap * sizeof(int32));
	MemoryContextSwitchTo(old);
	s->cap = newcap;
	/*
	 * The rows to come go to fresh pages: fault them in on another core
	 * meanwhile.  Memory kept from an earlier fit is backed already, and
	 * populating it would only cost the writer (measured: 5-10 ms a 1M-row fit).
	 */
	if (s->cap - s->n > 65536 && seg_big_fresh(s->data))
		s->prefault = seg_prefault_start(s->hdr.eoh_context, s->data, s->cap * row_bytes(s->d),
										 &s->n, row_bytes(s->d));
}

/*
 * Room for at least one more row.  The first buffer holds up to 65536 rows;
 * past that the buffer is sized for max_rows at once: a large allocation is
 * address space that costs memory only as rows are written into it, and one
 * step means at most one copy, never the 2x peak of repeated doubling.
 */
static void
ensure_room(SegRows *s)
{
	if (s->n < s->cap)
		return;
	grow_to(s, s->cap == 0 ? Min(s->max_rows, 65536) : s->max_rows);
}

/* ---------- the bottom-m sample ---------- */

static void
sift_down(SegRows *s, int64 i)
{
	int64	   *h = s->heap;
	int64		n = s->n;

	for (;;)
	{
		int64		l = 2 * i + 1,
					r = l + 1,
					big = i;

		if (l < n && s->keys[h[l]] > s->keys[h[big]])
			big = l;
		if (r < n && s->keys[h[r]] > s->keys[h[big]])
			big = r;
		if (big == i)
			return;
		{
			int64		t = h[i];

			h[i] = h[big];
			h[big] = t;
		}
		i = big;
	}
}

static void
build_heap(SegRows *s)
{
	s->heap = MemoryContextAllocHuge(s->hdr.eoh_context, s->n * sizeof(int64));
	for (int64 i = 0; i < s->n; i++)
		s->heap[i] = i;
	for (int64 i = s->n / 2 - 1; i >= 0; i--)
		sift_down(s, i);
}

static void
write_row(SegRows *s, int64 pos, const double *x, uint64 key, int32 label)
{
	memcpy(s->data + pos * s->d, x, row_bytes(s->d));
	s->keys[pos] = key;
	if (s->has_labels)
		s->labels[pos] = label;
}

typedef struct KeyJob
{
	SegRows    *s;
	int64		from;
} KeyJob;

#define SEG_KEY_CHUNK 65536

static void
key_chunk(void *arg, int slot, int64 c)
{
	KeyJob	   *j = (KeyJob *) arg;
	SegRows    *s = j->s;
	int64		lo = j->from + c * SEG_KEY_CHUNK,
				hi = Min(lo + SEG_KEY_CHUNK, s->n);

	for (int64 i = lo; i < hi; i++)
		s->keys[i] = row_key(s->d, s->seed, s->data + i * s->d, s->has_labels,
							 s->has_labels ? s->labels[i] : 0);
}

/*
 * Hash the rows whose keys are pending; on the fit threads when `threaded`
 * (a final function; transition functions may run in parallel workers).
 */
static void
fill_keys(SegRows *s, bool threaded)
{
	KeyJob		job = {s, s->n_keyed};
	int64		nchunks = (s->n - s->n_keyed + SEG_KEY_CHUNK - 1) / SEG_KEY_CHUNK;

	if (s->n_keyed >= s->n)
		return;
	if (s->keys == NULL)
		elog(ERROR, "segment.rows_state: keys wanted after they were dropped (cannot happen)");
	if (threaded)
		seg_run_chunks(nchunks, key_chunk, &job);
	else
		for (int64 c = 0; c < nchunks; c++)
			key_chunk(&job, 0, c);
	s->n_keyed = s->n;
}

static void
offer_keyed(SegRows *s, const double *x, uint64 key, int32 label)
{
	if (s->keys == NULL && s->n > 0)
		elog(ERROR, "segment.rows_state: rows offered after the final function");
	fill_keys(s, false);
	if (s->n < s->max_rows)
	{
		ensure_room(s);
		write_row(s, s->n++, x, key, label);
		s->n_keyed = s->n;
		return;
	}
	/* full: replace the largest key if this one is smaller */
	if (s->heap == NULL)
		build_heap(s);
	if (key >= s->keys[s->heap[0]])
		return;
	write_row(s, s->heap[0], x, key, label);
	sift_down(s, 0);
}

void
seg_rows_offer(SegRows *s, const double *x, int32 label)
{
	s->rows_seen++;
	/* room left: keep the row, hash it later (most samples never fill) */
	if (s->n < s->max_rows && s->heap == NULL && s->keys != NULL)
	{
		ensure_room(s);
		memcpy(s->data + s->n * s->d, x, row_bytes(s->d));
		if (s->has_labels)
			s->labels[s->n] = label;
		s->n++;
		return;
	}
	if (s->n == 0 && s->keys == NULL)
	{
		ensure_room(s);
		write_row(s, s->n++, x, row_key(s->d, s->seed, x, s->has_labels, label), label);
		s->n_keyed = s->n;
		return;
	}
	offer_keyed(s, x, row_key(s->d, s->seed, x, s->has_labels, label), label);
}

/* ---------- sorting ---------- */

typedef struct SortCtx
{
	const SegRows *s;
} SortCtx;

static int
cmp_rows(const void *a, const void *b, void *arg)
{
	const SegRows *s = ((SortCtx *) arg)->s;
	int64		i = *(const int64 *) a,
				j = *(const int64 *) b;
	int			c;

	if (s->keys[i] != s->keys[j])
		return s->keys[i] < s->keys[j] ? -1 : 1;
	c = memcmp(s->data + i * s->d, s->data + j * s->d, row_bytes(s->d));
	if (c != 0 || !s->has_labels)
		return c;
	return s->labels[i] < s->labels[j] ? -1 : s->labels[i] > s->labels[j];
}

/* Scratch for sorting ranges of up to max_n rows, allocated before any thread runs. */
typedef struct SortScratch
{
	int64	   *perm;			/* max_n */
	int64	   *start;			/* buckets + 1 */
	bool	   *done;			/* max_n */
	double	   *tmp;			/* one row */
} SortScratch;

/* Counting-pass bits for a range of n rows: buckets of a few rows each. */
static int
range_bits(int64 n, int shared)
{
	int			bits = 1;

	while (bits < 24 && ((int64) 1 << (bits + 3)) < n)
		bits++;
	return Min(bits, 64 - shared);
}

static void
scratch_init(SortScratch *w, const SegRows *s, int64 max_n, int shared)
{
	w->perm = MemoryContextAllocHuge(CurrentMemoryContext, Max(max_n, 1) * sizeof(int64));
	w->start = MemoryContextAllocHuge(CurrentMemoryContext,
									  (((int64) 1 << range_bits(max_n, shared)) + 1) * sizeof(int64));
	w->done = MemoryContextAllocHuge(CurrentMemoryContext, Max(max_n, 1));
	w->tmp = palloc(row_bytes(s->d));
}

static void
scratch_free(SortScratch *w)
{
	pfree(w->perm);
	pfree(w->start);
	pfree(w->done);
	pfree(w->tmp);
}

/*
 * Positions lo..hi-1 in (key, bytes, label) order, as indices into the
 * state, into w->perm.  All keys of the range share their top `shared`
 * bits; a counting pass on the next bits leaves buckets of a few rows, each
 * then sorted by comparison (qsort for the large buckets of repeated rows).
 * No allocation: this runs on the fit threads.
 */
static void
sorted_permutation(const SegRows *s, int64 lo, int64 hi, int shared, SortScratch *w)
{
	int			bits = range_bits(hi - lo, shared);
	int			shift = 64 - shared - bits;
	uint64		mask = ((uint64) 1 << bits) - 1;
	int64		nb = (int64) 1 << bits;
	int64	   *start = w->start;
	int64	   *perm = w->perm;
	SortCtx		ctx = {s};

	memset(start, 0, (nb + 1) * sizeof(int64));
	for (int64 i = lo; i < hi; i++)
		start[((s->keys[i] >> shift) & mask) + 1]++;
	for (int64 b = 0; b < nb; b++)
		start[b + 1] += start[b];
	for (int64 i = lo; i < hi; i++)
		perm[start[(s->keys[i] >> shift) & mask]++] = i;
	/* start[b] is now the end of bucket b, the beginning of bucket b + 1 */
	for (int64 b = 0, blo = 0; b < nb; blo = start[b], b++)
	{
		int64		len = start[b] - blo;

		if (len <= 1)
			continue;
		if (len > 16)
		{
			qsort_arg(perm + blo, len, sizeof(int64), cmp_rows, &ctx);
			continue;
		}
		for (int64 x = blo + 1; x < start[b]; x++)
			for (int64 y = x; y > blo && cmp_rows(&perm[y], &perm[y - 1], &ctx) < 0; y--)
			{
				int64		t = perm[y];

				perm[y] = perm[y - 1];
				perm[y - 1] = t;
			}
	}
}

/* Move row src to position dst (data, key, label). */
static inline void
move_row(SegRows *s, int64 dst, int64 src)
{
	memcpy(s->data + dst * s->d, s->data + src * s->d, row_bytes(s->d));
	s->keys[dst] = s->keys[src];
	if (s->has_labels)
		s->labels[dst] = s->labels[src];
}

#define SEG_SORT_RADIX_BITS 8
#define SEG_SORT_RADIX_MIN (1 << 16)

/* Sort positions lo..hi-1 in place; their keys share their top `shared` bits.  No allocation. */
static void
sort_range(SegRows *s, int64 lo, int64 hi, int shared, SortScratch *w)
{
	int64		n = hi - lo;
	int64	   *perm = w->perm;
	bool	   *done = w->done;
	double	   *tmp = w->tmp;

	if (n < 2)
		return;
	sorted_permutation(s, lo, hi, shared, w);
	memset(done, 0, n);
	/* apply the permutation cycle by cycle: the row at perm[i] goes to lo + i */
	for (int64 i = 0; i < n; i++)
	{
		uint64		tkey;
		int32		tlabel = 0;
		int64		j;

		if (done[i] || perm[i] == lo + i)
			continue;
		memcpy(tmp, s->data + (lo + i) * s->d, row_bytes(s->d));
		tkey = s->keys[lo + i];
		if (s->has_labels)
			tlabel = s->labels[lo + i];
		j = i;
		for (;;)
		{
			int64		src = perm[j];

			done[j] = true;
			if (src == lo + i)
			{
				memcpy(s->data + (lo + j) * s->d, tmp, row_bytes(s->d));
				s->keys[lo + j] = tkey;
				if (s->has_labels)
					s->labels[lo + j] = tlabel;
				break;
			}
			move_row(s, lo + j, src);
			j = src - lo;
		}
	}
}

/* The radix buckets of a large state, sorted each on its own, on the fit threads. */
typedef struct BucketJob
{
	SegRows    *s;
	const int64 *begin;
	const int64 *end;
	SortScratch *scratch;		/* one per thread slot */
} BucketJob;

static void
bucket_chunk(void *arg, int slot, int64 b)
{
	BucketJob  *j = (BucketJob *) arg;

	sort_range(j->s, j->begin[b], j->end[b], SEG_SORT_RADIX_BITS, &j->scratch[slot]);
}

/*
 * Rows in (key, bytes, label) order, in place.  Large states first move
 * rows into 256 buckets by the top key bits (an in-place radix pass whose
 * writes go to 256 sequential streams), so the final permutation of each
 * bucket stays within the cache instead of jumping across the whole buffer;
 * the buckets are then sorted on the fit threads.
 */
static void
sort_by_keys(SegRows *s)
{
	double	   *tmp;

	if (s->n < 2)
		return;
	tmp = palloc(row_bytes(s->d));
	if (s->n < SEG_SORT_RADIX_MIN)
	{
		SortScratch w;

		scratch_init(&w, s, s->n, 0);
		sort_range(s, 0, s->n, 0, &w);
		scratch_free(&w);
	}
	else
	{
		const int	nb = 1 << SEG_SORT_RADIX_BITS;
		const int	shift = 64 - SEG_SORT_RADIX_BITS;
		int64		begin[1 << SEG_SORT_RADIX_BITS],
					next[1 << SEG_SORT_RADIX_BITS],
					end[1 << SEG_SORT_RADIX_BITS];
		int64		pos = 0;
		double	   *carry = palloc(row_bytes(s->d));

		memset(end, 0, sizeof(end));
		for (int64 i = 0; i < s->n; i++)
			end[s->keys[i] >> shift]++;
		for (int b = 0; b < nb; b++)
		{
			begin[b] = next[b] = pos;
			pos += end[b];
			end[b] = pos;
		}
		/* American flag sort: swap each misplaced row into its bucket's next slot */
		for (int b = 0; b < nb; b++)
		{
			while (next[b] < end[b])
			{
				int64		i = next[b];
				int			t = (int) (s->keys[i] >> shift);

				if (t == b)
				{
					next[b]++;
					continue;
				}
				/* cycle: carry row i to bucket t, take what was there, and so on */
				{
					uint64		ckey = s->keys[i];
					int32		clabel = s->has_labels ? s->labels[i] : 0;

					memcpy(carry, s->data + i * s->d, row_bytes(s->d));
					while (t != b)
					{
						int64		j = next[t]++;
						uint64		jkey = s->keys[j];
						int32		jlabel = s->has_labels ? s->labels[j] : 0;
						int			jt = (int) (jkey >> shift);

						/*
						 * 256 streams of slots are more than the hardware
						 * prefetcher follows: fetch the slot bucket t fills
						 * next, some hundred moves from now
						 */
						if (next[t] < end[t])
						{
							const char *nrow = (const char *) (s->data + next[t] * s->d);

							__builtin_prefetch(&s->keys[next[t]], 1);
							for (Size off = 0; off < row_bytes(s->d); off += 64)
								__builtin_prefetch(nrow + off, 1);
							__builtin_prefetch(nrow + row_bytes(s->d) - 1, 1);
						}

						/* swap carry and row j */
						memcpy(tmp, s->data + j * s->d, row_bytes(s->d));
						memcpy(s->data + j * s->d, carry, row_bytes(s->d));
						memcpy(carry, tmp, row_bytes(s->d));
						s->keys[j] = ckey;
						if (s->has_labels)
							s->labels[j] = clabel;
						ckey = jkey;
						clabel = jlabel;
						t = jt;
					}
					memcpy(s->data + i * s->d, carry, row_bytes(s->d));
					s->keys[i] = ckey;
					if (s->has_labels)
						s->labels[i] = clabel;
					next[b]++;
				}
			}
			CHECK_FOR_INTERRUPTS();
		}
		{
			int			slots = seg_fit_threads();
			int64		max_len = 0;
			BucketJob	job = {s, begin, end, palloc(sizeof(SortScratch) * slots)};

			for (int b = 0; b < nb; b++)
				max_len = Max(max_len, end[b] - begin[b]);
			for (int t = 0; t < slots; t++)
				scratch_init(&job.scratch[t], s, max_len, SEG_SORT_RADIX_BITS);
			seg_run_chunks(nb, bucket_chunk, &job);
			for (int t = 0; t < slots; t++)
				scratch_free(&job.scratch[t]);
			pfree(job.scratch);
		}
		pfree(carry);
	}
	pfree(tmp);
	if (s->heap)
	{
		pfree(s->heap);
		s->heap = NULL;
	}
}

/*
 * The canonical order's key: CRC-32C of the row (one instruction per 8
 * bytes where the CPU has it: a fraction of hash_bytes_extended's cost),
 * spread over 64 bits by a seeded hash.  Only its spread matters (the
 * radix buckets, the seeded sample that the first rows then are): equal
 * keys are ordered by the row's bytes.
 */
static uint64
order_key(int32 d, uint64 seed, const double *x, bool has_labels, int32 label)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, x, row_bytes(d));
	if (has_labels)
		COMP_CRC32C(crc, &label, sizeof(label));
	FIN_CRC32C(crc);
	return hash_bytes_uint32_extended(crc, seed);
}

uint64
seg_row_order_key(int32 d, uint64 seed, const double *x)
{
	return order_key(d, seed, x, false, 0);
}

static void
order_key_chunk(void *arg, int slot, int64 c)
{
	SegRows    *s = (SegRows *) arg;
	int64		lo = c * SEG_KEY_CHUNK,
				hi = Min(lo + SEG_KEY_CHUNK, s->n);

	for (int64 i = lo; i < hi; i++)
		s->keys[i] = order_key(s->d, s->seed, s->data + i * s->d, s->has_labels,
							   s->has_labels ? s->labels[i] : 0);
}

/*
 * Rows in their canonical order (a final function's): by order key, then
 * bytes, then label.  The keys array holds the order keys meanwhile; the
 * sample keys, a function of the rows, are recomputed if ever needed.
 */
void
seg_rows_sort(SegRows *s)
{
	stop_prefault(s);
	if (s->keys == NULL)
		s->keys = seg_alloc_big(s->hdr.eoh_context, Max(s->n, 1) * sizeof(uint64));
	s->n_keyed = 0;				/* no sample key survives: the array holds order keys */
	seg_run_chunks((s->n + SEG_KEY_CHUNK - 1) / SEG_KEY_CHUNK, order_key_chunk, s);
	sort_by_keys(s);
}

/*
 * Free the sample keys of a sorted state whose sample is final (a final
 * function's): the memory goes to the fit.  Flattening recomputes them.
 */
void
seg_rows_drop_keys(SegRows *s)
{
	stop_prefault(s);
	if (s->keys)
		seg_free_big(s->keys);
	s->keys = NULL;
	s->n_keyed = 0;
	if (s->heap)
		pfree(s->heap);
	s->heap = NULL;
}

/* ---------- combining ---------- */

void
seg_rows_merge(SegRows *dst, const SegRows *src)
{
	if (dst->d != src->d || dst->k != src->k || dst->has_labels != src->has_labels ||
		dst->seed != src->seed || strcmp(dst->options, src->options) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot combine partial states with different parameters"),
				 errdetail("One has %d features, k = %d, options %s; the other %d features, k = %d, options %s.",
						   dst->d, dst->k, dst->options, src->d, src->k, src->options)));
	/* the smaller budget wins, so every split of the input keeps the same rows */
	if (src->max_rows < dst->max_rows)
	{
		dst->max_rows = src->max_rows;
		if (dst->n > dst->max_rows)
		{
			/* the rows with the smallest sample keys */
			stop_prefault(dst);
			fill_keys(dst, true);
			sort_by_keys(dst);
			dst->n = dst->max_rows;
		}
	}
	if (dst->heap == NULL && dst->keys != NULL && src->n <= dst->max_rows - dst->n)
	{
		/*
		 * Room for all of src: what offering its rows one by one would do
		 * (append each, keyed), as a few block copies.
		 */
		int64		n0 = dst->n;

		fill_keys(dst, false);
		if (n0 + src->n > dst->cap)
			grow_to(dst, dst->max_rows);	/* as ensure_room's second step: virtual until touched */
		memcpy(dst->data + n0 * dst->d, src->data, src->n * row_bytes(src->d));
		if (src->has_labels)
			memcpy(dst->labels + n0, src->labels, src->n * sizeof(int32));
		if (src->n_keyed > 0)
			memcpy(dst->keys + n0, src->keys, src->n_keyed * sizeof(uint64));
		for (int64 i = src->n_keyed; i < src->n; i++)
			dst->keys[n0 + i] = row_key(src->d, src->seed, src->data + i * src->d, src->has_labels,
										src->has_labels ? src->labels[i] : 0);
		dst->n = dst->n_keyed = n0 + src->n;
	}
	else
		for (int64 i = 0; i < src->n; i++)
		{
			const double *x = src->data + i * src->d;
			int32		label = src->has_labels ? src->labels[i] : 0;

			offer_keyed(dst, x, i < src->n_keyed ? src->keys[i] :
						row_key(src->d, src->seed, x, src->has_labels, label), label);
		}
	dst->rows_seen += src->rows_seen;
}

/* ---------- flat <-> expanded ---------- */

SegRows *
seg_rows_from_datum(Datum d, MemoryContext parent)
{
	SegRowsFlat *f;
	SegRows    *s;
	const char *p;

	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
		return (SegRows *) DatumGetEOHP(d);

	f = (SegRowsFlat *) PG_DETOAST_DATUM(d);
	if (f->magic != SEG_ROWS_MAGIC || f->format != SEG_ROWS_FORMAT)
		seg_bad_input("segment.rows_state", "wrong magic number or format");
	p = (const char *) (f + 1);
	s = seg_rows_create(parent, f->d, f->k, f->has_labels, p, f->seed, f->max_rows);
	s->rows_seen = f->rows_seen;
	p += f->opts_bytes;
	if (f->n > 0)
	{
		s->cap = s->n = s->n_keyed = f->n;
		s->data = seg_alloc_big(s->hdr.eoh_context, f->n * row_bytes(f->d));
		s->keys = seg_alloc_big(s->hdr.eoh_context, f->n * sizeof(uint64));
		memcpy(s->data, p, f->n * row_bytes(f->d));
		p += f->n * row_bytes(f->d);
		memcpy(s->keys, p, f->n * sizeof(uint64));
		p += f->n * sizeof(uint64);
		if (f->has_labels)
		{
			s->labels = MemoryContextAllocHuge(s->hdr.eoh_context, f->n * sizeof(int32));
			memcpy(s->labels, p, f->n * sizeof(int32));
		}
	}
	return s;
}

/*
 * A read-only view of a state: the expanded object itself, or pointers into
 * the flat datum (no copy of the rows, which can be hundreds of megabytes).
 */
const SegRows *
seg_rows_view(Datum d, SegRows *view)
{
	SegRowsFlat *f;
	const char *p;

	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
		return (const SegRows *) DatumGetEOHP(d);
	f = (SegRowsFlat *) PG_DETOAST_DATUM(d);
	if (f->magic != SEG_ROWS_MAGIC || f->format != SEG_ROWS_FORMAT)
		seg_bad_input("segment.rows_state", "wrong magic number or format");
	p = (const char *) (f + 1);
	if (((uintptr_t) p % sizeof(double)) != 0)
		return seg_rows_from_datum(PointerGetDatum(f), CurrentMemoryContext);
	memset(view, 0, sizeof(SegRows));
	view->d = f->d;
	view->k = f->k;
	view->has_labels = f->has_labels;
	view->options = (char *) p;
	view->seed = f->seed;
	view->rows_seen = f->rows_seen;
	view->n = view->cap = view->n_keyed = f->n;
	view->max_rows = f->max_rows;
	p += f->opts_bytes;
	view->data = (double *) p;
	p += f->n * row_bytes(f->d);
	view->keys = (uint64 *) p;
	p += f->n * sizeof(uint64);
	view->labels = f->has_labels ? (int32 *) p : NULL;
	return view;
}

int64
seg_rows_budget(int32 d, bool has_labels, int64 max_fit_memory_kb)
{
	/* data, key, heap slot and label of one row */
	int64		per_row = row_bytes(d) + sizeof(uint64) + sizeof(int64) +
		(has_labels ? sizeof(int32) : 0);
	int64		bytes = Min(max_fit_memory_kb * 1024, SEG_ROWS_MAX_BYTES);

	return Max(bytes / per_row, 1);
}

/* ---------- wire form and SQL I/O ---------- */

static void
encode_wire(const SegRowsFlat *f, StringInfo buf)
{
	const char *p = (const char *) (f + 1);
	const double *data;
	const uint64 *keys;
	const int32 *labels;
	int			olen = strlen(p);

	pq_sendint32(buf, f->magic);
	pq_sendint16(buf, f->format);
	pq_sendint16(buf, f->has_labels);
	pq_sendint32(buf, f->d);
	pq_sendint32(buf, f->k);
	pq_sendint64(buf, f->rows_seen);
	pq_sendint64(buf, f->n);
	pq_sendint64(buf, f->max_rows);
	pq_sendint64(buf, f->seed);
	pq_sendint32(buf, olen);
	pq_sendbytes(buf, p, olen);
	data = (const double *) (p + f->opts_bytes);
	keys = (const uint64 *) (data + f->n * f->d);
	labels = (const int32 *) (keys + f->n);
	for (int64 i = 0; i < f->n * f->d; i++)
		pq_sendfloat8(buf, data[i]);
	for (int64 i = 0; i < f->n; i++)
		pq_sendint64(buf, keys[i]);
	if (f->has_labels)
		for (int64 i = 0; i < f->n; i++)
			pq_sendint32(buf, labels[i]);
}

/* Decode untrusted bytes into a flat state, checking every field. */
static SegRowsFlat *
decode_wire(StringInfo buf)
{
	SegRowsFlat h = {0};
	SegRowsFlat *f;
	int32		olen;
	const char *opts;
	int64		per_row,
				size;
	char	   *p;
	double	   *data;
	uint64	   *keys;
	int32	   *labels;

	seg_need_bytes(buf, 56, "segment.rows_state", "header");
	h.magic = (uint32) pq_getmsgint(buf, 4);
	h.format = (uint16) pq_getmsgint(buf, 2);
	h.has_labels = (uint16) pq_getmsgint(buf, 2);
	h.d = (int32) pq_getmsgint(buf, 4);
	h.k = (int32) pq_getmsgint(buf, 4);
	h.rows_seen = pq_getmsgint64(buf);
	h.n = pq_getmsgint64(buf);
	h.max_rows = pq_getmsgint64(buf);
	h.seed = (uint64) pq_getmsgint64(buf);
	olen = (int32) pq_getmsgint(buf, 4);

	if (h.magic != SEG_ROWS_MAGIC)
		seg_bad_input("segment.rows_state", "wrong magic number %08X", h.magic);
	if (h.format != SEG_ROWS_FORMAT)
		seg_bad_input("segment.rows_state", "unknown format version %u", h.format);
	if (h.has_labels > 1)
		seg_bad_input("segment.rows_state", "label flag %u", h.has_labels);
	if (h.d < 1 || h.d > SEG_MAX_FEATURES)
		seg_bad_input("segment.rows_state", "%d features (limit %d)", h.d, SEG_MAX_FEATURES);
	if (h.k < 0 || h.k > SEG_MAX_K)
		seg_bad_input("segment.rows_state", "k = %d (limit %d)", h.k, SEG_MAX_K);
	per_row = row_bytes(h.d) + sizeof(uint64) + (h.has_labels ? sizeof(int32) : 0);
	if (h.max_rows < 1 || h.max_rows > SEG_ROWS_MAX_BYTES / per_row)
		seg_bad_input("segment.rows_state", "row budget %lld", (long long) h.max_rows);
	if (h.n < 0 || h.n > h.max_rows || h.rows_seen < h.n)
		seg_bad_input("segment.rows_state", "%lld rows held of %lld seen (budget %lld)",
				 (long long) h.n, (long long) h.rows_seen, (long long) h.max_rows);
	if (olen < 0 || olen > SEG_ROWS_MAX_OPTIONS)
		seg_bad_input("segment.rows_state", "options of %d bytes", olen);
	seg_need_bytes(buf, olen, "segment.rows_state", "options");
	opts = pq_getmsgbytes(buf, olen);
	if (memchr(opts, '\0', olen) != NULL)
		seg_bad_input("segment.rows_state", "options contain a zero byte");
	seg_need_bytes(buf, h.n * per_row, "segment.rows_state", "rows");

	h.opts_bytes = TYPEALIGN(8, olen + 1);
	size = sizeof(SegRowsFlat) + h.opts_bytes + h.n * (row_bytes(h.d) + sizeof(uint64)) +
		(h.has_labels ? TYPEALIGN(8, h.n * sizeof(int32)) : 0);
	f = MemoryContextAllocHuge(CurrentMemoryContext, size);
	memset(f, 0, sizeof(SegRowsFlat) + h.opts_bytes);
	*f = h;
	SET_VARSIZE(f, size);
	p = (char *) (f + 1);
	memcpy(p, opts, olen);
	p[olen] = '\0';
	if (olen > 0)
	{
		JsonLexContext *lex;

		if (!pg_verifymbstr(p, olen, true))
			seg_bad_input("segment.rows_state", "options are not valid %s", GetDatabaseEncodingName());
		lex = makeJsonLexContextCstringLen(p, olen, GetDatabaseEncoding(), true);
		if (p[0] != '{' || pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
			seg_bad_input("segment.rows_state", "options are not a JSON object");
	}
	data = (double *) (p + h.opts_bytes);
	keys = (uint64 *) (data + h.n * h.d);
	labels = (int32 *) (keys + h.n);
	for (int64 i = 0; i < h.n * h.d; i++)
	{
		data[i] = pq_getmsgfloat8(buf);
		if (!isfinite(data[i]))
			seg_bad_input("segment.rows_state", "row %lld holds a non-finite value", (long long) (i / h.d) + 1);
	}
	for (int64 i = 0; i < h.n; i++)
		keys[i] = (uint64) pq_getmsgint64(buf);
	if (h.has_labels)
		for (int64 i = 0; i < h.n; i++)
			labels[i] = (int32) pq_getmsgint(buf, 4);
	/* a key is the row's seeded hash: anything else would bias the sample */
	for (int64 i = 0; i < h.n; i++)
		if (keys[i] != row_key(h.d, h.seed, data + i * h.d, h.has_labels,
							   h.has_labels ? labels[i] : 0))
			seg_bad_input("segment.rows_state", "row %lld has a wrong sample key", (long long) i + 1);
	if (buf->cursor != buf->len)
		seg_bad_input("segment.rows_state", "%d trailing bytes", buf->len - buf->cursor);
	return f;
}

PG_FUNCTION_INFO_V1(seg_rows_state_send);
Datum
seg_rows_state_send(PG_FUNCTION_ARGS)
{
	SegRowsFlat *f = (SegRowsFlat *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	encode_wire(f, &buf);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(seg_rows_state_recv);
Datum
seg_rows_state_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(decode_wire((StringInfo) PG_GETARG_POINTER(0)));
}

/* Text output: how Citus ships a partial state to the coordinator. */
PG_FUNCTION_INFO_V1(seg_rows_state_out);
Datum
seg_rows_state_out(PG_FUNCTION_ARGS)
{
	SegRowsFlat *f = (SegRowsFlat *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	StringInfoData wire;

	initStringInfo(&wire);
	encode_wire(f, &wire);
	PG_RETURN_CSTRING(seg_text_form_out("segment.rows_state", SEG_ROWS_TEXT_PREFIX, &wire,
										"Lower segment.max_fit_memory."));
}

PG_FUNCTION_INFO_V1(seg_rows_state_in);
Datum
seg_rows_state_in(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	seg_text_form_in("segment.rows_state", SEG_ROWS_TEXT_PREFIX, PG_GETARG_CSTRING(0), &buf);
	PG_RETURN_POINTER(decode_wire(&buf));
}
