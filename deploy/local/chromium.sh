#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# Debian's Chromium, for the dashboard's browser test (Playwright drives /usr/bin/chromium;
# no browser is downloaded). Idempotent: does nothing when chromium is already installed.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LOG_TAG=chromium
# shellcheck source=_common.sh
source "$SCRIPT_DIR/_common.sh"

ensure_apt chromium chromium
