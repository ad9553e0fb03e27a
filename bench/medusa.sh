#!/usr/bin/env bash
# cassandra-medusa (PyPI) driver, to benchmark it against cassette on the same real Cassandra 5.0 node.
#
#   bench/medusa.sh install
#       pip install cassandra-medusa $MEDUSA_VERSION into $CASSETTE_CACHE_DIR/medusa-venv (~40 s; ~2 s
#       when present) and write its bin/cassette-medusa and bin/cassette-sstableloader (Workarounds).
#       Needs python3 3.11 or 3.12 with venv (Debian: python3-venv) and PyPI; every dependency is a
#       wheel (no compiler, no Debian -dev package). Java/jars: those of harness/cassandra.
#   bench/medusa.sh config --cluster-dir DIR [--node I] --ip IP --jmx PORT --out FILE \
#       --storage local --base-path PATH [--bucket B]
#   bench/medusa.sh config --cluster-dir DIR [--node I] --ip IP --jmx PORT --out FILE \
#       --storage s3 --s3-port P --bucket B [--s3-host 127.0.0.1]
#       write a medusa.ini for node I (default 1) of the harness cluster in DIR
#       (e.g. /tmp/cassette-clusters/bench). Optional, for both: --temp-dir D (default
#       DIR/nodeI/medusa-tmp: restore staging + TMPDIR), --concurrent-transfers N (default 1, medusa's),
#       --max-bandwidth X (default 50MB/s, medusa's; S3 only, local storage is never throttled).
#       local: backups go to PATH/B (B default: medusa). s3: the loopback s3s-fs/moto server of
#       harness/s3/s3.sh (http, path-style, us-east-1, key cassette-test); the bucket must exist;
#       the credentials file is written beside FILE as FILE.credentials.
#   bench/medusa.sh backup  --config FILE --name N [--mode full|differential]   (default: full)
#       = medusa backup-node --backup-name N --mode M. Online: CQL (schema, token map, version),
#       nodetool snapshot -t medusa-N (all keyspaces, system ones included), upload, clearsnapshot.
#       The process runs at nice 19 + ionice idle (medusa's throttle_backup). Two layouts:
#       full copies every file into BUCKET/IP/N/data/; differential keeps a per-node pool
#       BUCKET/IP/data/ and uploads only the files the pool lacks (same name and size). A full backup
#       does not feed the pool: the first differential backup uploads everything again.
#       Fails (exit 1) if medusa logged "Creating snapshot failed" (medusa itself records an empty
#       backup and exits 0).
#   bench/medusa.sh restore --config FILE --name N [--keyspace K] [--table T [--table T2]] [--sstableloader]
#       default = medusa restore-node --in-place --backup-name N [--keyspace K] [--table K.T]: OFFLINE:
#       downloads into the temp dir, STOPS the node (cassandra.sh stop-node), empties the commitlog dir,
#       replaces each restored table directory (rm -rf + mv), STARTS the node (cassandra.sh start-node,
#       which waits until CQL answers and the node is UN). --table T is K.T or T (then K.T with
#       --keyspace K). Note: with any --keyspace/--table filter medusa ALSO restores the system keyspaces
#       (system, system_schema, system_auth, system_distributed) from the backup: schema changes made
#       since the backup are rolled back.
#       --sstableloader = restore-node --use-sstableloader: ONLINE, streams the tables through
#       sstableloader (rows are merged into the live table, nothing is truncated or removed), one
#       sstableloader JVM per table (~7 s each), system_auth and system_distributed tables included.
#   bench/medusa.sh list    --config FILE                 medusa list-backups
#   bench/medusa.sh medusa  --config FILE ARGS...         any medusa command, e.g. status --backup-name N
#   bench/medusa.sh selftest    end-to-end check on cluster medusa-try (127.0.5.1, JMX 7800), local
#                               storage then s3s-fs; needs target/release/cassette-cql (about 4 min)
#
# Every backup/restore prints "medusa.sh: <what> took S s" on stderr; medusa's own log is on stderr.
# Example (bench node):
#   bench/medusa.sh install
#   bench/medusa.sh config --cluster-dir /tmp/cassette-clusters/bench --ip 127.0.4.1 --jmx 7700 \
#       --storage local --base-path /tmp/medusa-bench --out /tmp/medusa-bench/local.ini
#   bench/medusa.sh backup --config /tmp/medusa-bench/local.ini --name b1 --mode full
#   bench/medusa.sh backup --config /tmp/medusa-bench/local.ini --name b2 --mode differential
#   bench/medusa.sh restore --config /tmp/medusa-bench/local.ini --name b2 --keyspace bench --table kv
#   bench/medusa.sh restore --config /tmp/medusa-bench/local.ini --name b2
#
# How medusa sees the node: medusa.ini's [storage] fqdn = the node's IP (resolve_ip_addresses = False),
# which is the node's folder in the storage: BUCKET/IP/BACKUP/{meta,data}/..., BUCKET/index/....
# It reads cassandra.yaml (data_file_directories: one only, commitlog, listen_address, ports) and talks
# CQL to listen_address (schema, token map, release version) and JMX through the harness's nodetool.
# Runs as the user who owns the data (root here): use_sudo = False, use_sudo_for_restore = False.
#
# Workarounds for Cassandra 5.0 + this harness (medusa's installed sources are NOT modified):
# - nodetool_flags = (empty): medusa's default puts -Dcom.sun.jndi.rmiURLParsing=legacy first on the
#   nodetool command line; harness/cassandra/nodetool hands it to NodeTool, which fails with
#   "nodetool: Found unexpected parameters: [-Dcom.sun.jndi.rmiURLParsing=legacy, ...]".
# - s3s-fs lists objects without ETag (and StorageClass): medusa's S3 listing did o['ETag'] and every
#   differential backup with a non-empty pool failed after ~6 min of retries with
#   "RetryError[<Future ... raised KeyError>]" (KeyError: 'ETag'). bin/cassette-medusa is medusa's CLI
#   with S3BaseStorage._list_blobs replaced at run time by a copy that takes a missing ETag as hash
#   None (what medusa's local storage gives; hashes are only compared with enable_md5_checks).
#   Real S3 and moto list ETags: the copy then behaves as the original.
# - stop_cmd/start_cmd = cassandra.sh stop-node/start-node (medusa's default: sudo service cassandra).
# - sstableloader: there is none on the machine; install generates $VENV/bin/cassette-sstableloader,
#   harness/cassandra/nodetool with org.apache.cassandra.tools.BulkLoader as main class (same jars),
#   and config writes FILE.sstableloader, which calls it with "-d NODE_IP": medusa passes -d <the
#   resolved fqdn of the machine> (127.0.0.1), where no node listens.
# - TMPDIR is set to the temp dir: medusa's "backup in progress" marker is $TMPDIR/medusa_backup_in_progress,
#   one per machine otherwise.
# Disk: venv $CASSETTE_CACHE_DIR/medusa-venv (~190 MB); snapshots medusa-N in the data dir (cleared
# after the upload); restore staging TEMP/medusa-restore-<uuid> (the restored tables' files, plus all
# system tables; removed on success, left behind on failure); TEMP/medusa-backup-N.log (this script's
# copy of the backup log); local storage PATH/B/{IP,index}; s3s-fs DIR/B/... The restore moves files
# from the staging dir into the data dir: keep TEMP on the data's filesystem (the default is).
# Gotchas: restore (not --sstableloader) stops and starts the node and wipes its commitlog dir (the
# node drains on SIGTERM, so other tables' unflushed writes survive); it rm -rf's each restored table
# directory, snapshots included; tables created after the backup keep their directory but vanish
# from the restored schema. No root needed (owner = current user). One data directory only (JBOD
# cluster: "Medusa only supports one data directory").
# Environment: CASSETTE_CACHE_DIR (default ~/.cache/cassette), MEDUSA_VERSION (default the pin below),
# MEDUSA_VERBOSE=1 (medusa -v: debug log).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

