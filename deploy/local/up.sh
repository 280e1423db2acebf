#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Starts the local Redis, PostgreSQL and Kafka (idempotent), then prints the env lines the
# orchestrator needs on stdout; progress goes to stderr, so this works:
#
#   eval "$(deploy/local/up.sh)"   # or: deploy/local/up.sh && source deploy/local/env.sh
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Redis and PostgreSQL first: they are quick, and Kafka's startup is the long pole anyway.
"$SCRIPT_DIR/redis.sh" start
"$SCRIPT_DIR/postgres.sh" start
"$SCRIPT_DIR/kafka.sh" start

# env.sh is the single place that knows the URLs.
# shellcheck source=env.sh
source "$SCRIPT_DIR/env.sh"
echo "ORCHESTRATOR_KAFKA_BOOTSTRAP=$ORCHESTRATOR_KAFKA_BOOTSTRAP"
echo "ORCHESTRATOR_REDIS_URL=$ORCHESTRATOR_REDIS_URL"
echo "ORCHESTRATOR_DATABASE_URL=$ORCHESTRATOR_DATABASE_URL"
