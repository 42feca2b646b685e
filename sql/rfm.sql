-- rfm_score, rfm_breakpoints, rfm_grade, rfm_table: values worked out by hand
SET TimeZone = 'UTC';
CREATE TABLE tx (customer text, order_id text, ts timestamptz, amount float8);
INSERT INTO tx VALUES
  -- alice: orders A1 (two lines, 30 + 20) and A2 (50): F = 2, M = 100,
  --   last 2024-01-25 09:00 -> R = floor(5 d 15 h) = 5, first 2024-01-10 10:00 -> tenure 20, avg 50
  ('alice', 'A1', '2024-01-10 10:00', 30), ('alice', 'A1', '2024-01-10 10:00', 20),
  ('alice', 'A2', '2024-01-25 09:00', 50),
  -- bob: one order an hour before as_of: R = 0, F = 1, M = 10, tenure 0
  ('bob', 'B1', '2024-01-30 23:00', 10),
  -- carol: an order of 200 and its partial return (own id C1R, -50): the return is an order
  --   of its own (F = 2) and M is net (150); R = 57 (from 2023-12-05), tenure 61, avg 75
  ('carol', 'C1', '2023-12-01 00:00', 200), ('carol', 'C1R', '2023-12-05 00:00', -50),
  -- dave: a NULL time and a NULL amount are skipped (2), one good line: R = 10, F = 1, M = 40
  ('dave', 'D0', NULL, 5), ('dave', 'D1', '2024-01-20 12:00', NULL),
  ('dave', 'D2', '2024-01-20 12:00', 40),
  -- erin: an order after as_of is left out (1); R = 30, F = 1, M = 1
  ('erin', 'E0', '2024-01-01 00:00', 1), ('erin', 'E1', '2024-02-05 00:00', 99),
  -- frank: only an order after as_of: no recency, F = 0, M = 0
  ('frank', 'F1', '2024-02-10 00:00', 5),
  -- gina: one order id on two days: F = 1, M = 25, last 2024-01-16 -> R = 15
  ('gina', 'G1', '2024-01-15 00:00', 10), ('gina', 'G1', '2024-01-16 00:00', 15);

SELECT customer, (r).recency_days, (r).frequency, (r).monetary, (r).first_order, (r).last_order,
       (r).tenure_days, (r).avg_order_value, (r).rows_used, (r).skipped_rows, (r).rows_after_as_of
FROM (SELECT customer, segment.rfm_score(ts, amount, order_id, '2024-01-31') AS r
      FROM tx GROUP BY customer) t
ORDER BY customer;

-- without order ids, frequency counts rows (alice 3, carol 2, gina 2)
SELECT customer, (segment.rfm_score(ts, amount, '2024-01-31'::timestamptz)).frequency
FROM tx GROUP BY customer ORDER BY customer;

-- as_of before the last order: the figures are a snapshot as of that time (later rows left out)
SELECT (r).recency_days, (r).frequency, (r).monetary, (r).rows_after_as_of
FROM (SELECT segment.rfm_score(ts, amount, order_id, '2024-01-12') AS r FROM tx WHERE customer = 'alice') t;

-- without as_of, recency is measured to the transaction's start
SELECT (r).as_of = now() AS as_of_is_now, (r).recency_days >= 300 AS long_ago
FROM (SELECT segment.rfm_score(ts, amount, order_id) AS r FROM tx WHERE customer = 'alice') t;
-- no rows: NULL, as any aggregate
SELECT segment.rfm_score(ts, amount) IS NULL AS no_rows FROM tx WHERE false;

-- breakpoints over the six customers with orders (frank has none):
-- R values 0,5,10,15,30,57 -> cuts 0,5,10,15 (an even share of what is left each time)
-- F values 1,1,1,1,2,2     -> two distinct values, cut 1
-- M values 1,10,25,40,100,150 -> cuts 1,10,25,40
CREATE TABLE per AS
SELECT customer, segment.rfm_score(ts, amount, order_id, '2024-01-31') AS r FROM tx GROUP BY customer;
SELECT (b).* FROM (SELECT segment.rfm_breakpoints(r) AS b FROM per) t;
-- scores: R is turned over (5 = most recent); FM = round-half-up((F + M) / 2)
-- alice R4 F2 M5 (FM 4) Loyal Customers; bob R5 F1 M2 (FM 2) Potential Loyalists;
-- carol R1 F2 M5 (FM 4) Can't Lose Them; dave R3 F1 M4 (FM 3) Need Attention;
-- erin R1 F1 M1 Lost; gina R2 F1 M3 (FM 2) Hibernating; frank: no scores
SELECT p.customer, (g).*
FROM per p, (SELECT segment.rfm_breakpoints(r) AS b FROM per) bp,
     LATERAL (SELECT segment.rfm_grade(p.r, bp.b) AS g) s