MEDUSA_VERSION=${MEDUSA_VERSION:-0.31.0}   # newest on PyPI (2025); requires Python >= 3.11, < 3.13
CACHE_DIR=${CASSETTE_CACHE_DIR:-$HOME/.cache/cassette}
VENV=$CACHE_DIR/medusa-venv
MEDUSA=$VENV/bin/cassette-medusa   # medusa's CLI + the s3s-fs listing fix (see Workarounds)
SSTABLELOADER=$VENV/bin/cassette-sstableloader
HARNESS=$ROOT/harness/cassandra/cassandra.sh
NODETOOL=$ROOT/harness/cassandra/nodetool
S3_ACCESS_KEY=cassette-test S3_SECRET_KEY=cassette-test-secret

die() { echo "medusa.sh: error: $*" >&2; exit 1; }
log() { echo "medusa.sh: $*" >&2; }
now() { date +%s.%N; }
took() { log "$1 took $(awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }') s"; }

# --- install -------------------------------------------------------------------------------------
medusa_ok() { [ -x "$VENV/bin/medusa" ] && [ "$("$VENV/bin/medusa" --version 2>/dev/null)" = "$MEDUSA_VERSION" ]; }

write_wrappers() {
  # harness/cassandra/nodetool with BulkLoader as the main class, its HERE fixed, a bigger heap.
  sed -e "s|^HERE=.*|HERE=$ROOT/harness/cassandra|" \
      -e 's|org\.apache\.cassandra\.tools\.NodeTool|org.apache.cassandra.tools.BulkLoader|' \
      -e 's|-Xmx128m|-Xmx512m|' "$NODETOOL" >"$SSTABLELOADER.tmp"
  grep -q 'tools.BulkLoader' "$SSTABLELOADER.tmp" || die "could not derive sstableloader from $NODETOOL"
  chmod +x "$SSTABLELOADER.tmp"
  mv "$SSTABLELOADER.tmp" "$SSTABLELOADER"
  # medusa's CLI with one fix applied at run time (the installed sources stay as they are):
  # S3BaseStorage._list_blobs reads o['ETag'] and o['StorageClass'] of each ListObjectsV2 entry, which
  # s3s-fs leaves out (it computes ETags on HEAD/GET only), so every listing of the data pool (each
  # differential backup after the first, purge, delete-backup) failed with KeyError: 'ETag' after
  # ~6 min of retries. A missing ETag gives hash None, as medusa's own local storage does; the hash
  # is only read with enable_md5_checks.
  cat >"$MEDUSA.tmp" <<EOF
#!$VENV/bin/python3
# Written by bench/medusa.sh install: medusa $MEDUSA_VERSION's CLI, listings without ETag accepted.
import sys
from medusa.medusacli import cli  # first: it applies gevent's monkey patching
import medusa.storage.s3_base_storage as s3b
from medusa.storage.abstract_storage import AbstractBlob


async def _list_blobs(self, prefix=None):
    response = self.s3_client.get_paginator('list_objects_v2').paginate(
        Bucket=self.bucket_name, Prefix=str(prefix), PaginationConfig={'PageSize': 1000}
    ).build_full_result()
    return [
        AbstractBlob(o['Key'], o['Size'], o['ETag'].replace('"', '') if o.get('ETag') else None,
                     o['LastModified'], o.get('StorageClass'))
        for o in response.get('Contents', [])
    ]


s3b.S3BaseStorage._list_blobs = _list_blobs
sys.argv[0] = 'medusa'
sys.exit(cli())
EOF
  chmod +x "$MEDUSA.tmp"
  mv "$MEDUSA.tmp" "$MEDUSA"
}

