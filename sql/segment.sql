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
