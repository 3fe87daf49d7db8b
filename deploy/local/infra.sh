#!/usr/bin/env bash
# Starts, stops and reports the real services orderflow needs, on this machine, without Docker.
#
#   infra.sh up     [--only kafka,postgres,elasticsearch,mongodb]
#   infra.sh down   [--only ...]
#   infra.sh status [--only ...]     exit status 0 only when every named service is up
#   infra.sh url SERVICE             the URL clients use to reach SERVICE
#
# Idempotent: `up` leaves running services alone, `down` stops only what is running.
# Downloads and builds are cached in $ORDERFLOW_CACHE_DIR; data and logs live in $ORDERFLOW_STATE_DIR.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/local/lib.sh
source "$here/lib.sh"
for service_script in kafka postgres elasticsearch mongodb; do
  # shellcheck disable=SC1090
  source "$here/$service_script.sh"
done

ALL_SERVICES=(kafka postgres elasticsearch mongodb)

usage() {
  echo "usage: $(basename "$0") up|down|status [--only SERVICE[,SERVICE...]] | url SERVICE" >&2
  echo "services: ${ALL_SERVICES[*]}" >&2
  exit 2
}

service_up() { process_running "$1" && "${1}_healthy"; }

cmd_up() {
  local service started
  mkdir -p "$ORDERFLOW_CACHE_DIR" "$ORDERFLOW_STATE_DIR"
  for service in "$@"; do
    mkdir -p "$(service_dir "$service")"
    if service_up "$service"; then
      log "$service is already up at $("${service}_url")"
      continue
    fi
    started=$SECONDS
    # A pid file whose process died (a crash, a reboot) is stale: clean up before starting.
    "${service}_stop"
    "${service}_start" || die "$service did not start; its log is $(log_file "$service")"
    log "$service is up at $("${service}_url") (${SECONDS}s total, $((SECONDS - started))s for $service)"
  done
}

cmd_down() {
  local service
  for service in "$@"; do
    if process_running "$service"; then
      "${service}_stop"
      log "$service stopped"
    else
      "${service}_stop"
    fi
  done
}

cmd_status() {
  local service state all_up=0
  printf '%-14s %-6s %-8s %s\n' SERVICE STATE PID URL
  for service in "$@"; do
    if service_up "$service"; then state=up; else state=down; all_up=1; fi
    printf '%-14s %-6s %-8s %s\n' "$service" "$state" "$(read_pid "$service")" "$("${service}_url")"
  done
  return $all_up
}

[[ $# -ge 1 ]] || usage
command=$1
shift
if [[ $command == url ]]; then
  [[ $# -eq 1 && " ${ALL_SERVICES[*]} " == *" $1 "* ]] || usage
  "${1}_url"
  echo
  exit 0
fi
services=("${ALL_SERVICES[@]}")
while [[ $# -gt 0 ]]; do
  case $1 in
    --only)
      [[ $# -ge 2 ]] || usage
      IFS=, read -r -a services <<<"$2"
      shift 2
      ;;
    *) usage ;;
  esac
done
for service in "${services[@]}"; do
  [[ " ${ALL_SERVICES[*]} " == *" $service "* ]] || { echo "unknown service: $service" >&2; usage; }
done

case $command in
  up) cmd_up "${services[@]}" ;;
  down) cmd_down "${services[@]}" ;;
  status) cmd_status "${services[@]}" ;;
  *) usage ;;
esac
