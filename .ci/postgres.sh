#!/usr/bin/env bash
# A PostgreSQL server the tests can use: `postgres` over TCP on 127.0.0.1:$PG_PORT without a
# password. Sourced by .ci/run; run on its own (`bash .ci/postgres.sh`) it only ensures the
# server. The port is RCSYNC_CI_POSTGRES_PORT (default 5432).
#
# - A server on the port that already lets `postgres` in is used as it is.
# - Otherwise PostgreSQL is installed with apt if missing. A stock install (Debian/Ubuntu)
#   creates a cluster `main` on 5432 whose pg_hba.conf asks TCP clients for a password, and
#   `postgres` has none: a `trust` rule for `postgres` from the loopback addresses is put first
#   in that cluster's pg_hba.conf (a throw-away CI machine; nothing but local clients).
#   The same when such a cluster is already running (then it is reloaded).
# - No cluster on the port (e.g. another port was asked for): one is created there (stock
#   settings) and given the same rule.
set -euo pipefail

PG_PORT="${RCSYNC_CI_POSTGRES_PORT:-5432}"
# The marker that makes the pg_hba.conf edit idempotent.
PG_HBA_MARKER="# rcsync CI: postgres over loopback TCP without a password"

pg_cluster_on_port() {
    # "version cluster" of the cluster configured on $PG_PORT, if any.
    pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2; exit }'
}

pg_trust_loopback() {
    local hba="$1"
    if grep -qF "$PG_HBA_MARKER" "$hba"; then
        return
    fi
    # pg_hba.conf is read top down and the first matching line wins.
    {
        echo "$PG_HBA_MARKER"
        echo "host all postgres 127.0.0.1/32 trust"
        echo "host all postgres ::1/128 trust"
        cat "$hba"
    } >"$hba.rcsync-ci"
    chown --reference="$hba" "$hba.rcsync-ci"
    chmod --reference="$hba" "$hba.rcsync-ci"
    mv "$hba.rcsync-ci" "$hba"
}

pg_usable() {
    psql -w -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1
}

ensure_postgres() {
    if pg_usable; then
        return
    fi
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
        echo "== installing PostgreSQL"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
    local cluster version name
    cluster="$(pg_cluster_on_port)"
    if [ -z "$cluster" ]; then
        if pg_isready -h 127.0.0.1 -p "$PG_PORT" -q 2>/dev/null; then
            echo "a PostgreSQL server not managed here answers on port $PG_PORT and refuses postgres without a password" >&2
            exit 1
        fi
        version="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
        name="rcsync-ci-$PG_PORT"
        echo "== creating PostgreSQL cluster $version/$name on port $PG_PORT"
        pg_createcluster --port "$PG_PORT" "$version" "$name" >/dev/null
        cluster="$version $name"
    fi
    read -r version name <<<"$cluster"
    pg_trust_loopback "/etc/postgresql/$version/$name/pg_hba.conf"
    if pg_isready -h 127.0.0.1 -p "$PG_PORT" -q 2>/dev/null; then
        echo "== reloading PostgreSQL $version/$name (port $PG_PORT)"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
    else
        echo "== starting PostgreSQL $version/$name (port $PG_PORT)"
        pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
    fi
    for _ in $(seq 1 30); do
        pg_usable && return
        sleep 1
    done
    echo "PostgreSQL on port $PG_PORT does not accept postgres over TCP" >&2
    exit 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    ensure_postgres
fi
