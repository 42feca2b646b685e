/*
 * interactions.c — segment.interactions: the transition state of
 * recommender_fit (see interactions.h), its I/O, transition and combine.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/jsonapi.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"

#include "interactions.h"
#include "model_type.h"
#include "rows_state.h"
#include "text_form.h"
#include "validate.h"

#define SEG_PAIRS_MAGIC			0x53454750	/* "SEGP" */
#define SEG_PAIRS_FORMAT		1
#define SEG_PAIRS_TEXT_PREFIX	"segp1:"
#define SEG_PAIRS_MAX_OPTIONS	(1024 * 1024)
#define SEG_PAIRS_MAX_BYTES		((int64) 512 * 1024 * 1024)
#define TYPNAME					"segment.interactions"

/* The flat form: header, options (padded), users, items, weights, [segments], arenas. */
typedef struct SegPairsFlat
{
	int32		vl_len_;
	uint32		magic;
	uint16		format;
	uint8		user_text;
	uint8		item_text;
	uint8		has_segments;
	uint8		pad[3];
	int32		opts_bytes;		/* padded size of the options text */
	int32		reserved;
	int64		n;
	int64		n_ustr;
	int64		ustr_bytes;
	int64		n_istr;
	int64		istr_bytes;
} SegPairsFlat;

/* ---------- interned strings ---------- */

static void
strings_rehash(SegStrings *s, MemoryContext cxt, int64 nslots)
{
	s->nslots = nslots;
	s->slots = MemoryContextAllocHuge(cxt, nslots * sizeof(int64));
	memset(s->slots, 0xff, nslots * sizeof(int64));
	for (int64 i = 0; i < s->n; i++)
	{
		const char *str = seg_strings_get(s, i);
		uint64		h = hash_bytes_extended((const unsigned char *) str, strlen(str), 0);
		int64		j = h & (nslots - 1);

		while (s->slots[j] >= 0)
			j = (j + 1) & (nslots - 1);
		s->slots[j] = i;
	}
}

/* The index of str, added if new. */
static int64
strings_intern(SegStrings *s, MemoryContext cxt, const char *str, int64 len)
{
	uint64		h = hash_bytes_extended((const unsigned char *) str, len, 0);
	int64		j;

	if (s->nslots == 0 || 2 * (s->n + 1) > s->nslots)
	{
		if (s->slots)
			pfree(s->slots);
		strings_rehash(s, cxt, s->nslots == 0 ? 1024 : 2 * s->nslots);
	}
	for (j = h & (s->nslots - 1); s->slots[j] >= 0; j = (j + 1) & (s->nslots - 1))
	{
		const char *other = seg_strings_get(s, s->slots[j]);

		if (strncmp(other, str, len) == 0 && other[len] == '\0')
			return s->slots[j];
	}
	if (s->n == s->cap)
	{
		s->cap = s->cap == 0 ? 1024 : 2 * s->cap;
		s->offsets = s->offsets ? repalloc_huge(s->offsets, s->cap * sizeof(int64))
			: MemoryContextAllocHuge(cxt, s->cap * sizeof(int64));
	}
	if (s->arena_len + len + 1 > s->arena_cap)
	{
		int64		cap = Max(s->arena_cap * 2, s->arena_len + len + 1 + 16384);

		s->arena = s->arena ? repalloc_huge(s->arena, cap) : MemoryContextAllocHuge(cxt, cap);
		s->arena_cap = cap;
	}
	memcpy(s->arena + s->arena_len, str, len);
	s->arena[s->arena_len + len] = '\0';
	s->offsets[s->n] = s->arena_len;
	s->arena_len += len + 1;
	s->slots[j] = s->n;
	return s->n++;
}

/* ---------- expanded object ---------- */

static Size
flat_opts_bytes(const SegPairs *s)
{
	return TYPEALIGN(8, strlen(s->options) + 1);
}

static Size
pairs_get_flat_size(ExpandedObjectHeader *eohptr)
{
	SegPairs   *s = (SegPairs *) eohptr;

	return sizeof(SegPairsFlat) + flat_opts_bytes(s) + s->n * 3 * sizeof(int64) +
		(s->has_segments ? TYPEALIGN(8, s->n * sizeof(int32)) : 0) +
		TYPEALIGN(8, s->ustr.arena_len) + TYPEALIGN(8, s->istr.arena_len);
}

