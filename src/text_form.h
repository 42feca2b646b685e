/*
 * text_form.h — the text form of our binary types: a tag and base64.
 *
 * Models and partial aggregate states print as "<tag>" + base64 of their
 * wire form (Citus ships partial states this way; pg_dump and COPY keep
 * models this way), so text and binary I/O share one encoder and one
 * validated decoder per type.
 */
#ifndef SEG_TEXT_FORM_H
#define SEG_TEXT_FORM_H

#include "lib/stringinfo.h"

/* prefix + base64 of wire; too large for a text value is 54000 with the hint. */
extern char *seg_text_form_out(const char *typname, const char *prefix, StringInfo wire,
							   const char *hint);

/*
 * Check the prefix and decode the base64 after it (spaces and line breaks
 * tolerated, as encode(..., 'base64') writes them) into out, NUL-terminated.
 */
extern void seg_text_form_in(const char *typname, const char *prefix, const char *str,
							 StringInfo out);

#endif							/* SEG_TEXT_FORM_H */
