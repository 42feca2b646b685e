#!/usr/bin/env bash
# `make bench`: every test/bench/*.py, side by side, in a throwaway cluster.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seg_install_deps
seg_build_install
seg_cluster_start
cd "$SEG_ROOT"
for b in test/bench/*.py; do
	[ -e "$b" ] || { echo "no benchmarks"; exit 0; }
	seg_log "$b"
	/usr/bin/python3 "$b"
done