static void
pairs_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	SegPairs   *s = (SegPairs *) eohptr;
	SegPairsFlat *f = (SegPairsFlat *) result;
	char	   *p;

	memset(result, 0, allocated_size);
	SET_VARSIZE(f, allocated_size);
	f->magic = SEG_PAIRS_MAGIC;
	f->format = SEG_PAIRS_FORMAT;
	f->user_text = s->user_text;
	f->item_text = s->item_text;
	f->has_segments = s->has_segments;
	f->opts_bytes = flat_opts_bytes(s);
	f->n = s->n;
	f->n_ustr = s->ustr.n;
	f->ustr_bytes = s->ustr.arena_len;
	f->n_istr = s->istr.n;
	f->istr_bytes = s->istr.arena_len;
	p = (char *) (f + 1);
	strcpy(p, s->options);
	p += f->opts_bytes;
	memcpy(p, s->users, s->n * sizeof(int64));
	p += s->n * sizeof(int64);
	memcpy(p, s->items, s->n * sizeof(int64));
	p += s->n * sizeof(int64);
	memcpy(p, s->weights, s->n * sizeof(double));
	p += s->n * sizeof(double);
	if (s->has_segments)
	{
		memcpy(p, s->segments, s->n * sizeof(int32));
		p += TYPEALIGN(8, s->n * sizeof(int32));
	}
	if (s->ustr.arena_len > 0)
		memcpy(p, s->ustr.arena, s->ustr.arena_len);
	p += TYPEALIGN(8, s->ustr.arena_len);
	if (s->istr.arena_len > 0)
		memcpy(p, s->istr.arena, s->istr.arena_len);
}

static const ExpandedObjectMethods pairs_methods = {
	pairs_get_flat_size,
	pairs_flatten_into
};

static SegPairs *
pairs_create(MemoryContext parent, bool has_segments, const char *options)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "segment interactions",
											  ALLOCSET_DEFAULT_SIZES);
	SegPairs   *s = MemoryContextAllocZero(cxt, sizeof(SegPairs));

	EOH_init_header(&s->hdr, &pairs_methods, cxt);
	s->user_text = s->item_text = SEG_IDS_UNKNOWN;
	s->has_segments = has_segments;
	s->options = MemoryContextStrdup(cxt, options);
	return s;
}

static int64
pairs_bytes(const SegPairs *s, int64 rows)
{
	return rows * (3 * sizeof(int64) + sizeof(int32)) + s->ustr.arena_cap + s->istr.arena_cap +
		(s->ustr.cap + s->istr.cap + s->ustr.nslots + s->istr.nslots) * sizeof(int64);
}

/* Room for one more row: geometric growth, within segment.max_fit_memory. */
static void
ensure_room(SegPairs *s)
{
	MemoryContext cxt = s->hdr.eoh_context;
	int64		limit = Min((int64) seg_max_fit_memory_kb * 1024, SEG_PAIRS_MAX_BYTES);
	int64		cap;

	if (s->n < s->cap)
		return;
	cap = s->cap == 0 ? 4096 : 2 * s->cap;
	if (pairs_bytes(s, cap) > limit)
	{
		cap = s->n + 4096;
		if (pairs_bytes(s, cap) > limit)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("recommender_fit input exceeds segment.max_fit_memory (%d kB) after %lld rows",
							seg_max_fit_memory_kb, (long long) s->n),
					 errhint("Raise segment.max_fit_memory, or sum the rows per (user, item) first.")));
	}
#define GROW(field, type) \
	s->field = s->field ? repalloc_huge(s->field, cap * sizeof(type)) \
		: MemoryContextAllocHuge(cxt, cap * sizeof(type))
	GROW(users, int64);
	GROW(items, int64);
	GROW(weights, double);
	if (s->has_segments)
		GROW(segments, int32);
#undef GROW
	s->cap = cap;
}

static void
append(SegPairs *s, int64 user, int64 item, double weight, int32 segment)
{
	ensure_room(s);
	s->users[s->n] = user;
	s->items[s->n] = item;
	s->weights[s->n] = weight;
	if (s->has_segments)
		s->segments[s->n] = segment;
	s->n++;
}

/* ---------- flat <-> expanded ---------- */

/* Intern nstr strings laid out in arena (already validated) into s. */
static void
load_strings(SegStrings *s, MemoryContext cxt, const char *arena, int64 nstr)
{
	for (int64 i = 0; i < nstr; i++)
	{
		int64		len = strlen(arena);

		strings_intern(s, cxt, arena, len);
		arena += len + 1;
	}
}

