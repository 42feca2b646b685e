-- Cluster-quality aggregates and kmeans_sweep: values on hand-checked data,
-- NULL handling, errors.  (test/kmeans_sklearn.py checks them against
-- scikit-learn to 1e-9 on larger data.)
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END$$;

-- four points on a line, two tight pairs: {0, 1} and {10, 11}
CREATE TABLE line (f float8[], lab int, other int);
INSERT INTO line VALUES ('{0}', 1, 1), ('{1}', 1, 2), ('{10}', 2, 2), ('{11}', 2, 1);
-- silhouette: a = 1 for every point; b = 10 and 9.5 on average ... (b-a)/b averaged:
-- point 0: b = (10 + 11) / 2 = 10.5 -> 9.5/10.5; point 1: b = 9.5 -> 8.5/9.5; symmetric for 10, 11
SELECT round(segment.silhouette(f, lab)::numeric, 12) AS silhouette,
       round(((9.5 / 10.5 + 8.5 / 9.5) / 2)::numeric, 12) AS by_hand
FROM line;
-- Davies-Bouldin: s = 0.5 per cluster, centroid distance 10 -> (0.5 + 0.5) / 10
SELECT round(segment.davies_bouldin(f, lab)::numeric, 12) AS davies_bouldin FROM line;
-- Calinski-Harabasz: between = 4 * 5^2 = 100 over (k-1) = 1; within = 4 * 0.25 = 1 over (n-k) = 2
SELECT round(segment.calinski_harabasz(f, lab)::numeric, 12) AS calinski_harabasz FROM line;
-- adjusted Rand: identical partitions (any numbering) score 1; this crossing scores -0.5
SELECT segment.adjusted_rand(lab, lab * 7) AS same, round(segment.adjusted_rand(lab, other)::numeric, 12) AS crossed
FROM line;

-- NULL rows and labels are skipped; no rows give NULL
INSERT INTO line VALUES (NULL, 1, 1), ('{5}', NULL, NULL);
SELECT round(segment.silhouette(f, lab)::numeric, 12) AS with_nulls FROM line;
SELECT segment.silhouette(f, lab) IS NULL AS no_rows FROM line WHERE false;
SELECT segment.adjusted_rand(lab, other) IS NULL AS no_rows FROM line WHERE false;

-- a seeded sample for large inputs
SELECT round(segment.silhouette(f, lab, '{"sample_size": 100, "seed": 1}')::numeric, 12) AS sample_bigger_than_data
FROM line;

-- errors
SELECT segment.silhouette(f, 1) FROM line;
SELECT segment.davies_bouldin(f, lab) FROM line WHERE lab = 1;
SELECT segment.calinski_harabasz(f, r) FROM (SELECT f, row_number() OVER ()::int AS r FROM line WHERE f IS NOT NULL) s;
SELECT segment.silhouette(f, lab, '{"sample_size": 1}') FROM line;
SELECT segment.silhouette(f, lab, '{"size": 10}') FROM line;
SELECT segment.silhouette(f, lab) FROM (VALUES ('{1,NaN}'::float8[], 1)) v(f, lab);
SELECT pg_temp.sqlstate_of($$SELECT segment.silhouette(f, 1) FROM line$$) AS one_label,
       pg_temp.sqlstate_of($$SELECT segment.silhouette(f, lab, '{"size": 10}') FROM line$$) AS bad_option;

-- kmeans_sweep: one read of the data, every k in the range
CREATE TABLE three AS
SELECT i, ARRAY[cx + sin(i * 1.7), cy + cos(i * 2.3)] AS f
FROM generate_series(1, 300) i,
     LATERAL (SELECT (ARRAY[0, 10, -10])[i % 3 + 1] AS cx, (ARRAY[0, 10, 10])[i % 3 + 1] AS cy) c;
SELECT r.k, r.inertia < lag(r.inertia) OVER (ORDER BY r.k) AS inertia_falls,
       r.silhouette = max(r.silhouette) OVER () AS best_silhouette,
       r.davies_bouldin = min(r.davies_bouldin) OVER () AS best_davies_bouldin,
       r.calinski_harabasz = max(r.calinski_harabasz) OVER () AS best_calinski_harabasz
FROM (SELECT segment.kmeans_sweep(f, 2, 6, '{"seed": 1}') AS s FROM three) t,
     jsonb_to_recordset(t.s) AS r(k int, inertia float8, silhouette float8, davies_bouldin float8,
                                  calinski_harabasz float8)
ORDER BY r.k;
-- the sweep's metrics are those of kmeans_fit with the same options
SELECT round((s -> 1 ->> 'inertia')::numeric, 6) =
       round((segment.model_info(m) #>> '{metrics,inertia}')::numeric, 6) AS k3_matches_fit
FROM (SELECT segment.kmeans_sweep(f, 2, 4, '{"seed": 1}') AS s, segment.kmeans_fit(f, 3, '{"seed": 1}') AS m
      FROM three) t;
SELECT segment.kmeans_sweep(f, 1, 3) FROM three;
SELECT segment.kmeans_sweep(f, 4, 3) FROM three;
SELECT segment.kmeans_sweep(f, 2, 300) FROM three;
SELECT segment.kmeans_sweep(f, 2, 3) IS NULL AS no_rows FROM three WHERE false;

-- classification_report: per class precision/recall/F1/support, accuracy, macro and weighted
-- averages (class 1 is predicted but never actual; NULL pairs are skipped)
SELECT jsonb_pretty(segment.classification_report(a, p))
FROM (VALUES (0, 0), (0, 2), (1, 1), (2, 1), (2, 2), (2, 2), (3, NULL), (NULL, 1)) v(a, p);
SELECT segment.classification_report(a, p) IS NULL AS no_rows FROM (VALUES (1, 1)) v(a, p) WHERE false;
