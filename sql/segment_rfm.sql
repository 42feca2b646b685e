
---------------------------------------------------------------------------
-- RFM: recency, frequency, monetary value per customer, scores, segments
---------------------------------------------------------------------------

CREATE TYPE @extschema@.rfm AS (
    recency_days int,           -- whole days from the last order to as_of (floor)
    frequency bigint,           -- distinct order ids, or rows when no order id is given
    monetary float8,            -- sum of amounts (net of negative amounts)
    first_order timestamptz,
    last_order timestamptz,
    tenure_days int,            -- whole days from the first order to as_of (floor)
    avg_order_value float8,     -- monetary / frequency
    as_of timestamptz,          -- the time the figures are as of
    rows_used bigint,           -- rows that counted
    skipped_rows bigint,        -- rows with a NULL time, amount or order id
    rows_after_as_of bigint     -- rows after as_of, left out
);
COMMENT ON TYPE @extschema@.rfm IS 'recency, frequency and monetary value of one customer (segment.rfm_score)';

CREATE TYPE @extschema@.rfm_state;
CREATE FUNCTION @extschema@.rfm_state_in(cstring) RETURNS @extschema@.rfm_state
    AS 'MODULE_PATHNAME', 'seg_rfm_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_state_out(@extschema@.rfm_state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'seg_rfm_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_state_recv(internal) RETURNS @extschema@.rfm_state
    AS 'MODULE_PATHNAME', 'seg_rfm_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_state_send(@extschema@.rfm_state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'seg_rfm_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- plain storage and double alignment: the aggregate updates it in place as a C struct
CREATE TYPE @extschema@.rfm_state (
    INPUT = @extschema@.rfm_state_in, OUTPUT = @extschema@.rfm_state_out,
    RECEIVE = @extschema@.rfm_state_recv, SEND = @extschema@.rfm_state_send,
    INTERNALLENGTH = VARIABLE, ALIGNMENT = double, STORAGE = plain
);
COMMENT ON TYPE @extschema@.rfm_state IS
    'partial state of rfm_score: counts, compensated sum, first/last order, exact set of order ids; text form rfm1: + base64';

CREATE FUNCTION @extschema@.rfm_transfn(@extschema@.rfm_state, timestamptz, float8)
    RETURNS @extschema@.rfm_state
    AS 'MODULE_PATHNAME', 'seg_rfm_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_transfn(@extschema@.rfm_state, timestamptz, float8, text)
    RETURNS @extschema@.rfm_state
    AS 'MODULE_PATHNAME', 'seg_rfm_transfn_id' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_transfn(@extschema@.rfm_state, timestamptz, float8, timestamptz)
    RETURNS @extschema@.rfm_state
    AS 'MODULE_PATHNAME', 'seg_rfm_transfn_asof' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_transfn(@extschema@.rfm_state, timestamptz, float8, text, timestamptz)
    RETURNS @extschema@.rfm_state
    AS 'MODULE_PATHNAME', 'seg_rfm_transfn_id_asof' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_combinefn(@extschema@.rfm_state, @extschema@.rfm_state)
    RETURNS @extschema@.rfm_state
    AS 'MODULE_PATHNAME', 'seg_rfm_combinefn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- STABLE: without as_of, recency is measured to the transaction's start