cmd_install() {
  mkdir -p "$CACHE_DIR"
  exec 9>"$CACHE_DIR/.medusa-install.lock"
  flock 9
  local t0=$SECONDS out=$CACHE_DIR/medusa-install.log
  if medusa_ok; then
    log "cassandra-medusa $MEDUSA_VERSION found in $VENV"
  else
    command -v python3 >/dev/null || die "python3 (3.11 or 3.12) is needed: apt-get install python3 python3-venv"
    python3 -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))' \
      || die "cassandra-medusa $MEDUSA_VERSION needs Python 3.11 or 3.12, python3 is $(python3 --version)"
    rm -rf "$VENV"
    python3 -m venv "$VENV" >"$out" 2>&1 || { cat "$out" >&2; die "python3 -m venv failed: apt-get install python3-venv"; }
    # All of medusa's pinned dependencies have manylinux wheels for CPython 3.11: no compiler needed.
    if ! "$VENV/bin/pip" install -q --disable-pip-version-check "cassandra-medusa==$MEDUSA_VERSION" >>"$out" 2>&1; then
      tail -30 "$out" >&2; rm -rf "$VENV"
      die "pip install cassandra-medusa==$MEDUSA_VERSION failed (log: $out)"
    fi
    medusa_ok || die "medusa --version does not say $MEDUSA_VERSION in $VENV"
    log "cassandra-medusa $MEDUSA_VERSION installed in $VENV ($((SECONDS - t0)) s)"
  fi
  write_wrappers
  exec 9>&-   # release the lock: processes started later (servers, nodes) must not inherit it
}

