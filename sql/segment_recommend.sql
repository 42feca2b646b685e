
---------------------------------------------------------------------------
-- Personalization: the hybrid recommender (implicit ALS, item-item, popularity)
---------------------------------------------------------------------------

CREATE TYPE @extschema@.interactions;

CREATE FUNCTION @extschema@.interactions_in(cstring) RETURNS @extschema@.interactions
    AS 'MODULE_PATHNAME', 'seg_interactions_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.interactions_out(@extschema@.interactions) RETURNS cstring
    AS 'MODULE_PATHNAME', 'seg_interactions_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.interactions_recv(internal) RETURNS @extschema@.interactions
    AS 'MODULE_PATHNAME', 'seg_interactions_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.interactions_send(@extschema@.interactions) RETURNS bytea
    AS 'MODULE_PATHNAME', 'seg_interactions_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.interactions (
    INPUT = @extschema@.interactions_in,
    OUTPUT = @extschema@.interactions_out,
    RECEIVE = @extschema@.interactions_recv,
    SEND = @extschema@.interactions_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = external
);
COMMENT ON TYPE @extschema@.interactions IS
    'partial state of recommender_fit: (user, item, weight [, segment]) rows with interned text ids; shipped between parallel workers and Citus nodes';
COMMENT ON FUNCTION @extschema@.interactions_in(cstring) IS 'text input of segment.interactions (segp1: + base64), validated';
COMMENT ON FUNCTION @extschema@.interactions_out(@extschema@.interactions) IS 'text output of segment.interactions (segp1: + base64)';
COMMENT ON FUNCTION @extschema@.interactions_recv(internal) IS 'binary input of segment.interactions, validated';
COMMENT ON FUNCTION @extschema@.interactions_send(@extschema@.interactions) IS 'binary output of segment.interactions';

CREATE FUNCTION @extschema@.recommender_fit_transfn(@extschema@.interactions, anyelement, anycompatible, float8)
    RETURNS @extschema@.interactions
    AS 'MODULE_PATHNAME', 'seg_interactions_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommender_fit_transfn(@extschema@.interactions, anyelement, anycompatible, float8, jsonb)
    RETURNS @extschema@.interactions
    AS 'MODULE_PATHNAME', 'seg_interactions_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommender_fit_transfn(@extschema@.interactions, anyelement, anycompatible, float8, int, jsonb)
    RETURNS @extschema@.interactions
    AS 'MODULE_PATHNAME', 'seg_interactions_segment_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.recommender_fit_combinefn(@extschema@.interactions, @extschema@.interactions)
    RETURNS @extschema@.interactions
    AS 'MODULE_PATHNAME', 'seg_interactions_combinefn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
    -- as rows_combinefn: a partial state is the rows, copied several times by the leader
    COST 5000000;
CREATE FUNCTION @extschema@.recommender_fit_finalfn(@extschema@.interactions) RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_recommender_fit_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.recommender_fit_transfn(@extschema@.interactions, anyelement, anycompatible, float8) IS 'transition function of recommender_fit';
COMMENT ON FUNCTION @extschema@.recommender_fit_transfn(@extschema@.interactions, anyelement, anycompatible, float8, jsonb) IS 'transition function of recommender_fit';
COMMENT ON FUNCTION @extschema@.recommender_fit_transfn(@extschema@.interactions, anyelement, anycompatible, float8, int, jsonb) IS 'transition function of recommender_fit with the user''s segment';
COMMENT ON FUNCTION @extschema@.recommender_fit_combinefn(@extschema@.interactions, @extschema@.interactions) IS 'combine function of recommender_fit';
COMMENT ON FUNCTION @extschema@.recommender_fit_finalfn(@extschema@.interactions) IS 'final function of recommender_fit: ALS, item neighbours, popularity';

