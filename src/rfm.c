/*
 * rfm.c — segment.rfm_score: recency, frequency and monetary value of one
 * customer's transactions, as a parallel, combinable aggregate.
 *
 * The state is a flat varlena (rfm_state.h) updated in place, and replaced
 * by a larger copy when its id table fills up (never repalloc'd: nodeAgg
 * frees the old value itself).  Amounts are summed with Neumaier's
 * compensation so partial sums combine to the same figure to ~1 ulp.
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "access/xact.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "funcapi.h"
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "rfm_state.h"
#include "text_form.h"
#include "validate.h"

#define SEG_RFM_TEXT_PREFIX "rfm1:"
#define SEG_RFM_MAX_IDS (64 * 1024 * 1024)

static uint32 *
state_slots(SegRfmState *s)
{
	return (uint32 *) (s + 1);
}

static char *
state_blob(SegRfmState *s)
{
	return (char *) (state_slots(s) + s->slots);
}

static Size
id_record_size(uint32 len)
{
	return TYPEALIGN(4, offsetof(SegRfmId, bytes) + len);
}

static SegRfmState *
state_alloc(uint32 flags, TimestampTz as_of, int32 slots, int32 blob_cap)
{
	Size		size = sizeof(SegRfmState) + sizeof(uint32) * (Size) slots + blob_cap;
	SegRfmState *s = palloc0(size);

	SET_VARSIZE(s, size);
	s->magic = SEG_RFM_MAGIC;
	s->flags = flags;
	s->as_of = as_of;
	s->slots = slots;
	s->blob_cap = blob_cap;
	return s;
}

/* The slot holding this id, or the empty slot where it would go. */
static uint32 *
id_slot(SegRfmState *s, uint32 hash, const char *bytes, uint32 len)
{
	uint32	   *slot = state_slots(s);
	uint32		mask = (uint32) s->slots - 1;

	for (uint32 i = hash & mask;; i = (i + 1) & mask)
	{
		SegRfmId   *rec;

		if (slot[i] == 0)
			return &slot[i];
		rec = (SegRfmId *) (state_blob(s) + slot[i] - 1);
		if (rec->hash == hash && rec->len == len && memcmp(rec->bytes, bytes, len) == 0)
			return &slot[i];
	}
}

/* Append a record for an id known to be absent; the caller made room. */
static void
id_insert(SegRfmState *s, uint32 *slot, uint32 hash, const char *bytes, uint32 len)
{
	SegRfmId   *rec = (SegRfmId *) (state_blob(s) + s->blob_used);

	rec->hash = hash;
	rec->len = len;
	memcpy(rec->bytes, bytes, len);
	*slot = (uint32) s->blob_used + 1;
	s->blob_used += id_record_size(len);
	s->n_ids++;
}

/* A copy of s with room for `ids` more ids of `bytes` more bytes, rehashed. */
static SegRfmState *
state_grow(SegRfmState *s, int64 ids, int64 bytes)
{
	int64		want_ids = (int64) s->n_ids + ids;
	int64		slots = Max(s->slots, 8);
	int64		blob = Max(s->blob_cap, 64);
	SegRfmState *t;

	if (want_ids > SEG_RFM_MAX_IDS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rfm_score: more than %d distinct order ids for one customer",
						SEG_RFM_MAX_IDS)));
	while (slots < 2 * want_ids)
		slots *= 2;
	while (blob < s->blob_used + bytes)
		blob *= 2;
	if (blob > MaxAllocSize / 2)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rfm_score: the order ids of one customer exceed %zu bytes",
						(Size) MaxAllocSize / 2)));
	t = state_alloc(s->flags, s->as_of, (int32) slots, (int32) blob);
	memcpy(&t->n_ids, &s->n_ids, offsetof(SegRfmState, slots) - offsetof(SegRfmState, n_ids));
	t->n_ids = 0;
	for (int32 off = 0; off < s->blob_used;)
	{
		SegRfmId   *rec = (SegRfmId *) (state_blob(s) + off);

		id_insert(t, id_slot(t, rec->hash, rec->bytes, rec->len), rec->hash, rec->bytes, rec->len);
		off += id_record_size(rec->len);
	}
	return t;
}

