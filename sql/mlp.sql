-- the neural-network core: gradients of every layer type and both losses match finite differences
SELECT s AS seed, segment.nn_gradient_check('cross_entropy', s) < 1e-5 AS cross_entropy_ok,
       segment.nn_gradient_check('mse', s) < 1e-5 AS mse_ok
FROM generate_series(1, 3) s;
SELECT segment.nn_gradient_check('hinge', 1);

-- mlp_fit: three separated groups with arbitrary class labels
CREATE TABLE groups3 AS
SELECT i, ARRAY[(i % 3) * 5 + sin(i), (i % 3) * -4 + cos(i * 1.7), sin(i * 0.3)] AS f, (i % 3) * 10 + 10 AS label
FROM generate_series(1, 600) i;
INSERT INTO groups3 VALUES (601, NULL, 10), (602, '{1,2,3}', NULL);   -- skipped
SELECT segment.mlp_fit(f, label, '{"seed": 3, "epochs": 60, "hidden": [16, 8], "dropout": 0.1}') AS mlp FROM groups3 \gset
SELECT segment.model_kind(:'mlp'::segment.model) AS kind,
       m -> 'classes' AS classes, m -> 'rows_used' AS rows_used, m -> 'train_rows' AS train_rows,
       m -> 'validation_rows' AS validation_rows, (m ->> 'validation_accuracy')::float8 = 1 AS validation_perfect,
       jsonb_array_length(m -> 'train_curve') = (m ->> 'epochs')::int AS curve_per_epoch
FROM (SELECT segment.model_info(:'mlp'::segment.model) -> 'metrics' AS m) t;
SELECT count(*) FILTER (WHERE segment.mlp_predict(f, :'mlp'::segment.model) = label) AS correct, count(*) AS rows
FROM groups3 WHERE f IS NOT NULL AND label IS NOT NULL;
SELECT abs((SELECT sum(p) FROM unnest(segment.mlp_proba(f, :'mlp'::segment.model)) p) - 1) < 1e-12 AS sums_to_one,
       cardinality(segment.mlp_proba(f, :'mlp'::segment.model)) AS classes
FROM groups3 WHERE i = 1;
-- the same seed, the same model; another seed, another
SELECT segment.model_send(segment.mlp_fit(f, label, '{"seed": 3, "epochs": 60, "hidden": [16, 8], "dropout": 0.1}'))
       = segment.model_send(:'mlp'::segment.model) AS deterministic FROM groups3;
SELECT segment.model_send(segment.mlp_fit(f, label, '{"seed": 4, "epochs": 5, "hidden": [16, 8]}'))
       <> segment.model_send(:'mlp'::segment.model) AS seed_matters FROM groups3;
-- SGD with momentum, no batch norm, no dropout also learns it
SELECT count(*) FILTER (WHERE segment.mlp_predict(f, m) = label) AS sgd_correct
FROM groups3, (SELECT segment.mlp_fit(f, label, '{"seed": 1, "optimizer": "sgd", "lr": 0.05, "batch_norm": false,
                                                 "dropout": 0, "epochs": 80, "hidden": [8]}') AS m FROM groups3) t
WHERE f IS NOT NULL AND label IS NOT NULL;

-- errors
SELECT segment.mlp_fit(f, label, '{"colour": 1}') FROM groups3;
SELECT segment.mlp_fit(f, label, '{"dropout": 1.5}') FROM groups3;
SELECT segment.mlp_fit(f, label, '{"hidden": 3}') FROM groups3;
SELECT segment.mlp_fit(f, label, '{"optimizer": "rmsprop"}') FROM groups3;
SELECT segment.mlp_fit(f, 1) FROM groups3;
SELECT segment.mlp_fit(f, label) IS NULL AS no_rows FROM groups3 WHERE false;
SELECT segment.mlp_predict('{1,2}', :'mlp'::segment.model);
SELECT segment.mlp_predict('{1,2,NaN}', :'mlp'::segment.model);
SELECT segment.mlp_predict('{1,2}', segment.kmeans_model('{{1,2}}'));

-- autoencoder_fit: 4 features that are functions of one number compress to a 1-wide code
CREATE TABLE curve AS
SELECT i, ARRAY[t, 2 * t + 1, sin(t), t * t / 4] AS f
FROM (SELECT i, (i % 100) / 25.0 - 2 AS t FROM generate_series(1, 1000) i) s;
SELECT segment.autoencoder_fit(f, '{"seed": 2, "code_size": 1, "hidden": [16], "epochs": 150, "code_activation": "tanh"}') AS ae
FROM curve \gset
SELECT segment.model_kind(:'ae'::segment.model) AS kind,
       (m ->> 'reconstruction_error')::float8 < 0.05 AS reconstructs, m -> 'code_size' AS code_size,
       m -> 'train_rows' AS train_rows, m -> 'validation_rows' AS validation_rows
FROM (SELECT segment.model_info(:'ae'::segment.model) -> 'metrics' AS m) t;
SELECT cardinality(segment.encode(f, :'ae'::segment.model)) AS code_width,
       cardinality(segment.reconstruct(f, :'ae'::segment.model)) AS output_width
FROM curve WHERE i = 7;
SELECT segment.model_send(segment.autoencoder_fit(f, '{"seed": 2, "code_size": 1, "hidden": [16], "epochs": 150, "code_activation": "tanh"}'))
       = segment.model_send(:'ae'::segment.model) AS deterministic FROM curve;
-- deep k-means: k-means on the codes
SELECT segment.model_info(segment.kmeans_fit(segment.encode(f, :'ae'::segment.model), 3, '{"seed": 1}')) ->> 'k' AS k
FROM curve;
SELECT segment.autoencoder_fit(f, '{"code": 2}') FROM curve;
SELECT segment.autoencoder_fit(f, '{"code_activation": "relu"}') FROM curve;
SELECT segment.encode('{1,2}', :'ae'::segment.model);
SELECT segment.encode('{1,2}', segment.kmeans_model('{{1,2}}'));
SELECT segment.reconstruct('{1,2,3,4}', :'mlp'::segment.model);

-- a parallel plan (forced) trains the same network as a serial one: rows are put in canonical order
SELECT segment.mlp_fit(f, label, '{"seed": 5, "epochs": 3, "hidden": [8]}') AS serial FROM groups3 \gset
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
ALTER FUNCTION segment.rows_combinefn(segment.rows_state, segment.rows_state) COST 1;
EXPLAIN (COSTS OFF) SELECT segment.mlp_fit(f, label, '{"seed": 5, "epochs": 3, "hidden": [8]}') FROM groups3;
SELECT segment.model_send(segment.mlp_fit(f, label, '{"seed": 5, "epochs": 3, "hidden": [8]}'))
       = segment.model_send(:'serial'::segment.model) AS parallel_equals_serial FROM groups3;
ALTER FUNCTION segment.rows_combinefn(segment.rows_state, segment.rows_state) COST 5000000;
RESET ALL;
-- training stops at statement_timeout, and the backend stays usable
CREATE TABLE many_rows AS SELECT i, ARRAY[sin(i), cos(i), sin(i * 1.3)] AS f, i % 4 AS label
FROM generate_series(1, 50000) i;
SET statement_timeout = '300ms';
SELECT segment.mlp_fit(f, label, '{"epochs": 100000, "patience": 100000}') FROM many_rows;
RESET statement_timeout;
SELECT count(*) AS usable FROM many_rows;
