/*
 * model_cache.h — decode a model once per backend and version.
 */
#ifndef SEG_MODEL_CACHE_H
#define SEG_MODEL_CACHE_H

#include "fmgr.h"

#include "model_type.h"

/* A decoded catalog model, shared by every call site of this backend. */
typedef struct SegCachedModel
{
	char	   *name;
	int32		version;
	int64		xmin;			/* of the catalog row: an UPDATE makes it stale */
	SegModel   *model;
	MemoryContext mcxt;			/* holds the model and extra; deleted on eviction */
	void	   *extra;			/* scorer-specific structures, built once, in mcxt */
	int			pins;			/* call sites using it in running statements */
	bool		stale;
	uint64		last_used;
} SegCachedModel;

extern int	seg_model_cache_entries;

/*
 * The model `name` (version <= 0: the latest), resolved once per statement
 * and call site, decoded once per backend, version and catalog row.
 */
extern SegCachedModel *seg_cached_model(FmgrInfo *flinfo, text *name, int32 version);

/*
 * A model passed as a value, detoasted once per call site when it is stored
 * out of line (the same TOAST pointer on every row of a join).  *cache is
 * the call site's slot for it (NULL at first), in memory that lives as long
 * as fn_extra.
 */
extern SegModel *seg_model_arg(FunctionCallInfo fcinfo, int argno, void **cache);

/*
 * The names a catalog query returns (its first column), comma-separated, in
 * the caller's memory; *count gets how many there are.
 */
extern char *seg_model_names(const char *query, int nargs, Oid *argtypes, Datum *args, uint64 *count);

#endif							/* SEG_MODEL_CACHE_H */
