/*
 * model_io.c — segment.model input/output: binary send/recv and text.
 *
 * Wire form (network byte order, no padding, no offsets):
 *   uint32 magic, uint16 format, uint16 flags, int32 kind, int32 n_sections,
 *   then per section: int32 tag, dtype, group, index, nrows, ncols, payload
 *   (float8/int32/int64 values row-major; text: per string int32 length + bytes).
 * Text form: "seg1:" followed by base64 of the wire form.
 *
 * The decoder trusts nothing: it bounds every count against the bytes that
 * remain before allocating, demands canonical section order (which also rules
 * out duplicates), rejects trailing bytes, and hands the result to
 * seg_model_check() for the cross-section invariants.
 */
#include "postgres.h"

#include "common/int.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#include "model_type.h"
#include "text_form.h"

#define SEG_TEXT_PREFIX		"seg1:"
#define SEG_WIRE_HEADER		16
#define SEG_WIRE_SECTION	24

static int
remaining(StringInfo buf)
{
	return buf->len - buf->cursor;
}

static void
need_bytes(StringInfo buf, int64 n, const char *what)
{
	if (n < 0 || n > remaining(buf))
		seg_model_bad("truncated %s: needs %lld bytes, %d remain",
					  what, (long long) n, remaining(buf));
}

static Size
wire_elem_size(int32 dtype)
{
	return dtype == SEG_DT_INT32 ? 4 : 8;
}

/* Read one section's payload into palloc'd native form; returns its size. */
static void *
read_payload(StringInfo buf, const SegSection *s, Size *nbytes)
{
	int64		n = (int64) s->nrows * s->ncols;

	if (s->dtype == SEG_DT_TEXT)
	{
		StringInfoData out;

		need_bytes(buf, 4 * n, "string lengths");
		initStringInfo(&out);
		for (int64 i = 0; i < n; i++)
		{
			int32		len;
			const char *p;

			need_bytes(buf, 4, "string length");
			len = (int32) pq_getmsgint(buf, 4);
			if (len < 0 || len > SEG_STRING_LIMIT(s->tag))
				seg_model_bad("string of %d bytes in section %s (limit %d)",
							  len, seg_tag_name(s->tag), SEG_STRING_LIMIT(s->tag));
			need_bytes(buf, len, "string");
			p = pq_getmsgbytes(buf, len);
			if (memchr(p, '\0', len) != NULL)
				seg_model_bad("string with a zero byte in section %s", seg_tag_name(s->tag));
			appendBinaryStringInfo(&out, p, len);
			appendStringInfoChar(&out, '\0');
		}
		*nbytes = out.len;
		return out.data;
	}
	else
	{
		Size		esize = wire_elem_size(s->dtype);
		char	   *data;

		/* n <= SEG_MAX_DIM^2, so n * 8 cannot overflow int64 */
		need_bytes(buf, n * (int64) esize, seg_tag_name(s->tag));
		data = palloc(n * esize);
		for (int64 i = 0; i < n; i++)
		{
			switch (s->dtype)
			{
				case SEG_DT_FLOAT8:
					((double *) data)[i] = pq_getmsgfloat8(buf);
					break;
				case SEG_DT_INT32:
					((int32 *) data)[i] = (int32) pq_getmsgint(buf, 4);
					break;
				case SEG_DT_INT64:
					((int64 *) data)[i] = pq_getmsgint64(buf);
					break;
			}
		}
		*nbytes = n * esize;
		return data;
	}
}

