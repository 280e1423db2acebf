# shellcheck shell=bash
# Helpers shared by kafka.sh, redis.sh and postgres.sh; sourced, never run.
#
# Progress goes to stderr so that stdout stays clean for machine-readable output
# (up.sh prints the env lines there, so `eval "$(deploy/local/up.sh)"` works).

# All state lives outside the repo so that the work tree stays clean.
ORCHESTRATOR_LOCAL_DIR="${ORCHESTRATOR_LOCAL_DIR:-$HOME/.cache/orchestrator-local}"
LOCAL_HOST=127.0.0.1

log() { printf '[%s] %s\n' "${LOG_TAG:-local}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# True when something accepts a TCP connection on LOCAL_HOST:$1.
# The subshell + timeout keeps a filtered port from hanging the caller.
port_open() {
    timeout 2 bash -c ": >/dev/tcp/$LOCAL_HOST/$1" 2>/dev/null
}

# True when pid $1 is alive and its command line contains $2 (guards against
# pid reuse after a reboot or a crash left a stale pidfile behind).
pid_matches() {
    local pid=$1 pattern=$2 cmdline
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"$pattern"* ]]
}

# Prints the pid recorded in pidfile $1 if that process is alive and matches $2.
live_pid() {
    local pidfile=$1 pattern=$2 pid
    [[ -f "$pidfile" ]] || return 1
    pid=$(<"$pidfile")
    pid_matches "$pid" "$pattern" || return 1
    printf '%s\n' "$pid"
}

# TERM, wait up to $2 seconds, then KILL. Returns once the process is gone.
terminate_pid() {
    local pid=$1 grace=$2 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "pid $pid still alive after ${grace}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
}

# Installs Debian packages $2.. unless command $1 exists. Machines are rebuilt
# between sessions, so the scripts must bring what they need themselves.
ensure_apt() {
    local cmd=$1
    shift
    command -v "$cmd" >/dev/null 2>&1 && return 0
    local sudo=()
    if [[ $(id -u) -ne 0 ]]; then
        command -v sudo >/dev/null 2>&1 || die "$cmd missing and not root (no sudo): install $* by hand"
        sudo=(sudo)
    fi
    log "installing $* (apt-get)"
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    command -v "$cmd" >/dev/null 2>&1 || die "$cmd still missing after installing $*"
}

# Runs the sourcing script's cmd_start, cmd_stop or cmd_status, as named by $1.
run_command() {
    case "${1:-}" in
        start) cmd_start ;;
        stop) cmd_stop ;;
        status) cmd_status ;;
        *)
            echo "usage: $0 start|stop|status" >&2
            exit 2
            ;;
    esac
}