ORDER BY p.customer;

-- heavy ties: twelve customers spent 1, then one each 2..9.  Equal values get equal
-- scores, and the eight others split 2/2/2/2 (not 1/1/2/4 as fixed 20% steps would give)
SELECT (b).monetary FROM (
  SELECT segment.rfm_breakpoints(ROW(1, 1, m, NULL, NULL, NULL, NULL, NULL, 1, 0, 0)::segment.rfm) AS b
  FROM (SELECT 1.0 FROM generate_series(1, 12) UNION ALL SELECT generate_series(2, 9)) v(m)) t;
-- one value for everyone: one group, every score 1 (and R score 1)
SELECT (segment.rfm_grade(ROW(3, 1, 5, NULL, NULL, NULL, NULL, NULL, 1, 0, 0)::segment.rfm, b)).*
FROM (SELECT segment.rfm_breakpoints(ROW(3, 1, 5, NULL, NULL, NULL, NULL, NULL, 1, 0, 0)::segment.rfm) AS b
      FROM generate_series(1, 4)) t;

-- errors
SELECT segment.rfm_score(ts, amount, order_id, CASE WHEN amount > 20 THEN '2024-01-31' ELSE '2024-02-01' END::timestamptz)
FROM tx WHERE customer = 'alice';
SELECT segment.rfm_score(ts, amount, order_id, NULL::timestamptz) FROM tx;
SELECT segment.rfm_score(ts, 'NaN'::float8) FROM tx;
SELECT segment.rfm_score('infinity'::timestamptz, amount) FROM tx;
SELECT segment.rfm_grade(r, ROW('{3,2,1}', '{}', '{}', 0, 0)::segment.rfm_breakpoints) FROM per LIMIT 1;

-- the partial state: text round trip (Citus ships it as text), validation
CREATE AGGREGATE pg_temp.rfm_partial(timestamptz, float8, text, timestamptz) (
    SFUNC = segment.rfm_transfn, STYPE = segment.rfm_state);
CREATE AGGREGATE pg_temp.rfm_merge(segment.rfm_state) (
    SFUNC = segment.rfm_combinefn, STYPE = segment.rfm_state, FINALFUNC = segment.rfm_finalfn);
-- alice's rows split in two "shards", shipped as text, merged: the same figures as one pass
WITH shards AS (
  SELECT pg_temp.rfm_partial(ts, amount, order_id, '2024-01-31')::text AS s
  FROM tx WHERE customer = 'alice' GROUP BY amount > 25)
SELECT bool_and(s LIKE 'rfm1:%') AS text_form,
       pg_temp.rfm_merge(s::segment.rfm_state) = (SELECT r FROM per WHERE customer = 'alice') AS same
FROM shards;
SELECT 'rfm1:AAAA'::segment.rfm_state;
SELECT 'nope'::segment.rfm_state;
SELECT 'rfm1:!!!!'::segment.rfm_state;

-- every field of a corrupted state is checked (wire offsets: magic 0, flags 4, rows 8,
-- skipped 16, after 24, as_of 32, first 40, last 48, sum 56, comp 64, n_ids 72, ids from 76)
CREATE FUNCTION pg_temp.try_state(w bytea) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  PERFORM ('rfm1:' || translate(encode(w, 'base64'), E'\n', ''))::segment.rfm_state;
  RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ' ' || SQLERRM;
