/*
 * text_form.c — see text_form.h.
 */
#include "postgres.h"

#include "common/base64.h"
#include "utils/memutils.h"

#include "text_form.h"

char *
seg_text_form_out(const char *typname, const char *prefix, StringInfo wire, const char *hint)
{
	int			plen = strlen(prefix);
	int64		enc_len = pg_b64_enc_len(wire->len);
	char	   *out;
	int			n;

	if (enc_len + plen + 1 > (int64) MaxAllocSize)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s of %d bytes is too large for its text form", typname, wire->len),
				 hint ? errhint("%s", hint) : 0));
	out = palloc(plen + enc_len + 1);
	memcpy(out, prefix, plen);
	n = pg_b64_encode(wire->data, wire->len, out + plen, (int) enc_len);
	if (n < 0)
		elog(ERROR, "base64 encoding of a %s failed", typname);
	out[plen + n] = '\0';
	return out;
}

void
seg_text_form_in(const char *typname, const char *prefix, const char *str, StringInfo out)
{
	size_t		plen = strlen(prefix);
	size_t		len = strlen(str);
	int			n;

	if (len < plen || strncmp(str, prefix, plen) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s", typname),
				 errdetail("The text form starts with \"%s\".", prefix)));
	str += plen;
	len -= plen;
	if (strpbrk(str, " \t\r\n") != NULL)
	{
		char	   *packed = palloc(len + 1);
		size_t		j = 0;

		for (size_t i = 0; i < len; i++)
			if (!strchr(" \t\r\n", str[i]))
				packed[j++] = str[i];
		packed[j] = '\0';
		str = packed;
		len = j;
	}
	if (len > (size_t) MaxAllocSize / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s text of %zu bytes is too long", typname, len)));
	initStringInfo(out);
	enlargeStringInfo(out, pg_b64_dec_len((int) len));
	n = pg_b64_decode(str, (int) len, out->data, out->maxlen);
	if (n < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type %s", typname),
				 errdetail("The text after \"%s\" is not valid base64.", prefix)));
	out->len = n;
	out->data[n] = '\0';
}
