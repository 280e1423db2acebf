#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Local Redis 7 (Debian's redis-server) for development and CI.
#
#   deploy/local/redis.sh start|stop|status
#
# Environment (defaults):
#   ORCHESTRATOR_LOCAL_DIR  state dir  ($HOME/.cache/orchestrator-local)
#   REDIS_PORT              port       (16379, on 127.0.0.1 only)
#
# Installing the Debian package may also start a system Redis on 6379 through its
# postinst. That one is harmless and left alone; nothing here uses it.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOG_TAG=redis
# shellcheck source=_common.sh
source "$SCRIPT_DIR/_common.sh"

REDIS_PORT="${REDIS_PORT:-16379}"
START_TIMEOUT=20
STOP_GRACE=20

# One dir per port, like kafka.sh, so instances on other ports never share files.
INSTANCE_DIR="$ORCHESTRATOR_LOCAL_DIR/redis-$REDIS_PORT"
DATA_DIR="$INSTANCE_DIR/data"
PIDFILE="$INSTANCE_DIR/redis.pid"
LOGFILE="$INSTANCE_DIR/redis.log"
PID_PATTERN="redis-server $LOCAL_HOST:$REDIS_PORT"

ensure_redis() {
    ensure_apt redis-server redis-server
    ensure_apt redis-cli redis-tools
}

pong() {
    [[ "$(redis-cli -h "$LOCAL_HOST" -p "$REDIS_PORT" ping 2>/dev/null)" == PONG ]]
}

cmd_start() {
    ensure_redis
    if pong; then
        log "already running on $LOCAL_HOST:$REDIS_PORT"
        return 0
    fi
    mkdir -p "$DATA_DIR"
    local t0=$SECONDS
    log "starting on $LOCAL_HOST:$REDIS_PORT, state in $INSTANCE_DIR"
    # AOF on so that journey state survives a restart of the local Redis;
    # RDB snapshots off (--save '') since AOF already covers durability.
    redis-server \
        --port "$REDIS_PORT" \
        --bind "$LOCAL_HOST" \
        --daemonize yes \
        --appendonly yes \
        --save '' \
        --dir "$DATA_DIR" \
        --pidfile "$PIDFILE" \
        --logfile "$LOGFILE"
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if pong; then
            log "up on $LOCAL_HOST:$REDIS_PORT after $((SECONDS - t0))s"
            return 0
        fi
        sleep 0.1
    done
    log "no PONG from $LOCAL_HOST:$REDIS_PORT within ${START_TIMEOUT}s"
    [[ -s "$LOGFILE" ]] && tail -n 40 "$LOGFILE" >&2
    exit 1
}

cmd_stop() {
    local pid
    if pid="$(live_pid "$PIDFILE" "$PID_PATTERN")"; then
        log "stopping (pid $pid)"
        # TERM makes Redis flush the AOF and exit cleanly.
        terminate_pid "$pid" "$STOP_GRACE"
        log "stopped"
    elif command -v redis-cli >/dev/null 2>&1 && pong; then
        log "$LOCAL_HOST:$REDIS_PORT answers but was not started by this script (no live pidfile); leaving it"
    else
        log "not running"
    fi
    rm -f "$PIDFILE"
}

# Exit status: 0 when Redis answers PING, 3 when not running (LSB convention).
cmd_status() {
    local pid
    if command -v redis-cli >/dev/null 2>&1 && pong; then
        if pid="$(live_pid "$PIDFILE" "$PID_PATTERN")"; then
            echo "redis: running on $LOCAL_HOST:$REDIS_PORT (pid $pid)"
        else
            echo "redis: $LOCAL_HOST:$REDIS_PORT answers (not started by this script)"
        fi
        return 0
    fi
    echo "redis: not running"
    return 3
}

run_command "$@"