CREATE FUNCTION @extschema@.rfm_finalfn(@extschema@.rfm_state) RETURNS @extschema@.rfm
    AS 'MODULE_PATHNAME', 'seg_rfm_finalfn' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE AGGREGATE @extschema@.rfm_score(order_time timestamptz, amount float8) (
    SFUNC = @extschema@.rfm_transfn, STYPE = @extschema@.rfm_state,
    COMBINEFUNC = @extschema@.rfm_combinefn, FINALFUNC = @extschema@.rfm_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.rfm_score(order_time timestamptz, amount float8, order_id text) (
    SFUNC = @extschema@.rfm_transfn, STYPE = @extschema@.rfm_state,
    COMBINEFUNC = @extschema@.rfm_combinefn, FINALFUNC = @extschema@.rfm_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.rfm_score(order_time timestamptz, amount float8, as_of timestamptz) (
    SFUNC = @extschema@.rfm_transfn, STYPE = @extschema@.rfm_state,
    COMBINEFUNC = @extschema@.rfm_combinefn, FINALFUNC = @extschema@.rfm_finalfn, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.rfm_score(order_time timestamptz, amount float8, order_id text, as_of timestamptz) (
    SFUNC = @extschema@.rfm_transfn, STYPE = @extschema@.rfm_state,
    COMBINEFUNC = @extschema@.rfm_combinefn, FINALFUNC = @extschema@.rfm_finalfn, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.rfm_score(timestamptz, float8) IS
    'RFM of a customer (GROUP BY customer): frequency = rows, recency to the transaction start';
COMMENT ON AGGREGATE @extschema@.rfm_score(timestamptz, float8, text) IS
    'RFM of a customer: frequency = distinct order ids, recency to the transaction start';
COMMENT ON AGGREGATE @extschema@.rfm_score(timestamptz, float8, timestamptz) IS
    'RFM of a customer as of a time (later rows left out): frequency = rows';
COMMENT ON AGGREGATE @extschema@.rfm_score(timestamptz, float8, text, timestamptz) IS
    'RFM of a customer as of a time (later rows left out): frequency = distinct order ids';

CREATE TYPE @extschema@.rfm_breakpoints AS (
    recency float8[],           -- up to 4 ascending cuts: the last value of groups 1..4
    frequency float8[],
    monetary float8[],
    customers bigint,           -- customers with orders seen
    customers_used bigint       -- of them, held (a sample past segment.max_fit_memory)
);
COMMENT ON TYPE @extschema@.rfm_breakpoints IS 'quintile cuts of recency, frequency and monetary across customers';

CREATE FUNCTION @extschema@.rfm_breakpoints_transfn(@extschema@.rows_state, @extschema@.rfm)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_rfm_breakpoints_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rfm_breakpoints_finalfn(@extschema@.rows_state) RETURNS @extschema@.rfm_breakpoints
    AS 'MODULE_PATHNAME', 'seg_rfm_breakpoints_finalfn' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE AGGREGATE @extschema@.rfm_breakpoints(@extschema@.rfm) (
    SFUNC = @extschema@.rfm_breakpoints_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.rfm_breakpoints_finalfn,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.rfm_breakpoints(@extschema@.rfm) IS
    'quintile breakpoints of R, F and M over customers, tie-aware (equal values, equal scores)';

CREATE TYPE @extschema@.rfm_scores AS (
    r_score int,                -- 1..5, 5 = most recent
    f_score int,                -- 1..5, 5 = most orders
    m_score int,                -- 1..5, 5 = most money
    rfm_code text,              -- r_score || f_score || m_score, e.g. '545'
    segment text                -- named segment (README: the R x FM grid)
);
COMMENT ON TYPE @extschema@.rfm_scores IS 'RFM scores, code and named segment of one customer';
CREATE FUNCTION @extschema@.rfm_grade(r @extschema@.rfm, breakpoints @extschema@.rfm_breakpoints)
    RETURNS @extschema@.rfm_scores
    AS 'MODULE_PATHNAME', 'seg_rfm_grade' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.rfm_grade(@extschema@.rfm, @extschema@.rfm_breakpoints) IS
    'scores (1..5), RFM code and named segment of one customer, given the breakpoints';

-- One call: a transactions relation in, one row per customer out.
CREATE FUNCTION @extschema@.rfm_table(transactions regclass, customer_column name, time_column name,
                                      amount_column name, order_column name DEFAULT NULL,
                                      as_of timestamptz DEFAULT NULL)
RETURNS TABLE (customer text, recency_days int, frequency bigint, monetary float8,
               first_order timestamptz, last_order timestamptz, tenure_days int,
               avg_order_value float8, r_score int, f_score int, m_score int,
               rfm_code text, segment text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    col name;
    role text;
    typ regtype;
    snapshot timestamptz := as_of;
    order_arg text := '';
BEGIN
    FOREACH role IN ARRAY ARRAY['customer', 'time', 'amount', 'order'] LOOP
        col := CASE role WHEN 'customer' THEN customer_column WHEN 'time' THEN time_column
                         WHEN 'amount' THEN amount_column ELSE order_column END;
        IF col IS NULL THEN
            IF role = 'order' THEN CONTINUE; END IF;
            RAISE EXCEPTION 'rfm_table: the % column must not be NULL', role
                USING ERRCODE = 'null_value_not_allowed';
        END IF;
        SELECT a.atttypid::regtype INTO typ FROM pg_attribute a
        WHERE a.attrelid = transactions AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'rfm_table: column % does not exist in %', quote_ident(col), transactions
                USING ERRCODE = 'undefined_column';
        END IF;
        IF role = 'time' AND typ NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
            RAISE EXCEPTION 'rfm_table: time column % is of type %, not a timestamp or date', quote_ident(col), typ
                USING ERRCODE = 'datatype_mismatch';
        END IF;
        IF role = 'amount' AND typ NOT IN ('float8'::regtype, 'float4'::regtype, 'numeric'::regtype,
                                           'int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'money'::regtype) THEN
            RAISE EXCEPTION 'rfm_table: amount column % is of type %, not a number', quote_ident(col), typ
                USING ERRCODE = 'datatype_mismatch';
        END IF;
    END LOOP;
    IF order_column IS NOT NULL THEN
        order_arg := format('%I::text, ', order_column);
    END IF;
    IF snapshot IS NULL THEN
        -- the usual snapshot: the day after the last order (midnight, session time zone)
        EXECUTE format('SELECT date_trunc(''day'', max(%I)::timestamptz) + interval ''1 day'' FROM %s',
                       time_column, transactions) INTO snapshot;
        IF snapshot IS NULL THEN
            RETURN;             -- no orders
        END IF;
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH per AS (
            SELECT %1$I::text AS customer,
                   @extschema@.rfm_score(%2$I::timestamptz, %3$I::float8, %4$s $1) AS r
            FROM %5$s WHERE %1$I IS NOT NULL GROUP BY 1),
        bp AS (SELECT @extschema@.rfm_breakpoints(r) AS b FROM per)
        SELECT p.customer, (p.r).recency_days, (p.r).frequency, (p.r).monetary, (p.r).first_order,
               (p.r).last_order, (p.r).tenure_days, (p.r).avg_order_value,
               (s.g).r_score, (s.g).f_score, (s.g).m_score, (s.g).rfm_code, (s.g).segment
        FROM per p CROSS JOIN bp, LATERAL (SELECT @extschema@.rfm_grade(p.r, bp.b) AS g OFFSET 0) s
        $q$, customer_column, time_column, amount_column, order_arg, transactions)
    USING snapshot;
END
$fn$;
COMMENT ON FUNCTION @extschema@.rfm_table(regclass, name, name, name, name, timestamptz) IS
    'RFM, scores and named segment of every customer of a transactions relation';
