-- kmeans_fit and kmeans_step: results, determinism, NULLs, errors, parallel
-- plans, the memory cap, refinement passes.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END$$;
-- centroids as sorted, rounded text, so output does not depend on cluster numbering
CREATE FUNCTION pg_temp.centres(m segment.model) RETURNS text LANGUAGE sql AS
$$SELECT string_agg(c, ' ' ORDER BY c) FROM (
    SELECT '(' || string_agg(round(v::numeric, 3)::text, ',' ORDER BY j) || ')' AS c
    FROM (SELECT i, j, (segment.centroids(m))[i][j] AS v
          FROM generate_series(1, (segment.model_info(m) ->> 'k')::int) i,
               generate_series(1, (segment.model_info(m) ->> 'dim')::int) j) s
    GROUP BY i) t$$;

-- three well-separated blobs around (0,0), (10,10), (-10,10); deterministic jitter
CREATE TABLE blobs AS
SELECT i, ARRAY[cx + sin(i * 1.7), cy + cos(i * 2.3)] AS f
FROM generate_series(1, 300) i,
     LATERAL (SELECT (ARRAY[0, 10, -10])[i % 3 + 1] AS cx, (ARRAY[0, 10, 10])[i % 3 + 1] AS cy) c;

SELECT segment.kmeans_fit(f, 3, '{"seed": 7}') AS m FROM blobs \gset
-- when no row can change its label (every gap beats twice the largest centre
-- shift), the last Lloyd pass is counted, not run: the model is Elkan's, which
-- runs it (exact sums: the same labels give the same centroids, bit for bit)
SELECT segment.model_info(l) #> '{metrics,n_iter}' AS lloyd_iterations,
       segment.model_info(l) #> '{metrics,n_iter}' = segment.model_info(e) #> '{metrics,n_iter}' AS same_iterations,
       segment.centroids(l) = segment.centroids(e) AS same_centroids,
       segment.model_info(l) #> '{metrics,inertia}' = segment.model_info(e) #> '{metrics,inertia}' AS same_inertia,
       segment.model_info(l) -> 'cluster_sizes' = segment.model_info(e) -> 'cluster_sizes' AS same_sizes
FROM (SELECT segment.kmeans_fit(f, 3, '{"seed": 7}') AS l,
             segment.kmeans_fit(f, 3, '{"seed": 7, "algorithm": "elkan"}') AS e FROM blobs) t;
SELECT pg_temp.centres(:'m');
SELECT segment.model_info(:'m') -> 'cluster_sizes' AS sizes,
       segment.model_info(:'m') #> '{metrics,rows_seen}' AS rows_seen,
       segment.model_info(:'m') #> '{metrics,converged}' AS converged,
       segment.model_info(:'m') #> '{metrics,options}' AS options;
