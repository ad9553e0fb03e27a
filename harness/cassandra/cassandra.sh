#!/usr/bin/env bash
# Real Apache Cassandra 5.0 nodes on loopback, for cassette's tests and quickstart.
#
#   cassandra.sh fetch                         resolve + download cassandra-all 5.0.x (cached)
#   cassandra.sh start  [options]              write configs, start the nodes, wait until all are UN
#   cassandra.sh stop   [--name NAME]          stop a cluster's nodes (TERM, then KILL after 60 s)
#   cassandra.sh stop-node --name NAME --node I    stop one node
#   cassandra.sh start-node --name NAME --node I   start one stopped node again
#   cassandra.sh status [--name NAME]          nodetool status of a running cluster
#   cassandra.sh nodetool [--name NAME] [--node I] ARGS...
#   cassandra.sh logs   [--name NAME]          tail of every node's system.log
#
# start options: --name NAME (default: dev) --nodes N (1..9, default 1) --first-ip 127.0.0.1
#                --jmx-base 7100 (node i gets JMX port jmx-base + 100*(i-1)) --data-dirs N (JBOD, default 1)
#                --heap 384m --storage-compat CASSANDRA_4|NONE --uuid-ids true|false
#
# Layout: $CASSETTE_CLUSTER_ROOT (default /tmp/cassette-clusters)/NAME/
#   cluster.json            what the Rust test fixture reads: nodes, ips, jmx ports, dirs
#   nodeI/conf/cassandra.yaml, nodeI/conf/logback.xml
#   nodeI/data1..N, commitlog, saved_caches, hints, cdc_raw, logs/system.log, logs/stdout.log, pid
# Downloads: $CASSETTE_CACHE_DIR (default ~/.cache/cassette)/cassandra-5.0/lib (never in the git tree).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${CASSETTE_CACHE_DIR:-$HOME/.cache/cassette}
LIB_DIR=$CACHE_DIR/cassandra-5.0/lib
CLUSTER_ROOT=${CASSETTE_CLUSTER_ROOT:-/tmp/cassette-clusters}

die() { echo "cassandra.sh: error: $*" >&2; exit 1; }
log() { echo "cassandra.sh: $*" >&2; }

