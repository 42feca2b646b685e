
---------------------------------------------------------------------------
-- The train() pipeline: a customers table in, segment_of(row) out
---------------------------------------------------------------------------

-- Count, mean and population variance of a float8 column, independent of row order
-- (sums in double-double); train() standardises with them.
CREATE FUNCTION @extschema@.moments_transfn(float8[], float8) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_moments_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.moments_combinefn(float8[], float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_moments_combinefn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.moments_finalfn(float8[]) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_moments_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE AGGREGATE @extschema@.moments(float8) (
    SFUNC = @extschema@.moments_transfn, STYPE = float8[],
    COMBINEFUNC = @extschema@.moments_combinefn, FINALFUNC = @extschema@.moments_finalfn,
    PARALLEL = SAFE);
COMMENT ON FUNCTION @extschema@.moments_transfn(float8[], float8) IS 'transition function of moments';
COMMENT ON FUNCTION @extschema@.moments_combinefn(float8[], float8[]) IS 'combine function of moments';
COMMENT ON FUNCTION @extschema@.moments_finalfn(float8[]) IS 'final function of moments';
COMMENT ON AGGREGATE @extschema@.moments(float8) IS
    '{count, mean, var_pop} of the non-NULL values, the same whatever their order (double-double sums)';

CREATE FUNCTION @extschema@.segmenter_model(columns text[], column_types text[], impute float8[],
                                            categories jsonb, scale_offset float8[], scale_factor float8[],
                                            centroids float8[], segment_labels text[] DEFAULT NULL,
                                            metrics jsonb DEFAULT NULL)
    RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_segmenter_model' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.segmenter_model(text[], text[], float8[], jsonb, float8[], float8[], float8[], text[], jsonb) IS
    'a train() pipeline model from SQL values: columns, their kinds, NULL replacements, one-hot categories, scaler, centroids';

CREATE FUNCTION @extschema@.segmenter_attach(base @extschema@.model, autoencoder @extschema@.model,
                                             centroids float8[], classifier @extschema@.model)
    RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_segmenter_attach' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.segmenter_attach(@extschema@.model, @extschema@.model, float8[], @extschema@.model) IS
    'a segmenter with an autoencoder''s encoder (centroids in its code space) and/or an mlp classifier deciding the segment';

-- segment_of(c) on the whole row of a table is planned as segment_of_columns*(row type, [model,]
-- c.col1, c.col2, ...): no composite datum per row (segment_of_support, src/segment_of_support.c)
CREATE FUNCTION @extschema@.segment_of_support(internal) RETURNS internal
    AS 'MODULE_PATHNAME', 'seg_segment_of_support' LANGUAGE C STRICT;
CREATE FUNCTION @extschema@.segment_of_columns(row_type regtype, VARIADIC "any") RETURNS int
    AS 'MODULE_PATHNAME', 'seg_segment_of_columns' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_of_columns_named(row_type regtype, model text, VARIADIC "any") RETURNS int
    AS 'MODULE_PATHNAME', 'seg_segment_of_columns_named' LANGUAGE C STABLE PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_of_columns_model(row_type regtype, model @extschema@.model, VARIADIC "any") RETURNS int
    AS 'MODULE_PATHNAME', 'seg_segment_of_columns_model' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.segment_of_columns(regtype, "any") IS
    'segment_of(row) on a row passed column by column (what the planner makes of segment_of(c))';
COMMENT ON FUNCTION @extschema@.segment_of_columns_named(regtype, text, "any") IS
    'segment_of(row, name) on a row passed column by column';
COMMENT ON FUNCTION @extschema@.segment_of_columns_model(regtype, @extschema@.model, "any") IS
    'segment_of(row, model) on a row passed column by column';

-- the model as a value: IMMUTABLE, decoded once per call site (joins with the catalog, Citus)
CREATE FUNCTION @extschema@.segment_features(customer anyelement, model @extschema@.model) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_segment_features' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_of(customer anyelement, model @extschema@.model) RETURNS int
    AS 'MODULE_PATHNAME', 'seg_segment_of' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE
    SUPPORT @extschema@.segment_of_support;
CREATE FUNCTION @extschema@.segment_distances(customer anyelement, model @extschema@.model) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_segment_distances' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_label(customer anyelement, model @extschema@.model) RETURNS text
    AS 'MODULE_PATHNAME', 'seg_segment_label' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
-- by name: the latest version, through the per-backend model cache
CREATE FUNCTION @extschema@.segment_of(customer anyelement, model text) RETURNS int
    AS 'MODULE_PATHNAME', 'seg_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE
    SUPPORT @extschema@.segment_of_support;
CREATE FUNCTION @extschema@.segment_distances(customer anyelement, model text) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_segment_distances' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_label(customer anyelement, model text) RETURNS text
    AS 'MODULE_PATHNAME', 'seg_segment_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
-- by row type: the one model trained on this row's table
CREATE FUNCTION @extschema@.segment_of(customer anyelement) RETURNS int
    AS 'MODULE_PATHNAME', 'seg_segment_of' LANGUAGE C STABLE STRICT PARALLEL SAFE
    SUPPORT @extschema@.segment_of_support;
CREATE FUNCTION @extschema@.segment_distances(customer anyelement) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_segment_distances' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_label(customer anyelement) RETURNS text
    AS 'MODULE_PATHNAME', 'seg_segment_label' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.segment_features(anyelement, @extschema@.model) IS
    'the encoded, scaled features of a row, as the model sees them';
COMMENT ON FUNCTION @extschema@.segment_of(anyelement, @extschema@.model) IS 'the segment (1..k) of a row';
COMMENT ON FUNCTION @extschema@.segment_of(anyelement, text) IS 'the segment (1..k) of a row, latest version of the named model';
COMMENT ON FUNCTION @extschema@.segment_of(anyelement) IS 'the segment (1..k) of a row, with the model trained on its table';
COMMENT ON FUNCTION @extschema@.segment_distances(anyelement, @extschema@.model) IS 'distance of a row to each centroid';
COMMENT ON FUNCTION @extschema@.segment_distances(anyelement, text) IS 'distance of a row to each centroid';
COMMENT ON FUNCTION @extschema@.segment_distances(anyelement) IS 'distance of a row to each centroid';
COMMENT ON FUNCTION @extschema@.segment_label(anyelement, @extschema@.model) IS 'the label of a row''s segment';
COMMENT ON FUNCTION @extschema@.segment_label(anyelement, text) IS 'the label of a row''s segment';
COMMENT ON FUNCTION @extschema@.segment_label(anyelement) IS 'the label of a row''s segment';

-- Readable segment labels from the most distinctive features (|z| >= 0.5, at most 3):
-- "high spend", "low visits", "active" / "not active", "plan pro" (a category over-represented).
CREATE FUNCTION @extschema@.segment_labels_for(centroids float8[], scale_offset float8[], scale_factor float8[],
                                               feature_mean float8[], feature_std float8[],
                                               features text[], column_types text[], columns text[])
RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH f AS (
        SELECT j, features[j] AS feature,
               -- the column this feature encodes, and its kind
               (SELECT c FROM unnest(columns, column_types) AS u(c, t)
                WHERE features[j] = c OR features[j] LIKE c || '=%' LIMIT 1) AS col,
               (SELECT t FROM unnest(columns, column_types) AS u(c, t)
                WHERE features[j] = c OR features[j] LIKE c || '=%' LIMIT 1) AS kind
        FROM generate_subscripts(features, 1) j),
    z AS (
        SELECT s, f.j, f.feature, f.col, f.kind,
               CASE WHEN feature_std[f.j] > 0
                    THEN (centroids[s][f.j] * scale_factor[f.j] + scale_offset[f.j] - feature_mean[f.j]) / feature_std[f.j]
               END AS z
        FROM generate_subscripts(centroids, 1) s, f),
    words AS (
        SELECT s, z, j,
               CASE kind
                   WHEN 'numeric' THEN CASE WHEN z > 0 THEN 'high ' ELSE 'low ' END || col
                   WHEN 'boolean' THEN CASE WHEN z > 0 THEN col ELSE 'not ' || col END
                   ELSE CASE WHEN feature LIKE '%=(other)' THEN 'other ' || col
                             ELSE col || ' ' || substr(feature, length(col) + 2) END
               END AS word,
               row_number() OVER (PARTITION BY s ORDER BY abs(z) DESC, j) AS rank
        FROM z
        WHERE abs(z) >= 0.5 AND (kind <> 'categorical' OR z > 0)),
    named AS (
        SELECT s, coalesce((SELECT string_agg(w.word, ', ' ORDER BY w.rank) FROM words w
                            WHERE w.s = g.s AND w.rank <= 3), 'average') AS label
        FROM generate_subscripts(centroids, 1) g(s)),
    unique_labels AS (
        SELECT s, label || CASE WHEN count(*) OVER (PARTITION BY label) > 1
                                THEN ' #' || row_number() OVER (PARTITION BY label ORDER BY s) ELSE '' END AS label
        FROM named)
    SELECT array_agg(label ORDER BY s) FROM unique_labels
$$;
COMMENT ON FUNCTION @extschema@.segment_labels_for(float8[], float8[], float8[], float8[], float8[], text[], text[], text[]) IS
    'labels of k segments from their most distinctive features (train() stores them in the model)';

CREATE FUNCTION @extschema@.train(name text, source regclass, features text[] DEFAULT NULL,
                                  k int DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS jsonb
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    opts jsonb := coalesce(options, '{}');
    scaling text := coalesce(opts ->> 'scaling', 'standard');
    max_cats int := coalesce((opts ->> 'max_categories')::int, 10);
    k_min int := coalesce((opts ->> 'k_min')::int, 2);
    k_max int := coalesce((opts ->> 'k_max')::int, 10);
    enc_opts jsonb := opts -> 'encoder';
    cls_opts jsonb := opts -> 'classifier';
    fit_opts jsonb := opts - 'scaling' - 'max_categories' - 'k_min' - 'k_max' - 'encoder' - 'classifier';
    ae @extschema@.model;
    cls @extschema@.model;
    feat_expr text := '@extschema@.segment_features(t, $1)';
    seg_means float8[];
    comparison jsonb;
    plain @extschema@.model;
    col record;
    cols text[] := '{}';
    kinds text[] := '{}';
    impute float8[] := '{}';
    offs float8[] := '{}';
    facs float8[] := '{}';
    fmean float8[] := '{}';     -- per encoded feature, over the training rows (after NULL replacement)
    fstd float8[] := '{}';
    labels text[];
    cats jsonb := '{}';
    agg text := 'count(*)';
    stats jsonb;
    n bigint;
    nn bigint;
    cnt bigint;
    mean float8;
    var float8;
    lo float8;
    hi float8;
    p float8;
    top jsonb;
    topn bigint;
    prep @extschema@.model;
    fitted @extschema@.model;
    sweep jsonb := NULL;
    chosen int := k;
    final @extschema@.model;
    v int;
    m jsonb;
BEGIN
    IF name IS NULL OR name = '' THEN
        RAISE EXCEPTION 'train: the model name must not be empty' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF scaling NOT IN ('standard', 'minmax', 'none') THEN
        RAISE EXCEPTION 'train: scaling must be standard, minmax or none, not %', scaling
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF max_cats < 1 OR max_cats > 1000 THEN
        RAISE EXCEPTION 'train: max_categories must be 1..1000' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF k IS NOT NULL AND k < 1 THEN
        RAISE EXCEPTION 'train: k must be at least 1, got %', k USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF (enc_opts IS NOT NULL AND jsonb_typeof(enc_opts) <> 'object')
       OR (cls_opts IS NOT NULL AND jsonb_typeof(cls_opts) <> 'object') THEN
        RAISE EXCEPTION 'train: options encoder and classifier must be JSON objects (autoencoder_fit and mlp_fit options)'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF features IS NOT NULL AND cardinality(features) = 0 THEN
        RAISE EXCEPTION 'train: features must not be empty (NULL picks them)' USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- the columns: given, or every number, boolean and text column but keys and ids
    FOR col IN
        SELECT a.attname::text AS attname, a.atttypid, t.typtype, a.attnum,
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary
                       AND a.attnum = ANY (i.indkey)) AS is_key,
               ord
        FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
        LEFT JOIN unnest(features) WITH ORDINALITY f(fname, ord) ON f.fname = a.attname
        WHERE a.attrelid = source AND a.attnum > 0 AND NOT a.attisdropped
          AND (features IS NULL OR f.fname IS NOT NULL)
        ORDER BY coalesce(ord, a.attnum)
    LOOP
        IF col.atttypid IN ('int2'::regtype, 'int4'::regtype, 'int8'::regtype, 'float4'::regtype,
                            'float8'::regtype, 'numeric'::regtype) THEN
            kinds := kinds || 'numeric'::text;
        ELSIF col.atttypid = 'bool'::regtype THEN
            kinds := kinds || 'boolean'::text;
        ELSIF col.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype) OR col.typtype = 'e' THEN
            kinds := kinds || 'categorical'::text;
        ELSIF features IS NOT NULL THEN
            RAISE EXCEPTION 'train: column % is of type %, not a number, boolean or text',
                quote_ident(col.attname), col.atttypid::regtype USING ERRCODE = 'datatype_mismatch';
        ELSE
            CONTINUE;
        END IF;
        IF features IS NULL AND (col.is_key OR lower(col.attname) = 'id' OR lower(col.attname) LIKE '%\_id') THEN
            kinds := kinds[1:cardinality(kinds) - 1];
            CONTINUE;
        END IF;
        cols := cols || col.attname;
    END LOOP;
    IF features IS NOT NULL THEN
        FOR i IN 1 .. cardinality(features) LOOP
            IF NOT features[i] = ANY (cols) THEN
                RAISE EXCEPTION 'train: column % does not exist in %', quote_ident(features[i]), source
                    USING ERRCODE = 'undefined_column';
            END IF;
        END LOOP;
    END IF;
    IF cardinality(cols) = 0 THEN
        RAISE EXCEPTION 'train: % has no number, boolean or text column to train on', source
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Key columns and columns named id or *_id are left out; list features to use them.';
    END IF;

    -- one scan for the numbers and booleans
    FOR i IN 1 .. cardinality(cols) LOOP
        IF kinds[i] = 'numeric' THEN
            -- moments() rather than avg()/var_pop(): the same scaler whatever the rows' order on disk
            agg := agg || format(', count(%1$I), (@extschema@.moments(%1$I::float8))[2], (@extschema@.moments(%1$I::float8))[3], min(%1$I)::float8, max(%1$I)::float8', cols[i]);
        ELSIF kinds[i] = 'boolean' THEN
            agg := agg || format(', count(%1$I), count(*) FILTER (WHERE %1$I)', cols[i]);
        END IF;
    END LOOP;
    EXECUTE format('SELECT to_jsonb(ARRAY[%s]::float8[]) FROM %s', agg, source) INTO stats;
    n := (stats ->> 0)::bigint;
    IF n = 0 THEN
        RAISE EXCEPTION 'train: % has no rows', source USING ERRCODE = 'invalid_parameter_value';
    END IF;

    DECLARE
        pos int := 1;
        kept_cols text[] := '{}';
        kept_kinds text[] := '{}';
    BEGIN
        FOR i IN 1 .. cardinality(cols) LOOP
            IF kinds[i] = 'numeric' THEN
                nn := (stats ->> pos)::bigint;
                mean := (stats ->> (pos + 1))::float8;
                var := coalesce((stats ->> (pos + 2))::float8, 0) * nn / n;   -- the imputed means add no spread
                lo := (stats ->> (pos + 3))::float8;
                hi := (stats ->> (pos + 4))::float8;
                pos := pos + 5;
                IF nn = 0 THEN
                    RAISE NOTICE 'train: column % is NULL in every row; left out', quote_ident(cols[i]);
                    CONTINUE;
                END IF;
                impute := impute || mean;
                fmean := fmean || mean;
                fstd := fstd || sqrt(var);
                offs := offs || CASE scaling WHEN 'standard' THEN mean WHEN 'minmax' THEN lo ELSE 0 END;
                facs := facs || CASE scaling WHEN 'standard' THEN CASE WHEN sqrt(var) > 0 THEN sqrt(var) ELSE 1 END
                                             WHEN 'minmax' THEN CASE WHEN hi > lo THEN hi - lo ELSE 1 END ELSE 1 END;
            ELSIF kinds[i] = 'boolean' THEN
                nn := (stats ->> pos)::bigint;
                cnt := (stats ->> (pos + 1))::bigint;
                pos := pos + 2;
                IF nn = 0 THEN
                    RAISE NOTICE 'train: column % is NULL in every row; left out', quote_ident(cols[i]);
                    CONTINUE;
                END IF;
                -- NULL becomes the more frequent value
                impute := impute || CASE WHEN cnt * 2 >= nn THEN 1 ELSE 0 END::float8;
                p := (cnt + CASE WHEN cnt * 2 >= nn THEN n - nn ELSE 0 END)::float8 / n;
                fmean := fmean || p;
                fstd := fstd || sqrt(p * (1 - p));
                offs := offs || CASE scaling WHEN 'standard' THEN p ELSE 0 END;
                facs := facs || CASE WHEN scaling = 'standard' AND p > 0 AND p < 1 THEN sqrt(p * (1 - p)) ELSE 1 END;
            ELSE
                -- the most frequent categories (ties by value), their counts, and the NULLs
                EXECUTE format('SELECT jsonb_agg(jsonb_build_array(v, c) ORDER BY c DESC, v), sum(c)
                                FROM (SELECT %1$I::text AS v, count(*) AS c FROM %2$s WHERE %1$I IS NOT NULL
                                      GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %3$s) t',
                               cols[i], source, max_cats) INTO top, topn;
                IF top IS NULL THEN
                    RAISE NOTICE 'train: column % is NULL in every row; left out', quote_ident(cols[i]);
                    CONTINUE;
                END IF;
                EXECUTE format('SELECT count(%1$I) FROM %2$s', cols[i], source) INTO nn;
                cats := cats || jsonb_build_object(cols[i], (SELECT jsonb_agg(e -> 0) FROM jsonb_array_elements(top) e));
                impute := impute || 0::float8;        -- NULL becomes the most frequent category
                FOR c IN 0 .. jsonb_array_length(top) LOOP
                    IF c < jsonb_array_length(top) THEN
                        p := ((top -> c ->> 1)::bigint + CASE WHEN c = 0 THEN n - nn ELSE 0 END)::float8 / n;
                    ELSE
                        p := (nn - topn)::float8 / n;     -- "other"
                    END IF;
                    fmean := fmean || p;
                    fstd := fstd || sqrt(p * (1 - p));
                    offs := offs || CASE scaling WHEN 'standard' THEN p ELSE 0 END;
                    facs := facs || CASE WHEN scaling = 'standard' AND p > 0 AND p < 1 THEN sqrt(p * (1 - p)) ELSE 1 END;
                END LOOP;
            END IF;
            kept_cols := kept_cols || cols[i];
            kept_kinds := kept_kinds || kinds[i];
        END LOOP;
        cols := kept_cols;
        kinds := kept_kinds;
    END;
    IF cardinality(cols) = 0 THEN
        RAISE EXCEPTION 'train: every column of % is NULL', source USING ERRCODE = 'invalid_parameter_value';
    END IF;

    -- encode with the model's own code (segment_features), then cluster
    prep := @extschema@.segmenter_model(cols, kinds, impute, cats, offs, facs,
                                        array_fill(0::float8, ARRAY[1, cardinality(offs)]));
    -- deep k-means: an autoencoder on the encoded features, then k-means on its codes
    IF enc_opts IS NOT NULL THEN
        EXECUTE format('SELECT @extschema@.autoencoder_fit(@extschema@.segment_features(t, $1), $2) FROM %s t', source)
            INTO ae USING prep, enc_opts;
        feat_expr := '@extschema@.encode(@extschema@.segment_features(t, $1), $4)';
    END IF;
    IF k IS NULL THEN
        EXECUTE format('SELECT @extschema@.kmeans_sweep(%s, %s, %s, $2) FROM %s t', feat_expr, k_min, k_max, source)
            INTO sweep USING prep, fit_opts, NULL::int, ae;
        SELECT (e ->> 'k')::int INTO chosen FROM jsonb_array_elements(sweep) e
        ORDER BY (e ->> 'silhouette')::float8 DESC NULLS LAST, (e ->> 'k')::int LIMIT 1;
    END IF;
    EXECUTE format('SELECT @extschema@.kmeans_fit(%s, $2, $3) FROM %s t', feat_expr, source)
        INTO fitted USING prep, chosen, fit_opts, ae;
    m := @extschema@.model_info(fitted) -> 'metrics';
    m := m || jsonb_build_object('k_chosen_by', CASE WHEN k IS NULL THEN 'silhouette' ELSE 'given' END,
                                 'scaling', scaling, 'max_categories', max_cats,
                                 'cluster_sizes', @extschema@.model_info(fitted) -> 'cluster_sizes',
                                 'feature_mean', to_jsonb(fmean), 'feature_std', to_jsonb(fstd))
           || CASE WHEN sweep IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('sweep', sweep) END;
    IF enc_opts IS NOT NULL THEN
        -- the segments' means of the encoded features: what profile() and the labels describe
        EXECUTE format($q$
            SELECT array_agg(r.means ORDER BY r.s) FROM (
                SELECT s, array_agg(v ORDER BY j) AS means FROM (
                    SELECT @extschema@.kmeans_assign(%1$s, $2) AS s, u.j, avg(u.v) AS v
                    FROM %2$s t, unnest(@extschema@.segment_features(t, $1)) WITH ORDINALITY u(v, j)
                    GROUP BY 1, 2) g
                GROUP BY s) r$q$, replace(feat_expr, '$4', '$3'), source)
            INTO seg_means USING prep, fitted, ae;
        -- plain and deep k-means judged on the same encoded features
        EXECUTE format('SELECT @extschema@.kmeans_fit(@extschema@.segment_features(t, $1), $2, $3) FROM %s t', source)
            INTO plain USING prep, chosen, fit_opts;
        EXECUTE format($q$
            WITH l AS (SELECT @extschema@.segment_features(t, $1) AS f,
                              @extschema@.kmeans_assign(%1$s, $2) AS deep,
                              @extschema@.kmeans_assign(@extschema@.segment_features(t, $1), $4) AS plain
                       FROM %2$s t)
            SELECT jsonb_build_object(
                'deep', jsonb_build_object('silhouette', @extschema@.silhouette(f, deep, '{"sample_size": 10000}'),
                                           'davies_bouldin', @extschema@.davies_bouldin(f, deep)),
                'plain', jsonb_build_object('silhouette', @extschema@.silhouette(f, plain, '{"sample_size": 10000}'),
                                            'davies_bouldin', @extschema@.davies_bouldin(f, plain)))
            FROM l$q$, replace(feat_expr, '$4', '$3'), source)
            INTO comparison USING prep, fitted, ae, plain;
        m := m || jsonb_build_object('segment_means', to_jsonb(seg_means), 'comparison', comparison,
                                     'encoder', (@extschema@.model_info(ae) -> 'metrics') - 'train_curve');
    ELSE
        seg_means := @extschema@.centroids(fitted);
    END IF;
    -- a classifier trained on the segments decides them for new rows
    IF cls_opts IS NOT NULL THEN
        EXECUTE format('SELECT @extschema@.mlp_fit(@extschema@.segment_features(t, $1), @extschema@.kmeans_assign(%s, $2), $3) FROM %s t',
                       feat_expr, source)
            INTO cls USING prep, fitted, cls_opts, ae;
        m := m || jsonb_build_object('classifier', (@extschema@.model_info(cls) -> 'metrics') - 'train_curve' - 'validation_curve');
    END IF;
    labels := @extschema@.segment_labels_for(seg_means, offs, facs, fmean, fstd,
                                             ARRAY(SELECT jsonb_array_elements_text(
                                                 @extschema@.model_info(prep) -> 'features')),
                                             kinds, cols);
    final := @extschema@.segmenter_model(cols, kinds, impute, cats, offs, facs, seg_means, labels, m);
    IF ae IS NOT NULL OR cls IS NOT NULL THEN
        final := @extschema@.segmenter_attach(final, ae,
                                              CASE WHEN ae IS NULL THEN NULL ELSE @extschema@.centroids(fitted) END, cls);
    END IF;
    v := @extschema@.register_model(name, final, source, m);
    RETURN jsonb_build_object('name', name, 'version', v, 'k', chosen, 'columns', to_jsonb(cols),
                              'features', @extschema@.model_info(final) -> 'features',
                              'rows_seen', m -> 'rows_seen', 'rows_used', m -> 'rows_used',
                              'inertia', m -> 'inertia', 'sweep', sweep);
