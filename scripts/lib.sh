#!/usr/bin/env bash
# Helpers shared by scripts/demo.sh, scripts/test.sh and scripts/bench.sh:
# Debian packages, build + install, and a throwaway PostgreSQL 15 cluster.
# Source it; it expects `set -euo pipefail` in the caller.

SEG_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
SEG_PACKAGES="postgresql-15 postgresql-server-dev-15 postgresql-contrib build-essential pkg-config
  libopenblas-dev liblapacke-dev python3-sklearn python3-psycopg2 python3-pandas python3-numpy
  libipc-run-perl gzip"

seg_log() { printf '\n== %s\n' "$*"; }

# Install the Debian packages that are missing (needs root).
seg_install_deps() {
	local missing=() p
	for p in $SEG_PACKAGES; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]}; run this script with sudo" >&2
		exit 1
	fi
	seg_log "installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

# Build with warnings as errors, then install into PostgreSQL 15.
seg_build_install() {
	seg_log "building and installing segment"
	make -C "$SEG_ROOT" -s PG_CONFIG="$PGBIN/pg_config" \
		PG_CFLAGS="-Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare"
	make -C "$SEG_ROOT" -s PG_CONFIG="$PGBIN/pg_config" install >/dev/null
}

seg_as_postgres() { runuser -u postgres -- "$@"; }

# Start a throwaway cluster owned by postgres in a temporary directory; export
# PGHOST/PGPORT/PGUSER/PGDATABASE for clients run as root; stop it on exit.
seg_cluster_start() {
	SEG_CLUSTER_DIR=$(mktemp -d /tmp/segment-cluster.XXXXXX)
	chmod 755 "$SEG_CLUSTER_DIR"
	chown postgres "$SEG_CLUSTER_DIR"
	local port=54329
	while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || [ -e "/tmp/.s.PGSQL.$port" ]; do
		port=$((port + 1))
	done
	trap seg_cluster_stop EXIT
	(cd / && seg_as_postgres "$PGBIN/initdb" -A trust -U postgres --no-sync -D "$SEG_CLUSTER_DIR/data" >/dev/null)
	(cd / && seg_as_postgres "$PGBIN/pg_ctl" -w -D "$SEG_CLUSTER_DIR/data" -l "$SEG_CLUSTER_DIR/log" \
		-o "-c listen_addresses='' -k $SEG_CLUSTER_DIR -p $port -c fsync=off -c max_worker_processes=8 -c max_parallel_workers=4" \
		start >/dev/null)
	export PGHOST=$SEG_CLUSTER_DIR PGPORT=$port PGUSER=postgres PGDATABASE=postgres
	echo "throwaway cluster on socket $PGHOST port $PGPORT"
}

seg_cluster_stop() {
	[ -n "${SEG_CLUSTER_DIR:-}" ] || return 0
	(cd / && seg_as_postgres "$PGBIN/pg_ctl" -D "$SEG_CLUSTER_DIR/data" -m immediate stop >/dev/null 2>&1) || true
	rm -rf "$SEG_CLUSTER_DIR"
	SEG_CLUSTER_DIR=
}