/* Add an order id; returns the state, a new one when it had to grow. */
static SegRfmState *
state_add_id(SegRfmState *s, const char *bytes, uint32 len)
{
	uint32		hash = hash_bytes((const unsigned char *) bytes, len);
	uint32	   *slot;

	if (len > SEG_RFM_MAX_ID)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("rfm_score: an order id of %u bytes (limit %d)", len, SEG_RFM_MAX_ID)));
	if (s->slots > 0)
	{
		slot = id_slot(s, hash, bytes, len);
		if (*slot != 0)
			return s;			/* seen: most lines of an order come together */
	}
	if (2 * ((int64) s->n_ids + 1) > s->slots ||
		s->blob_used + (int64) id_record_size(len) > s->blob_cap)
		s = state_grow(s, 1, id_record_size(len));
	id_insert(s, id_slot(s, hash, bytes, len), hash, bytes, len);
	return s;
}

static void
state_add_amount(SegRfmState *s, double v)
{
	double		t = s->sum + v;

	/* Neumaier: keep the low-order part the addition lost */
	if (fabs(s->sum) >= fabs(v))
		s->comp += (s->sum - t) + v;
	else
		s->comp += (v - t) + s->sum;
	s->sum = t;
}

static void
check_finite_time(TimestampTz t, const char *what)
{
	if (TIMESTAMP_NOT_FINITE(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("rfm_score: %s must be finite", what)));
}

/* The transition, with the order id at id_arg and as_of at asof_arg (or -1). */
static Datum
rfm_transition(FunctionCallInfo fcinfo, int id_arg, int asof_arg)
{
	SegRfmState *s;
	TimestampTz t;
	double		amount;
	bool		has_as_of = asof_arg >= 0;
	TimestampTz as_of = 0;

	seg_agg_context(fcinfo, "rfm_score");
	if (has_as_of)
	{
		if (PG_ARGISNULL(asof_arg))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("rfm_score: as_of must not be NULL"),
					 errhint("Omit as_of to measure recency to the transaction's start.")));
		as_of = PG_GETARG_TIMESTAMPTZ(asof_arg);
		check_finite_time(as_of, "as_of");
	}
	if (PG_ARGISNULL(0))
		s = state_alloc((id_arg >= 0 ? SEG_RFM_HAS_IDS : 0) | (has_as_of ? SEG_RFM_HAS_AS_OF : 0),
						as_of, 0, 0);
	else
	{
		s = (SegRfmState *) PG_GETARG_POINTER(0);
		if (has_as_of && s->as_of != as_of)
		{
			/* timestamptz_to_str returns a static buffer: copy the first */
			char	   *before = pstrdup(timestamptz_to_str(s->as_of));

			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("rfm_score: as_of must be the same for every row of a group (%s, then %s)",
							before, timestamptz_to_str(as_of))));
		}
	}

	if (PG_ARGISNULL(1) || PG_ARGISNULL(2) || (id_arg >= 0 && PG_ARGISNULL(id_arg)))
	{
		s->skipped++;
		PG_RETURN_POINTER(s);
	}
	t = PG_GETARG_TIMESTAMPTZ(1);
	amount = PG_GETARG_FLOAT8(2);
	check_finite_time(t, "order_time");
	if (!isfinite(amount))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("rfm_score: amount must be finite, got %g", amount)));
	if (has_as_of && t > as_of)
	{
		s->after++;				/* a snapshot as of as_of: later orders did not happen yet */
		PG_RETURN_POINTER(s);
	}
	if (id_arg >= 0)
	{
		text	   *id = PG_GETARG_TEXT_PP(id_arg);

		s = state_add_id(s, VARDATA_ANY(id), VARSIZE_ANY_EXHDR(id));
	}
	if (s->rows == 0 || t < s->first)
		s->first = t;
	if (s->rows == 0 || t > s->last)
		s->last = t;
	s->rows++;
	state_add_amount(s, amount);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(seg_rfm_transfn);
