# Shared helpers for the local infrastructure scripts. Sourced by infra.sh, not run.
#
# Layout:
#   $ORDERFLOW_CACHE_DIR/<name>-<version>/   downloads and builds, kept between runs
#   $ORDERFLOW_STATE_DIR/<service>/          data, config, log and pid file of one service
# As root (CI, containers) the defaults are /var/cache/orderflow and /var/lib/orderflow, so
# that the unprivileged account PostgreSQL and Elasticsearch must run under can read them.

if [[ $(id -u) == 0 ]]; then
  ORDERFLOW_CACHE_DIR="${ORDERFLOW_CACHE_DIR:-/var/cache/orderflow}"
  ORDERFLOW_STATE_DIR="${ORDERFLOW_STATE_DIR:-/var/lib/orderflow}"
else
  ORDERFLOW_CACHE_DIR="${ORDERFLOW_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/orderflow}"
  ORDERFLOW_STATE_DIR="${ORDERFLOW_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/orderflow}"
fi
ORDERFLOW_INFRA_HOST="${ORDERFLOW_INFRA_HOST:-127.0.0.1}"
SERVICE_ACCOUNT=orderflow
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf '[infra] %s\n' "$*" >&2; }
die() { printf '[infra] error: %s\n' "$*" >&2; exit 1; }

service_dir() { printf '%s/%s' "$ORDERFLOW_STATE_DIR" "$1"; }
pid_file() { printf '%s/pid' "$(service_dir "$1")"; }
log_file() { printf '%s/server.log' "$(service_dir "$1")"; }

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
read_pid() { local f; f=$(pid_file "$1"); [[ -s $f ]] && cat "$f" || true; }
process_running() { pid_alive "$(read_pid "$1")"; }

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# wait_until SECONDS SERVICE COMMAND...: poll COMMAND until it succeeds; on time-out show the log.
wait_until() {
  local timeout=$1 service=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ! process_running "$service"; then
      log "$service exited during start-up; last lines of $(log_file "$service"):"
      tail -n 40 "$(log_file "$service")" >&2 || true
      return 1
    fi
    if ((SECONDS >= deadline)); then
      log "$service was not healthy after ${timeout}s; last lines of $(log_file "$service"):"
      tail -n 40 "$(log_file "$service")" >&2 || true
      return 1
    fi
    sleep 0.3
  done
}

# refuse_busy_port SERVICE PORT: fail clearly when something else already listens there.
refuse_busy_port() {
  if port_open "$ORDERFLOW_INFRA_HOST" "$2"; then
    die "$1: port $2 on $ORDERFLOW_INFRA_HOST is in use by a process this script did not start; stop it or set the port variable"
  fi
}

# stop_service SERVICE [SECONDS]: SIGTERM the process group, SIGKILL what is left after SECONDS.
stop_service() {
  local service=$1 timeout=${2:-30} pid
  pid=$(read_pid "$service")
  if ! pid_alive "$pid"; then
    rm -f "$(pid_file "$service")"
    return 0
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if pid_alive "$pid"; then
    log "$service did not stop within ${timeout}s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    while pid_alive "$pid"; do sleep 0.1; done
  fi
  rm -f "$(pid_file "$service")"
}

# start_daemon SERVICE COMMAND...: run COMMAND in its own session, detached, logging to the service log.
start_daemon() {
  local service=$1
  shift
  setsid "$@" >>"$(log_file "$service")" 2>&1 </dev/null &
  echo $! >"$(pid_file "$service")"
}

# PostgreSQL and Elasticsearch refuse to run as root: under root they run as a system account.
ensure_service_account() {
  [[ $(id -u) == 0 ]] || return 0
  id "$SERVICE_ACCOUNT" &>/dev/null ||
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$SERVICE_ACCOUNT"
}
as_service_account() {
  if [[ $(id -u) == 0 ]]; then runuser -u "$SERVICE_ACCOUNT" -- "$@"; else "$@"; fi
}
give_to_service_account() {
  [[ $(id -u) == 0 ]] && chown -R "$SERVICE_ACCOUNT:$SERVICE_ACCOUNT" "$@"
  return 0
}

# apt_install PACKAGE...: install Debian packages when we can (root with apt), else say what is missing.
apt_install() {
  if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null; then
    die "missing system packages: $*; install them (Debian/Ubuntu: apt-get install $*) and retry"
  fi
  log "installing Debian packages: $*"
  local stamp="$ORDERFLOW_CACHE_DIR/.apt-updated"
  if [[ ! -f $stamp ]] || [[ -n $(find "$stamp" -mmin +1440 2>/dev/null) ]]; then
    apt-get update -qq >&2 && mkdir -p "$ORDERFLOW_CACHE_DIR" && touch "$stamp"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

need_command() { # need_command COMMAND DEBIAN_PACKAGE
  command -v "$1" >/dev/null || apt_install "$2"
  command -v "$1" >/dev/null || die "$1 is still missing after installing $2"
}

java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p' | cut -d. -f1; }

# java_home MIN_MAJOR: the JAVA_HOME of a JDK/JRE of at least that major version.
java_home() {
  local min=$1 candidate java
  for candidate in "${JAVA_HOME:-}" "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")" /usr/lib/jvm/*; do
    java="$candidate/bin/java"
    [[ -n $candidate && -x $java ]] || continue
    if (($(java_major "$java") >= min)); then
      printf '%s' "$candidate"
      return 0
    fi
  done
  apt_install openjdk-17-jre-headless
  java_home_after_install "$min"
}
java_home_after_install() {
  local candidate
  for candidate in /usr/lib/jvm/*; do
    if [[ -x $candidate/bin/java ]] && (($(java_major "$candidate/bin/java") >= $1)); then
      printf '%s' "$candidate"
      return 0
    fi
  done
  die "no Java $1 or newer found"
}

# maven_fetch ARGS...: run Maven quietly in batch mode; Maven keeps its own cache in ~/.m2.
maven_fetch() {
  need_command mvn maven
  local output
  output=$(mktemp)
  if ! mvn -B -Dstyle.color=never "$@" >"$output" 2>&1; then
    tail -n 40 "$output" >&2
    rm -f "$output"
    die "Maven could not fetch: $*"
  fi
  rm -f "$output"
}
