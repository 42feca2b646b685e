-- segment.recommender_fit, recommend, similar_items, recommend_for_segment,
-- train_recommender, evaluate_recommender
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END$$;

-- two tastes: users 1..20 buy from {a, b, c, d}, users 21..40 from {x, y, z, w};
-- each user lacks one item of their group, and that item is the obvious answer
CREATE TABLE buys (customer bigint, item text, qty float8, at date);
INSERT INTO buys
SELECT u, it, 1 + (u % 3), date '2024-01-01' + u
FROM generate_series(1, 40) u,
     unnest(CASE WHEN u <= 20 THEN ARRAY['a', 'b', 'c', 'd'] ELSE ARRAY['x', 'y', 'z', 'w'] END) WITH ORDINALITY g(it, pos)
WHERE pos <> 1 + u % 4;
INSERT INTO buys VALUES (1, 'a', 2, '2024-03-01'), (NULL, 'a', 1, '2024-01-01'), (2, NULL, 1, '2024-01-01'),
                        (3, 'a', NULL, '2024-01-01');   -- a repeat (adds up) and three skipped rows
-- user 41 bought everything
INSERT INTO buys SELECT 41, it, 1, '2024-01-01' FROM unnest(ARRAY['a', 'b', 'c', 'd', 'x', 'y', 'z', 'w']) it;

SELECT segment.recommender_fit(customer, item, qty, '{"factors": 4, "iterations": 10, "seed": 7}') AS rec FROM buys \gset
SELECT segment.model_kind(:'rec') AS kind, segment.model_info(:'rec') -> 'recommender' AS shape,
       m -> 'rows' AS rows, m -> 'pairs' AS pairs, m -> 'users' AS users, m -> 'items' AS items
