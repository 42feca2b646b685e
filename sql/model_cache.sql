-- The per-backend model cache: a stored model is decoded once for many rows
-- and statements, and a new version is picked up by the next statement.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END$$;
CREATE TABLE pts AS
    SELECT i, ARRAY[(i % 10)::float8, (i % 7)::float8] AS f FROM generate_series(1, 5000) i;

SELECT segment.register_model('cache', segment.kmeans_model('{{0,0},{10,10}}')) AS version;
SELECT * FROM segment.model_cache_stats();

-- 5000 rows: one catalog lookup, one decode
SELECT segment.kmeans_assign(f, 'cache') AS seg, count(*) FROM pts GROUP BY 1 ORDER BY 1;
SELECT entries, lookups, decodes, hits FROM segment.model_cache_stats();

-- the next statement looks the name up again and reuses the decoded model
SELECT count(*) FILTER (WHERE segment.kmeans_assign(f, 'cache') = 2) AS near_ten FROM pts;
SELECT entries, lookups, decodes, hits FROM segment.model_cache_stats();

-- two call sites in one statement: one lookup each, no new decode
SELECT count(*) FILTER (WHERE segment.kmeans_assign(f, 'cache') = 1) AS near_zero,
       sum(array_length(segment.kmeans_distances(f, 'cache'), 1)) AS distances
FROM pts;
SELECT entries, lookups, decodes, hits FROM segment.model_cache_stats();

-- a new version: the next statement sees it and decodes it once
SELECT segment.register_model('cache', segment.kmeans_model('{{0,0},{10,10},{5,3}}')) AS version;
SELECT segment.kmeans_assign(f, 'cache') AS seg, count(*) FROM pts GROUP BY 1 ORDER BY 1;
SELECT entries, lookups, decodes, hits FROM segment.model_cache_stats();

-- replacing a stored row in place (same version) is detected through its xmin
UPDATE segment.models SET model = segment.kmeans_model('{{100,100},{0,0},{10,10}}')
WHERE name = 'cache' AND version = 2;
SELECT segment.kmeans_assign(f, 'cache') AS seg, count(*) FROM pts GROUP BY 1 ORDER BY 1;
SELECT entries, lookups, decodes, hits FROM segment.model_cache_stats();

-- a rolled-back version is never seen
BEGIN;
SELECT segment.register_model('cache', segment.kmeans_model('{{1,1}}')) AS version;
SELECT DISTINCT segment.kmeans_assign(f, 'cache') AS seg FROM pts;
ROLLBACK;
SELECT count(DISTINCT segment.kmeans_assign(f, 'cache')) AS segments FROM pts;

-- the cache is bounded: with room for one entry, the unpinned one is evicted
SELECT segment.register_model('cache2', segment.kmeans_model('{{1,1}}')) AS version;
SET segment.model_cache_entries = 1;
SELECT count(*) FROM pts WHERE segment.kmeans_assign(f, 'cache2') = 1;
SELECT entries FROM segment.model_cache_stats();
-- two models in use by one statement are both kept while it runs
SELECT count(*) FROM pts WHERE segment.kmeans_assign(f, 'cache2') = segment.kmeans_assign(f, 'cache');
RESET segment.model_cache_entries;

-- errors
SELECT segment.kmeans_assign('{1,2}', 'no_such_model');
SELECT segment.kmeans_assign('{1,2,3}', 'cache');
SELECT pg_temp.sqlstate_of($$SELECT segment.kmeans_assign('{1,2}', 'no_such_model')$$) AS missing;
SELECT segment.kmeans_assign(NULL, 'cache') IS NULL AS null_row;
-- an error mid-statement leaves the cache usable
SELECT segment.kmeans_assign(CASE WHEN i = 4000 THEN '{1}' ELSE f END, 'cache') FROM pts;
SELECT count(*) FROM pts WHERE segment.kmeans_assign(f, 'cache') > 0;
DELETE FROM segment.models WHERE name IN ('cache', 'cache2');
