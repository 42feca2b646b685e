/*
 * model_cache.c — per-backend cache of decoded catalog models.
 *
 * A scorer called on a million rows must not read and detoast its model a
 * million times.  Each call site resolves (name, version) against
 * segment.models once per statement — so a newly committed version is seen by
 * the next statement — and the decoded model is kept per backend, keyed by
 * name, version and the row's xmin, so the next statement reuses it.
 *
 * Entries in use by a running statement are pinned (the pin is dropped by a
 * reset callback on the call site's memory context, which also runs on
 * error), and only unpinned entries are evicted, least recently used first.
 */
#include "postgres.h"

#include "access/detoast.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "model_cache.h"

int			seg_model_cache_entries = 16;

static MemoryContext cache_cxt = NULL;
static SegCachedModel **entries = NULL;
static int	n_entries = 0;
static int	cap_entries = 0;
static uint64 use_clock = 0;
static int64 stat_lookups = 0;
static int64 stat_decodes = 0;
static int64 stat_hits = 0;

/* What a call site remembers between rows of one statement. */
typedef struct CallSite
{
	text	   *name;			/* as resolved, in fn_mcxt */
	int32		version;		/* as requested */
	SegCachedModel *entry;		/* pinned */
	MemoryContextCallback unpin;
} CallSite;

static void
unpin_callback(void *arg)
{
	CallSite   *cs = (CallSite *) arg;

	if (cs->entry)
		cs->entry->pins--;
	cs->entry = NULL;
}

static void
free_entry(int i)
{
	SegCachedModel *e = entries[i];

	MemoryContextDelete(e->mcxt);
	entries[i] = entries[--n_entries];
}

/* Drop unpinned entries beyond the limit, stale ones first, then LRU. */
static void
evict(void)
{
	for (int i = n_entries - 1; i >= 0; i--)
		if (entries[i]->stale && entries[i]->pins == 0)
			free_entry(i);
	while (n_entries > seg_model_cache_entries)
	{
		int			victim = -1;

		for (int i = 0; i < n_entries; i++)
			if (entries[i]->pins == 0 &&
				(victim < 0 || entries[i]->last_used < entries[victim]->last_used))
				victim = i;
		if (victim < 0)
			break;				/* all pinned: stay over the limit until they end */
		free_entry(victim);
	}
}

/* Look up the catalog row; returns false when there is none. */
static bool
fetch_row(const char *name, int32 version, int32 *out_version, int64 *out_xmin,
		  Datum *out_model)
{
	static SPIPlanPtr latest_plan = NULL;
	static SPIPlanPtr exact_plan = NULL;
	Datum		args[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	Oid			types[2] = {TEXTOID, INT4OID};
	SPIPlanPtr	plan;
	bool		isnull;
	int			rc;

	if (latest_plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT version, xmin::text::int8, model FROM segment.models"
									" WHERE name = $1 ORDER BY version DESC LIMIT 1", 1, types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the segment.models lookup: %s",
				 SPI_result_code_string(SPI_result));
		latest_plan = p;
	}
	if (exact_plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare("SELECT version, xmin::text::int8, model FROM segment.models"
									" WHERE name = $1 AND version = $2", 2, types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "could not prepare the segment.models lookup: %s",
				 SPI_result_code_string(SPI_result));
		exact_plan = p;
	}
	plan = version > 0 ? exact_plan : latest_plan;
	rc = SPI_execute_plan(plan, args, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "segment.models lookup failed: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		return false;
	*out_version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*out_xmin = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	*out_model = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	return true;
}

static SegCachedModel *
resolve(const char *name, int32 version)
{
	int32		found_version;
	int64		xmin;
	Datum		model;
	SegCachedModel *e = NULL;
	MemoryContext old;

	stat_lookups++;
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "segment model cache",
										  ALLOCSET_SMALL_SIZES);
	SPI_connect();
	if (!fetch_row(name, version, &found_version, &xmin, &model))
	{
		SPI_finish();
		if (version > 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" version %d does not exist", name, version)));
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" does not exist", name),
				 errhint("See segment.models for the stored models.")));
	}

	for (int i = 0; i < n_entries; i++)
	{
		SegCachedModel *c = entries[i];

		if (!c->stale && c->version == found_version && strcmp(c->name, name) == 0)
		{
			if (c->xmin == xmin)
				e = c;
			else
				c->stale = true;	/* the row was replaced: decode again */
			break;
		}
	}
	if (e != NULL)
		stat_hits++;
	else
	{
		MemoryContext mcxt = AllocSetContextCreate(cache_cxt, "segment cached model",
												   ALLOCSET_DEFAULT_SIZES);

		old = MemoryContextSwitchTo(mcxt);
		e = palloc0(sizeof(SegCachedModel));
		e->mcxt = mcxt;
		e->name = pstrdup(name);
		e->version = found_version;
		e->xmin = xmin;
		e->model = (SegModel *) PG_DETOAST_DATUM_COPY(model);
		MemoryContextSwitchTo(old);
		stat_decodes++;

		if (n_entries == cap_entries)
		{
			cap_entries = Max(8, cap_entries * 2);
			entries = entries ? repalloc(entries, sizeof(*entries) * cap_entries)
				: MemoryContextAlloc(cache_cxt, sizeof(*entries) * cap_entries);
		}
		entries[n_entries++] = e;
	}
	SPI_finish();
	e->last_used = ++use_clock;
	return e;
}