Datum
seg_rfm_transfn(PG_FUNCTION_ARGS)
{
	return rfm_transition(fcinfo, -1, -1);
}

PG_FUNCTION_INFO_V1(seg_rfm_transfn_id);
Datum
seg_rfm_transfn_id(PG_FUNCTION_ARGS)
{
	return rfm_transition(fcinfo, 3, -1);
}

PG_FUNCTION_INFO_V1(seg_rfm_transfn_asof);
Datum
seg_rfm_transfn_asof(PG_FUNCTION_ARGS)
{
	return rfm_transition(fcinfo, -1, 3);
}

PG_FUNCTION_INFO_V1(seg_rfm_transfn_id_asof);
Datum
seg_rfm_transfn_id_asof(PG_FUNCTION_ARGS)
{
	return rfm_transition(fcinfo, 3, 4);
}

/* Combine (strict): a's figures plus b's, and the union of their ids. */
PG_FUNCTION_INFO_V1(seg_rfm_combinefn);
Datum
seg_rfm_combinefn(PG_FUNCTION_ARGS)
{
	SegRfmState *a = (SegRfmState *) PG_GETARG_POINTER(0);
	SegRfmState *b = (SegRfmState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(1));

	seg_agg_context(fcinfo, "rfm_score");
	if (a->flags != b->flags || a->as_of != b->as_of)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rfm_score: cannot combine partial states with different order id or as_of arguments")));
	if (b->n_ids > 0)
	{
		if (2 * ((int64) a->n_ids + b->n_ids) > a->slots ||
			(int64) a->blob_used + b->blob_used > a->blob_cap)
			a = state_grow(a, b->n_ids, b->blob_used);
		for (int32 off = 0; off < b->blob_used;)
		{
			SegRfmId   *rec = (SegRfmId *) (state_blob(b) + off);
			uint32	   *slot = id_slot(a, rec->hash, rec->bytes, rec->len);

			if (*slot == 0)
				id_insert(a, slot, rec->hash, rec->bytes, rec->len);
			off += id_record_size(rec->len);
		}
	}
	if (b->rows > 0)
	{
		if (a->rows == 0 || b->first < a->first)
			a->first = b->first;
		if (a->rows == 0 || b->last > a->last)
			a->last = b->last;
	}
	a->rows += b->rows;
	a->skipped += b->skipped;
	a->after += b->after;
	state_add_amount(a, b->sum);
	a->comp += b->comp;
	PG_RETURN_POINTER(a);
}

static int32
floor_days(TimestampTz from, TimestampTz to)
{
	int64		us = to - from;
	int64		days = us / USECS_PER_DAY;

	if (us % USECS_PER_DAY < 0)
		days--;					/* floor, as pandas' Timedelta.days */
	return (int32) days;
}

/* Final: the segment.rfm composite. */
PG_FUNCTION_INFO_V1(seg_rfm_finalfn);
Datum
seg_rfm_finalfn(PG_FUNCTION_ARGS)
{
	SegRfmState *s;
	TupleDesc	tupdesc;
	Datum		values[11];
	bool		nulls[11] = {0};
	TimestampTz as_of;
	int64		frequency;
	double		monetary;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	s = (SegRfmState *) PG_GETARG_POINTER(0);
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "rfm_score: return type must be a row type");
	tupdesc = BlessTupleDesc(tupdesc);
	as_of = (s->flags & SEG_RFM_HAS_AS_OF) ? s->as_of : GetCurrentTransactionStartTimestamp();
	frequency = (s->flags & SEG_RFM_HAS_IDS) ? s->n_ids : s->rows;
	monetary = s->sum + s->comp;

	if (s->rows > 0)
	{
		values[0] = Int32GetDatum(floor_days(s->last, as_of));
		values[3] = TimestampTzGetDatum(s->first);
		values[4] = TimestampTzGetDatum(s->last);
		values[5] = Int32GetDatum(floor_days(s->first, as_of));
		values[6] = Float8GetDatum(monetary / frequency);
	}
	else
		nulls[0] = nulls[3] = nulls[4] = nulls[5] = nulls[6] = true;
	values[1] = Int64GetDatum(frequency);
	values[2] = Float8GetDatum(monetary);
	values[7] = TimestampTzGetDatum(as_of);
	values[8] = Int64GetDatum(s->rows);
	values[9] = Int64GetDatum(s->skipped);
	values[10] = Int64GetDatum(s->after);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* ---------- wire form and SQL I/O (Citus ships partial states as text) ---------- */

