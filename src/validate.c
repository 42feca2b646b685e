/*
 * validate.c — the checks every entry point runs before touching data.
 *
 * One place decides what a well-formed feature array is, so aggregates,
 * scorers and constructors all reject the same inputs with the same SQLSTATEs.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "model_type.h"
#include "validate.h"
#include "vecmath.h"

static void
check_float8_array(ArrayType *a, const char *what, int ndim)
{
	if (ARR_ELEMTYPE(a) != FLOAT8OID)
		elog(ERROR, "%s is not a float8 array (cannot happen: SQL signature)", what);
	if (ARR_NDIM(a) != ndim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a %d-dimensional array, not %d-dimensional",
						what, ndim, ARR_NDIM(a))));
	if (array_contains_nulls(a))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not contain NULL elements", what),
				 errhint("Impute missing values first, for example with coalesce().")));
}

static void
check_finite(const double *v, int64 n, const char *what)
{
	if (seg_all_finite(v, n))
		return;					/* the common case, on vector lanes */
	for (int64 i = 0; i < n; i++)
		if (!isfinite(v[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s holds a non-finite value (%g) at position %lld",
							what, v[i], (long long) i + 1)));
}

const double *
seg_check_vector(ArrayType *a, const char *what, int len, int *out_len)
{
	int			n;

	if (ARR_NDIM(a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must not be empty", what)));
	check_float8_array(a, what, 1);
	n = ARR_DIMS(a)[0];
	if (len >= 0 && n != len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s has %d elements, expected %d", what, n, len)));
	if (n > SEG_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s has %d elements (limit %d)", what, n, SEG_MAX_FEATURES)));
	check_finite((const double *) ARR_DATA_PTR(a), n, what);
	if (out_len)
		*out_len = n;
	return (const double *) ARR_DATA_PTR(a);
}

const double *
seg_check_matrix(ArrayType *a, const char *what, int *rows, int *cols)
{
	if (ARR_NDIM(a) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must not be empty", what)));
	check_float8_array(a, what, 2);
	*rows = ARR_DIMS(a)[0];
	*cols = ARR_DIMS(a)[1];
	if (*rows > SEG_MAX_K || *cols > SEG_MAX_FEATURES)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is %d x %d (limits %d x %d)",
						what, *rows, *cols, SEG_MAX_K, SEG_MAX_FEATURES)));
	check_finite((const double *) ARR_DATA_PTR(a), (int64) *rows * *cols, what);
	return (const double *) ARR_DATA_PTR(a);
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

static char **
check_strings(ArrayType *a, const char *what, int len, bool distinct)
{
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	char	  **names;
	char	  **sorted;

	if (ARR_ELEMTYPE(a) != TEXTOID)
		elog(ERROR, "%s is not a text array (cannot happen: SQL signature)", what);
	if (ARR_NDIM(a) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s must be a one-dimensional array", what)));
	deconstruct_array(a, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
	if (n != len)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s has %d names, expected %d", what, n, len)));
	names = palloc(sizeof(char *) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain NULL elements", what)));
		names[i] = TextDatumGetCString(elems[i]);
		if (names[i][0] == '\0' || strlen(names[i]) > SEG_MAX_STRING)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: name %d is empty or longer than %d bytes",
							what, i + 1, SEG_MAX_STRING)));
	}
	if (!distinct)
		return names;
	/* duplicates: sort a copy, compare neighbours */
	sorted = palloc(sizeof(char *) * Max(n, 1));
	memcpy(sorted, names, sizeof(char *) * n);
	qsort(sorted, n, sizeof(char *), cmp_names);
	for (int i = 1; i < n; i++)
		if (strcmp(sorted[i - 1], sorted[i]) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s: name \"%s\" appears twice", what, sorted[i])));
	pfree(sorted);
	return names;
}

void
seg_bad_input_v(const char *typname, const char *fmt, va_list ap)
{
	char		detail[256];

	vsnprintf(detail, sizeof(detail), fmt, ap);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
			 errmsg("invalid %s: %s", typname, detail)));
	pg_unreachable();
}

void
seg_bad_input(const char *typname, const char *fmt,...)
{
	va_list		ap;

	va_start(ap, fmt);
	seg_bad_input_v(typname, fmt, ap);
}

void
seg_need_bytes(StringInfo buf, int64 n, const char *typname, const char *what)
{
	if (n < 0 || n > buf->len - buf->cursor)
		seg_bad_input(typname, "truncated %s: needs %lld bytes, %d remain",
					  what, (long long) n, buf->len - buf->cursor);
}

char	  **
seg_check_names(ArrayType *a, const char *what, int len)
{
	return check_strings(a, what, len, true);
}

char	  **
seg_check_names_any(ArrayType *a, const char *what, int len)
{
	return check_strings(a, what, len, false);
}

MemoryContext
seg_agg_context(FunctionCallInfo fcinfo, const char *fn)
{
	MemoryContext aggcxt;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "%s called in non-aggregate context", fn);
	return aggcxt;
}

/* A value as value::text gives it (bpchar without its padding), for categories and ids. */
char *
seg_datum_text(Datum v, Oid t)
{
	Oid			out;
	bool		varlena;

	if (t == TEXTOID || t == VARCHAROID)
		return TextDatumGetCString(v);
	if (t == BPCHAROID)
	{
		char	   *s = TextDatumGetCString(v);
		int			n = strlen(s);

		while (n > 0 && s[n - 1] == ' ')
			s[--n] = '\0';		/* bpchar::text drops the padding */
		return s;
	}
	getTypeOutputInfo(t, &out, &varlena);
	return OidOutputFunctionCall(out, v);
}