# --- config --------------------------------------------------------------------------------------
cmd_config() {
  local cluster_dir="" node=1 ip="" jmx="" storage="" base_path="" bucket="" s3_port="" s3_host=127.0.0.1
  local out="" temp_dir="" transfers=1 bandwidth=50MB/s
  while [ $# -gt 0 ]; do
    case "$1" in
      --cluster-dir) cluster_dir=$2; shift 2 ;;
      --node) node=$2; shift 2 ;;
      --ip) ip=$2; shift 2 ;;
      --jmx) jmx=$2; shift 2 ;;
      --storage) storage=$2; shift 2 ;;
      --base-path) base_path=$2; shift 2 ;;
      --bucket) bucket=$2; shift 2 ;;
      --s3-port) s3_port=$2; shift 2 ;;
      --s3-host) s3_host=$2; shift 2 ;;
      --out) out=$2; shift 2 ;;
      --temp-dir) temp_dir=$2; shift 2 ;;
      --concurrent-transfers) transfers=$2; shift 2 ;;
      --max-bandwidth) bandwidth=$2; shift 2 ;;
      *) die "config: unknown option $1" ;;
    esac
  done
  [ -n "$cluster_dir" ] && [ -n "$ip" ] && [ -n "$jmx" ] && [ -n "$out" ] \
    || die "config needs --cluster-dir, --ip, --jmx and --out"
  cluster_dir=$(cd "$cluster_dir" && pwd)
  local yaml=$cluster_dir/node$node/conf/cassandra.yaml name cluster_root
  [ -f "$yaml" ] || die "no $yaml"
  name=$(basename "$cluster_dir") cluster_root=$(dirname "$cluster_dir")
  [ -n "$temp_dir" ] || temp_dir=$cluster_dir/node$node/medusa-tmp
  mkdir -p "$temp_dir" "$(dirname "$out")"
  temp_dir=$(cd "$temp_dir" && pwd)
  out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")

  local storage_section
  case "$storage" in
    local)
      [ -n "$base_path" ] || die "config --storage local needs --base-path"
      mkdir -p "$base_path"; base_path=$(cd "$base_path" && pwd)
      storage_section="storage_provider = local
base_path = $base_path
bucket_name = ${bucket:-medusa}"
      ;;
    s3)
      [ -n "$s3_port" ] && [ -n "$bucket" ] || die "config --storage s3 needs --s3-port and --bucket"
      (umask 077; printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' \
        "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$out.credentials")
      storage_section="storage_provider = s3_compatible
bucket_name = $bucket
key_file = $out.credentials
host = $s3_host
port = $s3_port
secure = False
ssl_verify = False
region = us-east-1
s3_addressing_style = path
transfer_max_bandwidth = $bandwidth"
      ;;
    *) die "config --storage must be local or s3" ;;
  esac

  # medusa passes sstableloader "-d <this machine's fqdn, resolved>" (127.0.0.1 here), never the
  # node's listen address: this per-node wrapper puts the node's IP in its place.
  cat >"$out.sstableloader" <<EOF