SegPairs *
seg_pairs_from_datum(Datum d, MemoryContext parent)
{
	SegPairsFlat *f;
	SegPairs   *s;
	const char *p;

	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
		return (SegPairs *) DatumGetEOHP(d);
	f = (SegPairsFlat *) PG_DETOAST_DATUM(d);
	if (f->magic != SEG_PAIRS_MAGIC || f->format != SEG_PAIRS_FORMAT)
		seg_bad_input(TYPNAME, "wrong magic number or format");
	p = (const char *) (f + 1);
	s = pairs_create(parent, f->has_segments, p);
	s->user_text = f->user_text;
	s->item_text = f->item_text;
	p += f->opts_bytes;
	if (f->n > 0)
	{
		MemoryContext cxt = s->hdr.eoh_context;

		s->n = s->cap = f->n;
		s->users = MemoryContextAllocHuge(cxt, f->n * sizeof(int64));
		s->items = MemoryContextAllocHuge(cxt, f->n * sizeof(int64));
		s->weights = MemoryContextAllocHuge(cxt, f->n * sizeof(double));
		memcpy(s->users, p, f->n * sizeof(int64));
		p += f->n * sizeof(int64);
		memcpy(s->items, p, f->n * sizeof(int64));
		p += f->n * sizeof(int64);
		memcpy(s->weights, p, f->n * sizeof(double));
		p += f->n * sizeof(double);
		if (f->has_segments)
		{
			s->segments = MemoryContextAllocHuge(cxt, f->n * sizeof(int32));
			memcpy(s->segments, p, f->n * sizeof(int32));
			p += TYPEALIGN(8, f->n * sizeof(int32));
		}
	}
	load_strings(&s->ustr, s->hdr.eoh_context, p, f->n_ustr);
	p += TYPEALIGN(8, f->ustr_bytes);
	load_strings(&s->istr, s->hdr.eoh_context, p, f->n_istr);
	return s;
}

/* ---------- wire form and SQL I/O ---------- */

static void
send_arena(StringInfo buf, const SegStrings *s)
{
	pq_sendint64(buf, s->n);
	pq_sendint64(buf, s->arena_len);
	if (s->arena_len > 0)
		pq_sendbytes(buf, s->arena, s->arena_len);
}

static void
encode_wire(const SegPairs *s, StringInfo buf)
{
	int			olen = strlen(s->options);

	pq_sendint32(buf, SEG_PAIRS_MAGIC);
	pq_sendint16(buf, SEG_PAIRS_FORMAT);
	pq_sendbyte(buf, s->user_text);
	pq_sendbyte(buf, s->item_text);
	pq_sendbyte(buf, s->has_segments);
	pq_sendint32(buf, olen);
	pq_sendbytes(buf, s->options, olen);
	pq_sendint64(buf, s->n);
	for (int64 i = 0; i < s->n; i++)
	{
		pq_sendint64(buf, s->users[i]);
		pq_sendint64(buf, s->items[i]);
		pq_sendfloat8(buf, s->weights[i]);
		if (s->has_segments)
			pq_sendint32(buf, s->segments[i]);
	}
	send_arena(buf, &s->ustr);
	send_arena(buf, &s->istr);
}

/* One id table from the wire: nstr distinct strings, valid in the database encoding. */
static void
recv_arena(StringInfo buf, SegPairs *s, SegStrings *strs, bool is_text, const char *what)
{
	int64		nstr,
				bytes;
	const char *arena,
			   *p,
			   *end;

	seg_need_bytes(buf, 16, TYPNAME, what);
	nstr = pq_getmsgint64(buf);
	bytes = pq_getmsgint64(buf);
	if (nstr < 0 || bytes < nstr || bytes > SEG_PAIRS_MAX_BYTES || (!is_text && nstr > 0))
		seg_bad_input(TYPNAME, "%s: %lld strings in %lld bytes", what, (long long) nstr, (long long) bytes);
	seg_need_bytes(buf, bytes, TYPNAME, what);
	arena = pq_getmsgbytes(buf, bytes);
	end = arena + bytes;
	for (p = arena; p < end;)
	{
		int64		len = strnlen(p, end - p);

		if (p + len >= end)
			seg_bad_input(TYPNAME, "%s: a string is not terminated", what);
		if (len > SEG_MAX_STRING)
			seg_bad_input(TYPNAME, "%s: an id of %lld bytes (limit %d)", what, (long long) len, SEG_MAX_STRING);
		if (!pg_verifymbstr(p, len, true))
			seg_bad_input(TYPNAME, "%s: an id is not valid %s", what, GetDatabaseEncodingName());
		if (strings_intern(strs, s->hdr.eoh_context, p, len) != strs->n - 1)
			seg_bad_input(TYPNAME, "%s: id \"%s\" appears twice", what, p);
		p += len + 1;
	}
	if (strs->n != nstr)
		seg_bad_input(TYPNAME, "%s: %lld strings, header says %lld", what,
					  (long long) strs->n, (long long) nstr);
}

