-- segment 0.1.0: customer segmentation and personalization inside PostgreSQL.
-- Full install script; the source of truth.  Objects live in schema segment.

\echo Use "CREATE EXTENSION segment" to load this file. \quit

GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;

---------------------------------------------------------------------------
-- The model type
---------------------------------------------------------------------------

CREATE TYPE @extschema@.model;

CREATE FUNCTION @extschema@.model_in(cstring) RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_model_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.model_out(@extschema@.model) RETURNS cstring
    AS 'MODULE_PATHNAME', 'seg_model_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.model_recv(internal) RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_model_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.model_send(@extschema@.model) RETURNS bytea
    AS 'MODULE_PATHNAME', 'seg_model_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Doubles do not compress; external storage keeps reads cheap.
CREATE TYPE @extschema@.model (
    INPUT = @extschema@.model_in,
    OUTPUT = @extschema@.model_out,
    RECEIVE = @extschema@.model_recv,
    SEND = @extschema@.model_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = external
);

COMMENT ON TYPE @extschema@.model IS
    'a trained segment model: preprocessing, networks, centroids, recommender data and metrics';
COMMENT ON FUNCTION @extschema@.model_in(cstring) IS 'text input of segment.model (seg1: + base64)';
COMMENT ON FUNCTION @extschema@.model_out(@extschema@.model) IS 'text output of segment.model (seg1: + base64)';
COMMENT ON FUNCTION @extschema@.model_recv(internal) IS 'binary input of segment.model, validated byte by byte';
COMMENT ON FUNCTION @extschema@.model_send(@extschema@.model) IS 'binary output of segment.model (the wire form)';

CREATE FUNCTION @extschema@.model_info(@extschema@.model) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'seg_model_info' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.model_info(@extschema@.model) IS
    'human view of a model: kind, dimensions, features, preprocessing, networks, metrics, sections';

CREATE FUNCTION @extschema@.model_kind(@extschema@.model) RETURNS text
    AS 'MODULE_PATHNAME', 'seg_model_kind' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.model_kind(@extschema@.model) IS
    'kind of a model: kmeans, mlp, autoencoder, recommender or segmenter';

CREATE FUNCTION @extschema@.model_features(@extschema@.model) RETURNS text[]
    AS 'MODULE_PATHNAME', 'seg_model_features' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.model_features(@extschema@.model) IS
    'input column or feature names of a model, NULL when it has none';

CREATE FUNCTION @extschema@.centroids(@extschema@.model) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_model_centroids' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.centroids(@extschema@.model) IS
    'centroids of a model as a k x d array, in the model''s scaled space';

CREATE FUNCTION @extschema@.kmeans_model(
    centroids float8[],
    feature_names text[] DEFAULT NULL,
    scale_offset float8[] DEFAULT NULL,
    scale_factor float8[] DEFAULT NULL,
    metrics jsonb DEFAULT NULL)
    RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_kmeans_model' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_model(float8[], text[], float8[], float8[], jsonb) IS
    'build a k-means model from a k x d centroid array (e.g. scikit-learn cluster_centers_), optional names, scaler and metrics';

---------------------------------------------------------------------------
-- Scoring with a k-means model
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.kmeans_assign(features float8[], model @extschema@.model) RETURNS int
    AS 'MODULE_PATHNAME', 'seg_kmeans_assign' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_assign(float8[], @extschema@.model) IS
    'segment (1..k) of the nearest centroid';

CREATE FUNCTION @extschema@.kmeans_assign(features float8[], model_name text) RETURNS int
    AS 'MODULE_PATHNAME', 'seg_kmeans_assign_by_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_assign(float8[], text) IS
    'segment (1..k) of the nearest centroid of the latest stored version of a model';

CREATE FUNCTION @extschema@.kmeans_distances(features float8[], model @extschema@.model) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_kmeans_distances' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_distances(float8[], @extschema@.model) IS
    'Euclidean distance to each centroid, in the model''s scaled space';

