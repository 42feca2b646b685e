
---------------------------------------------------------------------------
-- Neural networks: the MLP segment classifier
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.mlp_fit_transfn(@extschema@.rows_state, float8[], int)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_mlp_fit_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.mlp_fit_transfn(@extschema@.rows_state, float8[], int, jsonb)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_mlp_fit_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.mlp_fit_finalfn(@extschema@.rows_state) RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_mlp_fit_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mlp_fit_transfn(@extschema@.rows_state, float8[], int) IS 'transition function of mlp_fit';
COMMENT ON FUNCTION @extschema@.mlp_fit_transfn(@extschema@.rows_state, float8[], int, jsonb) IS 'transition function of mlp_fit';
COMMENT ON FUNCTION @extschema@.mlp_fit_finalfn(@extschema@.rows_state) IS 'final function of mlp_fit: trains the network';
CREATE AGGREGATE @extschema@.mlp_fit(features float8[], label int) (
    SFUNC = @extschema@.mlp_fit_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.mlp_fit_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.mlp_fit(features float8[], label int, options jsonb) (
    SFUNC = @extschema@.mlp_fit_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.mlp_fit_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.mlp_fit(float8[], int) IS
    'train an MLP classifier (100 -> 20, ReLU, batch norm, dropout 0.5, Adam, early stopping)';
COMMENT ON AGGREGATE @extschema@.mlp_fit(float8[], int, jsonb) IS
    'train an MLP classifier; options hidden, dropout, batch_norm, epochs, batch_size, lr, lr_decay, optimizer, momentum, weight_decay, validation, patience, seed';

CREATE FUNCTION @extschema@.mlp_predict(features float8[], model @extschema@.model) RETURNS int
    AS 'MODULE_PATHNAME', 'seg_mlp_predict' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.mlp_proba(features float8[], model @extschema@.model) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_mlp_proba' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.mlp_predict(float8[], @extschema@.model) IS 'the most probable class of one row';
COMMENT ON FUNCTION @extschema@.mlp_proba(float8[], @extschema@.model) IS 'class probabilities of one row, in the order of the model''s classes';

-- test hook: finite-difference check of every layer type's gradients
CREATE FUNCTION @extschema@.nn_gradient_check(loss text, seed bigint) RETURNS float8
    AS 'MODULE_PATHNAME', 'seg_nn_gradient_check' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.nn_gradient_check(text, bigint) IS
    'largest relative error between analytic and finite-difference gradients (cross_entropy or mse) on a small network with every layer type';

---------------------------------------------------------------------------
-- Neural networks: the autoencoder
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.autoencoder_fit_transfn(@extschema@.rows_state, float8[])
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_autoencoder_fit_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.autoencoder_fit_transfn(@extschema@.rows_state, float8[], jsonb)
    RETURNS @extschema@.rows_state
    AS 'MODULE_PATHNAME', 'seg_autoencoder_fit_transfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
CREATE FUNCTION @extschema@.autoencoder_fit_finalfn(@extschema@.rows_state) RETURNS @extschema@.model
    AS 'MODULE_PATHNAME', 'seg_autoencoder_fit_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.autoencoder_fit_transfn(@extschema@.rows_state, float8[]) IS 'transition function of autoencoder_fit';
COMMENT ON FUNCTION @extschema@.autoencoder_fit_transfn(@extschema@.rows_state, float8[], jsonb) IS 'transition function of autoencoder_fit';
COMMENT ON FUNCTION @extschema@.autoencoder_fit_finalfn(@extschema@.rows_state) IS 'final function of autoencoder_fit: trains the network';
CREATE AGGREGATE @extschema@.autoencoder_fit(features float8[]) (
    SFUNC = @extschema@.autoencoder_fit_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.autoencoder_fit_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
CREATE AGGREGATE @extschema@.autoencoder_fit(features float8[], options jsonb) (
    SFUNC = @extschema@.autoencoder_fit_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.autoencoder_fit_finalfn,
    FINALFUNC_MODIFY = READ_WRITE, PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.autoencoder_fit(float8[]) IS
    'train a symmetric autoencoder (d -> 32 -> 2 -> 32 -> d) on mean squared reconstruction error';
COMMENT ON AGGREGATE @extschema@.autoencoder_fit(float8[], jsonb) IS
    'train a symmetric autoencoder; options hidden, code_size, code_activation, epochs, batch_size, lr, validation, patience, seed';
CREATE FUNCTION @extschema@.encode(features float8[], model @extschema@.model) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_encode' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION @extschema@.reconstruct(features float8[], model @extschema@.model) RETURNS float8[]
    AS 'MODULE_PATHNAME', 'seg_reconstruct' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.encode(float8[], @extschema@.model) IS 'the code of one row (the encoder''s output)';
COMMENT ON FUNCTION @extschema@.reconstruct(float8[], @extschema@.model) IS 'decode(encode(row)), in the row''s units';