END
$fn$;
COMMENT ON FUNCTION @extschema@.train(text, regclass, text[], int, jsonb) IS
    'train a new version of a named segmentation model on a table: NULL replacement, one-hot, scaling, k-means (k chosen by silhouette when NULL)';

-- What each segment is: size, share, and per feature the mean in original units (the share of
-- customers, for a category or a boolean) and its z-score against all customers.
CREATE FUNCTION @extschema@.profile(model_name text, version int DEFAULT NULL)
RETURNS TABLE (segment int, label text, customers bigint, share float8, feature text,
               mean float8, overall_mean float8, z float8)
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    mdl @extschema@.model := @extschema@.get_model(model_name, version);
BEGIN
    IF mdl IS NULL THEN
        RAISE EXCEPTION 'model "%"% does not exist', model_name,
            CASE WHEN version IS NULL THEN '' ELSE format(' version %s', version) END
            USING ERRCODE = 'undefined_object';
    END IF;
    IF @extschema@.model_kind(mdl) <> 'segmenter' THEN
        RAISE EXCEPTION 'model "%" is a % model; profile() reads segment.train() models',
            model_name, @extschema@.model_kind(mdl) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH m AS (
        SELECT @extschema@.model_info(mdl) AS info, @extschema@.centroids(mdl) AS c),
    f AS (
        SELECT (e.j)::int AS j, e.feature,
               (m.info -> 'scaler' -> 'offset' ->> (e.j::int - 1))::float8 AS off,
               (m.info -> 'scaler' -> 'factor' ->> (e.j::int - 1))::float8 AS fac,
               (m.info -> 'metrics' -> 'feature_mean' ->> (e.j::int - 1))::float8 AS fmean,
               (m.info -> 'metrics' -> 'feature_std' ->> (e.j::int - 1))::float8 AS fstd
        FROM m, jsonb_array_elements_text(m.info -> 'features') WITH ORDINALITY e(feature, j)),
    s AS (
        SELECT g.s::int AS s, m.info ->> 'segment_labels' IS NOT NULL AS has_labels,
               (m.info -> 'segment_labels' ->> (g.s - 1)) AS label,
               (m.info -> 'metrics' -> 'cluster_sizes' ->> (g.s - 1))::bigint AS n,
               (SELECT sum(x::bigint) FROM jsonb_array_elements_text(m.info -> 'metrics' -> 'cluster_sizes') x) AS total
        FROM m, generate_subscripts(m.c, 1) g(s))
    SELECT s.s, coalesce(s.label, 'segment ' || s.s), s.n, s.n::float8 / nullif(s.total, 0), f.feature,
           c.v * coalesce(f.fac, 1) + coalesce(f.off, 0),
           f.fmean,
           (c.v * coalesce(f.fac, 1) + coalesce(f.off, 0) - f.fmean) / nullif(f.fstd, 0)
    FROM m, s, f,
         -- the segment's mean of the feature: its centroid, or with an encoder the stored means
         LATERAL (SELECT coalesce((m.info #>> ARRAY['metrics', 'segment_means', (s.s - 1)::text, (f.j - 1)::text])::float8,
                                  m.c[s.s][f.j]) AS v) c
    ORDER BY s.s, f.j;
END
$$;
COMMENT ON FUNCTION @extschema@.profile(text, int) IS
    'per segment: label, size, share, and per feature the mean in original units and its z-score';

-- Why a customer is in its segment: per feature, the customer's value and the segment's mean
-- (original units) and the feature's share of the squared distance to the segment's centroid
-- and to the runner-up's.
CREATE FUNCTION @extschema@.segment_explain(customer anyelement, model @extschema@.model,
    OUT segment int, OUT runner_up int, OUT feature text, OUT value float8, OUT segment_mean float8,
    OUT share_of_distance float8, OUT runner_up_mean float8, OUT share_of_runner_up_distance float8)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'seg_segment_explain' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_explain(customer anyelement, model text,
    OUT segment int, OUT runner_up int, OUT feature text, OUT value float8, OUT segment_mean float8,
    OUT share_of_distance float8, OUT runner_up_mean float8, OUT share_of_runner_up_distance float8)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'seg_segment_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.segment_explain(customer anyelement,
    OUT segment int, OUT runner_up int, OUT feature text, OUT value float8, OUT segment_mean float8,
    OUT share_of_distance float8, OUT runner_up_mean float8, OUT share_of_runner_up_distance float8)
    RETURNS SETOF record
    AS 'MODULE_PATHNAME', 'seg_segment_explain' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.segment_explain(anyelement, @extschema@.model) IS
    'per feature: value, segment mean, share of the distance to the segment and to the runner-up';
COMMENT ON FUNCTION @extschema@.segment_explain(anyelement, text) IS
    'per feature: value, segment mean, share of the distance to the segment and to the runner-up';
COMMENT ON FUNCTION @extschema@.segment_explain(anyelement) IS
    'per feature: value, segment mean, share of the distance to the segment and to the runner-up';
