#!/usr/bin/env bash
# Encryption and compression benchmark: cassette's full backup and whole-keyspace restore into
# an encrypted and compressed repository (`cassette repo init --encrypt --compress`) against
# the same jobs into a plain one, on a local directory and on S3 (s3s-fs on 127.0.0.1,
# harness/s3), in one run, beside seed 001's `cp -r -a` of the snapshot and this machine's own
# sequential read and write of the same bytes.
#
#   bash bench/encryption.sh                  2 GB of SSTables
#   ENC_GB=0.5 bash bench/encryption.sh       a quick run
#   ENC_RUNS=1 bash bench/encryption.sh       one run of each job (default 3: the median is
#                                             reported, this disk's timings vary by 20% run to run)
#   ENC_DIR=/mnt/x bash bench/encryption.sh   where the node, repositories and server live
#                                             (default /tmp/cassette-bench-encryption)
#
# One real Cassandra 5.0 node (harness/cassandra, 127.0.40.1, JMX 10400), one keyspace filled
# by cassette-bulk-load (LZ4-compressed SSTables of random letters and digits, Cassandra's
# default table settings). Every job runs with a cold page cache when the script may drop it
# (root), and under bench/lib.sh's run_timed: wall time, and the peak RSS of cassette's own
# process. Each restore is checked by counting the keyspace's rows. Ratios are speeds:
# encrypted ÷ plain (target: at least 0.8), cassette ÷ cp -a, cassette ÷ the disk. It is a
# benchmark, not a test: it reports missed targets, it never fails on one.
{
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=${ENC_DIR:-/tmp/cassette-bench-encryption}
GB=${ENC_GB:-2}
RUNS=${ENC_RUNS:-3}
KS=enc_bench
NODE=bench-enc IP=127.0.40.1 JMX=10400
HARNESS="$ROOT/harness/cassandra/cassandra.sh"
NODETOOL="$ROOT/harness/cassandra/nodetool"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CASSETTE="$TARGET/release/cassette"
LOADER="$TARGET/release/cassette-bulk-load"
CQLBIN="$TARGET/release/cassette-cql"
S3SH="$ROOT/harness/s3/s3.sh"
export CASSETTE_CLUSTER_ROOT=$WORK/clusters
export CASSETTE_STATE_DIR=$WORK/state
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
say() { echo "== $*" >&2; }

command -v /usr/bin/time >/dev/null || apt-get install -y time >/dev/null
say "cargo build --release -p cassette -p cassette-testkit --bins"
cargo build --release --locked -q -p cassette -p cassette-testkit --bins
bash "$S3SH" install >/dev/null 2>&1

rm -rf "$WORK" && mkdir -p "$WORK/s3/cassette" "$WORK/keys"
stop_all() {
  bash "$S3SH" stop --kind s3s-fs --dir "$WORK/s3" >/dev/null 2>&1 || true
  bash "$HARNESS" stop --name "$NODE" >/dev/null 2>&1 || true
}
trap stop_all EXIT
say "starting node $NODE ($IP, JMX $JMX)"
bash "$HARNESS" start --name "$NODE" --nodes 1 --first-ip "$IP" --jmx-base "$JMX" --heap 2g >"$WORK/start.log" 2>&1 \
  || { tail -30 "$WORK/start.log" >&2; exit 1; }
DATA_DIR=$CASSETTE_CLUSTER_ROOT/$NODE/node1/data1
export CASSETTE_NODETOOL="$NODETOOL" CASSETTE_JMX_PORT=$JMX CASSETTE_JMX_HOST=127.0.0.1 CASSETTE_CQL_HOST=$IP
nt() { "$NODETOOL" -h 127.0.0.1 -p "$JMX" "$@"; }

say "loading $GB GB into $KS"
mib=$(awk -v g="$GB" 'BEGIN{printf "%d", g * 1000 / 1.048576 / 2 / 1.06 + 1}')
"$LOADER" --host "$IP" --keyspace "$KS" --mib "$mib" --start 0 --concurrency 256 >/dev/null
nt flush "$KS"
"$LOADER" --host "$IP" --keyspace "$KS" --mib "$mib" --start 100000000 --concurrency 256 >/dev/null
nt flush "$KS"
nt disableautocompaction "$KS"
live_files() { find "$DATA_DIR/$KS" \( -name snapshots -o -name backups \) -prune -o -type f -print; }
BYTES=$(live_files | xargs -d '\n' stat -c %s | awk '{s+=$1} END {printf "%.0f", s}')
FILES=$(live_files | wc -l)
rows() { "$CQLBIN" --host "$IP" count "$KS" | awk '{s+=$NF} END {print s}'; }
ROWS=$(rows)

port=$(bash "$S3SH" start --kind s3s-fs --dir "$WORK/s3")
export AWS_ACCESS_KEY_ID=cassette-test AWS_SECRET_ACCESS_KEY=cassette-test-secret AWS_REGION=us-east-1 \
  AWS_ENDPOINT=http://127.0.0.1:$port AWS_ALLOW_HTTP=true AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false
KEY=$WORK/keys/bench.key
"$CASSETTE" key generate "$KEY" >/dev/null
# fresh_repo WHERE KIND: an empty repository (a backup into one that has the files stores nothing)
fresh_repo() {
  local store=$WORK/$2 url=$WORK/$2
  [ "$1" = s3 ] && store=$WORK/s3/cassette/$2 url=s3://cassette/$2
  rm -rf "$store"
  [ "$1" = s3 ] && mkdir -p "$store"
  if [ "$2" = sealed ]; then "$CASSETTE" repo init --encrypt --compress --key-file "$KEY" --backup-dir "$url" >/dev/null; fi
}

cache=warm
drop() { if [ "$(id -u)" = 0 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; cache=cold; fi; }
declare -A SECS RSS ALL
CMDS=()
BEFORE=true   # run before each run of a job (a fresh repository before each backup)
# job ID COMMAND...: RUNS cold runs; the median seconds and the largest peak RSS (MiB) under ID
job() {
  local id=$1 walls=() hwm=0 i; shift
  for ((i = 1; i <= RUNS; i++)); do
    eval "$BEFORE"
    drop
    say "$id ($i of $RUNS)"
    run_timed "$id" "$@"
    walls+=("$WALL")
    [ "$OWN_RSS" -gt "$hwm" ] && hwm=$OWN_RSS
  done
  SECS[$id]=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}')
  RSS[$id]=$(awk -v k="$hwm" 'BEGIN{printf "%.0f", k / 1024}')
  ALL[$id]="${walls[*]}"
  CMDS+=("- $id: \`${*/#$ROOT\//}\`")
}
check_rows() {
  local got; got=$(rows)
  [ "$got" = "$ROWS" ] || { echo "!! $1: $got rows after the restore, $ROWS before" >&2; exit 1; }
}

job "disk read" bash -c "find '$DATA_DIR/$KS' -name snapshots -prune -o -type f -print0 | xargs -0 cat >/dev/null"
BEFORE='rm -f $WORK/dd.out'
job "disk write" dd if=/dev/zero of="$WORK/dd.out" bs=1M count=$((BYTES >> 20)) conv=fdatasync status=none
rm -f "$WORK/dd.out"
seed_copy() {
  "$NODETOOL" -h 127.0.0.1 -p "$JMX" snapshot -t seed "$KS" >/dev/null
  for t in "$DATA_DIR/$KS"/*/; do
    name=$(basename "$t"); mkdir -p "$WORK/seed/$KS/${name%-*}"
    cp -r -a "$t/snapshots/seed"/* "$WORK/seed/$KS/${name%-*}/"
  done
  "$NODETOOL" -h 127.0.0.1 -p "$JMX" clearsnapshot -t seed -- "$KS" >/dev/null
}
export -f seed_copy
export NODETOOL JMX DATA_DIR KS WORK
BEFORE='rm -rf $WORK/seed'
job "cp -a backup" seed_copy
rm -rf "$WORK/seed"

for where in directory s3; do
  for kind in plain sealed; do
    dir=s3://cassette/$kind; [ $where = directory ] && dir=$WORK/$kind
    keyarg=(); [ $kind = sealed ] && keyarg=(--key-file "$KEY")
    BEFORE="fresh_repo $where $kind"
    job "$where $kind backup" "$CASSETTE" --json backup --name full --backup-dir "$dir" -k "$KS" --allow-same-disk "${keyarg[@]}"
    BEFORE=true
    job "$where $kind restore" "$CASSETTE" --json restore --name full --backup-dir "$dir" -k "$KS" --new-restore --clear-truncate-snapshots "${keyarg[@]}"
    check_rows "$where $kind restore"
  done
done
STORED_PLAIN=$(du -sb "$WORK/s3/cassette/plain" | cut -f1)
STORED_SEALED=$(du -sb "$WORK/s3/cassette/sealed" | cut -f1)

mbps() { awk -v b="$BYTES" -v s="$1" 'BEGIN{printf "%.0f", b / 1e6 / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", b / a}'; }
echo "# encryption benchmark, $(date -u +%Y-%m-%dT%H:%MZ), git $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); page cache $cache for every run; median of $RUNS run(s) per job"
echo "data: keyspace $KS, $FILES files, $BYTES bytes of SSTables (LZ4, Cassandra's default), $ROWS rows"
echo "stored on S3: plain $STORED_PLAIN bytes, encrypted and compressed $STORED_SEALED bytes"
echo
echo "| job | seconds | MB/s | peak RSS of cassette (MiB) | encrypted ÷ plain | ÷ cp -a | ÷ disk |"
echo "|---|---|---|---|---|---|---|"
for id in "disk read" "disk write" "cp -a backup"; do
  echo "| $id | ${SECS[$id]} | $(mbps "${SECS[$id]}") | - | - | - | - |"
done
for where in directory s3; do
  for op in backup restore; do
    for kind in plain sealed; do
      id="$where $kind $op"
      vs_plain=-; [ $kind = sealed ] && vs_plain=$(ratio "${SECS[$id]}" "${SECS[$where plain $op]}")
      disk="disk read"; [ $op = restore ] && disk="disk write"
      vs_cp=-; [ $op = backup ] && vs_cp=$(ratio "${SECS[$id]}" "${SECS[cp -a backup]}")
      echo "| $id | ${SECS[$id]} | $(mbps "${SECS[$id]}") | ${RSS[$id]} | $vs_plain | $vs_cp | $(ratio "${SECS[$id]}" "${SECS[$disk]}") |"
    done
  done
done
echo
echo "Ratios are speeds (above 1: the row is faster). Every run's seconds:"
for id in "${!ALL[@]}"; do echo "- $id: ${ALL[$id]}"; done | sort
echo
echo "Commands:"
printf '%s\n' "${CMDS[@]}"
}
