# shellcheck shell=bash
# Source this to point the orchestrator at the local Kafka and Redis:
#
#   source deploy/local/env.sh
#
# Honours KAFKA_PORT and REDIS_PORT like kafka.sh and redis.sh do.
# No `set -euo pipefail` here on purpose: this file runs inside the caller's
# shell, and those options would outlive it (set -e would close an interactive
# shell on its next failing command).
export ORCHESTRATOR_KAFKA_BOOTSTRAP="127.0.0.1:${KAFKA_PORT:-19092}"
export ORCHESTRATOR_REDIS_URL="redis://127.0.0.1:${REDIS_PORT:-16379}/0"