static int
cmp_id_records(const void *a, const void *b)
{
	const SegRfmId *x = *(SegRfmId *const *) a;
	const SegRfmId *y = *(SegRfmId *const *) b;
	int			c = memcmp(x->bytes, y->bytes, Min(x->len, y->len));

	if (c != 0)
		return c;
	return x->len < y->len ? -1 : x->len > y->len;
}

static void
encode_wire(SegRfmState *s, StringInfo buf)
{
	SegRfmId  **recs = palloc(sizeof(SegRfmId *) * Max(s->n_ids, 1));
	int32		n = 0;

	pq_sendint32(buf, s->magic);
	pq_sendint32(buf, s->flags);
	pq_sendint64(buf, s->rows);
	pq_sendint64(buf, s->skipped);
	pq_sendint64(buf, s->after);
	pq_sendint64(buf, s->as_of);
	pq_sendint64(buf, s->first);
	pq_sendint64(buf, s->last);
	pq_sendfloat8(buf, s->sum);
	pq_sendfloat8(buf, s->comp);
	pq_sendint32(buf, s->n_ids);
	/* ids in byte order: equal states have equal bytes */
	for (int32 off = 0; off < s->blob_used; off += id_record_size(recs[n - 1]->len))
		recs[n++] = (SegRfmId *) (state_blob(s) + off);
	qsort(recs, n, sizeof(SegRfmId *), cmp_id_records);
	for (int32 i = 0; i < n; i++)
	{
		pq_sendint32(buf, recs[i]->len);
		pq_sendbytes(buf, recs[i]->bytes, recs[i]->len);
	}
	pfree(recs);
}