java_bin() {
  if [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then echo "$JAVA_HOME/bin/java"; return; fi
  for d in /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk-arm64 /usr/lib/jvm/temurin-17-jdk-amd64; do
    [ -x "$d/bin/java" ] && { echo "$d/bin/java"; return; }
  done
  command -v java >/dev/null || die "no Java found: install a JDK 17 (Debian: apt-get install openjdk-17-jdk-headless) or set JAVA_HOME"
  command -v java
}

check_java() {
  local j ver
  j=$(java_bin)
  ver=$("$j" -version 2>&1 | head -1 | sed -E 's/.*version "([0-9]+).*/\1/')
  [ "$ver" = "17" ] || die "Cassandra 5.0 is run here on Java 17, but $j is Java $ver: install openjdk-17 or set JAVA_HOME to a JDK 17"
}

cmd_fetch() {
  if [ -f "$LIB_DIR/.complete" ]; then
    log "Cassandra $(cat "$LIB_DIR/.version") already in $LIB_DIR"
    return
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Cassandra: apt-get install maven"
  log "resolving the newest org.apache.cassandra:cassandra-all 5.0.x with Maven into $LIB_DIR"
  rm -rf "$LIB_DIR"; mkdir -p "$LIB_DIR"
  # The parent POM prints a harmless "systemPath ${jmc5.path}" error on some Maven versions.
  if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$LIB_DIR" >"$CACHE_DIR/mvn-fetch.log" 2>&1; then
    tail -30 "$CACHE_DIR/mvn-fetch.log" >&2
    die "Maven could not fetch cassandra-all (log: $CACHE_DIR/mvn-fetch.log)"
  fi
  local jar
  jar=$(ls "$LIB_DIR"/cassandra-all-*.jar 2>/dev/null | head -1) || true
  [ -n "$jar" ] || die "Maven finished but no cassandra-all jar is in $LIB_DIR"
  basename "$jar" .jar | sed 's/^cassandra-all-//' > "$LIB_DIR/.version"
  touch "$LIB_DIR/.complete"
  log "fetched Cassandra $(cat "$LIB_DIR/.version") ($(ls "$LIB_DIR"/*.jar | wc -l) jars)"
}

classpath() {
  [ -f "$LIB_DIR/.complete" ] || die "Cassandra is not fetched yet: run $0 fetch"
  local cp=""
  for j in "$LIB_DIR"/*.jar; do cp="$cp:$j"; done
  echo "${cp#:}"
}

# Cassandra 5.0's conf/jvm17-server.options, exports and opens, plus the newer branches' harmless extras.
JVM17_COMMON=(
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-exports java.base/java.lang.ref=ALL-UNNAMED
  --add-exports jdk.unsupported/sun.misc=ALL-UNNAMED
  --add-exports jdk.compiler/com.sun.tools.javac.file=ALL-UNNAMED
  --add-exports jdk.attach/sun.tools.attach=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens java.base/sun.nio.ch=ALL-UNNAMED
  --add-opens java.base/java.io=ALL-UNNAMED
  --add-opens java.base/java.lang.reflect=ALL-UNNAMED
  --add-opens java.base/java.lang=ALL-UNNAMED
  --add-opens java.base/java.util=ALL-UNNAMED
  --add-opens java.base/java.nio=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  --add-opens jdk.compiler/com.sun.tools.javac=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
)
# Server only (jvm17-clients.options is the same list without it).
JVM17_SERVER_ONLY=(--add-exports java.management/com.sun.jmx.remote.security=ALL-UNNAMED)

# --- option parsing shared by the subcommands -------------------------------------------------
NAME=dev NODES=1 FIRST_IP=127.0.0.1 JMX_BASE=7100 DATA_DIRS=1 HEAP=384m NODE=1
STORAGE_COMPAT=${CASSETTE_STORAGE_COMPAT:-CASSANDRA_4} UUID_IDS=false
parse_opts() {
  REST=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) NAME=$2; shift 2 ;;
      --nodes) NODES=$2; shift 2 ;;
      --first-ip) FIRST_IP=$2; shift 2 ;;
      --jmx-base) JMX_BASE=$2; shift 2 ;;
      --data-dirs) DATA_DIRS=$2; shift 2 ;;
      --heap) HEAP=$2; shift 2 ;;
      --storage-compat) STORAGE_COMPAT=$2; shift 2 ;;
      --uuid-ids) UUID_IDS=$2; shift 2 ;;
      --node) NODE=$2; shift 2 ;;
      --) shift; REST+=("$@"); break ;;
      *) REST+=("$1"); shift ;;
    esac
  done
  [[ "$NAME" =~ ^[A-Za-z0-9_-]+$ ]] || die "--name must be letters, digits, _ or -"
  [[ "$NODES" =~ ^[1-9]$ ]] || die "--nodes must be 1..9"
}

cluster_dir() { echo "$CLUSTER_ROOT/$NAME"; }
node_dir() { echo "$(cluster_dir)/node$1"; }
node_ip() { local base=${FIRST_IP%.*} last=${FIRST_IP##*.}; echo "$base.$((last + $1 - 1))"; }
node_jmx() { echo $((JMX_BASE + 100 * ($1 - 1))); }

# Evenly spaced Murmur3 tokens, one per node: initial_token makes first boots fast.
node_token() {
  python3 -c "n=$NODES;i=$1;print(-(2**63) + (2**64)//n*(i-1))"
}

# Reads the saved settings of an existing cluster so stop/nodetool need only --name.
load_cluster() {
  local f; f="$(cluster_dir)/cluster.env"
  [ -f "$f" ] || die "no cluster '$NAME' under $CLUSTER_ROOT (start it with: $0 start --name $NAME)"
  # shellcheck disable=SC1090
  source "$f"
}

write_node_config() {
  local i=$1 d ip seed dirs=""
  d=$(node_dir "$i"); ip=$(node_ip "$i"); seed=$(node_ip 1)
  mkdir -p "$d/conf" "$d/logs" "$d/commitlog" "$d/saved_caches" "$d/hints" "$d/cdc_raw" "$d/tmp"
  for k in $(seq 1 "$DATA_DIRS"); do mkdir -p "$d/data$k"; dirs="$dirs    - $d/data$k"$'\n'; done
  cat > "$d/conf/cassandra.yaml" <<EOF
# Written by cassette's harness/cassandra/cassandra.sh for a test node; do not edit.
cluster_name: '$NAME'
num_tokens: 1
initial_token: $(node_token "$i")
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: SimpleSnitch
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "$seed:7000"
listen_address: $ip
rpc_address: $ip
storage_port: 7000
native_transport_port: 9042
start_native_transport: true
data_file_directories:
$dirs
commitlog_directory: $d/commitlog
saved_caches_directory: $d/saved_caches
hints_directory: $d/hints
cdc_raw_directory: $d/cdc_raw
commitlog_sync: periodic
commitlog_sync_period: 10000ms
authenticator: AllowAllAuthenticator
authorizer: AllowAllAuthorizer
storage_compatibility_mode: $STORAGE_COMPAT
uuid_sstable_identifiers_enabled: $UUID_IDS
auto_snapshot: true
incremental_backups: false
snapshot_before_compaction: false
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 0MiB
concurrent_reads: 4
concurrent_writes: 4
concurrent_counter_writes: 4
concurrent_compactors: 1
compaction_throughput: 0MiB/s
EOF
  cat > "$d/conf/logback.xml" <<EOF
<configuration scan="false">
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$d/logs/system.log</file>
    <encoder><pattern>%-5level [%thread] %date{ISO8601} %F:%L - %msg%n</pattern></encoder>
  </appender>
  <appender name="STDOUT" class="ch.qos.logback.core.ConsoleAppender">
    <filter class="ch.qos.logback.classic.filter.ThresholdFilter"><level>WARN</level></filter>
    <encoder><pattern>%-5level %date{HH:mm:ss.SSS} %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/><appender-ref ref="STDOUT"/></root>
</configuration>
EOF
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

node_pid() { local f; f="$(node_dir "$1")/pid"; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }

print_log_tail() {
  local d; d=$(node_dir "$1")
  echo "----- tail of $d/logs/system.log -----" >&2
  tail -40 "$d/logs/system.log" >&2 2>/dev/null || echo "(no system.log)" >&2
  echo "----- tail of $d/logs/stdout.log -----" >&2
  tail -20 "$d/logs/stdout.log" >&2 2>/dev/null || true
}

launch_node() {
  local i=$1 d ip jmx java
  d=$(node_dir "$i"); ip=$(node_ip "$i"); jmx=$(node_jmx "$i"); java=$(java_bin)
  if node_pid "$i" >/dev/null; then log "node$i ($ip) already running"; return; fi
  port_open "$ip" 9042 && die "$ip:9042 is taken by another process: stop it or use --first-ip"
  log "starting node$i on $ip (JMX 127.0.0.1:$jmx, log $d/logs/system.log)"
  # setsid: the node outlives the shell (or test process) that started it.
  setsid nohup "$java" -Xms"$HEAP" -Xmx"$HEAP" -Xss256k -XX:+UseG1GC -XX:ActiveProcessorCount=2 \
    -XX:+CrashOnOutOfMemoryError -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$d/logs" \
    "${JVM17_COMMON[@]}" "${JVM17_SERVER_ONLY[@]}" \
    -Djava.net.preferIPv4Stack=true -Djava.io.tmpdir="$d/tmp" -Djna.tmpdir="$d/tmp" \
    -Dcassandra.config="file://$d/conf/cassandra.yaml" -Dcassandra.storagedir="$d" \
    -Dcassandra.logdir="$d/logs" -Dlogback.configurationFile="file://$d/conf/logback.xml" \
    -Dcassandra-foreground=yes -Dcassandra.jmx.local.port="$jmx" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=5000 \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.migration_task_wait_in_seconds=1 \
    -cp "$(classpath)" org.apache.cassandra.service.CassandraDaemon \
    >"$d/logs/stdout.log" 2>&1 </dev/null &
  echo $! > "$d/pid"
}

wait_cql() {
  local i=$1 ip d deadline
  ip=$(node_ip "$i"); d=$(node_dir "$i"); deadline=$((SECONDS + ${CASSETTE_START_TIMEOUT:-240}))
  while ! port_open "$ip" 9042; do
    if ! node_pid "$i" >/dev/null; then print_log_tail "$i"; die "node$i ($ip) exited during start-up (see the log above)"; fi
    if [ $SECONDS -ge $deadline ]; then print_log_tail "$i"; die "node$i ($ip) did not open CQL port 9042 in time"; fi
    sleep 1
  done
  log "node$i ($ip) answers CQL"
}

run_nodetool() {
  local i=$1; shift
  "$HERE/nodetool" -h 127.0.0.1 -p "$(node_jmx "$i")" "$@"
}

wait_all_up() {
  local deadline=$((SECONDS + 120)) out up
  while true; do
    out=$(run_nodetool 1 status 2>&1 || true)
    up=$(grep -c '^UN ' <<<"$out" || true)
    [ "$up" -eq "$NODES" ] && { log "all $NODES node(s) UN"; echo "$out" >&2; return; }
    [ $SECONDS -ge $deadline ] && { echo "$out" >&2; die "only $up of $NODES nodes are UN after 120 s"; }
    sleep 2
  done
}

write_cluster_files() {
  local cd; cd=$(cluster_dir)
  cat > "$cd/cluster.env" <<EOF
NODES=$NODES
FIRST_IP=$FIRST_IP
JMX_BASE=$JMX_BASE
DATA_DIRS=$DATA_DIRS
HEAP=$HEAP
STORAGE_COMPAT=$STORAGE_COMPAT
UUID_IDS=$UUID_IDS
EOF
  {
    echo "{"
    echo "  \"name\": \"$NAME\","
    echo "  \"cassandra_version\": \"$(cat "$LIB_DIR/.version")\","
    echo "  \"nodetool\": \"$HERE/nodetool\","
    echo "  \"nodes\": ["
    for i in $(seq 1 "$NODES"); do
      local d dd="" sep=","; d=$(node_dir "$i")
      for k in $(seq 1 "$DATA_DIRS"); do dd="$dd\"$d/data$k\""; [ "$k" -lt "$DATA_DIRS" ] && dd="$dd, "; done
      [ "$i" -eq "$NODES" ] && sep=""
      echo "    {\"index\": $i, \"ip\": \"$(node_ip "$i")\", \"jmx_port\": $(node_jmx "$i"), \"dir\": \"$d\", \"data_dirs\": [$dd], \"log\": \"$d/logs/system.log\"}$sep"
    done
    echo "  ]"
    echo "}"
  } > "$cd/cluster.json"
}

cmd_start() {
  parse_opts "$@"
  check_java
  cmd_fetch
  local cd; cd=$(cluster_dir)
  if [ -f "$cd/cluster.env" ]; then
    # Restart an existing cluster with its saved settings (its data is kept).
    local want_nodes=$NODES; load_cluster
    [ "$want_nodes" = "$NODES" ] || log "cluster '$NAME' exists with $NODES node(s); reusing it"
  fi
  mkdir -p "$cd"
  for i in $(seq 1 "$NODES"); do [ -f "$(node_dir "$i")/conf/cassandra.yaml" ] || write_node_config "$i"; done
  write_cluster_files
  local t0=$SECONDS
  for i in $(seq 1 "$NODES"); do launch_node "$i"; wait_cql "$i"; done
  wait_all_up
  log "cluster '$NAME' ready in $((SECONDS - t0)) s: $cd/cluster.json"
  echo "$cd/cluster.json"
}

stop_node() {
  local i=$1 pid
  pid=$(node_pid "$i") || { log "node$i is not running"; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || { rm -f "$(node_dir "$i")/pid"; log "node$i stopped"; return 0; }; sleep 1; done
  log "node$i did not stop in 60 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$(node_dir "$i")/pid"
}

cmd_stop() {
  parse_opts "$@"
  [ -f "$(cluster_dir)/cluster.env" ] || { log "no cluster '$NAME'"; return 0; }
  load_cluster
  for i in $(seq "$NODES" -1 1); do stop_node "$i"; done
}

case "${1:-}" in
  fetch) shift; check_java; mkdir -p "$CACHE_DIR"; cmd_fetch ;;
  start) shift; mkdir -p "$CACHE_DIR"; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  stop-node) shift; parse_opts "$@"; load_cluster; stop_node "$NODE" ;;
  start-node) shift; parse_opts "$@"; load_cluster; launch_node "$NODE"; wait_cql "$NODE"; wait_all_up ;;
  status) shift; parse_opts "$@"; load_cluster; run_nodetool 1 status ;;
  nodetool) shift; parse_opts "$@"; load_cluster; run_nodetool "$NODE" "${REST[@]}" ;;
  logs) shift; parse_opts "$@"; load_cluster; for i in $(seq 1 "$NODES"); do print_log_tail "$i"; done ;;
  *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
