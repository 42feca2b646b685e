#!/usr/bin/env bash
# Run every test of segment in a throwaway cluster: pg_regress (sql/ + expected/),
# isolation specs (specs/), then each test/*.py and executable test/*.sh.
# Installs what it needs; run as root (or with sudo) on Debian 12.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seg_install_deps
seg_build_install
seg_cluster_start

passed=0
failed=0
failures=()

seg_log "pg_regress and isolation tests"
cd "$SEG_ROOT"
rm -rf results output_iso regression.diffs
if make -s PG_CONFIG="$PGBIN/pg_config" installcheck; then
	reg_ok=1
else
	reg_ok=0
	for f in regression.diffs output_iso/regression.diffs; do
		[ -f "$f" ] && { echo "---- $f"; cat "$f"; }
	done
fi
# one count per regression and isolation test file
for out in results/*.out output_iso/results/*.out; do
	[ -e "$out" ] || continue
	name=$(basename "$out" .out)
	exp=expected/$name.out
	if [ -f "$exp" ] && diff -q "$exp" "$out" >/dev/null; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("pg_regress:$name")
	fi
done
if [ "$reg_ok" -eq 0 ] && [ ${#failures[@]} -eq 0 ]; then
	failed=$((failed + 1))
	failures+=("pg_regress")
fi

for t in test/*.py test/*.sh; do
	[ -e "$t" ] || continue
	case "$t" in *.sh) [ -x "$t" ] || continue ;; esac
	seg_log "$t"
	if { case "$t" in *.py) /usr/bin/python3 "$t" ;; *) "$t" ;; esac; }; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("$t")
	fi
done

if compgen -G "test/t/*.pl" >/dev/null; then
	seg_log "TAP tests"
	if PATH="$PGBIN:$PATH" prove -I "/usr/lib/postgresql/15/lib/pgxs/src/test/perl" test/t/*.pl; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		failures+=("prove")
	fi
fi

echo
[ ${#failures[@]} -gt 0 ] && echo "failed: ${failures[*]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
