#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# A local three-master Redis Cluster (Debian's redis-server), to run the engine the way
# production scales Redis out. Tests use it; the demo does not need it. With replicas, each
# master gets that many replicas (on the ports after the masters'), so a master can fail over.
#
#   deploy/local/redis-cluster.sh start|stop|status
#   REDIS_CLUSTER_BASE_PORT=17101 REDIS_CLUSTER_REPLICAS=1 deploy/local/redis-cluster.sh start
#
# Environment (defaults):
#   ORCHESTRATOR_LOCAL_DIR    state dir                   ($HOME/.cache/orchestrator-local)
#   REDIS_CLUSTER_BASE_PORT   first port                  (17001, on 127.0.0.1 only)
#   REDIS_CLUSTER_REPLICAS    replicas per master         (0: ports BASE..BASE+2; 1: BASE..BASE+5)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOG_TAG=redis-cluster
# shellcheck source=_common.sh
source "$SCRIPT_DIR/_common.sh"

BASE_PORT="${REDIS_CLUSTER_BASE_PORT:-17001}"
REPLICAS="${REDIS_CLUSTER_REPLICAS:-0}"
PORTS=()
for ((i = 0; i < 3 * (1 + REPLICAS); i++)); do
    PORTS+=("$((BASE_PORT + i))")
done
LAST_PORT="${PORTS[-1]}"
START_TIMEOUT=30
STOP_GRACE=20
CLUSTER_DIR="$ORCHESTRATOR_LOCAL_DIR/redis-cluster-$BASE_PORT"

cluster_ok() {
    redis-cli -h "$LOCAL_HOST" -p "$BASE_PORT" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

# True when every replica has joined its master (create attaches them a moment later).
replicas_attached() {
    local attached
    # The flags field (third) says slave, alone or as "myself,slave" for the node asked.
    attached="$(redis-cli -h "$LOCAL_HOST" -p "$BASE_PORT" cluster nodes \
        | awk '$3 ~ /(^|,)slave(,|$)/' | wc -l)"
    ((attached == 3 * REPLICAS))
}

cmd_start() {
    ensure_apt redis-server redis-server
    ensure_apt redis-cli redis-tools
    if cluster_ok; then
        log "already running on $LOCAL_HOST:${PORTS[0]}-$LAST_PORT"
        return 0
    fi
    local t0=$SECONDS port
    for port in "${PORTS[@]}"; do
        mkdir -p "$CLUSTER_DIR/$port"
        if [[ "$(redis-cli -h "$LOCAL_HOST" -p "$port" ping 2>/dev/null)" == PONG ]]; then
            continue
        fi
        redis-server --port "$port" --bind "$LOCAL_HOST" --daemonize yes \
            --cluster-enabled yes --cluster-config-file "$CLUSTER_DIR/$port/nodes.conf" \
            --appendonly yes --save '' --dir "$CLUSTER_DIR/$port" \
            --pidfile "$CLUSTER_DIR/$port/redis.pid" --logfile "$CLUSTER_DIR/$port/redis.log"
    done
    local deadline=$((SECONDS + START_TIMEOUT))
    for port in "${PORTS[@]}"; do
        until [[ "$(redis-cli -h "$LOCAL_HOST" -p "$port" ping 2>/dev/null)" == PONG ]]; do
            ((SECONDS < deadline)) || die "node $port did not answer; see $CLUSTER_DIR/$port/redis.log"
            sleep 0.1
        done
    done
    # Nodes restarted from their nodes.conf rejoin by themselves; only a fresh set needs create.
    if ! redis-cli -h "$LOCAL_HOST" -p "$BASE_PORT" cluster info \
        | grep -q "^cluster_known_nodes:${#PORTS[@]}"; then
        redis-cli --cluster create "${PORTS[@]/#/$LOCAL_HOST:}" --cluster-replicas "$REPLICAS" \
            --cluster-yes >"$CLUSTER_DIR/create.log" 2>&1 \
            || { cat "$CLUSTER_DIR/create.log" >&2; die "cluster create failed"; }
    fi
    until cluster_ok && replicas_attached; do
        ((SECONDS < deadline)) || die "cluster not ok (or replicas not attached) within ${START_TIMEOUT}s"
        sleep 0.1
    done
    log "up on $LOCAL_HOST:${PORTS[0]}-$LAST_PORT after $((SECONDS - t0))s"
}

cmd_stop() {
    local port pid
    for port in "${PORTS[@]}"; do
        if pid="$(live_pid "$CLUSTER_DIR/$port/redis.pid" "redis-server $LOCAL_HOST:$port")"; then
            terminate_pid "$pid" "$STOP_GRACE"
        fi
        rm -f "$CLUSTER_DIR/$port/redis.pid"
    done
    log "stopped"
}

cmd_status() {
    if cluster_ok; then
        echo "redis-cluster: running on $LOCAL_HOST:${PORTS[0]}-$LAST_PORT"
        return 0
    fi
    echo "redis-cluster: not running"
    return 3
}

run_command "$@"
