# A MongoDB-wire-protocol server: FerretDB with its SQLite backend, built from the Go module proxy
# (deploy/local/ferretdb embeds FerretDB's public package). Sourced by infra.sh.

FERRETDB_VERSION="$(sed -n 's/^require github.com\/FerretDB\/FerretDB \(v[0-9.]*\)$/\1/p' "$DEPLOY_DIR/ferretdb/go.mod")"
MONGODB_PORT="${ORDERFLOW_MONGODB_PORT:-27017}"

mongodb_url() { printf 'mongodb://%s:%s' "$ORDERFLOW_INFRA_HOST" "$MONGODB_PORT"; }
mongodb_binary() { printf '%s/ferretdb-%s/ferretdb-local' "$ORDERFLOW_CACHE_DIR" "$FERRETDB_VERSION"; }

mongodb_install() {
  local binary
  binary=$(mongodb_binary)
  [[ -x $binary ]] && return 0
  command -v go >/dev/null || die "mongodb: building FerretDB needs Go 1.22 or newer (https://go.dev/dl/ or your package manager)"
  log "mongodb: building FerretDB $FERRETDB_VERSION from the Go module proxy (first time only)"
  mkdir -p "$(dirname "$binary")"
  (cd "$DEPLOY_DIR/ferretdb" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly go build -trimpath -o "$binary.tmp" .) >&2 ||
    die "mongodb: building FerretDB failed"
  mv "$binary.tmp" "$binary"
}

mongodb_healthy() { port_open "$ORDERFLOW_INFRA_HOST" "$MONGODB_PORT" && grep -q 'listening on' "$(log_file mongodb)"; }

mongodb_start() {
  local dir
  dir=$(service_dir mongodb)
  mongodb_install
  mkdir -p "$dir/data"
  refuse_busy_port mongodb "$MONGODB_PORT"
  : >"$(log_file mongodb)"
  start_daemon mongodb "$(mongodb_binary)" --listen-addr "$ORDERFLOW_INFRA_HOST:$MONGODB_PORT" \
    --sqlite-url "file:$dir/data/"
  wait_until 60 mongodb mongodb_healthy
}

mongodb_stop() { stop_service mongodb 30; }
