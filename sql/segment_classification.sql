
---------------------------------------------------------------------------
-- Classification quality
---------------------------------------------------------------------------

CREATE FUNCTION @extschema@.classification_report_finalfn(@extschema@.rows_state) RETURNS jsonb
    AS 'MODULE_PATHNAME', 'seg_classification_report_finalfn' LANGUAGE C IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE;
COMMENT ON FUNCTION @extschema@.classification_report_finalfn(@extschema@.rows_state) IS 'final function of classification_report';
CREATE AGGREGATE @extschema@.classification_report(actual int, predicted int) (
    SFUNC = @extschema@.label_pairs_transfn, STYPE = @extschema@.rows_state,
    COMBINEFUNC = @extschema@.rows_combinefn, FINALFUNC = @extschema@.classification_report_finalfn,
    PARALLEL = SAFE);
COMMENT ON AGGREGATE @extschema@.classification_report(int, int) IS
    'accuracy, per-class precision/recall/F1/support, macro and weighted averages (as scikit-learn''s classification_report)';
