# Apache Kafka, one node in KRaft mode (broker and controller), from the jars on Maven Central.
# Sourced by infra.sh.

KAFKA_VERSION="${ORDERFLOW_KAFKA_VERSION:-3.9.1}"
KAFKA_PORT="${ORDERFLOW_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${ORDERFLOW_KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${ORDERFLOW_KAFKA_HEAP:-1g}"

kafka_url() { printf 'kafka://%s:%s' "$ORDERFLOW_INFRA_HOST" "$KAFKA_PORT"; }

kafka_install() {
  local libs="$ORDERFLOW_CACHE_DIR/kafka-$KAFKA_VERSION/libs"
  [[ -f $libs/.complete ]] && return 0
  log "kafka: fetching the $KAFKA_VERSION broker jars from Maven Central"
  rm -rf "$libs" && mkdir -p "$libs"
  maven_fetch -f "$DEPLOY_DIR/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$libs"
  touch "$libs/.complete"
}

# kafka_command MAIN_CLASS ARGS...: sets KAFKA_COMMAND to the java command line that runs it.
kafka_command() {
  KAFKA_COMMAND=("$(java_home 17)/bin/java" -Xms256m -Xmx"$KAFKA_HEAP" -XX:+UseG1GC
    -Dlog4j.configuration="file:$DEPLOY_DIR/kafka/log4j.properties"
    -cp "$ORDERFLOW_CACHE_DIR/kafka-$KAFKA_VERSION/libs/*" "$@")
}

kafka_configure() {
  local dir=$1
  cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$ORDERFLOW_INFRA_HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$ORDERFLOW_INFRA_HOST:$KAFKA_PORT,CONTROLLER://$ORDERFLOW_INFRA_HOST:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://$ORDERFLOW_INFRA_HOST:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$dir/data
# The application declares every topic it uses, with its partitions and config.
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=1
# A single node: internal topics cannot have more than one replica.
offsets.topic.replication.factor=1
offsets.topic.num.partitions=10
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=10
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
PROPS
}

# A KRaft cluster id: 16 random bytes in URL-safe base64 without padding. One that starts with
# "-" would be taken for an option by the storage tool ("--cluster-id: expected one argument"),
# so it is drawn again, as Kafka's own Uuid.randomUuid does.
uuidgen_kafka() {
  local id=-
  while [[ $id == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  printf '%s' "$id"
}

kafka_healthy() {
  port_open "$ORDERFLOW_INFRA_HOST" "$KAFKA_PORT" && grep -q 'Kafka Server started' "$(log_file kafka)"
}

kafka_start() {
  local dir
  dir=$(service_dir kafka)
  kafka_install
  mkdir -p "$dir/data"
  refuse_busy_port kafka "$KAFKA_PORT"
  refuse_busy_port kafka "$KAFKA_CONTROLLER_PORT"
  kafka_configure "$dir"
  : >"$(log_file kafka)"
  if [[ ! -f $dir/data/meta.properties ]]; then
    kafka_command kafka.tools.StorageTool format --ignore-formatted \
      --cluster-id "$(uuidgen_kafka)" --config "$dir/server.properties"
    "${KAFKA_COMMAND[@]}" >>"$(log_file kafka)" 2>&1 || die "kafka: formatting the log directory failed; see $(log_file kafka)"
  fi
  kafka_command kafka.Kafka "$dir/server.properties"
  start_daemon kafka "${KAFKA_COMMAND[@]}"
  wait_until 120 kafka kafka_healthy
}

kafka_stop() { stop_service kafka 60; }