SegModel *
seg_model_decode(StringInfo buf)
{
	uint32		magic;
	uint16		format,
				flags;
	int32		kind,
				n;
	SegModelBuilder b;
	SegSection	prev = {0};
	SegModel   *m;

	need_bytes(buf, SEG_WIRE_HEADER, "header");
	magic = (uint32) pq_getmsgint(buf, 4);
	if (magic != SEG_MODEL_MAGIC)
		seg_model_bad("wrong magic number %08X, expected %08X", magic, SEG_MODEL_MAGIC);
	format = (uint16) pq_getmsgint(buf, 2);
	if (format != SEG_MODEL_FORMAT)
		seg_model_bad("unknown format version %u (this build reads version %d)",
					  format, SEG_MODEL_FORMAT);
	flags = (uint16) pq_getmsgint(buf, 2);
	if (flags != 0)
		seg_model_bad("unknown flags %04X", flags);
	kind = (int32) pq_getmsgint(buf, 4);
	if (kind < 1 || kind > SEG_KIND_MAX)
		seg_model_bad("unknown model kind %d", kind);
	n = (int32) pq_getmsgint(buf, 4);
	if (n < 0 || n > SEG_MAX_SECTIONS)
		seg_model_bad("%d sections (limit %d)", n, SEG_MAX_SECTIONS);
	need_bytes(buf, (int64) n * SEG_WIRE_SECTION, "section directory");

	seg_builder_init(&b, kind);
	for (int i = 0; i < n; i++)
	{
		SegSection	s = {0};
		void	   *data;
		Size		nbytes;

		need_bytes(buf, SEG_WIRE_SECTION, "section header");
		s.tag = (int32) pq_getmsgint(buf, 4);
		s.dtype = (int32) pq_getmsgint(buf, 4);
		s.group = (int32) pq_getmsgint(buf, 4);
		s.index = (int32) pq_getmsgint(buf, 4);
		s.nrows = (int32) pq_getmsgint(buf, 4);
		s.ncols = (int32) pq_getmsgint(buf, 4);

		if (seg_tag_name(s.tag) == NULL)
			seg_model_bad("unknown section tag %d", s.tag);
		if (i > 0 &&
			(s.tag < prev.tag ||
			 (s.tag == prev.tag && (s.group < prev.group ||
									(s.group == prev.group && s.index <= prev.index)))))
			seg_model_bad("section %d (%s) is out of order or repeated", i + 1, seg_tag_name(s.tag));
		if (s.dtype < SEG_DT_FLOAT8 || s.dtype > SEG_DT_TEXT)
			seg_model_bad("unknown data type %d in section %s", s.dtype, seg_tag_name(s.tag));
		if (s.nrows < 1 || s.nrows > SEG_MAX_DIM || s.ncols < 1 || s.ncols > SEG_MAX_DIM)
			seg_model_bad("section %s has shape %d x %d", seg_tag_name(s.tag), s.nrows, s.ncols);
		if (s.dtype == SEG_DT_TEXT && s.ncols != 1)
			seg_model_bad("text section %s has %d columns", seg_tag_name(s.tag), s.ncols);

		data = read_payload(buf, &s, &nbytes);
		seg_builder_add(&b, s.tag, s.dtype, s.group, s.index, s.nrows, s.ncols, data, nbytes);
		prev = s;
	}
	if (remaining(buf) != 0)
		seg_model_bad("%d trailing bytes after the last section", remaining(buf));

	m = seg_builder_finish(&b);
	seg_model_check(m);
	return m;
}

void
seg_model_encode(const SegModel *m, StringInfo buf)
{
	pq_sendint32(buf, m->magic);
	pq_sendint16(buf, m->format);
	pq_sendint16(buf, m->flags);
	pq_sendint32(buf, m->kind);
	pq_sendint32(buf, m->n_sections);
	for (int i = 0; i < m->n_sections; i++)
	{
		const SegSection *s = &m->sections[i];
		int64		n = (int64) s->nrows * s->ncols;
		const char *p = seg_section_data(m, s);

		pq_sendint32(buf, s->tag);
		pq_sendint32(buf, s->dtype);
		pq_sendint32(buf, s->group);
		pq_sendint32(buf, s->index);
		pq_sendint32(buf, s->nrows);
		pq_sendint32(buf, s->ncols);
		for (int64 j = 0; j < n; j++)
		{
			switch (s->dtype)
			{
				case SEG_DT_FLOAT8:
					pq_sendfloat8(buf, ((const double *) p)[j]);
					break;
				case SEG_DT_INT32:
					pq_sendint32(buf, ((const int32 *) p)[j]);
					break;
				case SEG_DT_INT64:
					pq_sendint64(buf, ((const int64 *) p)[j]);
					break;
				case SEG_DT_TEXT:
					{
						int			len = strlen(p);

						pq_sendint32(buf, len);
						pq_sendbytes(buf, p, len);
						p = seg_next_string(p);
					}
					break;
			}
		}
	}
}

/* Binary output: the wire form. */
PG_FUNCTION_INFO_V1(seg_model_send);
Datum
seg_model_send(PG_FUNCTION_ARGS)
{
	SegModel   *m = PG_GETARG_SEGMODEL_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	seg_model_encode(m, &buf);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* Binary input: untrusted bytes from COPY BINARY or a client. */
PG_FUNCTION_INFO_V1(seg_model_recv);
Datum
seg_model_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);

	PG_RETURN_SEGMODEL_P(seg_model_decode(buf));
}

/* Text output: version tag plus base64 of the wire form, lossless for pg_dump. */
PG_FUNCTION_INFO_V1(seg_model_out);
Datum
seg_model_out(PG_FUNCTION_ARGS)
{
	SegModel   *m = PG_GETARG_SEGMODEL_P(0);
	StringInfoData wire;

	initStringInfo(&wire);
	seg_model_encode(m, &wire);
	PG_RETURN_CSTRING(seg_text_form_out("segment.model", SEG_TEXT_PREFIX, &wire,
										"Use binary COPY or segment.model_send()."));
}

/* Text input: the tag and base64 are checked here, the payload by the decoder. */
PG_FUNCTION_INFO_V1(seg_model_in);
Datum
seg_model_in(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	seg_text_form_in("segment.model", SEG_TEXT_PREFIX, PG_GETARG_CSTRING(0), &buf);
	PG_RETURN_SEGMODEL_P(seg_model_decode(&buf));
}
