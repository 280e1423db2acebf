#!/usr/bin/env bash
# Stops the local Kafka, Redis and PostgreSQL started by up.sh (idempotent). State is kept;
# delete $ORCHESTRATOR_LOCAL_DIR (default ~/.cache/orchestrator-local) to wipe it.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# All are attempted even if the first fails, so one bad stop leaves nothing behind.
rc=0
"$SCRIPT_DIR/kafka.sh" stop || rc=1
"$SCRIPT_DIR/redis.sh" stop || rc=1
"$SCRIPT_DIR/postgres.sh" stop || rc=1
exit "$rc"