/* Decode untrusted bytes into a new expanded state, checking every field. */
static SegPairs *
decode_wire(StringInfo buf)
{
	uint32		magic;
	uint16		format;
	uint8		ut,
				it,
				hs;
	int32		olen;
	char	   *opts;
	int64		n;
	SegPairs   *s;

	seg_need_bytes(buf, 13, TYPNAME, "header");
	magic = (uint32) pq_getmsgint(buf, 4);
	format = (uint16) pq_getmsgint(buf, 2);
	ut = (uint8) pq_getmsgbyte(buf);
	it = (uint8) pq_getmsgbyte(buf);
	hs = (uint8) pq_getmsgbyte(buf);
	olen = (int32) pq_getmsgint(buf, 4);
	if (magic != SEG_PAIRS_MAGIC)
		seg_bad_input(TYPNAME, "wrong magic number %08X", magic);
	if (format != SEG_PAIRS_FORMAT)
		seg_bad_input(TYPNAME, "unknown format version %u", format);
	if (ut > SEG_IDS_UNKNOWN || it > SEG_IDS_UNKNOWN || hs > 1 || (ut == SEG_IDS_UNKNOWN) != (it == SEG_IDS_UNKNOWN))
		seg_bad_input(TYPNAME, "id kinds %u and %u, segment flag %u", ut, it, hs);
	if (olen < 0 || olen > SEG_PAIRS_MAX_OPTIONS)
		seg_bad_input(TYPNAME, "options of %d bytes", olen);
	seg_need_bytes(buf, olen, TYPNAME, "options");
	opts = palloc(olen + 1);
	memcpy(opts, pq_getmsgbytes(buf, olen), olen);
	opts[olen] = '\0';
	if (strlen(opts) != olen)
		seg_bad_input(TYPNAME, "options contain a zero byte");
	if (olen > 0)
	{
		JsonLexContext *lex;

		if (!pg_verifymbstr(opts, olen, true))
			seg_bad_input(TYPNAME, "options are not valid %s", GetDatabaseEncodingName());
		lex = makeJsonLexContextCstringLen(opts, olen, GetDatabaseEncoding(), true);
		if (opts[0] != '{' || pg_parse_json(lex, &nullSemAction) != JSON_SUCCESS)
			seg_bad_input(TYPNAME, "options are not a JSON object");
	}
	s = pairs_create(CurrentMemoryContext, hs, opts);
	s->user_text = ut;
	s->item_text = it;
	seg_need_bytes(buf, 8, TYPNAME, "row count");
	n = pq_getmsgint64(buf);
	if (n < 0 || n > SEG_PAIRS_MAX_BYTES / 24 || (n > 0 && ut == SEG_IDS_UNKNOWN))
		seg_bad_input(TYPNAME, "%lld rows", (long long) n);
	seg_need_bytes(buf, n * (hs ? 28 : 24), TYPNAME, "rows");
	for (int64 i = 0; i < n; i++)
	{
		int64		u = pq_getmsgint64(buf);
		int64		v = pq_getmsgint64(buf);
		double		w = pq_getmsgfloat8(buf);
		int32		g = hs ? (int32) pq_getmsgint(buf, 4) : 0;

		if (!isfinite(w) || w < 0)
			seg_bad_input(TYPNAME, "row %lld has weight %g", (long long) i + 1, w);
		if (g < 0 || g > SEG_MAX_K)
			seg_bad_input(TYPNAME, "row %lld has segment %d", (long long) i + 1, g);
		ensure_room(s);
		s->users[s->n] = u;
		s->items[s->n] = v;
		s->weights[s->n] = w;
		if (hs)
			s->segments[s->n] = g;
		s->n++;
	}
	recv_arena(buf, s, &s->ustr, ut == 1, "user ids");
	recv_arena(buf, s, &s->istr, it == 1, "item ids");
	for (int64 i = 0; i < n; i++)
		if ((ut == 1 && (s->users[i] < 0 || s->users[i] >= s->ustr.n)) ||
			(it == 1 && (s->items[i] < 0 || s->items[i] >= s->istr.n)))
			seg_bad_input(TYPNAME, "row %lld names an id that is not in the table", (long long) i + 1);
	if (buf->cursor != buf->len)
		seg_bad_input(TYPNAME, "%d trailing bytes", buf->len - buf->cursor);
	return s;
}

