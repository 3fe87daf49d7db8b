# Elasticsearch from the integ-test distribution zip on Maven Central, run with the machine's Java.
# Sourced by infra.sh.

ELASTICSEARCH_VERSION="${ORDERFLOW_ELASTICSEARCH_VERSION:-8.19.7}"
ELASTICSEARCH_PORT="${ORDERFLOW_ELASTICSEARCH_PORT:-9200}"
ELASTICSEARCH_TRANSPORT_PORT="${ORDERFLOW_ELASTICSEARCH_TRANSPORT_PORT:-9300}"
ELASTICSEARCH_HEAP="${ORDERFLOW_ELASTICSEARCH_HEAP:-512m}"

elasticsearch_url() { printf 'http://%s:%s' "$ORDERFLOW_INFRA_HOST" "$ELASTICSEARCH_PORT"; }
elasticsearch_home() { printf '%s/elasticsearch-%s' "$ORDERFLOW_CACHE_DIR" "$ELASTICSEARCH_VERSION"; }

elasticsearch_install() {
  local home artifact zip
  home=$(elasticsearch_home)
  [[ -f $home/.complete ]] && return 0
  artifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ELASTICSEARCH_VERSION:zip"
  log "elasticsearch: fetching $artifact from Maven Central"
  maven_fetch dependency:copy -Dartifact="$artifact" -DoutputDirectory="$ORDERFLOW_CACHE_DIR/downloads"
  zip="$ORDERFLOW_CACHE_DIR/downloads/elasticsearch-$ELASTICSEARCH_VERSION.zip"
  need_command unzip unzip
  rm -rf "$home" "$home.tmp" && mkdir -p "$home.tmp"
  unzip -q "$zip" -d "$home.tmp"
  mv "$home.tmp/elasticsearch-$ELASTICSEARCH_VERSION" "$home" && rmdir "$home.tmp"
  chmod -R a+rX "$home"
  touch "$home/.complete"
}

elasticsearch_configure() {
  local dir=$1
  rm -rf "$dir/config" && cp -r "$(elasticsearch_home)/config" "$dir/config"
  cat >"$dir/config/elasticsearch.yml" <<YAML
cluster.name: orderflow-local
node.name: local
network.host: $ORDERFLOW_INFRA_HOST
http.port: $ELASTICSEARCH_PORT
transport.port: $ELASTICSEARCH_TRANSPORT_PORT
discovery.type: single-node
path.data: $dir/data
path.logs: $dir/logs
xpack.security.enabled: false
# A developer machine's disk may be fuller than a server's: never turn indices read-only.
cluster.routing.allocation.disk.threshold_enabled: false
action.destructive_requires_name: false
YAML
}

elasticsearch_healthy() {
  curl -fsS -o /dev/null "$(elasticsearch_url)/_cluster/health?wait_for_status=yellow&timeout=1s" 2>/dev/null
}

elasticsearch_start() {
  local dir java
  dir=$(service_dir elasticsearch)
  need_command curl curl
  elasticsearch_install
  java=$(java_home 17)
  ensure_service_account
  refuse_busy_port elasticsearch "$ELASTICSEARCH_PORT"
  mkdir -p "$dir/data" "$dir/logs" "$dir/tmp"
  elasticsearch_configure "$dir"
  : >"$(log_file elasticsearch)"
  give_to_service_account "$dir"
  # -d detaches once the node is up; -p writes the pid of the server process.
  as_service_account env ES_JAVA_HOME="$java" ES_PATH_CONF="$dir/config" ES_TMPDIR="$dir/tmp" \
    ES_JAVA_OPTS="-Xms$ELASTICSEARCH_HEAP -Xmx$ELASTICSEARCH_HEAP" \
    "$(elasticsearch_home)/bin/elasticsearch" -d -p "$(pid_file elasticsearch)" \
    >>"$(log_file elasticsearch)" 2>&1 ||
    { tail -n 40 "$(log_file elasticsearch)" >&2; die "elasticsearch: the node did not start"; }
  wait_until 120 elasticsearch elasticsearch_healthy
}

elasticsearch_stop() { stop_service elasticsearch 60; }