-- the stored sizes are those of kmeans_assign with the same model
SELECT segment.kmeans_assign(f, :'m'::segment.model) AS seg, count(*) FROM blobs GROUP BY 1 ORDER BY 1;
-- inertia in the model equals the sum of squared distances of kmeans_distances
SELECT round((segment.model_info(:'m') #>> '{metrics,inertia}')::numeric, 6) =
       round(sum((SELECT min(d * d) FROM unnest(segment.kmeans_distances(f, :'m'::segment.model)) d))::numeric, 6)
       AS inertia_consistent
FROM blobs;

-- same seed and data: the same model, whatever the input order; random init and elkan too
SELECT segment.model_send(segment.kmeans_fit(f, 3, '{"seed": 7}' ORDER BY i DESC)) = segment.model_send(:'m')
       AS order_independent FROM blobs;
SELECT pg_temp.centres(segment.kmeans_fit(f, 3, '{"seed": 3, "init": "random"}')) AS random_init,
       pg_temp.centres(segment.kmeans_fit(f, 3, '{"seed": 3, "algorithm": "elkan"}')) AS elkan
FROM blobs;
SELECT segment.model_info(segment.kmeans_fit(f, 3, '{"init": "random"}')) #> '{metrics,options,n_init}' AS random_n_init
FROM blobs;

-- NULL rows are skipped; no rows give NULL
INSERT INTO blobs VALUES (1001, NULL), (1002, NULL);
SELECT segment.model_info(segment.kmeans_fit(f, 3)) #> '{metrics,rows_seen}' AS rows_seen FROM blobs;
SELECT segment.kmeans_fit(f, 3) IS NULL AS no_rows FROM blobs WHERE i < 0;
SELECT segment.kmeans_fit(f, 3) IS NULL AS only_nulls FROM blobs WHERE f IS NULL;
-- k = 1 is the mean
SELECT pg_temp.centres(segment.kmeans_fit(f, 1)) AS mean FROM (VALUES ('{1,2}'::float8[]), ('{3,6}')) v(f);

-- errors
SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{1,NULL}'::float8[])) v(f);
SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{1,NaN}'::float8[])) v(f);
SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{1,-Infinity}'::float8[])) v(f);
SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{}'::float8[])) v(f);
SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{{1,2}}'::float8[])) v(f);
SELECT segment.kmeans_fit(f, 2) FROM (VALUES (1, '{1,2}'::float8[]), (2, '{1,2,3}')) v(i, f);
SELECT segment.kmeans_fit(f, 0) FROM blobs;
SELECT segment.kmeans_fit(f, -1) FROM blobs;
SELECT segment.kmeans_fit(f, NULL) FROM blobs;
SELECT segment.kmeans_fit(f, 1000000) FROM blobs;
SELECT segment.kmeans_fit(f, i % 2 + 1) FROM blobs;
SELECT segment.kmeans_fit(f, 2, jsonb_build_object('seed', i % 2)) FROM blobs;
SELECT segment.kmeans_fit(f, 301) FROM blobs;
SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{1,1}'::float8[]), ('{1,1}'), ('{2,2}'), ('{2,2}')) v(f);
SELECT segment.kmeans_fit(f, 2, '{"colour": "red"}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '{"n_init": 0}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '{"n_init": 1.5}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '{"max_iter": "many"}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '{"tol": -1}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '{"seed": -1}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '{"init": "kmeans++"}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '{"algorithm": "full"}') FROM blobs;
SELECT segment.kmeans_fit(f, 2, '[1, 2]') FROM blobs;
SELECT pg_temp.sqlstate_of($$SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{1,NULL}'::float8[])) v(f)$$) AS null_element,
       pg_temp.sqlstate_of($$SELECT segment.kmeans_fit(f, 3) FROM (VALUES ('{1,NaN}'::float8[])) v(f)$$) AS nan,
       pg_temp.sqlstate_of($$SELECT segment.kmeans_fit(f, 2) FROM (VALUES (1, '{1,2}'::float8[]), (2, '{1,2,3}')) v(i, f)$$) AS ragged,
       pg_temp.sqlstate_of($$SELECT segment.kmeans_fit(f, 0) FROM blobs$$) AS k_zero,
       pg_temp.sqlstate_of($$SELECT segment.kmeans_fit(f, 301) FROM blobs$$) AS k_too_big,
       pg_temp.sqlstate_of($$SELECT segment.kmeans_fit(f, 2, '{"colour": 1}') FROM blobs$$) AS bad_option;

-- a parallel plan: partial aggregates in workers, and the same model as the serial plan
CREATE TABLE many AS
SELECT i, ARRAY[(i % 4) * 5 + sin(i), (i % 4 / 2) * 5 + cos(i * 1.3), sin(i * 0.7)] AS f
FROM generate_series(1, 20000) i;
ANALYZE many;
SELECT segment.kmeans_fit(f, 4, '{"seed": 11}') AS serial FROM many \gset
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
-- rows_combinefn's cost (a copy of every row) keeps tables under a few million rows serial
ALTER FUNCTION segment.rows_combinefn(segment.rows_state, segment.rows_state) COST 1;
EXPLAIN (COSTS OFF) SELECT segment.kmeans_fit(f, 4, '{"seed": 11}') FROM many;
SELECT segment.model_send(segment.kmeans_fit(f, 4, '{"seed": 11}')) = segment.model_send(:'serial') AS parallel_equals_serial
FROM many;
-- a tiny memory cap: a seeded sample, a NOTICE, the same sample in parallel
SET segment.max_fit_memory = '64kB';
SELECT segment.kmeans_fit(f, 4, '{"seed": 11}') AS sampled FROM many \gset
SELECT segment.model_info(:'sampled') #> '{metrics,rows_seen}' AS rows_seen,
       segment.model_info(:'sampled') #> '{metrics,rows_used}' AS rows_used,
       segment.model_info(:'sampled') #> '{metrics,sampled}' AS sampled;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
ALTER FUNCTION segment.rows_combinefn(segment.rows_state, segment.rows_state) COST 5000000;
SELECT segment.model_send(segment.kmeans_fit(f, 4, '{"seed": 11}')) = segment.model_send(:'sampled') AS serial_sample_equals_parallel
FROM many;
RESET segment.max_fit_memory;

-- the Citus path: per-shard partial states shipped as text, combined, then
-- finalized on a coordinator give the model of a plain fit
CREATE AGGREGATE pg_temp.fit_partial(float8[], int, jsonb) (
    SFUNC = segment.kmeans_fit_transfn, STYPE = segment.rows_state);
CREATE AGGREGATE pg_temp.fit_combine(segment.rows_state) (
    SFUNC = segment.rows_combinefn, STYPE = segment.rows_state,
    FINALFUNC = segment.kmeans_fit_finalfn, FINALFUNC_MODIFY = READ_WRITE);
CREATE TEMP TABLE shard_states AS
SELECT i % 3 AS shard, pg_temp.fit_partial(f, 4, '{"seed": 11}')::text AS state
FROM many GROUP BY i % 3;
SELECT count(*) AS shards, bool_and(state LIKE 'segr1:%') AS text_form FROM shard_states;
SELECT segment.model_send(pg_temp.fit_combine(state::segment.rows_state ORDER BY shard DESC))
       = segment.model_send(:'serial') AS citus_path_equals_serial
FROM shard_states;

-- kmeans_step: each exact pass over all rows lowers or keeps the inertia
SELECT segment.kmeans_model('{{0,0,0},{1,1,0},{2,2,0},{3,3,0}}') AS m0 \gset
SELECT segment.kmeans_step(f, :'m0'::segment.model) AS m1 FROM many \gset
SELECT segment.kmeans_step(f, :'m1'::segment.model) AS m2 FROM many \gset
SELECT segment.kmeans_step(f, :'m2'::segment.model) AS m3 FROM many \gset
SELECT (segment.model_info(:'m1') #>> '{metrics,inertia}')::float8 >= (segment.model_info(:'m2') #>> '{metrics,inertia}')::float8
   AND (segment.model_info(:'m2') #>> '{metrics,inertia}')::float8 >= (segment.model_info(:'m3') #>> '{metrics,inertia}')::float8
       AS inertia_never_rises,
       segment.model_info(:'m3') #> '{metrics,rows_seen}' AS rows_seen;
-- a step from a converged fit barely moves it
SELECT (segment.model_info(segment.kmeans_step(f, :'serial'::segment.model)) #>> '{metrics,center_shift}')::float8 < 1e-6
       AS converged_stays FROM many;
-- in parallel, the same pass (sums may differ in the last bits)
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT segment.kmeans_step(f, :'m0'::segment.model) FROM many;
SELECT pg_temp.centres(segment.kmeans_step(f, :'m0'::segment.model)) = pg_temp.centres(:'m1') AS parallel_step_equal
FROM many;
RESET ALL;
-- errors
SELECT segment.kmeans_step(f, NULL::segment.model) FROM many;
SELECT segment.kmeans_step(f, segment.kmeans_model('{{1,2}}')) FROM many;
SELECT segment.kmeans_step(f, CASE WHEN i < 10 THEN :'m0'::segment.model ELSE :'m1'::segment.model END) FROM many;
SELECT segment.kmeans_step(f, :'m0'::segment.model) IS NULL AS no_rows FROM many WHERE i < 0;

-- the partial states' text forms are validated (Citus ships them as text)
SELECT 'segr1:AAAA'::segment.rows_state;
SELECT 'nope'::segment.rows_state;
SELECT 'segp1:AAAA'::segment.step_state;

-- cancellation: a long fit stops at statement_timeout, and the backend stays usable
CREATE TABLE slow AS
SELECT i, ARRAY[sin(i), cos(i * 1.1), sin(i * 1.3), cos(i * 1.7), sin(i * 2.1), cos(i * 2.3)] AS f
FROM generate_series(1, 100000) i;
SET statement_timeout = '300ms';
SELECT segment.kmeans_fit(f, 200, '{"max_iter": 100000, "tol": 0, "n_init": 100}') FROM slow;
RESET statement_timeout;
SELECT count(*) FROM slow;

-- the final step's threads: the same model bit for bit whatever their number
-- (k-means adds integers; k-means++ reduces its chunks in order)
SET segment.fit_threads = 1;
SELECT segment.kmeans_fit(f, 7, '{"seed": 3}') AS one_thread FROM slow \gset
SET segment.fit_threads = 2;
SELECT segment.model_send(segment.kmeans_fit(f, 7, '{"seed": 3}')) = segment.model_send(:'one_thread') AS two_threads_same FROM slow;
SET segment.fit_threads = 5;
SELECT segment.model_send(segment.kmeans_fit(f, 7, '{"seed": 3}')) = segment.model_send(:'one_thread') AS five_threads_same FROM slow;
-- and whatever the vector kernels (AVX2 where the CPU has it, or SSE2): the same bits
SET segment.vector_kernels = 'sse2';
SELECT segment.model_send(segment.kmeans_fit(f, 7, '{"seed": 3}')) = segment.model_send(:'one_thread') AS sse2_same,
       segment.model_send(segment.kmeans_fit(f, 3, '{"seed": 3, "init": "random"}')) AS sse2_k3 FROM slow \gset
RESET segment.vector_kernels;
SELECT :'sse2_same' AS sse2_same,
       segment.model_send(segment.kmeans_fit(f, 3, '{"seed": 3, "init": "random"}')) = :'sse2_k3' AS sse2_k3_same
FROM slow;
-- an ERROR or a cancel while rows stream in (past 65536 rows, into new
-- mappings, which a thread faults in ahead of them) frees the state cleanly
SET segment.kept_fit_memory = 0;
SELECT segment.kmeans_fit(CASE WHEN i = 90000 THEN ARRAY[1, 'NaN', 1, 1, 1, 1]::float8[] ELSE f END,
                          7, '{"seed": 3}') FROM slow;
SET statement_timeout = '500ms';
SELECT segment.kmeans_fit(f, 7, '{"seed": 3}') FROM slow WHERE i <> 80000 OR pg_sleep(2)::text = '';
RESET statement_timeout;
-- handed back at once, or kept for the next fit and written again: the same model
SELECT segment.model_send(segment.kmeans_fit(f, 7, '{"seed": 3}')) = segment.model_send(:'one_thread') AS unkept_same
FROM slow;
RESET segment.kept_fit_memory;
SELECT segment.model_send(segment.kmeans_fit(f, 7, '{"seed": 3}')) = segment.model_send(:'one_thread') AS kept_same
FROM slow;
SELECT segment.model_send(segment.kmeans_fit(f, 7, '{"seed": 3}')) = segment.model_send(:'one_thread') AS reused_same
FROM slow;
-- several large states at once (a hash aggregate: each holds its own buffers,
-- one faulted in ahead at a time): each group's model is the one it gets alone
CREATE TABLE two_groups AS
SELECT i, i % 2 AS g, ARRAY[sin(i), cos(i * 1.1), sin(i * 1.3)] AS f
FROM generate_series(1, 140000) i;
SET enable_sort = off;
CREATE TEMP TABLE group_models AS
SELECT g, segment.kmeans_fit(f, 3, '{"seed": 1}') AS m FROM two_groups GROUP BY g;
EXPLAIN (COSTS OFF) SELECT g, segment.kmeans_fit(f, 3, '{"seed": 1}') AS m FROM two_groups GROUP BY g;
SELECT g, segment.model_send(m) = (SELECT segment.model_send(segment.kmeans_fit(t.f, 3, '{"seed": 1}'))
                                   FROM two_groups t WHERE t.g = group_models.g) AS same_as_alone
FROM group_models ORDER BY g;
-- large states count as their aggregate's memory: past work_mem a hash
-- aggregate spills the groups still to come, as it would for any other state
CREATE TABLE three_runs AS
SELECT i, i / 70000 AS g, ARRAY[sin(i), cos(i * 1.1), sin(i * 1.3)] AS f
FROM generate_series(0, 209999) i;
CREATE FUNCTION pg_temp.hashagg_batches() RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXPLAIN (ANALYZE, FORMAT JSON)
        SELECT g, segment.kmeans_fit(f, 3, '{"seed": 1}') FROM three_runs GROUP BY g INTO plan;
    RETURN (plan -> 0 -> 'Plan' ->> 'HashAgg Batches')::int;
END
$$;
SET work_mem = '64kB';
SELECT pg_temp.hashagg_batches() > 1 AS spilled;
RESET work_mem;
RESET enable_sort;
-- and cancel still lands with threads at work
SET statement_timeout = '300ms';
SELECT segment.kmeans_fit(f, 200, '{"max_iter": 100000, "tol": 0, "n_init": 100}') FROM slow;
RESET statement_timeout;
RESET segment.fit_threads;
SELECT count(*) AS usable FROM slow;

-- row order does not matter, with the init drawn from a sample (past 65536 rows)
SELECT segment.model_send(segment.kmeans_fit(f, 5, '{"seed": 9}' ORDER BY i))
     = segment.model_send(segment.kmeans_fit(f, 5, '{"seed": 9}' ORDER BY f[2] DESC)) AS large_order_free
FROM slow;
SELECT (SELECT sum(c::int) FROM jsonb_array_elements_text(segment.model_info(m) -> 'cluster_sizes') c) AS sizes_add_up
FROM (SELECT segment.kmeans_fit(f, 5, '{"seed": 9}') AS m FROM slow) t;
-- init_sample: 0 draws the init from every row (as scikit-learn does), a
-- number of rows at least that many; k-means++ then reads all 100,000 rows
SELECT segment.centroids(segment.kmeans_fit(f, 5, '{"seed": 9, "init_sample": 0}'))
     = segment.centroids(segment.kmeans_fit(f, 5, '{"seed": 9, "init_sample": 100000}')) AS all_rows_either_way,
       segment.centroids(segment.kmeans_fit(f, 5, '{"seed": 9, "init_sample": 0}'))
     <> segment.centroids(segment.kmeans_fit(f, 5, '{"seed": 9}')) AS not_the_sampled_init,
       segment.model_send(segment.kmeans_fit(f, 5, '{"seed": 9, "init_sample": 0}' ORDER BY i DESC))
     = segment.model_send(segment.kmeans_fit(f, 5, '{"seed": 9, "init_sample": 0}')) AS all_rows_order_free,
       segment.model_info(segment.kmeans_fit(f, 5, '{"seed": 9, "init_sample": 0}')) #> '{metrics,options}' AS options
FROM slow;
SELECT o AS options, segment.model_info(segment.kmeans_fit(f, 5, o)) #> '{metrics,init_rows}' AS init_rows
FROM slow, unnest(ARRAY['{"seed": 9}', '{"seed": 9, "init_sample": 0}', '{"seed": 9, "init_sample": 70000}']::jsonb[]) o
GROUP BY o ORDER BY 2;
SELECT segment.kmeans_fit(f, 5, '{"init_sample": 4}') FROM slow;
SELECT segment.kmeans_fit(f, 5, '{"init_sample": -1}') FROM slow;

-- an integer grid: rows exactly equidistant from two centres (ties settled by
-- exact distances, not by where a row sits in a dgemm block), so the same
-- model in any row order; and equal rows make their centre exactly
CREATE TABLE grid AS
SELECT i, ARRAY[(i % 5)::float8, (i / 5 % 5)::float8, 0.1 * (i % 3)] AS f
FROM generate_series(0, 2999) i;
SELECT segment.model_send(segment.kmeans_fit(f, 4, '{"seed": 2}' ORDER BY i))
     = segment.model_send(segment.kmeans_fit(f, 4, '{"seed": 2}' ORDER BY i DESC)) AS grid_order_free,
       segment.model_send(segment.kmeans_fit(f, 4, '{"seed": 2, "algorithm": "elkan"}' ORDER BY i))
     = segment.model_send(segment.kmeans_fit(f, 4, '{"seed": 2, "algorithm": "elkan"}' ORDER BY f[3], i DESC)) AS elkan_order_free
FROM grid;
SELECT segment.model_info(m) #> '{metrics,inertia}' AS exact_fit_inertia,
       (SELECT array_agg(DISTINCT c::int) FROM jsonb_array_elements_text(segment.model_info(m) -> 'cluster_sizes') c) AS sizes
FROM (SELECT segment.kmeans_fit(f, 75, '{"seed": 2}') AS m FROM grid) t;

-- empty clusters take the rows farthest from their centres (random init on
-- heavy duplicates draws equal centres; the second is left empty), Lloyd and
-- Elkan alike, in any row order
CREATE TABLE dup AS
SELECT i, CASE WHEN i = 1 THEN ARRAY[5.0, 5.0] WHEN i = 2 THEN ARRAY[10.0, 10.0]
               ELSE ARRAY[0.0, 0.0] END::float8[] AS f
FROM generate_series(1, 100) i;
SELECT algorithm, segment.model_info(m) -> 'cluster_sizes' AS sizes,
       segment.model_info(m) #> '{metrics,inertia}' AS inertia, pg_temp.centres(m) AS centres
FROM (SELECT a AS algorithm,
             (SELECT segment.kmeans_fit(f, 3, jsonb_build_object('seed', 1, 'init', 'random', 'algorithm', a)
                                        ORDER BY i DESC) FROM dup) AS m
      FROM unnest(ARRAY['lloyd', 'elkan']) a) t;

-- the fixed-point sums keep every bit of features far from 1 in magnitude:
-- the centres of equal rows are those rows exactly
SELECT (SELECT array_agg(v ORDER BY v) FROM unnest(segment.centroids(m)) v)
       = ARRAY[0, 0, 1e-300, 2e-300, 1e150, 2e150]::float8[] AS exact_centres
FROM (SELECT segment.kmeans_fit(ARRAY[1e-300 * (i % 3), 1e150 * (i % 3)], 3, '{"seed": 4}') AS m
      FROM generate_series(1, 90) i) t;

-- the absolute tolerance (tol x the mean feature variance, in the metrics) is
-- scikit-learn's and does not depend on where the rows sit: also a million
-- away from the origin, Lloyd and Elkan
CREATE TABLE spread AS
SELECT i, ARRAY[(i % 4) * 2 + sin(i * 1.3) * 1.5, (i % 4 / 2) * 2 + cos(i * 0.7) * 1.5, sin(i * 0.37)] AS f
FROM generate_series(1, 20000) i;
SELECT off, a AS algorithm,
       round(((segment.model_info(m) #>> '{metrics,tolerance}')::float8 / (1e-4 * v))::numeric, 6) AS vs_var_pop
FROM (SELECT off, a,
             (SELECT segment.kmeans_fit(ARRAY[f[1] + off, f[2] + off, f[3] + off], 4,
                                        jsonb_build_object('seed', 3, 'algorithm', a)) FROM spread) AS m,
             (SELECT (var_pop(f[1]) + var_pop(f[2]) + var_pop(f[3])) / 3 FROM spread) AS v
      FROM unnest(ARRAY[0, 1e6]::float8[]) off, unnest(ARRAY['lloyd', 'elkan']) a) t
ORDER BY off, a;
