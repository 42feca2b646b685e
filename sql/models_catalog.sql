-- segment.models: versions, the latest version, generated kind, provenance,
-- errors, and privileges.
CREATE FUNCTION pg_temp.sqlstate_of(q text) RETURNS text LANGUAGE plpgsql AS
$$BEGIN EXECUTE q; RETURN 'ok'; EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE; END$$;

CREATE TABLE customers (id int PRIMARY KEY, income float8, score float8);

-- versions are numbered per name from 1
SELECT segment.register_model('mall', segment.kmeans_model('{{1,2},{3,4}}', '{income,score}'),
                              'customers') AS v1;
SELECT segment.register_model('mall', segment.kmeans_model('{{1,2},{3,4},{5,6}}', '{income,score}',
                              metrics => '{"inertia": 3.5}'), 'customers') AS v2;
SELECT segment.register_model('other', segment.kmeans_model('{{0}}'), metrics => '{"note": "manual"}') AS v1;

SELECT name, version, kind, source, source_type, feature_names, metrics, created_by = current_user AS by_me,
       created_at <= now() AS created_at
FROM segment.models WHERE name IN ('mall', 'other') ORDER BY name, version;

-- the latest version of a name
SELECT name, version FROM segment.latest_models WHERE name IN ('mall', 'other') ORDER BY name;
SELECT segment.model_info(segment.get_model('mall')) -> 'k' AS latest_k,
       segment.model_info(segment.get_model('mall', 1)) -> 'k' AS v1_k,
       segment.get_model('mall', 7) IS NULL AS missing_version,
       segment.get_model('nobody') IS NULL AS missing_name;

-- the kind is derived from the model and cannot be set by hand
INSERT INTO segment.models (name, version, kind, model) VALUES ('x', 1, 'mlp', segment.kmeans_model('{{1}}'));
-- a stored model is a value like any other: score by joining the catalog
SELECT c.id, segment.kmeans_assign(ARRAY[c.income, c.score], m.model) AS seg
FROM (VALUES (1, 1.0, 2.0), (2, 5.0, 6.1)) c(id, income, score)
JOIN segment.latest_models m ON m.name = 'mall' ORDER BY c.id;

-- errors
SELECT segment.register_model(NULL, segment.kmeans_model('{{1}}'));
SELECT segment.register_model('', segment.kmeans_model('{{1}}'));
SELECT segment.register_model('bad', segment.kmeans_model('{{1}}'), metrics => '[1]');
SELECT segment.register_model('bad', segment.kmeans_model('{{1}}'), 'no_such_table');
INSERT INTO segment.models (name, version, model) VALUES ('mall', 1, segment.kmeans_model('{{1}}'));
SELECT pg_temp.sqlstate_of($$SELECT segment.register_model(NULL, segment.kmeans_model('{{1}}'))$$) AS null_name,
       pg_temp.sqlstate_of($$SELECT segment.register_model('', segment.kmeans_model('{{1}}'))$$) AS empty_name,
       pg_temp.sqlstate_of($$SELECT segment.register_model('bad', segment.kmeans_model('{{1}}'), metrics => '[1]')$$) AS bad_metrics,
       pg_temp.sqlstate_of($$INSERT INTO segment.models (name, version, model) VALUES ('mall', 1, segment.kmeans_model('{{1}}'))$$) AS duplicate;

-- privileges: reading models needs SELECT on segment.models, training needs INSERT
CREATE ROLE regress_segment_reader;
CREATE ROLE regress_segment_nobody;
GRANT SELECT ON segment.models TO regress_segment_reader;
SET ROLE regress_segment_nobody;
SELECT segment.kmeans_assign('{1,2}', 'mall');
SELECT pg_temp.sqlstate_of($$SELECT segment.get_model('mall')$$) AS nobody_reads;
RESET ROLE;
SET ROLE regress_segment_reader;
SELECT segment.kmeans_assign('{5,6}', 'mall') AS reader_scores;
SELECT pg_temp.sqlstate_of($$SELECT segment.register_model('mall', segment.kmeans_model('{{1}}'))$$) AS reader_trains;
RESET ROLE;
REVOKE SELECT ON segment.models FROM regress_segment_reader;
DROP ROLE regress_segment_reader;
DROP ROLE regress_segment_nobody;
DELETE FROM segment.models WHERE name IN ('mall', 'other');
