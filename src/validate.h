/*
 * validate.h — argument and array checks shared by every entry point.
 */
#ifndef SEG_VALIDATE_H
#define SEG_VALIDATE_H

#include "utils/array.h"

/* A 1-D float8 array, no NULLs, finite; len < 0 accepts any length >= 1. */
extern const double *seg_check_vector(ArrayType *a, const char *what, int len, int *out_len);

/* A 2-D float8 array (rows x cols), no NULLs, finite. */
extern const double *seg_check_matrix(ArrayType *a, const char *what, int *rows, int *cols);

/* A 1-D text array of distinct, non-NULL, non-empty names, of length len. */
extern char **seg_check_names(ArrayType *a, const char *what, int len);

#endif							/* SEG_VALIDATE_H */
