#!/bin/bash
# segment.models survives pg_dump / restore bit for bit.
#
# In a scratch database A: CREATE EXTENSION segment, register model "churn"
# (feature names + scaler + metrics), a second version of "churn", and a bare
# model "bare".  Dump A in custom format (pg_dump -Fc) and in plain format,
# restore each into a fresh database (pg_restore -d / psql -f), and check in
# each restored database that
#   - segment.models has the same rows (all columns, created_at included);
#   - segment.model_send(model) is byte-identical for every row (md5 of the
#     hex wire forms in (name, version) order);
#   - segment.get_model(name) returns the latest version, and
#     get_model(name, 1) the first;
#   - scoring by name (kmeans_assign(features, 'churn')) gives A's answers;
#   - register_model continues the version sequence.
# Connection settings come from PGHOST / PGPORT / PGUSER.
set -euo pipefail

BIN=/usr/lib/postgresql/15/bin
PSQL=("$BIN/psql" -X -q -v ON_ERROR_STOP=1)
A="segtest_dump_a_$$"
B_CUSTOM="segtest_dump_bc_$$"
B_PLAIN="segtest_dump_bp_$$"
TMP=$(mktemp -d)
chmod 755 "$TMP"
FAILED=0

cleanup() {
    rc=$?
    for db in "$A" "$B_CUSTOM" "$B_PLAIN"; do
        "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    done
    rm -rf "$TMP"
    if [ $rc -ne 0 ]; then
        echo "FAIL dump_restore.sh: stopped with status $rc (see the messages above)"
    fi
    exit $rc
}
trap cleanup EXIT

q() {  # q DB SQL: one value, unaligned
    "${PSQL[@]}" -At -d "$1" -c "$2"
}

check() {  # check NAME GOT WANT
    if [ "$2" == "$3" ]; then
        echo "ok   $1: $2"
    else
        echo "FAIL $1: got '$2', expected '$3'"
        FAILED=$((FAILED + 1))
    fi
}

"${PSQL[@]}" -d postgres -c "CREATE DATABASE $A TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
"${PSQL[@]}" -d "$A" >/dev/null <<'SQL'
CREATE EXTENSION segment;
-- awkward doubles on purpose: the text form must be lossless
SELECT segment.register_model('churn',
    segment.kmeans_model(
        ARRAY[[0.1, 1.0/3, -2.5], [1e-300, 5e-324, -0.0], [12345.678901234567, -1e300, 2.0/7]]::float8[],
        ARRAY['tenure', 'monthly spend', 'größe'],
        ARRAY[10.5, -3.25, 0.001]::float8[],
        ARRAY[2.0, 0.5, 1e-3]::float8[],
        '{"inertia": 123.456, "n_iter": 9, "note": "first fit"}'));
SELECT segment.register_model('churn',
    segment.kmeans_model(
        ARRAY[[1, 2, 3], [4, 5, 6], [7, 8, 9], [-1, -2, -3]]::float8[],
        ARRAY['tenure', 'monthly spend', 'größe'],
        ARRAY[10.5, -3.25, 0.001]::float8[],
        ARRAY[2.0, 0.5, 1e-3]::float8[],
        '{"inertia": 99.5, "n_iter": 4}'),
    metrics => '{"inertia": 99.5, "n_iter": 4, "approved": true}');
SELECT segment.register_model('bare', segment.kmeans_model(ARRAY[[0.5], [-0.5]]::float8[]));
CREATE TABLE probe AS
    SELECT i, ARRAY[i * 1.7 - 5, 13 - i * 0.9, (i % 4) * 0.001]::float8[] AS f
    FROM generate_series(1, 20) i;
SQL

ROWS="SELECT count(*) || ' rows, ' || md5(string_agg(concat_ws('|', name, version, kind, source, source_type,
                 feature_names::text, created_at::text, created_by, metrics::text), E'\n' ORDER BY name, version))
      FROM segment.models"
WIRE="SELECT md5(string_agg(encode(segment.model_send(model), 'hex'), ',' ORDER BY name, version)) FROM segment.models"
LATEST="SELECT string_agg(name || ':' || md5(encode(segment.model_send(segment.get_model(name)), 'hex')), ',' ORDER BY name)
        FROM (SELECT DISTINCT name FROM segment.models) n"
FIRST="SELECT md5(encode(segment.model_send(segment.get_model('churn', 1)), 'hex'))"
SCORES="SELECT string_agg(segment.kmeans_assign(f, 'churn')::text, ',' ORDER BY i) FROM probe"

A_ROWS=$(q "$A" "$ROWS")
A_WIRE=$(q "$A" "$WIRE")
A_LATEST=$(q "$A" "$LATEST")
A_FIRST=$(q "$A" "$FIRST")
A_SCORES=$(q "$A" "$SCORES")
check "A: catalog rows" "$(q "$A" "SELECT string_agg(name || ' v' || version, ', ' ORDER BY name, version) FROM segment.models")" \
      "bare v1, churn v1, churn v2"
# sanity in A itself: get_model returns the highest version
check "A: get_model('churn') is version 2" \
      "$(q "$A" "SELECT segment.model_send(segment.get_model('churn')) = segment.model_send(model) FROM segment.models WHERE name = 'churn' AND version = 2")" "t"
check "A: text form round trip" \
      "$(q "$A" "SELECT bool_and(segment.model_send(model::text::segment.model) = segment.model_send(model)) FROM segment.models")" "t"

"$BIN/pg_dump" -Fc -f "$TMP/a.dump" "$A"
"$BIN/pg_dump" -Fp -f "$TMP/a.sql" "$A"
echo "ok   pg_dump: custom $(stat -c %s "$TMP/a.dump") bytes, plain $(stat -c %s "$TMP/a.sql") bytes"

for mode in custom plain; do
    if [ $mode == custom ]; then B=$B_CUSTOM; else B=$B_PLAIN; fi
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $B TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"
    if [ $mode == custom ]; then
        "$BIN/pg_restore" --exit-on-error -d "$B" "$TMP/a.dump"
    else
        "${PSQL[@]}" -d "$B" -f "$TMP/a.sql" >/dev/null
    fi
    echo "ok   $mode restore into $B"
    check "$mode: same catalog rows" "$(q "$B" "$ROWS")" "$A_ROWS"
    check "$mode: byte-identical model_send for every row" "$(q "$B" "$WIRE")" "$A_WIRE"
    check "$mode: get_model(name) is the latest version" "$(q "$B" "$LATEST")" "$A_LATEST"
    check "$mode: get_model('churn') is version 2" \
          "$(q "$B" "SELECT segment.model_send(segment.get_model('churn')) = segment.model_send(model) FROM segment.models WHERE name = 'churn' AND version = 2")" "t"
    check "$mode: get_model('churn', 1)" "$(q "$B" "$FIRST")" "$A_FIRST"
    check "$mode: kmeans_assign(f, 'churn') as in A" "$(q "$B" "$SCORES")" "$A_SCORES"
    check "$mode: register_model continues at version 3" \
          "$(q "$B" "SELECT segment.register_model('churn', segment.get_model('churn', 1))")" "3"
done

if [ $FAILED -ne 0 ]; then
    echo "$FAILED checks FAILED"
    exit 1
fi
echo "all checks passed"
