# A MongoDB-wire-protocol server: FerretDB built from the Go module proxy (deploy/local/ferretdb
# embeds FerretDB's public package), with its PostgreSQL backend in a database of the local
# PostgreSQL (started first if it is not up). Sourced by infra.sh.
#
# FerretDB 1.24's PostgreSQL backend cannot use its own index for a lookup by _id: every
# collection gets one it can use, from ferretdb/id-index.sql (applied at each start).
#
# FerretDB 1.24 holds a backend connection for each statement of a multi-statement write until
# the command ends: once its pool is used up by statements in flight, every command waits
# forever (seen with both backends: 50 concurrent update statements hang the PostgreSQL
# backend's default pool of 50). The pool is raised here, and orderflow's MongoDB store sends
# small write commands one at a time per process (orderflow/projections/mongodb.py).

FERRETDB_VERSION="$(sed -n 's/^require github.com\/FerretDB\/FerretDB \(v[0-9.]*\)$/\1/p' "$DEPLOY_DIR/ferretdb/go.mod")"
MONGODB_PORT="${ORDERFLOW_MONGODB_PORT:-27017}"

mongodb_url() { printf 'mongodb://%s:%s' "$ORDERFLOW_INFRA_HOST" "$MONGODB_PORT"; }
FERRETDB_DATABASE=ferretdb
# The binary is rebuilt when the wrapper's source changes.
mongodb_binary() {
  local source_hash
  source_hash=$(cat "$DEPLOY_DIR/ferretdb/main.go" "$DEPLOY_DIR/ferretdb/go.sum" | sha256sum | cut -c1-12)
  printf '%s/ferretdb-%s-%s/ferretdb-local' "$ORDERFLOW_CACHE_DIR" "$FERRETDB_VERSION" "$source_hash"
}

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
  refuse_busy_port mongodb "$MONGODB_PORT"
  service_up postgres || cmd_up postgres
  postgres_create_database_named "$FERRETDB_DATABASE"
  # Lookups by _id served by an index (see the file), for every collection FerretDB creates.
  postgres_apply_sql "$FERRETDB_DATABASE" "$DEPLOY_DIR/ferretdb/id-index.sql" ||
    die "mongodb: could not index document ids in the $FERRETDB_DATABASE database"
  : >"$(log_file mongodb)"
  start_daemon mongodb "$(mongodb_binary)" --listen-addr "$ORDERFLOW_INFRA_HOST:$MONGODB_PORT" \
    --postgresql-url "postgres://$POSTGRES_USER:$POSTGRES_PASSWORD@$ORDERFLOW_INFRA_HOST:$POSTGRES_PORT/$FERRETDB_DATABASE?pool_max_conns=150"
  wait_until 60 mongodb mongodb_healthy
}

mongodb_stop() { stop_service mongodb 30; }