FROM (SELECT segment.model_info(:'rec') -> 'metrics' AS m) t;
-- the ALS objective decreases at every iteration
SELECT bool_and(l.v < p.v) AS loss_decreases, count(*) + 1 AS iterations
FROM (SELECT (x.v)::float8 AS v, x.o FROM jsonb_array_elements_text(segment.model_info(:'rec') #> '{metrics,loss_curve}') WITH ORDINALITY x(v, o)) l
JOIN (SELECT (x.v)::float8 AS v, x.o FROM jsonb_array_elements_text(segment.model_info(:'rec') #> '{metrics,loss_curve}') WITH ORDINALITY x(v, o)) p
  ON l.o = p.o + 1;
-- deterministic with a seed; another seed gives other factors
SELECT segment.model_send(segment.recommender_fit(customer, item, qty, '{"factors": 4, "iterations": 10, "seed": 7}'))
       = segment.model_send(:'rec') AS deterministic FROM buys;
SELECT segment.model_send(segment.recommender_fit(customer, item, qty, '{"factors": 4, "iterations": 10, "seed": 8}'))
       <> segment.model_send(:'rec') AS seed_matters FROM buys;
-- rows in another order (and repeated pairs split differently) give the same model
SELECT segment.model_send(segment.recommender_fit(customer, item, qty, '{"factors": 4, "iterations": 10, "seed": 7}' ORDER BY at DESC, item DESC))
       = segment.model_send(:'rec') AS order_independent FROM buys;

-- the obvious answer: each user's missing item of their group comes first
SELECT u, (segment.recommend_items(:'rec', u, 1))[1] AS first,
       (ARRAY['a', 'b', 'c', 'd', 'x', 'y', 'z', 'w'])[1 + u % 4 + CASE WHEN u > 20 THEN 4 ELSE 0 END] AS missing
FROM generate_series(1, 40, 7) u;
SELECT count(*) FILTER (WHERE (segment.recommend_items(:'rec', u, 1, m))[1] =
           (ARRAY['a', 'b', 'c', 'd', 'x', 'y', 'z', 'w'])[1 + u % 4 + CASE WHEN u > 20 THEN 4 ELSE 0 END]) AS right_first,
       m AS method
FROM generate_series(1, 40) u, unnest(ARRAY['hybrid', 'als', 'item_item']) m GROUP BY m ORDER BY m;
-- the best n (a bounded heap) are the first n of the full ranking, for every user and method
SELECT count(*) FILTER (WHERE segment.recommend_items(:'rec', u, k, m) = (segment.recommend_items(:'rec', u, 100, m))[1:k]) AS same_top,
       count(*) AS cases
FROM generate_series(1, 41) u, generate_series(1, 3) k, unnest(ARRAY['hybrid', 'als', 'item_item', 'popularity']) m;
SELECT pg_temp.sqlstate_of($$SELECT segment.recommend_items(segment.kmeans_model('{{1,2}}'), 1, 3)$$) AS not_a_recommender,
       pg_temp.sqlstate_of(format('SELECT segment.recommend_items(%L::segment.model, 1, 3, %L)', :'rec', 'magic')) AS bad_method;

-- a stored model: recommend(), with reasons
SELECT segment.train_recommender('shop', 'buys', 'customer', 'item', 'qty',
                                 '{"factors": 4, "iterations": 10, "seed": 7}') - 'loss_curve' AS trained;
SELECT item_id, round(score::numeric, 6) > 0 AS positive, reason FROM segment.recommend(1, 2);
SELECT item_id, reason FROM segment.recommend(21, 1, 'shop');
-- a text id for a bigint model, and a bigint id for a text model, are converted
SELECT item_id FROM segment.recommend('21'::text, 1);
-- user who bought everything: nothing left, unless owned items are allowed
SELECT count(*) AS owns_all FROM segment.recommend(41);
SELECT count(*) AS with_owned FROM segment.recommend(41, 3, include_owned => true);
-- unknown user: the popular items, said so
SELECT item_id, round(score::numeric, 4) AS share, reason FROM segment.recommend(999, 3);
-- n = 0 and NULL arguments: no rows; n < 0: an error
SELECT count(*) AS n_zero FROM segment.recommend(1, 0);
SELECT count(*) AS null_user FROM segment.recommend(NULL::bigint);
SELECT count(*) AS null_n FROM segment.recommend(1, NULL);
SELECT pg_temp.sqlstate_of($$SELECT * FROM segment.recommend(1, -1)$$) AS n_negative,
       pg_temp.sqlstate_of($$SELECT * FROM segment.recommend(1, 3, 'nope')$$) AS no_such_model;

-- similar items: the same group, best first
SELECT item_id, round(score::numeric, 4) AS cosine FROM segment.similar_items('a'::text, 4);
SELECT count(*) AS unknown_item FROM segment.similar_items('nothing'::text);

-- bigint item ids, text user ids
CREATE TABLE buys2 AS SELECT 'u' || customer AS who, ascii(item)::bigint AS product, qty FROM buys WHERE customer IS NOT NULL AND item IS NOT NULL;
SELECT segment.model_info(segment.recommender_fit(who, product, qty, '{"factors": 4, "seed": 7}')) -> 'recommender' AS shape FROM buys2;
SELECT segment.recommend_items(segment.recommender_fit(who, product, qty, '{"factors": 4, "seed": 7}'), 'u1'::text, 1, 'item_item') AS for_u1 FROM buys2;

-- bad input
SELECT pg_temp.sqlstate_of($$SELECT segment.recommender_fit(customer, item, -qty) FROM buys$$) AS negative_weight,
       pg_temp.sqlstate_of($$SELECT segment.recommender_fit(customer, item, 'NaN') FROM buys$$) AS nan_weight,
       pg_temp.sqlstate_of($$SELECT segment.recommender_fit(customer, item, qty, '{"factorz": 3}') FROM buys$$) AS unknown_option,
       pg_temp.sqlstate_of($$SELECT segment.recommender_fit(customer, item, qty, '{"weighting": "cubic"}') FROM buys$$) AS bad_weighting,
       pg_temp.sqlstate_of($$SELECT segment.recommender_fit(customer, item, qty, '{"als_weight": 0, "item_weight": 0}') FROM buys$$) AS zero_blend,
       pg_temp.sqlstate_of($$SELECT segment.recommender_fit(customer, item, qty, jsonb_build_object('seed', customer)) FROM buys$$) AS options_vary;
SELECT segment.recommender_fit(customer, item, qty) IS NULL AS no_rows_null FROM buys WHERE false;
SELECT pg_temp.sqlstate_of($$SELECT 'segp1:AAAA'::segment.interactions$$) AS bad_state,
       pg_temp.sqlstate_of($$SELECT 'nonsense'::segment.interactions$$) AS bad_prefix;

-- parallel plan: partial states cross processes, the model equals the serial one
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
SET parallel_leader_participation = off;
ALTER FUNCTION segment.recommender_fit_combinefn(segment.interactions, segment.interactions) COST 1;
EXPLAIN (COSTS OFF) SELECT segment.recommender_fit(customer, item, qty, '{"factors": 4, "iterations": 10, "seed": 7}') FROM buys;
SELECT segment.model_send(segment.recommender_fit(customer, item, qty, '{"factors": 4, "iterations": 10, "seed": 7}'))
       = segment.model_send(:'rec') AS parallel_equals_serial FROM buys;
RESET parallel_setup_cost;
RESET parallel_tuple_cost;
RESET min_parallel_table_scan_size;
RESET max_parallel_workers_per_gather;
RESET parallel_leader_participation;
ALTER FUNCTION segment.recommender_fit_combinefn(segment.interactions, segment.interactions) COST 5000000;

-- the Citus path: partial states as text, combined, finalized = a plain fit
CREATE AGGREGATE pg_temp.rec_partial(anyelement, anycompatible, float8, jsonb) (
    SFUNC = segment.recommender_fit_transfn, STYPE = segment.interactions);
CREATE AGGREGATE pg_temp.rec_combine(segment.interactions) (
    SFUNC = segment.recommender_fit_combinefn, STYPE = segment.interactions,
    FINALFUNC = segment.recommender_fit_finalfn);
CREATE TEMP TABLE shard_states AS
SELECT customer % 3 AS shard, pg_temp.rec_partial(customer, item, qty, '{"factors": 4, "iterations": 10, "seed": 7}')::text AS state
FROM buys GROUP BY customer % 3;
SELECT count(*) AS shards, bool_and(state LIKE 'segp1:%') AS text_form FROM shard_states;
SELECT segment.model_send(pg_temp.rec_combine(state::segment.interactions ORDER BY shard DESC))
       = segment.model_send(:'rec') AS citus_path_equals_serial FROM shard_states;

-- segments: rec_customers segmented by segment.train; cold-start users get their segment's favourites
CREATE TABLE rec_customers (customer bigint PRIMARY KEY, spend float8);
INSERT INTO rec_customers SELECT u, CASE WHEN u <= 20 OR u BETWEEN 101 AND 110 THEN 10 + u % 3 ELSE 100 + u % 3 END
FROM generate_series(1, 41) u UNION ALL SELECT u, CASE WHEN u <= 110 THEN 10 ELSE 100 END FROM generate_series(101, 120) u;
SELECT segment.train('tastes', 'rec_customers', ARRAY['spend'], 2, '{"seed": 1}') ->> 'k' AS k;
SELECT segment.train_recommender('shop_seg', 'buys', 'customer', 'item', 'qty',
                                 '{"factors": 4, "iterations": 10, "seed": 7, "segments": {"model": "tastes"}}') -> 'segments' AS segments;
SELECT m.metrics -> 'segments' ->> 'model' AS seg_model, m.metrics -> 'segments' ->> 'key' AS seg_key
FROM segment.models m WHERE m.name = 'shop_seg';
-- 105 is new but in the low-spend segment (the a..d buyers); 115 in the other
SELECT c.customer, s.segment_of = (SELECT segment.segment_of(c1, 'tastes') FROM rec_customers c1 WHERE c1.customer = 1) AS low_segment,
       (SELECT string_agg(item_id, ',' ORDER BY item_id) FROM segment.recommend(c.customer, 4, 'shop_seg')) AS items,
       (SELECT min(reason) FROM segment.recommend(c.customer, 4, 'shop_seg')) LIKE 'popular in your segment%' AS reason_ok
FROM rec_customers c, LATERAL (SELECT segment.segment_of(c, 'tastes')) s
WHERE c.customer IN (105, 115) ORDER BY c.customer;
SELECT string_agg(item_id, ',' ORDER BY item_id) AS segment_items
FROM segment.recommend_for_segment(segment.segment_of((SELECT c FROM rec_customers c WHERE customer = 1), 'tastes'), 4, 'shop_seg');
SELECT pg_temp.sqlstate_of($$SELECT * FROM segment.recommend_for_segment(9, 3, 'shop_seg')$$) AS bad_segment,
       pg_temp.sqlstate_of($$SELECT * FROM segment.recommend_for_segment(1, 3, 'shop')$$) AS no_segments;
-- two recommenders stored: the name is needed
SELECT pg_temp.sqlstate_of($$SELECT * FROM segment.recommend(1)$$) AS ambiguous;
SELECT pg_temp.sqlstate_of($$SELECT segment.train_recommender('x', 'buys', 'customer', 'nope')$$) AS missing_column,
       pg_temp.sqlstate_of($$SELECT segment.train_recommender('x', 'buys', 'customer', 'item', NULL, '{"segments": {"model": "none"}}')$$) AS no_seg_model;

-- evaluation on a time split: purchases after the cutoff that are new to the user
INSERT INTO buys SELECT u, (ARRAY['a', 'b', 'c', 'd', 'x', 'y', 'z', 'w'])[1 + u % 4 + CASE WHEN u > 20 THEN 4 ELSE 0 END], 1, '2024-06-01'
FROM generate_series(1, 40) u;
SELECT method, users, round(hit_rate_at_k::numeric, 3) AS hit_rate, round(recall_at_k::numeric, 3) AS recall,
       round(precision_at_k::numeric, 3) AS precision, round(ndcg_at_k::numeric, 3) AS ndcg, round(coverage::numeric, 3) AS coverage
FROM segment.evaluate_recommender('buys', 'customer', 'item', 'at', '2024-05-01', 1, 'qty',
                                  '{"factors": 4, "iterations": 10, "seed": 7}');