#!/usr/bin/env bash
# Written by bench/medusa.sh config: $SSTABLELOADER with -d $ip (node$node of $cluster_dir).
args=()
while [ \$# -gt 0 ]; do
  if [ "\$1" = -d ]; then args+=(-d "$ip"); shift 2; else args+=("\$1"); shift; fi
done
exec "$SSTABLELOADER" "\${args[@]}"
EOF
  chmod +x "$out.sstableloader"

  local cassandra_sh="env CASSETTE_CLUSTER_ROOT=$cluster_root bash $HARNESS"
  cat >"$out" <<EOF
# Written by bench/medusa.sh config for node$node of $cluster_dir ($ip, JMX $jmx).
# medusa.sh temp_dir = $temp_dir
[cassandra]
config_file = $yaml
stop_cmd = $cassandra_sh stop-node --name $name --node $node
start_cmd = $cassandra_sh start-node --name $name --node $node
nodetool_executable = $NODETOOL
nodetool_flags =
nodetool_host = 127.0.0.1
nodetool_port = $jmx
sstableloader_bin = $out.sstableloader
resolve_ip_addresses = False
use_sudo = False

[storage]
$storage_section
fqdn = $ip
use_sudo_for_restore = False
concurrent_transfers = $transfers

[checks]
health_check = cql

[monitoring]
monitoring_provider = None

[logging]
enabled = False
EOF
  log "wrote $out (storage $storage, fqdn $ip, temp dir $temp_dir)"
  echo "$out"
}

# --- run -----------------------------------------------------------------------------------------
CONFIG=""
temp_dir_of() { sed -n 's/^# medusa.sh temp_dir = //p' "$1"; }
medusa_run() {
  local tmp; tmp=$(temp_dir_of "$CONFIG"); [ -n "$tmp" ] || tmp=/tmp
  mkdir -p "$tmp"
  local v=(); [ "${MEDUSA_VERBOSE:-0}" = 1 ] && v=(-v)
  TMPDIR=$tmp "$MEDUSA" "${v[@]}" --config-file "$CONFIG" "$@"
}
need_config() {
  [ -n "$CONFIG" ] || die "--config FILE is required"
  [ -f "$CONFIG" ] || die "no config $CONFIG (bench/medusa.sh config writes one)"
  [ -x "$MEDUSA" ] || die "medusa is not installed: run $0 install"
}

cmd_backup() {
  local name="" mode=full
  while [ $# -gt 0 ]; do
    case "$1" in
      --config) CONFIG=$2; shift 2 ;;
      --name) name=$2; shift 2 ;;
      --mode) mode=$2; shift 2 ;;
      *) die "backup: unknown option $1" ;;
    esac
  done
  need_config; [ -n "$name" ] || die "backup needs --name"
  case "$mode" in full | differential) ;; *) die "--mode must be full or differential" ;; esac
  local t0 out; t0=$(now)
  out=$(temp_dir_of "$CONFIG")/medusa-backup-$name.log
  medusa_run backup-node --backup-name "$name" --mode "$mode" 2>&1 | tee "$out" >&2
  took "backup $name ($mode)" "$t0"
  # medusa logs a failed `nodetool snapshot` and goes on: a "done" backup of 0 files, exit code 0.
  if grep -q 'Creating snapshot failed' "$out"; then
    die "nodetool snapshot failed, medusa recorded an empty backup $name (delete it: $0 medusa --config $CONFIG delete-backup --backup-name $name)"
  fi
}