SegCachedModel *
seg_cached_model(FmgrInfo *flinfo, text *name, int32 version)
{
	CallSite   *cs = (CallSite *) flinfo->fn_extra;
	MemoryContext old;

	if (cs != NULL && cs->entry != NULL && cs->version == version &&
		VARSIZE_ANY_EXHDR(cs->name) == VARSIZE_ANY_EXHDR(name) &&
		memcmp(VARDATA_ANY(cs->name), VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name)) == 0)
		return cs->entry;

	if (cs == NULL)
	{
		cs = MemoryContextAllocZero(flinfo->fn_mcxt, sizeof(CallSite));
		cs->unpin.func = unpin_callback;
		cs->unpin.arg = cs;
		MemoryContextRegisterResetCallback(flinfo->fn_mcxt, &cs->unpin);
		flinfo->fn_extra = cs;
	}
	if (cs->entry)
	{
		cs->entry->pins--;
		cs->entry = NULL;
	}
	if (cs->name)
		pfree(cs->name);
	old = MemoryContextSwitchTo(flinfo->fn_mcxt);
	cs->name = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(name));
	MemoryContextSwitchTo(old);
	cs->version = version;

	{
		char	   *cname = text_to_cstring(name);
		SegCachedModel *e = resolve(cname, version);

		e->pins++;
		cs->entry = e;
		pfree(cname);
	}
	evict();
	return cs->entry;
}

/* What a call site remembers of an out-of-line model argument. */
typedef struct ArgCache
{
	struct varatt_external ptr;
	SegModel   *model;
} ArgCache;

SegModel *
seg_model_arg(FunctionCallInfo fcinfo, int argno, void **cache)
{
	Datum		d = PG_GETARG_DATUM(argno);
	struct varlena *raw = (struct varlena *) DatumGetPointer(d);
	ArgCache   *ac = (ArgCache *) *cache;
	struct varatt_external ptr;
	MemoryContext old;

	/* in-line and uncompressed: use in place, nothing to cache */
	if (!VARATT_IS_EXTERNAL_ONDISK(raw))
		return (SegModel *) PG_DETOAST_DATUM(d);

	VARATT_EXTERNAL_GET_POINTER(ptr, raw);
	if (ac != NULL && ac->ptr.va_valueid == ptr.va_valueid &&
		ac->ptr.va_toastrelid == ptr.va_toastrelid)
		return ac->model;

	if (ac == NULL)
		ac = *cache = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(ArgCache));
	else if (ac->model)
		pfree(ac->model);
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	ac->model = (SegModel *) PG_DETOAST_DATUM_COPY(d);
	MemoryContextSwitchTo(old);
	ac->ptr = ptr;
	return ac->model;
}

/* Counters of this backend's cache, for tests and troubleshooting. */
PG_FUNCTION_INFO_V1(seg_model_cache_stats);
Datum
seg_model_cache_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {0};
	int64		bytes = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type (cannot happen)");
	for (int i = 0; i < n_entries; i++)
		bytes += VARSIZE(entries[i]->model);
	values[0] = Int32GetDatum(n_entries);
	values[1] = Int64GetDatum(stat_lookups);
	values[2] = Int64GetDatum(stat_decodes);
	values[3] = Int64GetDatum(stat_hits);
	values[4] = Int64GetDatum(bytes);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

char *
seg_model_names(const char *query, int nargs, Oid *argtypes, Datum *args, uint64 *count)
{
	MemoryContext caller = CurrentMemoryContext;
	StringInfoData names;
	char	   *result;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args(query, nargs, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "looking up model names failed: %s", query);
	*count = SPI_processed;
	initStringInfo(&names);
	for (uint64 i = 0; i < SPI_processed; i++)
		appendStringInfo(&names, "%s%s", i ? ", " : "",
						 SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1));
	/* the names live in SPI's memory: copy out before SPI_finish */
	result = MemoryContextStrdup(caller, names.data);
	SPI_finish();
	return result;
}