static Datum
flat_datum(SegPairs *s)
{
	Size		size = EOH_get_flat_size(&s->hdr);
	void	   *flat = palloc(size);

	EOH_flatten_into(&s->hdr, flat, size);
	return PointerGetDatum(flat);
}

PG_FUNCTION_INFO_V1(seg_interactions_send);
Datum
seg_interactions_send(PG_FUNCTION_ARGS)
{
	SegPairs   *s = seg_pairs_from_datum(PG_GETARG_DATUM(0), CurrentMemoryContext);
	StringInfoData buf;

	pq_begintypsend(&buf);
	encode_wire(s, &buf);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(seg_interactions_recv);
Datum
seg_interactions_recv(PG_FUNCTION_ARGS)
{
	return flat_datum(decode_wire((StringInfo) PG_GETARG_POINTER(0)));
}

/* Text output: how Citus ships a partial state to the coordinator. */
PG_FUNCTION_INFO_V1(seg_interactions_out);
Datum
seg_interactions_out(PG_FUNCTION_ARGS)
{
	SegPairs   *s = seg_pairs_from_datum(PG_GETARG_DATUM(0), CurrentMemoryContext);
	StringInfoData wire;

	initStringInfo(&wire);
	encode_wire(s, &wire);
	PG_RETURN_CSTRING(seg_text_form_out(TYPNAME, SEG_PAIRS_TEXT_PREFIX, &wire,
										"Sum the rows per (user, item) first."));
}

PG_FUNCTION_INFO_V1(seg_interactions_in);
Datum
seg_interactions_in(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	seg_text_form_in(TYPNAME, SEG_PAIRS_TEXT_PREFIX, PG_GETARG_CSTRING(0), &buf);
	return flat_datum(decode_wire(&buf));
}

/* ---------- transition and combine ---------- */

/* How one id argument is read: integers as int64, anything else as text. */
typedef struct IdReader
{
	Oid			type;
	bool		is_text;
	FmgrInfo	out;			/* output function, for types other than text */
} IdReader;

typedef struct TransCache
{
	IdReader	user;
	IdReader	item;
} TransCache;

static void
id_reader_init(IdReader *r, Oid type, MemoryContext cxt)
{
	Oid			outfn;
	bool		varlena;

	r->type = type;
	r->is_text = !(type == INT2OID || type == INT4OID || type == INT8OID);
	if (r->is_text && type != TEXTOID && type != VARCHAROID && type != BPCHAROID)
	{
		getTypeOutputInfo(type, &outfn, &varlena);
		fmgr_info_cxt(outfn, &r->out, cxt);
	}
}

/* The id as stored: the integer, or the index of its interned text. */
static int64
read_id(const IdReader *r, Datum d, SegStrings *strs, MemoryContext cxt, const char *what)
{
	char	   *str;
	int64		len;

	switch (r->type)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			str = seg_datum_text(d, r->type);	/* as recommend() reads them */
			break;
		default:
			str = OutputFunctionCall((FmgrInfo *) &r->out, d);
			break;
	}
	len = strlen(str);
	if (len > SEG_MAX_STRING)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s id of %lld bytes exceeds the limit of %d", what, (long long) len, SEG_MAX_STRING)));
	{
		int64		id = strings_intern(strs, cxt, str, len);

		pfree(str);
		return id;
	}
}