CREATE FUNCTION @extschema@.kmeans_distances(features float8[], model_name text) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_kmeans_distances_by_name' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_distances(float8[], text) IS
    'Euclidean distance to each centroid of the latest stored version of a model';

---------------------------------------------------------------------------
-- The models catalog
---------------------------------------------------------------------------

CREATE TABLE @extschema@.models (
    name          text NOT NULL CHECK (name <> ''),
    version       int NOT NULL CHECK (version > 0),
    kind          text NOT NULL GENERATED ALWAYS AS (@extschema@.model_kind(model)) STORED,
    model         @extschema@.model NOT NULL,
    source        text,          -- relation trained on, as a qualified name
    source_type   text,          -- its row type, as format_type() writes it
    feature_names text[],
    created_at    timestamptz NOT NULL DEFAULT now(),
    created_by    name NOT NULL DEFAULT current_user,
    metrics       jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metrics) = 'object'),
    PRIMARY KEY (name, version)
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.models', '');
COMMENT ON TABLE @extschema@.models IS 'stored models, one row per (name, version); kept by pg_dump';

CREATE VIEW @extschema@.latest_models AS
    SELECT DISTINCT ON (name) *
    FROM @extschema@.models
    ORDER BY name, version DESC;
COMMENT ON VIEW @extschema@.latest_models IS 'the newest version of each stored model';

CREATE FUNCTION @extschema@.register_model(
    name text,
    model @extschema@.model,
    source regclass DEFAULT NULL,
    metrics jsonb DEFAULT NULL)
    RETURNS int
    LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v int;
BEGIN
    IF $1 IS NULL OR $2 IS NULL THEN
        RAISE EXCEPTION 'model name and model must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF $1 = '' THEN
        RAISE EXCEPTION 'model name must not be empty'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF $4 IS NOT NULL AND jsonb_typeof($4) <> 'object' THEN
        RAISE EXCEPTION 'metrics must be a JSON object, not %', jsonb_typeof($4)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- one writer per name at a time, so versions are dense and never collide
    PERFORM pg_advisory_xact_lock(hashtext('segment.models'), hashtext(name));
    SELECT coalesce(max(m.version), 0) + 1 INTO v FROM @extschema@.models m WHERE m.name = $1;
    INSERT INTO @extschema@.models (name, version, model, source, source_type, feature_names, metrics)
    SELECT $1, v, $2, $3::text,
           (SELECT format_type(c.reltype, NULL) FROM pg_class c WHERE c.oid = $3),
           @extschema@.model_features($2),
           coalesce($4, @extschema@.model_info($2) -> 'metrics', '{}'::jsonb);
    RETURN v;
END
$$;
COMMENT ON FUNCTION @extschema@.register_model(text, @extschema@.model, regclass, jsonb) IS
    'store a model as the next version of a name; returns the version';

CREATE FUNCTION @extschema@.get_model(name text, version int DEFAULT NULL)
    RETURNS @extschema@.model
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT m.model FROM @extschema@.models m
    WHERE m.name = $1 AND ($2 IS NULL OR m.version = $2)
    ORDER BY m.version DESC LIMIT 1
$$;
COMMENT ON FUNCTION @extschema@.get_model(text, int) IS
    'a stored model by name, the latest version unless one is given; NULL when absent';

CREATE FUNCTION @extschema@.model_cache_stats(
    OUT entries int, OUT lookups bigint, OUT decodes bigint, OUT hits bigint, OUT bytes bigint)
    AS 'MODULE_PATHNAME', 'seg_model_cache_stats' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION @extschema@.model_cache_stats() IS
    'this backend''s model cache: entries held, catalog lookups, decodes, reuses, bytes held';

---------------------------------------------------------------------------
-- Aggregate state: a bounded, plan-independent sample of rows
---------------------------------------------------------------------------

CREATE TYPE @extschema@.rows_state;

