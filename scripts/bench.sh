#!/usr/bin/env bash
# `make bench`: every test/bench/*.py, side by side, in a throwaway cluster.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

seg_install_deps
# the MLP benchmark compares with PyTorch; only the benchmarks need it
if ! dpkg -s python3-torch >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
	seg_log "installing python3-torch"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-torch >/dev/null
fi
seg_build_install
seg_cluster_start
cd "$SEG_ROOT"
for b in test/bench/*.py; do
	[ -e "$b" ] || { echo "no benchmarks"; exit 0; }
	seg_log "$b"
	/usr/bin/python3 "$b"
done