cmd_restore() {
  local name="" ks="" tables=() loader=0 args=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --config) CONFIG=$2; shift 2 ;;
      --name) name=$2; shift 2 ;;
      --keyspace) ks=$2; shift 2 ;;
      --table) tables+=("$2"); shift 2 ;;
      --sstableloader) loader=1; shift ;;
      *) die "restore: unknown option $1" ;;
    esac
  done
  need_config; [ -n "$name" ] || die "restore needs --name"
  local t
  for t in ${tables[@]+"${tables[@]}"}; do
    case "$t" in
      *.*) args+=(--table "$t") ;;
      *) [ -n "$ks" ] || die "--table $t needs --keyspace K (or --table K.$t)"; args+=(--table "$ks.$t") ;;
    esac
  done
  # a keyspace alone restores it whole; with tables, only those tables
  [ -n "$ks" ] && [ ${#tables[@]} -eq 0 ] && args+=(--keyspace "$ks")
  local tmp; tmp=$(temp_dir_of "$CONFIG"); [ -n "$tmp" ] || tmp=/tmp
  if [ "$loader" = 1 ]; then args+=(--use-sstableloader); else args+=(--in-place); fi
  local t0; t0=$(now)
  medusa_run restore-node --backup-name "$name" --temp-dir "$tmp" ${args[@]+"${args[@]}"}
  took "restore $name${ks:+ keyspace $ks}${tables[*]:+ tables ${tables[*]}}$([ "$loader" = 1 ] && echo ' (sstableloader)')" "$t0"
}

cmd_list() {
  while [ $# -gt 0 ]; do case "$1" in --config) CONFIG=$2; shift 2 ;; *) die "list: unknown option $1" ;; esac; done
  need_config
  medusa_run list-backups
}

cmd_medusa() {
  [ "${1:-}" = --config ] || die "medusa: --config FILE first"
  CONFIG=$2; shift 2
  need_config
  medusa_run "$@"
}

# --- selftest ------------------------------------------------------------------------------------
# The end-to-end check of this driver on a real node: cluster medusa-try (127.0.5.1, JMX 7800), for
# local storage then s3s-fs: full backup, 2 differential backups, restore of the whole node, of one
# table (offline, in place) and of one table with --sstableloader, each checked by row counts.
cmd_selftest() {
  local name=${MEDUSA_TEST_CLUSTER:-medusa-try} ip=${MEDUSA_TEST_IP:-127.0.5.1} jmx=${MEDUSA_TEST_JMX:-7800}
  local work=${MEDUSA_TEST_DIR:-/tmp/medusa-selftest} cql=$ROOT/target/release/cassette-cql
  local cluster_dir=${CASSETTE_CLUSTER_ROOT:-/tmp/cassette-clusters}/$name fails=0 passes=0
  [ -x "$cql" ] || die "selftest needs $cql: cargo build --release -p cassette-testkit --bins"
  cmd_install
  bash "$ROOT/harness/s3/s3.sh" install >/dev/null 2>&1 || die "harness/s3/s3.sh install failed"
  rm -rf "$work"; mkdir -p "$work"
  log "selftest: starting cluster $name ($ip, JMX $jmx)"
  bash "$HARNESS" start --name "$name" --nodes 1 --first-ip "$ip" --jmx-base "$jmx" --heap 1g >"$work/start.log" 2>&1 \
    || { cat "$work/start.log" >&2; die "cluster start failed"; }
  # shellcheck disable=SC2064  # expanded now: the locals are gone when the trap runs
  trap "bash '$ROOT/harness/s3/s3.sh' stop --dir '$work/s3/data' >/dev/null 2>&1 || true; bash '$HARNESS' stop --name '$name' >/dev/null 2>&1 || true" EXIT
  local port; port=$(bash "$ROOT/harness/s3/s3.sh" start --kind s3s-fs --dir "$work/s3/data" 2>/dev/null)
  mkdir -p "$work/s3/data/medusa"                  # the bucket
  nt() { "$NODETOOL" -h 127.0.0.1 -p "$jmx" "$@"; }
  insert() {  # insert KS TABLE FROM COUNT
    local ks=$1 t=$2 from=$3 n=$4 i stmts=()
    for ((i = from; i < from + n; i++)); do
      if [ "$t" = users ]; then stmts+=("INSERT INTO $ks.users (id, name) VALUES ($i, 'user$i')")
      else stmts+=("INSERT INTO $ks.events (id, seq, v) VALUES ($((i / 10)), $((i % 10)), 'event $i')"); fi
    done
    "$cql" --host "$ip" exec "${stmts[@]}" >/dev/null
  }
  count() { "$cql" --host "$ip" count "$1" "$2" | awk -F'\t' -v t="$2" '$1 == t { print $2 }'; }
  check() {  # check WHAT KS USERS EVENTS
    local u e; u=$(count "$2" users) e=$(count "$2" events)
    if [ "$u" = "$3" ] && [ "$e" = "$4" ]; then passes=$((passes + 1)); log "selftest: PASS $1: users $u, events $e"
    else fails=$((fails + 1)); log "selftest: FAIL $1: users $u (want $3), events $e (want $4)"; fi
  }
  local storage ks cfg
  for storage in local s3; do
    ks=mt_$storage cfg=$work/$storage.ini
    if [ "$storage" = local ]; then
      cmd_config --cluster-dir "$cluster_dir" --ip "$ip" --jmx "$jmx" --storage local --base-path "$work/local" --out "$cfg" >/dev/null
    else
      cmd_config --cluster-dir "$cluster_dir" --ip "$ip" --jmx "$jmx" --storage s3 --s3-port "$port" --bucket medusa --out "$cfg" >/dev/null
    fi
    "$cql" --host "$ip" exec "DROP KEYSPACE IF EXISTS $ks" "CREATE KEYSPACE $ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}" \
      "CREATE TABLE $ks.users (id int PRIMARY KEY, name text)" \
      "CREATE TABLE $ks.events (id int, seq int, v text, PRIMARY KEY (id, seq))" >/dev/null
    insert "$ks" users 0 1000; insert "$ks" events 0 2000; nt flush "$ks"
    "$0" backup --config "$cfg" --name full1 --mode full 2>&1 | grep -E '^medusa.sh|files copied|kept from' >&2
    insert "$ks" users 1000 500; nt flush "$ks"
    "$0" backup --config "$cfg" --name diff1 --mode differential 2>&1 | grep -E '^medusa.sh|files copied|kept from' >&2
    insert "$ks" events 2000 1000; nt flush "$ks"
    "$0" backup --config "$cfg" --name diff2 --mode differential 2>&1 | grep -E '^medusa.sh|files copied|kept from' >&2
    check "$storage: before restores" "$ks" 1500 3000
    # damage: a truncated table and rows the backups do not have (in the memtable only)
    "$cql" --host "$ip" exec "TRUNCATE $ks.events" >/dev/null; insert "$ks" users 5000 100
    "$0" restore --config "$cfg" --name diff2 >"$work/$storage-restore-node.log" 2>&1 || { tail -20 "$work/$storage-restore-node.log" >&2; }
    grep '^medusa.sh' "$work/$storage-restore-node.log" >&2
    check "$storage: restore-node diff2 (whole node)" "$ks" 1500 3000
    insert "$ks" events 3000 100   # unflushed rows of the other table: must survive the commitlog wipe
    "$0" restore --config "$cfg" --name full1 --keyspace "$ks" --table users >"$work/$storage-restore-table.log" 2>&1 || { tail -20 "$work/$storage-restore-table.log" >&2; }
    grep '^medusa.sh' "$work/$storage-restore-table.log" >&2
    check "$storage: restore-node full1 --table $ks.users (in place)" "$ks" 1000 3100
    "$0" restore --config "$cfg" --name diff2 --keyspace "$ks" --table users --sstableloader >"$work/$storage-restore-loader.log" 2>&1 || { tail -20 "$work/$storage-restore-loader.log" >&2; }
    grep '^medusa.sh' "$work/$storage-restore-loader.log" >&2
    check "$storage: restore-node diff2 --table $ks.users --use-sstableloader" "$ks" 1500 3100
  done
  echo "$passes passed, $fails failed"
  [ "$fails" = 0 ]
}

case "${1:-}" in
  install) shift; cmd_install ;;
  selftest) shift; cmd_selftest ;;
  config) shift; cmd_config "$@" ;;
  backup) shift; cmd_backup "$@" ;;
  restore) shift; cmd_restore "$@" ;;
  list) shift; cmd_list "$@" ;;
  medusa) shift; cmd_medusa "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