CREATE FUNCTION @extschema@.rows_state_in(cstring) RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_rows_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rows_state_out(@extschema@.rows_state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'seg_rows_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rows_state_recv(internal) RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_rows_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.rows_state_send(@extschema@.rows_state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'seg_rows_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.rows_state (
    INPUT = @extschema@.rows_state_in,
    OUTPUT = @extschema@.rows_state_out,
    RECEIVE = @extschema@.rows_state_recv,
    SEND = @extschema@.rows_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = external
);
COMMENT ON TYPE @extschema@.rows_state IS
    'partial state of row-holding aggregates (kmeans_fit): a seeded bottom-m sample; shipped between parallel workers and Citus nodes';
COMMENT ON FUNCTION @extschema@.rows_state_in(cstring) IS 'text input of segment.rows_state (segr1: + base64), validated';
COMMENT ON FUNCTION @extschema@.rows_state_out(@extschema@.rows_state) IS 'text output of segment.rows_state (segr1: + base64)';
COMMENT ON FUNCTION @extschema@.rows_state_recv(internal) IS 'binary input of segment.rows_state, validated';
COMMENT ON FUNCTION @extschema@.rows_state_send(@extschema@.rows_state) IS 'binary output of segment.rows_state';

CREATE FUNCTION @extschema@.rows_combinefn(@extschema@.rows_state, @extschema@.rows_state)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_rows_combinefn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
    -- A partial state is the rows themselves; the leader copies each one about
    -- four times (tuple queue, slots, merge).  This cost tells the planner so:
    -- with it, a parallel plan is chosen only for tables of several million
    -- rows (the scan and sampling then run in the workers), not where it is slower.
    COST 5000000;
COMMENT ON FUNCTION @extschema@.rows_combinefn(@extschema@.rows_state, @extschema@.rows_state) IS
    'combine function of row-holding aggregates: merge two samples';

---------------------------------------------------------------------------
-- k-means training
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.kmeans_fit_transfn(@extschema@.rows_state, float8[], int)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_kmeans_fit_transfn' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_fit_transfn(@extschema@.rows_state, float8[], int, jsonb)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_kmeans_fit_transfn' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_fit_finalfn(@extschema@.rows_state)
    RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_kmeans_fit_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_fit_transfn(@extschema@.rows_state, float8[], int) IS 'transition function of kmeans_fit';
COMMENT ON FUNCTION @extschema@.kmeans_fit_transfn(@extschema@.rows_state, float8[], int, jsonb) IS 'transition function of kmeans_fit';
COMMENT ON FUNCTION @extschema@.kmeans_fit_finalfn(@extschema@.rows_state) IS 'final function of kmeans_fit: runs k-means';

CREATE AGGREGATE @extschema@.kmeans_fit(features float8[], k int) (
    SFUNC = @extschema@.kmeans_fit_transfn,
    STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn,
    FINALFUNC = @extschema@.kmeans_fit_finalfn,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
CREATE AGGREGATE @extschema@.kmeans_fit(features float8[], k int, options jsonb) (
    SFUNC = @extschema@.kmeans_fit_transfn,
    STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn,
    FINALFUNC = @extschema@.kmeans_fit_finalfn,
    FINALFUNC_MODIFY = READ_WRITE,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.kmeans_fit(float8[], int) IS
    'fit a k-means model (k-means++, Lloyd) on the rows; NULL rows are skipped';
COMMENT ON AGGREGATE @extschema@.kmeans_fit(float8[], int, jsonb) IS
    'fit a k-means model; options: seed, n_init, max_iter, tol, init (k-means++|random), algorithm (lloyd|elkan)';

---------------------------------------------------------------------------
-- k-means refinement: one exact Lloyd pass over all rows
---------------------------------------------------------------------------

CREATE TYPE @extschema@.step_state;

CREATE FUNCTION @extschema@.step_state_in(cstring) RETURNS @extschema@.step_state
    AS 'MODULE_PATHNAME', 'seg_step_state_in' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.step_state_out(@extschema@.step_state) RETURNS cstring
    AS 'MODULE_PATHNAME', 'seg_step_state_out' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.step_state_recv(internal) RETURNS @extschema@.step_state
    AS 'MODULE_PATHNAME', 'seg_step_state_recv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.step_state_send(@extschema@.step_state) RETURNS bytea
    AS 'MODULE_PATHNAME', 'seg_step_state_send' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE @extschema@.step_state (
    INPUT = @extschema@.step_state_in,
    OUTPUT = @extschema@.step_state_out,
    RECEIVE = @extschema@.step_state_recv,
    SEND = @extschema@.step_state_send,
    INTERNALLENGTH = VARIABLE,
    ALIGNMENT = double,
    STORAGE = external
);
COMMENT ON TYPE @extschema@.step_state IS
    'partial state of kmeans_step: the model, per-cluster counts and sums';
COMMENT ON FUNCTION @extschema@.step_state_in(cstring) IS 'text input of segment.step_state (segp1: + base64), validated';
COMMENT ON FUNCTION @extschema@.step_state_out(@extschema@.step_state) IS 'text output of segment.step_state';
COMMENT ON FUNCTION @extschema@.step_state_recv(internal) IS 'binary input of segment.step_state, validated';
COMMENT ON FUNCTION @extschema@.step_state_send(@extschema@.step_state) IS 'binary output of segment.step_state';

CREATE FUNCTION @extschema@.kmeans_step_transfn(@extschema@.step_state, float8[], @extschema@.model)
    RETURNS @extschema@.step_state
    AS 'MODULE_PATHNAME', 'seg_kmeans_step_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_step_combinefn(@extschema@.step_state, @extschema@.step_state)
    RETURNS @extschema@.step_state
    AS 'MODULE_PATHNAME', 'seg_kmeans_step_combinefn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_step_finalfn(@extschema@.step_state)
    RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_kmeans_step_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_step_transfn(@extschema@.step_state, float8[], @extschema@.model) IS 'transition function of kmeans_step';
COMMENT ON FUNCTION @extschema@.kmeans_step_combinefn(@extschema@.step_state, @extschema@.step_state) IS 'combine function of kmeans_step';
COMMENT ON FUNCTION @extschema@.kmeans_step_finalfn(@extschema@.step_state) IS 'final function of kmeans_step: the new centroids';

CREATE AGGREGATE @extschema@.kmeans_step(features float8[], model @extschema@.model) (
    SFUNC = @extschema@.kmeans_step_transfn,
    STYPE = @extschema@.step_state,
    COMBINEFUNC = @extschema@.kmeans_step_combinefn,
    FINALFUNC = @extschema@.kmeans_step_finalfn,
    PARALLEL = SAFE
);
COMMENT ON AGGREGATE @extschema@.kmeans_step(float8[], @extschema@.model) IS
    'one exact Lloyd iteration of a k-means model over all rows; reports the inertia of the pass';

---------------------------------------------------------------------------
-- Choosing k and judging clusters
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.kmeans_sweep_transfn(@extschema@.rows_state, float8[], int, int)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_kmeans_sweep_transfn' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_sweep_transfn(@extschema@.rows_state, float8[], int, int, jsonb)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_kmeans_sweep_transfn' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.kmeans_sweep_finalfn(@extschema@.rows_state) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'seg_kmeans_sweep_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.kmeans_sweep_transfn(@extschema@.rows_state, float8[], int, int) IS 'transition function of kmeans_sweep';
COMMENT ON FUNCTION @extschema@.kmeans_sweep_transfn(@extschema@.rows_state, float8[], int, int, jsonb) IS 'transition function of kmeans_sweep';
COMMENT ON FUNCTION @extschema@.kmeans_sweep_finalfn(@extschema@.rows_state) IS 'final function of kmeans_sweep';

CREATE AGGREGATE @extschema@.kmeans_sweep(features float8[], k_min int, k_max int) (
    SFUNC = @extschema@.kmeans_sweep_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.kmeans_sweep_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.kmeans_sweep(features float8[], k_min int, k_max int, options jsonb) (
    SFUNC = @extschema@.kmeans_sweep_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.kmeans_sweep_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.kmeans_sweep(float8[], int, int) IS
    'k-means for each k in k_min..k_max with inertia, silhouette, Davies-Bouldin and Calinski-Harabasz, as a jsonb array';
COMMENT ON AGGREGATE @extschema@.kmeans_sweep(float8[], int, int, jsonb) IS
    'k-means for each k in k_min..k_max (kmeans_fit options) with quality metrics, as a jsonb array';

CREATE FUNCTION @extschema@.labeled_rows_transfn(@extschema@.rows_state, float8[], int)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_labeled_rows_transfn' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.labeled_rows_transfn(@extschema@.rows_state, float8[], int, jsonb)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_labeled_rows_transfn' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.silhouette_finalfn(@extschema@.rows_state) RETURNS float8
    AS 'MODULE_PATHNAME', 'seg_silhouette_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.davies_bouldin_finalfn(@extschema@.rows_state) RETURNS float8
    AS 'MODULE_PATHNAME', 'seg_davies_bouldin_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.calinski_harabasz_finalfn(@extschema@.rows_state) RETURNS float8
    AS 'MODULE_PATHNAME', 'seg_calinski_harabasz_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.labeled_rows_transfn(@extschema@.rows_state, float8[], int) IS 'transition function of the cluster-quality aggregates';
COMMENT ON FUNCTION @extschema@.labeled_rows_transfn(@extschema@.rows_state, float8[], int, jsonb) IS 'transition function of silhouette with options';
COMMENT ON FUNCTION @extschema@.silhouette_finalfn(@extschema@.rows_state) IS 'final function of silhouette';
COMMENT ON FUNCTION @extschema@.davies_bouldin_finalfn(@extschema@.rows_state) IS 'final function of davies_bouldin';
COMMENT ON FUNCTION @extschema@.calinski_harabasz_finalfn(@extschema@.rows_state) IS 'final function of calinski_harabasz';

CREATE AGGREGATE @extschema@.silhouette(features float8[], label int) (
    SFUNC = @extschema@.labeled_rows_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.silhouette_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.silhouette(features float8[], label int, options jsonb) (
    SFUNC = @extschema@.labeled_rows_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.silhouette_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.davies_bouldin(features float8[], label int) (
    SFUNC = @extschema@.labeled_rows_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.davies_bouldin_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.calinski_harabasz(features float8[], label int) (
    SFUNC = @extschema@.labeled_rows_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.calinski_harabasz_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.silhouette(float8[], int) IS 'mean silhouette coefficient (Euclidean), exact';
COMMENT ON AGGREGATE @extschema@.silhouette(float8[], int, jsonb) IS 'mean silhouette coefficient; options sample_size and seed';
COMMENT ON AGGREGATE @extschema@.davies_bouldin(float8[], int) IS 'Davies-Bouldin index (lower is better)';
COMMENT ON AGGREGATE @extschema@.calinski_harabasz(float8[], int) IS 'Calinski-Harabasz index (higher is better)';

CREATE FUNCTION @extschema@.label_pairs_transfn(@extschema@.rows_state, int, int)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_label_pairs_transfn' LANGUAGE C STABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.adjusted_rand_finalfn(@extschema@.rows_state) RETURNS float8
    AS 'MODULE_PATHNAME', 'seg_adjusted_rand_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.label_pairs_transfn(@extschema@.rows_state, int, int) IS 'transition function of adjusted_rand';
COMMENT ON FUNCTION @extschema@.adjusted_rand_finalfn(@extschema@.rows_state) IS 'final function of adjusted_rand';
CREATE AGGREGATE @extschema@.adjusted_rand(label_a int, label_b int) (
    SFUNC = @extschema@.label_pairs_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.adjusted_rand_finalfn,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.adjusted_rand(int, int) IS 'adjusted Rand index of two labelings (1 = identical partitions)';
