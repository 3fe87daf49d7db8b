#!/usr/bin/env bash
# System tools the test suite needs besides the servers of infra.sh: promtool (Debian's
# prometheus package) checks the alert rules and the dashboard's queries.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
mkdir -p "$ORDERFLOW_CACHE_DIR"
need_command promtool prometheus
