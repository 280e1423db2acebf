#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Local PostgreSQL 15 (Debian's postgresql) for the audit store, in development and CI.
#
#   deploy/local/postgres.sh start|stop|status
#
# Environment (defaults):
#   POSTGRES_PORT           port       (15432, on 127.0.0.1 only)
#   POSTGRES_DIR            state dir  (/var/lib/postgresql/orchestrator-$POSTGRES_PORT)
#   POSTGRES_FSYNC          on|off     (off: fast and fine for tests, never for data you keep)
#
# The cluster runs as the `postgres` user (initdb refuses root) on its own data directory,
# without systemd, and trusts local connections: it is a developer's database, not a server.
# Installing the Debian package may create and start a `main` cluster on 5432; nothing here
# uses it, and it is left alone. `start` also creates the `orchestrator` database.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOG_TAG=postgres
# shellcheck source=_common.sh
source "$SCRIPT_DIR/_common.sh"

POSTGRES_PORT="${POSTGRES_PORT:-15432}"
POSTGRES_FSYNC="${POSTGRES_FSYNC:-off}"
DATABASE=orchestrator
PG_VERSION=15
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
START_TIMEOUT=60

# One dir per port, like redis.sh, so instances on other ports never share files. Not under
# ORCHESTRATOR_LOCAL_DIR: that is usually in root's home, which the postgres user cannot enter.
INSTANCE_DIR="${POSTGRES_DIR:-/var/lib/postgresql/orchestrator-$POSTGRES_PORT}"
DATA_DIR="$INSTANCE_DIR/data"
SOCKET_DIR="$INSTANCE_DIR/run"
LOGFILE="$INSTANCE_DIR/postgres.log"

as_postgres() { runuser -u postgres -- "$@"; }

ensure_postgres() {
    # pg_ctl lives outside PATH in Debian's layout, so test for the binary itself.
    if [[ ! -x "$PG_BIN/pg_ctl" ]]; then
        ensure_apt psql postgresql
        [[ -x "$PG_BIN/pg_ctl" ]] || die "$PG_BIN/pg_ctl missing after installing postgresql"
    fi
    command -v psql >/dev/null 2>&1 || ensure_apt psql postgresql-client
    id postgres >/dev/null 2>&1 || die "the postgresql package did not create the postgres user"
}

ready() {
    "$PG_BIN/pg_isready" -q -h "$LOCAL_HOST" -p "$POSTGRES_PORT" 2>/dev/null
}

psql_admin() {
    psql -X -q -v ON_ERROR_STOP=1 -h "$LOCAL_HOST" -p "$POSTGRES_PORT" -U postgres "$@"
}

ensure_database() {
    local exists
    exists=$(psql_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")
    if [[ "$exists" != 1 ]]; then
        psql_admin -d postgres -c "CREATE DATABASE $DATABASE"
        log "created database $DATABASE"
    fi
}

cmd_start() {
    ensure_postgres
    if ready; then
        log "already running on $LOCAL_HOST:$POSTGRES_PORT"
        ensure_database
        return 0
    fi
    # The socket directory may live on a tmpfs-like cache that was wiped: make it each time.
    mkdir -p "$INSTANCE_DIR" "$SOCKET_DIR"
    chown postgres:postgres "$INSTANCE_DIR" "$SOCKET_DIR"
    if [[ ! -s "$DATA_DIR/PG_VERSION" ]]; then
        log "initialising a cluster in $DATA_DIR"
        rm -rf "$DATA_DIR"
        as_postgres "$PG_BIN/initdb" -D "$DATA_DIR" -U postgres --auth=trust -E UTF8 \
            --locale=C.UTF-8 >"$INSTANCE_DIR/initdb.log" 2>&1 ||
            { tail -n 40 "$INSTANCE_DIR/initdb.log" >&2; die "initdb failed"; }
    fi
    touch "$LOGFILE"
    chown postgres:postgres "$LOGFILE"
    local t0=$SECONDS
    log "starting on $LOCAL_HOST:$POSTGRES_PORT (fsync=$POSTGRES_FSYNC), state in $INSTANCE_DIR"
    # Small shared buffers: the machine is shared with Kafka, Redis and the tests.
    if ! as_postgres "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$LOGFILE" -w -t "$START_TIMEOUT" \
        -o "-p $POSTGRES_PORT -k $SOCKET_DIR -c listen_addresses=$LOCAL_HOST \
            -c fsync=$POSTGRES_FSYNC -c shared_buffers=128MB -c max_connections=200" \
        start >/dev/null; then
        tail -n 40 "$LOGFILE" >&2
        die "PostgreSQL did not start on $LOCAL_HOST:$POSTGRES_PORT within ${START_TIMEOUT}s"
    fi
    ready || die "pg_ctl started PostgreSQL but $LOCAL_HOST:$POSTGRES_PORT does not answer"
    log "up on $LOCAL_HOST:$POSTGRES_PORT after $((SECONDS - t0))s"
    ensure_database
}

cmd_stop() {
    if [[ -s "$DATA_DIR/postmaster.pid" ]] && [[ -x "$PG_BIN/pg_ctl" ]]; then
        log "stopping"
        # Fast: roll back open transactions and disconnect clients, then a clean shutdown.
        as_postgres "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w stop >/dev/null ||
            die "pg_ctl stop failed: see $LOGFILE"
        log "stopped"
    elif [[ -x "$PG_BIN/pg_isready" ]] && ready; then
        log "$LOCAL_HOST:$POSTGRES_PORT answers but was not started by this script; leaving it"
    else
        log "not running"
    fi
}

# Exit status: 0 when PostgreSQL accepts connections, 3 when not running (LSB convention).
cmd_status() {
    if [[ -x "$PG_BIN/pg_isready" ]] && ready; then
        if [[ -s "$DATA_DIR/postmaster.pid" ]]; then
            echo "postgres: running on $LOCAL_HOST:$POSTGRES_PORT (pid $(head -n 1 "$DATA_DIR/postmaster.pid"))"
        else
            echo "postgres: $LOCAL_HOST:$POSTGRES_PORT answers (not started by this script)"
        fi
        return 0
    fi
    echo "postgres: not running"
    return 3
}

run_command "$@"
