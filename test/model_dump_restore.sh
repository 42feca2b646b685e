#!/usr/bin/env bash
# pg_dump keeps stored models: dump a database holding models (custom and plain
# formats), restore each into a new database, compare every model byte for byte.
set -euo pipefail
BIN=/usr/lib/postgresql/15/bin
A=segtest_dump_a_$$
B=segtest_dump_b_$$
C=segtest_dump_c_$$
DIR=$(mktemp -d)
cleanup() {
	for db in "$A" "$B" "$C"; do psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
	rm -rf "$DIR"
}
trap cleanup EXIT

psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE $A"
psql -X -q -v ON_ERROR_STOP=1 -d "$A" <<'SQL'
CREATE EXTENSION segment;
CREATE TABLE customers (id int PRIMARY KEY, income float8, score float8);
SELECT segment.register_model('mall', segment.kmeans_model('{{0.1,-2},{1e-300,5e-324}}', '{income,score}',
       '{60.5,50}', '{26.25,25.75}', '{"inertia": 12.5}'), 'customers');
SELECT segment.register_model('mall', segment.kmeans_model('{{1,2},{3,4},{5,6}}'));
SELECT segment.register_model('other', segment.kmeans_model(array_fill(pi(), ARRAY[40, 30])));
SQL
sig="SELECT md5(string_agg(name || version || kind || coalesce(source, '') || metrics::text
                          || encode(segment.model_send(model), 'hex'), ',' ORDER BY name, version))
     FROM segment.models"
want=$(psql -X -A -t -d "$A" -c "$sig")

"$BIN/pg_dump" -Fc -d "$A" -f "$DIR/a.dump"
"$BIN/pg_dump" -Fp -d "$A" -f "$DIR/a.sql"
psql -X -q -d postgres -c "CREATE DATABASE $B" -c "CREATE DATABASE $C"
"$BIN/pg_restore" --exit-on-error -d "$B" "$DIR/a.dump"
psql -X -q -v ON_ERROR_STOP=1 -d "$C" -f "$DIR/a.sql" >/dev/null

status=0
for db in "$B" "$C"; do
	got=$(psql -X -A -t -d "$db" -c "$sig")
	rows=$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM segment.models")
	latest=$(psql -X -A -t -d "$db" -c "SELECT segment.model_info(segment.get_model('mall')) ->> 'k'")
	if [ "$got" = "$want" ] && [ "$rows" = 3 ] && [ "$latest" = 3 ]; then
		echo "ok   restore into $db: $rows models identical (signature $got), latest 'mall' has k=$latest"
	else
		echo "FAIL restore into $db: signature $got (want $want), $rows rows, latest k=$latest"
		status=1
	fi
done
exit $status
