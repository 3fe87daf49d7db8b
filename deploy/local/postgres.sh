# PostgreSQL from Debian's packages: a throwaway cluster with one database for orderflow.
# Sourced by infra.sh.

POSTGRES_PORT="${ORDERFLOW_POSTGRES_PORT:-5432}"
POSTGRES_DB=orderflow
POSTGRES_USER=orderflow
POSTGRES_PASSWORD=orderflow

postgres_url() {
  printf 'postgresql://%s:%s@%s:%s/%s' "$POSTGRES_USER" "$POSTGRES_PASSWORD" "$ORDERFLOW_INFRA_HOST" "$POSTGRES_PORT" "$POSTGRES_DB"
}

# The server binaries of the newest PostgreSQL installed; installs Debian's package if none is.
postgres_bindir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [[ -z $dir ]] && command -v pg_ctl >/dev/null; then dir=$(dirname "$(readlink -f "$(command -v pg_ctl)")"); fi
  if [[ -z $dir ]]; then
    apt_install postgresql
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  fi
  [[ -x $dir/pg_ctl ]] || die "postgres: no PostgreSQL server found"
  printf '%s' "$dir"
}

postgres_healthy() { "${PG_BIN:=$(postgres_bindir)}/pg_isready" -q -h "$ORDERFLOW_INFRA_HOST" -p "$POSTGRES_PORT"; }

postgres_start() {
  local dir data
  dir=$(service_dir postgres)
  data="$dir/data"
  PG_BIN=$(postgres_bindir)
  ensure_service_account
  refuse_busy_port postgres "$POSTGRES_PORT"
  mkdir -p "$dir/run"
  : >"$(log_file postgres)"
  give_to_service_account "$dir"
  if [[ ! -f $data/PG_VERSION ]]; then
    as_service_account "$PG_BIN/initdb" -D "$data" -U postgres --auth-local=trust \
      --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >>"$(log_file postgres)" 2>&1 ||
      die "postgres: initdb failed; see $(log_file postgres)"
  fi
  # pg_ctl returns once the server accepts connections (-w), and leaves it running detached.
  as_service_account "$PG_BIN/pg_ctl" -D "$data" -l "$(log_file postgres)" -w -t 60 start \
    -o "-c listen_addresses=$ORDERFLOW_INFRA_HOST -p $POSTGRES_PORT -c unix_socket_directories=$dir/run -c max_connections=300" \
    >/dev/null || { tail -n 40 "$(log_file postgres)" >&2; die "postgres: the server did not start"; }
  head -n 1 "$data/postmaster.pid" >"$(pid_file postgres)"
  wait_until 30 postgres postgres_healthy
  postgres_create_database "$dir/run"
}

postgres_create_database() {
  local socket_dir=$1
  as_service_account "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -h "$socket_dir" -p "$POSTGRES_PORT" -U postgres -d postgres >/dev/null <<SQL
SELECT 'CREATE ROLE $POSTGRES_USER LOGIN CREATEDB PASSWORD ''$POSTGRES_PASSWORD'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$POSTGRES_USER') \gexec
SELECT 'CREATE DATABASE $POSTGRES_DB OWNER $POSTGRES_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$POSTGRES_DB') \gexec
SQL
}

# Another database owned by orderflow's role (FerretDB keeps its data in one).
postgres_create_database_named() {
  local name=$1
  PG_BIN=$(postgres_bindir)
  as_service_account "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -h "$(service_dir postgres)/run" -p "$POSTGRES_PORT" -U postgres -d postgres >/dev/null <<SQL
SELECT 'CREATE DATABASE $name OWNER $POSTGRES_USER'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$name') \gexec
SQL
}

# postgres_apply_sql DATABASE FILE: run a SQL file in DATABASE as the superuser.
postgres_apply_sql() {
  PG_BIN=$(postgres_bindir)
  as_service_account "$PG_BIN/psql" -q -v ON_ERROR_STOP=1 -h "$(service_dir postgres)/run" -p "$POSTGRES_PORT" -U postgres -d "$1" >/dev/null <"$2"
}

postgres_stop() {
  local data
  data="$(service_dir postgres)/data"
  if [[ -f $data/postmaster.pid ]] && process_running postgres; then
    PG_BIN=$(postgres_bindir)
    as_service_account "$PG_BIN/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null || true
  fi
  stop_service postgres 30
}