/* Decode untrusted bytes, checking every field. */
static SegRfmState *
decode_wire(StringInfo buf)
{
	SegRfmState h = {0};
	SegRfmState *s;
	int32		n_ids;

	seg_need_bytes(buf, 4 * 2 + 8 * 8 + 4, "segment.rfm_state", "header");
	h.magic = pq_getmsgint(buf, 4);
	h.flags = pq_getmsgint(buf, 4);
	h.rows = pq_getmsgint64(buf);
	h.skipped = pq_getmsgint64(buf);
	h.after = pq_getmsgint64(buf);
	h.as_of = pq_getmsgint64(buf);
	h.first = pq_getmsgint64(buf);
	h.last = pq_getmsgint64(buf);
	h.sum = pq_getmsgfloat8(buf);
	h.comp = pq_getmsgfloat8(buf);
	n_ids = pq_getmsgint(buf, 4);
	if (h.magic != SEG_RFM_MAGIC)
		seg_bad_input("segment.rfm_state", "wrong magic number %08X", h.magic);
	if (h.flags & ~(SEG_RFM_HAS_IDS | SEG_RFM_HAS_AS_OF))
		seg_bad_input("segment.rfm_state", "unknown flags %04X", h.flags);
	if (h.rows < 0 || h.skipped < 0 || h.after < 0)
		seg_bad_input("segment.rfm_state", "negative row counts");
	if (!isfinite(h.sum) || !isfinite(h.comp))
		seg_bad_input("segment.rfm_state", "the sum of amounts is not finite");
	if ((h.flags & SEG_RFM_HAS_AS_OF) ? TIMESTAMP_NOT_FINITE(h.as_of) : h.as_of != 0)
		seg_bad_input("segment.rfm_state", "bad as_of");
	if (h.rows > 0 ? (TIMESTAMP_NOT_FINITE(h.first) || TIMESTAMP_NOT_FINITE(h.last) ||
					  h.first > h.last ||
					  ((h.flags & SEG_RFM_HAS_AS_OF) && h.last > h.as_of))
		: (h.first != 0 || h.last != 0 || h.sum != 0.0 || h.comp != 0.0))
		seg_bad_input("segment.rfm_state", "first and last order times disagree with the row count");
	if (n_ids < 0 || n_ids > h.rows || n_ids > SEG_RFM_MAX_IDS ||
		(!(h.flags & SEG_RFM_HAS_IDS) && n_ids != 0) ||
		((h.flags & SEG_RFM_HAS_IDS) && h.rows > 0 && n_ids == 0))
		seg_bad_input("segment.rfm_state", "%d order ids for %lld rows", n_ids, (long long) h.rows);
	/* each id needs at least its 4-byte length: bound the count before allocating */
	seg_need_bytes(buf, (int64) n_ids * 4, "segment.rfm_state", "order ids");

	s = state_alloc(h.flags, h.as_of, 0, 0);
	memcpy(&s->n_ids, &h.n_ids, offsetof(SegRfmState, slots) - offsetof(SegRfmState, n_ids));
	for (int32 i = 0; i < n_ids; i++)
	{
		int32		len;
		const char *bytes;
		uint32		hash;
		uint32	   *slot;

		seg_need_bytes(buf, 4, "segment.rfm_state", "order id length");
		len = pq_getmsgint(buf, 4);
		if (len < 0 || len > SEG_RFM_MAX_ID)
			seg_bad_input("segment.rfm_state", "order id of %d bytes (limit %d)", len, SEG_RFM_MAX_ID);
		seg_need_bytes(buf, len, "segment.rfm_state", "order id");
		bytes = pq_getmsgbytes(buf, len);
		if (memchr(bytes, 0, len) != NULL || !pg_verifymbstr(bytes, len, true))
			seg_bad_input("segment.rfm_state", "order id %d is not valid text", i);
		hash = hash_bytes((const unsigned char *) bytes, len);
		if (2 * ((int64) s->n_ids + 1) > s->slots ||
			s->blob_used + (int64) id_record_size(len) > s->blob_cap)
			s = state_grow(s, Max(1, n_ids - s->n_ids), id_record_size(len));
		slot = id_slot(s, hash, bytes, len);
		if (*slot != 0)
			seg_bad_input("segment.rfm_state", "order id %d is repeated", i);
		id_insert(s, slot, hash, bytes, len);
	}
	if (buf->cursor != buf->len)
		seg_bad_input("segment.rfm_state", "%d trailing bytes", buf->len - buf->cursor);
	return s;
}

PG_FUNCTION_INFO_V1(seg_rfm_state_out);
Datum
seg_rfm_state_out(PG_FUNCTION_ARGS)
{
	StringInfoData wire;

	initStringInfo(&wire);
	encode_wire((SegRfmState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0)), &wire);
	PG_RETURN_CSTRING(seg_text_form_out("segment.rfm_state", SEG_RFM_TEXT_PREFIX, &wire, NULL));
}

PG_FUNCTION_INFO_V1(seg_rfm_state_in);
Datum
seg_rfm_state_in(PG_FUNCTION_ARGS)
{
	StringInfoData buf;

	seg_text_form_in("segment.rfm_state", SEG_RFM_TEXT_PREFIX, PG_GETARG_CSTRING(0), &buf);
	PG_RETURN_POINTER(decode_wire(&buf));
}

PG_FUNCTION_INFO_V1(seg_rfm_state_send);
Datum
seg_rfm_state_send(PG_FUNCTION_ARGS)
{
	SegRfmState *s = (SegRfmState *) PG_DETOAST_DATUM(PG_GETARG_DATUM(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	encode_wire(s, &buf);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(seg_rfm_state_recv);
Datum
seg_rfm_state_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);

	PG_RETURN_POINTER(decode_wire(buf));
}
