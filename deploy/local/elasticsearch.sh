# Elasticsearch from the integ-test distribution zip on Maven Central, run with the machine's Java.
# That distribution lacks the analysis-common module (asciifolding, the stemmers, the english
# analyzer): the analysis-lite plugin in deploy/local/elasticsearch-analysis restores them. It is
# built with Maven for exactly this version and installed into the cached Elasticsearch home.
# Sourced by infra.sh.

ELASTICSEARCH_VERSION="${ORDERFLOW_ELASTICSEARCH_VERSION:-8.19.7}"
ELASTICSEARCH_PORT="${ORDERFLOW_ELASTICSEARCH_PORT:-9200}"
ELASTICSEARCH_TRANSPORT_PORT="${ORDERFLOW_ELASTICSEARCH_TRANSPORT_PORT:-9300}"
ELASTICSEARCH_HEAP="${ORDERFLOW_ELASTICSEARCH_HEAP:-512m}"

elasticsearch_url() { printf 'http://%s:%s' "$ORDERFLOW_INFRA_HOST" "$ELASTICSEARCH_PORT"; }
elasticsearch_home() { printf '%s/elasticsearch-%s' "$ORDERFLOW_CACHE_DIR" "$ELASTICSEARCH_VERSION"; }

elasticsearch_analysis_sources() { printf '%s/elasticsearch-analysis' "$DEPLOY_DIR"; }
elasticsearch_analysis_cache() { printf '%s/elasticsearch-analysis-%s' "$ORDERFLOW_CACHE_DIR" "$ELASTICSEARCH_VERSION"; }
# elasticsearch_analysis_zip DIGEST: where the build of the sources with that digest is cached.
elasticsearch_analysis_zip() {
  printf '%s/%s/analysis-lite-%s.zip' "$(elasticsearch_analysis_cache)" "$1" "$ELASTICSEARCH_VERSION"
}

# elasticsearch_analysis_digest: a sha256 of the plugin's sources; any change to them means a new build.
elasticsearch_analysis_digest() {
  (cd "$(elasticsearch_analysis_sources)" &&
    find pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}

# elasticsearch_jdk_home: a JDK of at least Java 17; Maven compiles the plugin, so a JRE will not do.
elasticsearch_jdk_home() {
  local candidate
  for candidate in "$(java_home 17)" /usr/lib/jvm/*; do
    if [[ -x $candidate/bin/javac ]] && (($(java_major "$candidate/bin/java") >= 17)); then
      printf '%s' "$candidate"
      return 0
    fi
  done
  apt_install openjdk-17-jdk-headless
  for candidate in /usr/lib/jvm/*; do
    [[ -x $candidate/bin/javac ]] && (($(java_major "$candidate/bin/java") >= 17)) &&
      { printf '%s' "$candidate"; return 0; }
  done
  die "elasticsearch: no JDK 17 or newer to build the analysis-lite plugin with"
}

# elasticsearch_analysis_build DIGEST: build the plugin zip into the cache unless it is there already.
elasticsearch_analysis_build() {
  local digest=$1 cache zip jdk output started=$SECONDS
  cache=$(elasticsearch_analysis_cache)
  zip=$(elasticsearch_analysis_zip "$digest")
  [[ -f $zip ]] && return 0
  need_command mvn maven
  jdk=$(elasticsearch_jdk_home) || exit 1
  log "elasticsearch: building the analysis-lite plugin for $ELASTICSEARCH_VERSION with Maven"
  # Builds of older sources are of no further use.
  rm -rf "$cache" && mkdir -p "$cache" || die "elasticsearch: cannot create $cache"
  output=$(mktemp)
  if ! JAVA_HOME="$jdk" mvn -B -q -Dstyle.color=never -f "$(elasticsearch_analysis_sources)/pom.xml" \
    -Delasticsearch.version="$ELASTICSEARCH_VERSION" -Danalysis.build.directory="$cache/build" \
    package >"$output" 2>&1; then
    tail -n 40 "$output" >&2
    rm -f "$output"
    die "elasticsearch: Maven could not build the analysis-lite plugin from $(elasticsearch_analysis_sources)"
  fi
  rm -f "$output"
  mkdir -p "$(dirname "$zip")" &&
    mv "$cache/build/analysis-lite-$ELASTICSEARCH_VERSION.zip" "$zip" && rm -rf "$cache/build" ||
    die "elasticsearch: the analysis-lite build left no plugin zip in $cache/build"
  log "elasticsearch: built the analysis-lite plugin in $((SECONDS - started))s"
}

# elasticsearch_analysis_installed HOME DIGEST: whether HOME has the plugin built from those sources.
elasticsearch_analysis_installed() {
  [[ -f $1/plugins/analysis-lite/plugin-descriptor.properties ]] &&
    [[ $(cat "$1/.analysis-lite.sha256" 2>/dev/null) == "$2" ]]
}

# elasticsearch_analysis_install HOME DIGEST: replace HOME/plugins/analysis-lite with the cached build.
elasticsearch_analysis_install() {
  local home=$1 digest=$2 staging="$1/.analysis-lite.tmp"
  log "elasticsearch: installing the analysis-lite plugin into $home/plugins"
  rm -rf "$staging" && unzip -q "$(elasticsearch_analysis_zip "$digest")" -d "$staging" &&
    rm -rf "$home/plugins/analysis-lite" && mv "$staging" "$home/plugins/analysis-lite" ||
    die "elasticsearch: could not install the analysis-lite plugin into $home/plugins"
  printf '%s\n' "$digest" >"$home/.analysis-lite.sha256"
}

# elasticsearch_unpack HOME: fetch the distribution zip and unpack it as HOME.
elasticsearch_unpack() {
  local home=$1 artifact zip
  artifact="org.elasticsearch.distribution.integ-test-zip:elasticsearch:$ELASTICSEARCH_VERSION:zip"
  log "elasticsearch: fetching $artifact from Maven Central"
  maven_fetch dependency:copy -Dartifact="$artifact" -DoutputDirectory="$ORDERFLOW_CACHE_DIR/downloads"
  zip="$ORDERFLOW_CACHE_DIR/downloads/elasticsearch-$ELASTICSEARCH_VERSION.zip"
  rm -rf "$home" "$home.tmp" && mkdir -p "$home.tmp" && unzip -q "$zip" -d "$home.tmp" &&
    mv "$home.tmp/elasticsearch-$ELASTICSEARCH_VERSION" "$home" && rmdir "$home.tmp" ||
    die "elasticsearch: could not unpack $zip into $home"
}

# The home is complete (.complete) once unpacked with the plugin in it. A home completed before the
# plugin existed, or with a build of older plugin sources, gets the current build on the next start.
elasticsearch_install() {
  local home digest sources
  home=$(elasticsearch_home)
  sources=$(elasticsearch_analysis_sources)
  [[ -f $sources/pom.xml ]] || die "elasticsearch: the analysis-lite plugin sources are missing: no $sources/pom.xml"
  digest=$(elasticsearch_analysis_digest) || die "elasticsearch: cannot read the analysis-lite plugin sources in $sources"
  [[ -f $home/.complete ]] && elasticsearch_analysis_installed "$home" "$digest" && return 0
  need_command unzip unzip
  # Build before touching the home: a failed build leaves a working home as it was.
  elasticsearch_analysis_build "$digest"
  [[ -f $home/.complete ]] || elasticsearch_unpack "$home"
  elasticsearch_analysis_install "$home" "$digest"
  # Read by the service account when run as root.
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
