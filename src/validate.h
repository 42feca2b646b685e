/*
 * validate.h — argument and array checks shared by every entry point.
 */
#ifndef SEG_VALIDATE_H
#define SEG_VALIDATE_H

#include <stdarg.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/array.h"

/* The aggregate's memory context; ERROR when fn is not called as an aggregate. */
extern MemoryContext seg_agg_context(FunctionCallInfo fcinfo, const char *fn);

/* A 1-D float8 array, no NULLs, finite; len < 0 accepts any length >= 1. */
extern const double *seg_check_vector(ArrayType *a, const char *what, int len, int *out_len);

/* A 2-D float8 array (rows x cols), no NULLs, finite. */
extern const double *seg_check_matrix(ArrayType *a, const char *what, int *rows, int *cols);

/* A 1-D text array of distinct, non-NULL, non-empty names, of length len. */
extern char **seg_check_names(ArrayType *a, const char *what, int len);

/* The same without the distinctness rule (labels, type names). */
extern char **seg_check_names_any(ArrayType *a, const char *what, int len);

/*
 * Defective input of one of our types (binary recv, or the base64 text
 * form): ERROR 22P03 "invalid <typname>: <detail>", whatever path found it.
 */
extern void seg_bad_input(const char *typname, const char *fmt,...)
			pg_attribute_printf(2, 3) pg_attribute_noreturn();
extern void seg_bad_input_v(const char *typname, const char *fmt, va_list ap)
			pg_attribute_printf(2, 0) pg_attribute_noreturn();

/* At least n more bytes in buf, else seg_bad_input naming what was cut short. */
extern void seg_need_bytes(StringInfo buf, int64 n, const char *typname, const char *what);

/* A value as value::text gives it (bpchar without its padding). */
extern char *seg_datum_text(Datum v, Oid t);

#endif							/* SEG_VALIDATE_H */