END $$;
SELECT decode(substr(pg_temp.rfm_partial(ts, amount, order_id, '2024-01-31')::text, 6), 'base64') AS w
FROM tx WHERE customer = 'alice' \gset
SELECT pg_temp.try_state(:'w'::bytea) AS valid,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\x00000000' FROM 1)) AS magic,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\x00000004' FROM 5)) AS flags,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\xffffffffffffffff' FROM 9)) AS negative_rows,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\x0000000000000001' FROM 9)) AS fewer_rows_than_ids,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\x7ff8000000000000' FROM 57)) AS nan_sum,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\x7fffffffffffffff' FROM 49)) AS infinite_last,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\x7fffffff' FROM 73)) AS huge_id_count,
       pg_temp.try_state(substr(:'w'::bytea, 1, length(:'w'::bytea) - 1)) AS truncated,
       pg_temp.try_state(:'w'::bytea || '\x00'::bytea) AS trailing_byte,
       pg_temp.try_state(overlay(:'w'::bytea PLACING '\x4131' FROM 87)) AS repeated_id
\gx

-- a parallel plan (forced) gives every customer the same figures as the serial plan
CREATE TABLE big_tx AS
SELECT 'c' || (i % 500) AS customer, 'o' || (i / 3) AS order_id,
       '2024-01-01'::timestamptz + (i % 997) * interval '1 hour' AS ts, (i % 89) - 4.5 AS amount
FROM generate_series(1, 30000) i;
ANALYZE big_tx;
CREATE TABLE serial_rfm AS
SELECT customer, segment.rfm_score(ts, amount, order_id, '2024-03-01') AS r FROM big_tx GROUP BY customer;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET enable_hashagg = off;
EXPLAIN (COSTS OFF)
SELECT customer, segment.rfm_score(ts, amount, order_id, '2024-03-01') FROM big_tx GROUP BY customer;
SELECT count(*) AS customers,
       count(*) FILTER (WHERE (p.r).frequency = (s.r).frequency AND (p.r).recency_days = (s.r).recency_days
                          AND abs((p.r).monetary - (s.r).monetary) <= 1e-9 * greatest(1, abs((s.r).monetary))
                          AND (p.r).rows_used = (s.r).rows_used) AS same
FROM (SELECT customer, segment.rfm_score(ts, amount, order_id, '2024-03-01') AS r
      FROM big_tx GROUP BY customer) p JOIN serial_rfm s USING (customer);
RESET ALL;
SET TimeZone = 'UTC';

-- the one-call form: quoted identifiers, a view, default as_of = the day after the last order
CREATE TABLE "Sales Lines" ("Customer" int, "Order No" text, "When" timestamp, qty int, price numeric);
INSERT INTO "Sales Lines"
SELECT CASE WHEN customer = 'alice' THEN 1 WHEN customer = 'bob' THEN 2 WHEN customer = 'carol' THEN 3
            WHEN customer = 'dave' THEN 4 WHEN customer = 'erin' THEN 5 WHEN customer = 'frank' THEN 6 ELSE 7 END,
       order_id, ts AT TIME ZONE 'UTC', 1, amount
FROM tx;
CREATE VIEW sales AS SELECT *, qty * price AS amount FROM "Sales Lines";
-- as_of given: the same rows as the composable form above
SELECT * FROM segment.rfm_table('sales', 'Customer', 'When', 'amount', 'Order No', '2024-01-31')
ORDER BY customer;
-- as_of omitted: midnight after the last order (2024-02-11), frank now counts
SELECT customer, recency_days, frequency, monetary, rfm_code
FROM segment.rfm_table('sales', 'Customer', 'When', 'amount') ORDER BY customer;
-- as_of before every order: each customer is listed, with no orders and no scores
SELECT count(*) AS customers, count(*) FILTER (WHERE frequency = 0 AND r_score IS NULL) AS without_orders
FROM segment.rfm_table('sales', 'Customer', 'When', 'amount', NULL, '1990-01-01');
SELECT * FROM segment.rfm_table('sales', 'customer', 'When', 'amount');
SELECT * FROM segment.rfm_table('sales', 'Customer', 'Order No', 'amount');
SELECT * FROM segment.rfm_table('sales', 'Customer', 'When', 'Order No');
SELECT * FROM segment.rfm_table('sales', 'Customer', NULL, 'amount');
SELECT * FROM segment.rfm_table('no_such_table', 'Customer', 'When', 'amount');
