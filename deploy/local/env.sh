# shellcheck shell=bash
# Source this to point the orchestrator at the local Kafka, Redis and PostgreSQL:
#
#   source deploy/local/env.sh
#
# Honours KAFKA_PORT, REDIS_PORT and POSTGRES_PORT like the start scripts do.
# No `set -euo pipefail` here on purpose: this file runs inside the caller's
# shell, and those options would outlive it (set -e would close an interactive
# shell on its next failing command).
export ORCHESTRATOR_KAFKA_BOOTSTRAP="127.0.0.1:${KAFKA_PORT:-19092}"
export ORCHESTRATOR_REDIS_URL="redis://127.0.0.1:${REDIS_PORT:-16379}/0"
export ORCHESTRATOR_DATABASE_URL="postgresql://postgres@127.0.0.1:${POSTGRES_PORT:-15432}/orchestrator"