CREATE AGGREGATE @extschema@.recommender_fit(user_id anyelement, item_id anycompatible, weight float8) (
    SFUNC = @extschema@.recommender_fit_transfn, STYPE = @extschema@.interactions,
    COMBINEFUNC = @extschema@.recommender_fit_combinefn, FINALFUNC = @extschema@.recommender_fit_finalfn,
    PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.recommender_fit(user_id anyelement, item_id anycompatible, weight float8, options jsonb) (
    SFUNC = @extschema@.recommender_fit_transfn, STYPE = @extschema@.interactions,
    COMBINEFUNC = @extschema@.recommender_fit_combinefn, FINALFUNC = @extschema@.recommender_fit_finalfn,
    PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.recommender_fit(user_id anyelement, item_id anycompatible, weight float8,
                                             segment int, options jsonb) (
    SFUNC = @extschema@.recommender_fit_transfn, STYPE = @extschema@.interactions,
    COMBINEFUNC = @extschema@.recommender_fit_combinefn, FINALFUNC = @extschema@.recommender_fit_finalfn,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.recommender_fit(anyelement, anycompatible, float8) IS
    'fit a hybrid recommender (implicit ALS, item-item cosine, popularity) on (user, item, weight) rows';
COMMENT ON AGGREGATE @extschema@.recommender_fit(anyelement, anycompatible, float8, jsonb) IS
    'fit a hybrid recommender (implicit ALS, item-item cosine, popularity) on (user, item, weight) rows';
COMMENT ON AGGREGATE @extschema@.recommender_fit(anyelement, anycompatible, float8, int, jsonb) IS
    'fit a hybrid recommender with each user''s segment (popularity per segment for cold start)';

CREATE FUNCTION @extschema@.recommend(user_id anyelement, n int DEFAULT 10, model text DEFAULT NULL,
                                      include_owned boolean DEFAULT false)
    RETURNS TABLE (item_id text, score float8, reason text)
    AS 'MODULE_PATHNAME', 'seg_recommend' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend(anyelement, int, text, boolean) IS
    'the n best items for a user by a stored recommender (the only one stored when model is NULL), with a reason each';

CREATE FUNCTION @extschema@.similar_items(item anyelement, n int DEFAULT 10, model text DEFAULT NULL)
    RETURNS TABLE (item_id text, score float8)
    AS 'MODULE_PATHNAME', 'seg_similar_items' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.similar_items(anyelement, int, text) IS
    'the items most often bought by the same customers (cosine), best first';

CREATE FUNCTION @extschema@.recommend_for_segment(segment int, n int DEFAULT 10, model text DEFAULT NULL)
    RETURNS TABLE (item_id text, score float8)
    AS 'MODULE_PATHNAME', 'seg_recommend_for_segment' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE ROWS 10;
COMMENT ON FUNCTION @extschema@.recommend_for_segment(int, int, text) IS
    'the items most popular in a customer segment (share of its customers who bought them)';

CREATE FUNCTION @extschema@.recommend_items(model @extschema@.model, user_id anyelement, n int,
                                            method text DEFAULT 'hybrid')
    RETURNS text[]
    AS 'MODULE_PATHNAME', 'seg_recommend_items' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.recommend_items(@extschema@.model, anyelement, int, text) IS
    'the top n item ids for a user by one method (hybrid, als, item_item, popularity) of a model value';

-- Train a named recommender on a purchases table; with options.segments the
-- users are the rows of a segmented table, and popularity is kept per segment.
CREATE FUNCTION @extschema@.train_recommender(name text, source regclass, user_col text, item_col text,
                                              weight_col text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    opts jsonb := coalesce(options, '{}');
    seg jsonb := opts -> 'segments';
    fit_opts jsonb := opts - 'segments';
    w text := '1.0';
    seg_name text;
    seg_version int;
    seg_model @extschema@.model;
    seg_source regclass;
    seg_key text;
    mdl @extschema@.model;
    info jsonb;
    v int;
BEGIN
    IF name IS NULL OR source IS NULL OR user_col IS NULL OR item_col IS NULL THEN
        RAISE EXCEPTION 'name, source, user_col and item_col must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF jsonb_typeof(opts) <> 'object' THEN
        RAISE EXCEPTION 'options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM 1 FROM unnest(ARRAY[user_col, item_col, weight_col]) c(col)
        WHERE c.col IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM pg_attribute a WHERE a.attrelid = source AND a.attname = c.col
              AND a.attnum > 0 AND NOT a.attisdropped);
    IF FOUND THEN
        RAISE EXCEPTION 'source % lacks one of the columns %, %, %', source, user_col, item_col,
                        coalesce(weight_col, '(no weight)')
            USING ERRCODE = 'undefined_column';
    END IF;
    IF weight_col IS NOT NULL THEN
        w := format('(p.%I)::float8', weight_col);
    END IF;
    IF seg IS NULL THEN
        EXECUTE format('SELECT @extschema@.recommender_fit(p.%I, p.%I, %s, $1) FROM %s p',
                       user_col, item_col, w, source)
            INTO mdl USING fit_opts;
    ELSE
        IF jsonb_typeof(seg) <> 'object' OR seg ->> 'model' IS NULL THEN
            RAISE EXCEPTION 'option "segments" must be an object naming a segmentation model: {"model": "name"}'
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        seg_name := seg ->> 'model';
        SELECT m.version, m.model, to_regclass(m.source) INTO seg_version, seg_model, seg_source
            FROM @extschema@.models m
            WHERE m.name = seg_name AND m.kind = 'segmenter'
            ORDER BY m.version DESC LIMIT 1;
        IF seg_model IS NULL THEN
            RAISE EXCEPTION 'no segment.train() model named "%"', seg_name
                USING ERRCODE = 'undefined_object';
        END IF;
        IF seg_source IS NULL THEN
            RAISE EXCEPTION 'the table segmentation model "%" was trained on no longer exists', seg_name
                USING ERRCODE = 'undefined_table';
        END IF;
        seg_key := coalesce(seg ->> 'key', user_col);
        EXECUTE format('SELECT @extschema@.recommender_fit(p.%I, p.%I, %s, s.segment, $1) FROM %s p '
                       'LEFT JOIN (SELECT c.%I AS key, @extschema@.segment_of(c, $2) AS segment FROM %s c) s '
                       'ON s.key = p.%I',
                       user_col, item_col, w, source, seg_key, seg_source, user_col)
            INTO mdl USING fit_opts, seg_model;
    END IF;
    IF mdl IS NULL THEN
        RAISE EXCEPTION 'source % has no (user, item) rows to train on', source
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    info := @extschema@.model_info(mdl) -> 'metrics';
    IF seg IS NOT NULL THEN
        info := info || jsonb_build_object('segments', jsonb_build_object(
            'model', seg_name, 'version', seg_version, 'source', seg_source::text, 'key', seg_key));
    END IF;
    v := @extschema@.register_model(name, mdl, source, info);
    RETURN jsonb_build_object('name', name, 'version', v) ||
           (info - 'options' - 'density');
END
$fn$;
COMMENT ON FUNCTION @extschema@.train_recommender(text, regclass, text, text, text, jsonb) IS
    'train a new version of a named recommender on a purchases table (optionally aware of customer segments)';

-- Judge a recommender before using it: train on rows before cutoff, then
-- for each of those users compare the top k with the items they bought
-- later and had not bought before.
CREATE FUNCTION @extschema@.evaluate_recommender(source regclass, user_col text, item_col text, time_col text,
                                                 cutoff timestamptz, k int DEFAULT 10,
                                                 weight_col text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (method text, users bigint, precision_at_k float8, recall_at_k float8,
               hit_rate_at_k float8, ndcg_at_k float8, coverage float8)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    w text := CASE WHEN weight_col IS NULL THEN '1.0' ELSE format('(p.%I)::float8', weight_col) END;
    mdl @extschema@.model;
    n_items int;
BEGIN
    IF source IS NULL OR user_col IS NULL OR item_col IS NULL OR time_col IS NULL OR cutoff IS NULL OR k IS NULL THEN
        RAISE EXCEPTION 'source, user_col, item_col, time_col, cutoff and k must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF k < 1 THEN
        RAISE EXCEPTION 'k must be 1 or more, got %', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    EXECUTE format('SELECT @extschema@.recommender_fit(p.%I, p.%I, %s, $1) FROM %s p WHERE p.%I < $2',
                   user_col, item_col, w, source, time_col)
        INTO mdl USING coalesce(options, '{}'), cutoff;
    IF mdl IS NULL THEN
        RAISE EXCEPTION 'no rows of % before %', source, cutoff USING ERRCODE = 'invalid_parameter_value';
    END IF;
    n_items := (@extschema@.model_info(mdl) -> 'recommender' ->> 'items')::int;
    RETURN QUERY EXECUTE format($q$
        WITH train AS (SELECT DISTINCT p.%1$I::text AS u, p.%2$I::text AS i FROM %3$s p WHERE p.%4$I < $1
                         AND p.%1$I IS NOT NULL AND p.%2$I IS NOT NULL),
             later AS (SELECT DISTINCT p.%1$I::text AS u, p.%2$I::text AS i FROM %3$s p WHERE p.%4$I >= $1
                         AND p.%1$I IS NOT NULL AND p.%2$I IS NOT NULL),
             targets AS (SELECT l.u, array_agg(l.i) AS items FROM later l
                         WHERE l.u IN (SELECT t.u FROM train t)
                           AND NOT EXISTS (SELECT 1 FROM train t WHERE t.u = l.u AND t.i = l.i)
                         GROUP BY l.u),
             recs AS (SELECT m.method, t.items AS target,
                             @extschema@.recommend_items($2, t.u, $3, m.method) AS rec
                      FROM targets t,
                           (VALUES ('hybrid'), ('als'), ('item_item'), ('popularity')) m(method)),
             scored AS (SELECT r.method, r.rec, cardinality(r.target) AS nt,
                               (SELECT count(*) FROM unnest(r.rec) x WHERE x = ANY (r.target)) AS hits,
                               (SELECT coalesce(sum(1 / log(2, o + 1)), 0) FROM unnest(r.rec) WITH ORDINALITY x(i, o)
                                 WHERE x.i = ANY (r.target)) AS dcg,
                               (SELECT sum(1 / log(2, o + 1)) FROM generate_series(1, least($3, cardinality(r.target))) o) AS idcg
                        FROM recs r)
        SELECT s.method, count(*), avg(s.hits::float8 / $3), avg(s.hits::float8 / s.nt),
               avg((s.hits > 0)::int::float8), avg((s.dcg / s.idcg)::float8),
               (SELECT count(DISTINCT x) FROM scored s2, unnest(s2.rec) x WHERE s2.method = s.method)::float8 / $4
        FROM scored s GROUP BY s.method
        ORDER BY array_position(ARRAY['hybrid', 'als', 'item_item', 'popularity'], s.method)
        $q$, user_col, item_col, source, time_col)
        USING cutoff, mdl, k, n_items;
END
$fn$;
COMMENT ON FUNCTION @extschema@.evaluate_recommender(regclass, text, text, text, timestamptz, int, text, jsonb) IS
    'precision, recall, hit rate, NDCG at k and catalogue coverage of the hybrid recommender and of ALS, item-item and popularity alone, on a time split';