static Datum
transition(FunctionCallInfo fcinfo, int segment_arg, int options_arg)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "recommender_fit");
	TransCache *tc = fcinfo->flinfo->fn_extra;
	SegPairs   *s;
	double		w;
	int32		segment = 0;

	if (tc == NULL)
	{
		tc = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(TransCache));
		id_reader_init(&tc->user, get_fn_expr_argtype(fcinfo->flinfo, 1), fcinfo->flinfo->fn_mcxt);
		id_reader_init(&tc->item, get_fn_expr_argtype(fcinfo->flinfo, 2), fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = tc;
	}
	if (PG_ARGISNULL(0))
	{
		char	   *opts = "{}";

		if (options_arg > 0 && !PG_ARGISNULL(options_arg))
			opts = JsonbToCString(NULL, &PG_GETARG_JSONB_P(options_arg)->root, 0);
		seg_recommender_check_options(opts);
		s = pairs_create(aggcxt, segment_arg > 0, opts);
		s->user_text = tc->user.is_text;
		s->item_text = tc->item.is_text;
		s->last_options = options_arg > 0 && !PG_ARGISNULL(options_arg) ?
			DatumGetPointer(PG_GETARG_DATUM(options_arg)) : NULL;
	}
	else
		s = seg_pairs_from_datum(PG_GETARG_DATUM(0), aggcxt);

	/* options must be the same on every row: checked when the datum changes */
	if (options_arg > 0)
	{
		const void *p = PG_ARGISNULL(options_arg) ? NULL : DatumGetPointer(PG_GETARG_DATUM(options_arg));

		if (p != s->last_options)
		{
			char	   *opts = p ? JsonbToCString(NULL, &PG_GETARG_JSONB_P(options_arg)->root, 0) : "{}";

			if (strcmp(opts, s->options) != 0)
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						 errmsg("recommender_fit options must be the same on every row")));
			s->last_options = p;
		}
	}

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || PG_ARGISNULL(3))
		PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
	w = PG_GETARG_FLOAT8(3);
	if (!isfinite(w) || w < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recommender_fit weight must be a finite number >= 0, got %g", w),
				 errhint("Leave returns and cancellations out, for example WHERE quantity > 0.")));
	if (segment_arg > 0 && !PG_ARGISNULL(segment_arg))
	{
		segment = PG_GETARG_INT32(segment_arg);
		if (segment < 1 || segment > SEG_MAX_K)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("recommender_fit segment must be in 1..%d, got %d", SEG_MAX_K, segment)));
	}
	append(s,
		   read_id(&tc->user, PG_GETARG_DATUM(1), &s->ustr, s->hdr.eoh_context, "user"),
		   read_id(&tc->item, PG_GETARG_DATUM(2), &s->istr, s->hdr.eoh_context, "item"),
		   w, segment);
	PG_RETURN_DATUM(EOHPGetRWDatum(&s->hdr));
}

/* recommender_fit(user, item, weight [, options]) */
PG_FUNCTION_INFO_V1(seg_interactions_transfn);
Datum
seg_interactions_transfn(PG_FUNCTION_ARGS)
{
	return transition(fcinfo, 0, PG_NARGS() > 4 ? 4 : 0);
}

/* recommender_fit(user, item, weight, segment, options) */
PG_FUNCTION_INFO_V1(seg_interactions_segment_transfn);
Datum
seg_interactions_segment_transfn(PG_FUNCTION_ARGS)
{
	return transition(fcinfo, 4, 5);
}

PG_FUNCTION_INFO_V1(seg_interactions_combinefn);
Datum
seg_interactions_combinefn(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt = seg_agg_context(fcinfo, "recommender_fit combine");
	SegPairs   *dst,
			   *src;
	MemoryContext cxt;

	if (PG_ARGISNULL(1))
	{
		if (PG_ARGISNULL(0))
			PG_RETURN_NULL();
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	}
	src = seg_pairs_from_datum(PG_GETARG_DATUM(1), CurrentMemoryContext);
	if (PG_ARGISNULL(0))
	{
		dst = pairs_create(aggcxt, src->has_segments, src->options);
		dst->user_text = src->user_text;
		dst->item_text = src->item_text;
	}
	else
		dst = seg_pairs_from_datum(PG_GETARG_DATUM(0), aggcxt);
	if (dst->user_text == SEG_IDS_UNKNOWN)
	{
		dst->user_text = src->user_text;
		dst->item_text = src->item_text;
	}
	if (src->n > 0 && (src->user_text != dst->user_text || src->item_text != dst->item_text ||
					   src->has_segments != dst->has_segments || strcmp(src->options, dst->options) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot combine recommender_fit states of different id types, segments or options")));
	cxt = dst->hdr.eoh_context;
	for (int64 i = 0; i < src->n; i++)
	{
		int64		u = src->users[i],
					v = src->items[i];

		if (src->user_text == 1)
		{
			const char *str = seg_strings_get(&src->ustr, u);

			u = strings_intern(&dst->ustr, cxt, str, strlen(str));
		}
		if (src->item_text == 1)
		{
			const char *str = seg_strings_get(&src->istr, v);

			v = strings_intern(&dst->istr, cxt, str, strlen(str));
		}
		append(dst, u, v, src->weights[i], src->has_segments ? src->segments[i] : 0);
	}
	PG_RETURN_DATUM(EOHPGetRWDatum(&dst->hdr));
}
