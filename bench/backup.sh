#!/usr/bin/env bash
# Backup benchmark for issue 3: cassette vs seed 001's `nodetool snapshot` + `cp -r -a`.
#
#   bench/backup.sh                 start the bench node, load >= 2 GiB if needed, measure, print a table
#   BENCH_REPS=3 bench/backup.sh    repeat every measurement 3 times (default 1)
#   KEEP_RUNNING=1 bench/backup.sh  leave the bench node running afterwards (default: stop it)
#
# It is a benchmark, not a test: it never fails on a missed target, it reports it.
# Cluster: `bench`, one node on 127.0.4.1, JMX 7700 (apart from the test clusters solo and trio).
# Data: keyspace `bench` (tables blobs, events, docs, kv), rows of 1-4 KiB of random bytes/text,
# written by crates/testkit/src/bin/cassette-bulk-load.rs; the keyspace has durable_writes=false and
# the tables have background compaction disabled, so the SSTables stay the same between runs.
# Layout of the data after a load: a major compaction split STCS-style (`nodetool compact -s`), then
# a few small fresh SSTables on top, like a node that has been compacting for a while.
# Environment: BENCH_DIR (default /tmp/cassette-bench: backup dirs, logs), BENCH_MIN_BYTES
# (default 2 GiB), BENCH_REPS, KEEP_RUNNING, BENCH_NO_DROP=1 (never drop the page cache).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

NAME=bench IP=127.0.4.1 JMX=7700 KS=bench
HARNESS="$ROOT/harness/cassandra/cassandra.sh"
NODETOOL="$ROOT/harness/cassandra/nodetool"
nt() { "$NODETOOL" -h 127.0.0.1 -p "$JMX" "$@"; }
WORK=${BENCH_DIR:-/tmp/cassette-bench}
MIN_BYTES=${BENCH_MIN_BYTES:-$((2 * 1024 * 1024 * 1024))}
REPS=${BENCH_REPS:-1}
CLUSTER_DIR=${CASSETTE_CLUSTER_ROOT:-/tmp/cassette-clusters}/$NAME
DATA_DIR=$CLUSTER_DIR/node1/data1
CASSETTE="$ROOT/target/release/cassette"
LOADER="$ROOT/target/release/cassette-bulk-load"

say() { echo "== $*" >&2; }
now() { date +%s.%N; }
# bytes of the keyspace's live SSTable files (snapshots excluded)
data_bytes() { find "$DATA_DIR/$KS" -path '*/snapshots' -prune -o -type f -printf '%s\n' 2>/dev/null | awk '{s+=$1} END {print s+0}'; }
data_files() { find "$DATA_DIR/$KS" -path '*/snapshots' -prune -o -type f -print 2>/dev/null | wc -l; }

# --- 0. tools ------------------------------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
  say "installing Debian package 'time' (for /usr/bin/time -v)"
  apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
fi
mkdir -p "$WORK"

# --- 1. the node ---------------------------------------------------------------------------------
say "starting the bench node ($IP, JMX $JMX)"
bash "$HARNESS" start --name "$NAME" --nodes 1 --first-ip "$IP" --jmx-base "$JMX" --heap 1g >"$WORK/start.log" 2>&1 \
  || { cat "$WORK/start.log" >&2; exit 1; }
[ "${KEEP_RUNNING:-0}" = 1 ] || trap 'bash "$HARNESS" stop --name "$NAME" >/dev/null 2>&1 || true' EXIT

# --- 3. build (before the load: the loader is built with it) -----------------------------------
# One cargo command, the same as scripts/quickstart's: building -p cassette and -p cassette-testkit
# apart unifies dependency features differently and rebuilds tokio & co. every other time.
say "cargo build --release --locked -p cassette -p cassette-testkit --bins"
cargo build --release --locked -p cassette -p cassette-testkit --bins 2>&1 | tail -1 >&2

# --- 2. data -------------------------------------------------------------------------------------
LOAD_STATE=$CLUSTER_DIR/bench-next-start
have=$(data_bytes)
if [ "$have" -ge "$MIN_BYTES" ]; then
  say "the node already holds $((have / 1048576)) MiB in keyspace $KS: no load"
else
  start=$(cat "$LOAD_STATE" 2>/dev/null || echo 0)
  # Random values are incompressible: on-disk bytes ~ value bytes * 1.04.
  need_mib=$(( (MIN_BYTES - have) * 110 / 100 / 1048576 + 64 ))   # +10 %: a major compaction drops overwritten rows
  say "loading ~$need_mib MiB into keyspace $KS (node holds $((have / 1048576)) MiB)"
  t0=$(now)
  out=$("$LOADER" --host "$IP" --keyspace "$KS" --mib "$need_mib" --start "$start" --concurrency 256)
  echo "$out" >&2
  sed -E 's/.*next --start ([0-9]+).*/\1/' <<<"$out" >"$LOAD_STATE"
  nt flush "$KS"
  say "major compaction split STCS-style (nodetool compact -s $KS)"
  nt compact -s "$KS"
  # a few fresh small SSTables on top, like recent flushes
  start=$(cat "$LOAD_STATE")
  out=$("$LOADER" --host "$IP" --keyspace "$KS" --mib 48 --start "$start" --concurrency 256)
  sed -E 's/.*next --start ([0-9]+).*/\1/' <<<"$out" >"$LOAD_STATE"
  nt flush "$KS"
  say "load done in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s"
fi
nt flush "$KS"
# stale snapshots of an earlier interrupted run would be copied by nobody but take no time; clear ours
nt clearsnapshot --all -- "$KS" >/dev/null 2>&1 || true
DATA_BYTES=$(data_bytes)
DATA_FILES=$(data_files)
SSTABLES=$(find "$DATA_DIR/$KS" -path '*/snapshots' -prune -o -name '*-Data.db' -print | wc -l)

# --- page cache ----------------------------------------------------------------------------------
CACHE_MODE=cold
drop_cache() {
  sync
  if [ "${BENCH_NO_DROP:-0}" != 1 ] && [ "$CACHE_MODE" = cold ]; then
    echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || CACHE_MODE="warm only"
  fi
}
drop_cache
[ "${BENCH_NO_DROP:-0}" = 1 ] && CACHE_MODE="warm only"

# --- measurement helpers -------------------------------------------------------------------------
# run_timed TAG CMD...: wall seconds -> $WALL, /usr/bin/time's max RSS (KiB, the largest process of
# the tree, nodetool's JVM included) -> $TREE_RSS, the top command's own VmHWM (KiB) -> $OWN_RSS.
run_timed() {
  local tag=$1; shift
  local tfile="$WORK/$tag.time" t0 t1 tpid cpid="" hwm=0 k v _
  t0=$(now)
  /usr/bin/time -v -o "$tfile" "$@" >"$WORK/$tag.out" 2>"$WORK/$tag.err" &
  tpid=$!
  while kill -0 "$tpid" 2>/dev/null; do
    [ -z "$cpid" ] && cpid=$(pgrep -P "$tpid" | head -1 || true)
    if [ -n "$cpid" ] && [ -r "/proc/$cpid/status" ]; then
      while read -r k v _; do [ "$k" = VmHWM: ] && [ "$v" -gt "$hwm" ] && hwm=$v; done <"/proc/$cpid/status" 2>/dev/null || true
    fi
    sleep 0.05
  done
  local rc=0; wait "$tpid" || rc=$?
  t1=$(now)
  WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')
  TREE_RSS=$(awk -F': ' '/Maximum resident set size/{print $2}' "$tfile")
  OWN_RSS=$hwm
  if [ "$rc" != 0 ]; then echo "!! $tag failed (rc $rc):" >&2; tail -20 "$WORK/$tag.err" >&2; tail -5 "$tfile" >&2; return "$rc"; fi
}

# The seed 001 script, verbatim apart from its four settings (and two timestamps around the copy loop).
write_seed_script() {
  cat >"$WORK/seed001-copy.sh" <<'EOF'
#!/bin/bash
################################################################################
# Sample Cassandra snapshot backup script                                      #
# NOTE: This MUST be adapted for and validated in your environment before use! #
################################################################################
set -e
trap '[ "$?" -eq 0 ] || echo \*\*\* FATAL ERROR \*\*\*' EXIT $?
CASSANDRA_DATA_DIR="$1"
KEYSPACE_NAME="$2"
SNAPSHOT_NAME="$3"
BACKUP_ROOT_DIR="$4"
##### Do NOT change anything below this line #####
backupdir="${BACKUP_ROOT_DIR}/${SNAPSHOT_NAME}"
if [ -d "${backupdir}" ]; then echo -e "\nERROR: Snapshot '${SNAPSHOT_NAME}' already exists in the backup dir";exit 1; fi
mkdir -p ${backupdir}
keyspace_path="${CASSANDRA_DATA_DIR}/${KEYSPACE_NAME}"
if ! [ -d "${keyspace_path}" ]; then echo -e "\nERROR: Keyspace path '${keyspace_path}' is not valid";exit 1; fi
snapshot_dirs=()
find "${keyspace_path}/" -maxdepth 1 -mindepth 1 -type d ! -name "$(printf "*\n*")" > backup.tmp
echo "COPY_START $(date +%s.%N)" >&2
while IFS= read -r table_dir
do
  str=${table_dir##*/}
  table_uuid=${str##*-}
  len=$((${#str} - ${#table_uuid} - 1))
  table_name=${str:0:${len}}
  echo "Copy table, $table_name"
  current_backup_dir="${backupdir}/${table_name}"
  mkdir -p "${current_backup_dir}"
  current_snapshot="${table_dir}/snapshots/${SNAPSHOT_NAME}"
  snapshot_dirs+=("${current_snapshot}")
  cp -r -a "${current_snapshot}"/* "${current_backup_dir}/"
done < backup.tmp
echo "COPY_END $(date +%s.%N)" >&2
rm backup.tmp
echo -e "\nRemoving snapshot files from Cassandra data directory"
for dir in "${snapshot_dirs[@]}"
do
  rm -rf "${dir}"
done
EOF
  chmod +x "$WORK/seed001-copy.sh"
}
write_seed_script

# seed 001's whole method: nodetool snapshot, the script (copy loop + rm of the snapshot dirs),
# nodetool clearsnapshot. Timed as one shell.
cat >"$WORK/seed001-whole.sh" <<EOF
#!/bin/bash
set -e
cd "$WORK"
"$NODETOOL" -h 127.0.0.1 -p $JMX snapshot -t "\$1" $KS >/dev/null
"$WORK/seed001-copy.sh" "$DATA_DIR" $KS "\$1" "\$2"
"$NODETOOL" -h 127.0.0.1 -p $JMX clearsnapshot -t "\$1" -- $KS >/dev/null
EOF
chmod +x "$WORK/seed001-whole.sh"

export CASSETTE_NODETOOL="$NODETOOL" CASSETTE_JMX_PORT=$JMX CASSETTE_JMX_HOST=127.0.0.1 CASSETTE_CQL_HOST=$IP

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$RESULTS"; }   # method rep secs bytes treeRSS ownRSS
COMMANDS="$WORK/commands.txt"
: >"$COMMANDS"
rm -f "$WORK/added.txt"

for rep in $(seq 1 "$REPS"); do
  say "repetition $rep/$REPS"
  rm -rf "$WORK/seed-backups" "$WORK/cassette-backups"
  mkdir -p "$WORK/seed-backups" "$WORK/cassette-backups"

  # (a) seed 001: snapshot + cp -r -a + clear
  tag="seed001-$(date +%Y%m%d_%H%M%S)"
  drop_cache
  run_timed "seed-$rep" "$WORK/seed001-whole.sh" "$tag" "$WORK/seed-backups"
  seed_wall=$WALL seed_rss=$TREE_RSS
  cs=$(awk '/^COPY_START/{print $2}' "$WORK/seed-$rep.err"); ce=$(awk '/^COPY_END/{print $2}' "$WORK/seed-$rep.err")
  copy_wall=$(awk -v a="$cs" -v b="$ce" 'BEGIN{printf "%.2f", b-a}')
  # the seed's copy is in the page cache, not on disk yet: how long until it is
  t0=$(now); sync; sync_wall=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
  seed_bytes=$(du -sb "$WORK/seed-backups/$tag" | cut -f1)
  record "seed001 whole (snapshot+cp -a+clear)" "$rep" "$seed_wall" "$seed_bytes" "$seed_rss" "-"
  record "seed001 cp -r -a loop only" "$rep" "$copy_wall" "$seed_bytes" "-" "-"
  record "seed001 cp -r -a loop + sync" "$rep" "$(awk -v a="$copy_wall" -v b="$sync_wall" 'BEGIN{printf "%.2f", a+b}')" "$seed_bytes" "-" "-"
  [ "$rep" = 1 ] && echo "nodetool -h 127.0.0.1 -p $JMX snapshot -t $tag $KS; $WORK/seed001-copy.sh $DATA_DIR $KS $tag $WORK/seed-backups; nodetool clearsnapshot -t $tag -- $KS" >>"$COMMANDS"

  # (b) cassette full backup into a fresh backup dir
  full="full-$rep-$(date +%Y%m%d-%H%M%S)"
  drop_cache
  run_timed "cassette-full-$rep" "$CASSETTE" --json backup --name "$full" --backup-dir "$WORK/cassette-backups" -k "$KS" --allow-same-disk
  full_wall=$WALL
  read -r c_bytes c_added c_copy_ms < <(jq -r '[.totals.bytes, .totals.bytes_added, ([.tables[].duration_ms]|add)] | @tsv' "$WORK/cassette-full-$rep.out")
  record "cassette backup, full" "$rep" "$full_wall" "$c_bytes" "$TREE_RSS" "$OWN_RSS"
  record "cassette backup, full: copy stage only" "$rep" "$(awk -v m="$c_copy_ms" 'BEGIN{printf "%.2f", m/1000}')" "$c_bytes" "-" "-"
  [ "$rep" = 1 ] && echo "cassette --json backup --name $full --backup-dir $WORK/cassette-backups -k $KS --allow-same-disk   (env: CASSETTE_NODETOOL=$NODETOOL CASSETTE_JMX_PORT=$JMX CASSETTE_CQL_HOST=$IP)" >>"$COMMANDS"

  # (c) cassette again, nothing changed: new name, same backup dir (dedup by hard links)
  again="nochange-$rep-$(date +%Y%m%d-%H%M%S)"
  drop_cache
  run_timed "cassette-nochange-$rep" "$CASSETTE" --json backup --name "$again" --backup-dir "$WORK/cassette-backups" -k "$KS" --allow-same-disk
  read -r n_bytes n_added n_copy_ms < <(jq -r '[.totals.bytes, .totals.bytes_added, ([.tables[].duration_ms]|add)] | @tsv' "$WORK/cassette-nochange-$rep.out")
  record "cassette backup, no change" "$rep" "$WALL" "$n_bytes" "$TREE_RSS" "$OWN_RSS"
  echo "rep $rep: full added $c_added bytes; no-change added $n_added bytes (of $n_bytes)" >>"$WORK/added.txt"
  [ "$rep" = 1 ] && echo "cassette --json backup --name $again --backup-dir $WORK/cassette-backups -k $KS --allow-same-disk" >>"$COMMANDS"
done

# --- report --------------------------------------------------------------------------------------
echo
echo "# cassette backup benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
echo
echo "machine: $(uname -srm); nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "git: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)'); Cassandra $(cat "$HOME/.cache/cassette/cassandra-5.0/lib/.version" 2>/dev/null)"
echo "page cache: $CACHE_MODE (dropped with 'sync; echo 3 > /proc/sys/vm/drop_caches' before each run)"
echo "data: keyspace $KS, $DATA_FILES files, $SSTABLES SSTables, $DATA_BYTES bytes ($(awk -v b="$DATA_BYTES" 'BEGIN{printf "%.0f", b/1e6}') MB) in $DATA_DIR/$KS"
echo "repetitions: $REPS"
echo
echo '```'
free -m
echo
df -h "$DATA_DIR" "$WORK" | awk 'NR==1 || !seen[$0]++'
echo '```'
echo
echo "commands (first repetition):"
echo '```'
cat "$COMMANDS"
echo '```'
echo
echo "| method | rep | seconds | MB/s | peak RSS MB (/usr/bin/time, whole tree) | peak RSS MB (process itself) |"
echo "|---|---|---|---|---|---|"
awk -F'\t' '{
  mbs = ($3 > 0) ? sprintf("%.0f", $4/1e6/$3) : "-";
  tr = ($5 == "-") ? "-" : sprintf("%.0f", $5/1024);
  own = ($6 == "-") ? "-" : sprintf("%.1f", $6/1024);
  printf "| %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, mbs, tr, own }' "$RESULTS"
echo
# Ratios on the medians over the repetitions
med() { awk -F'\t' -v m="$1" '$1==m {print $3}' "$RESULTS" | sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
seed_whole=$(med "seed001 whole (snapshot+cp -a+clear)")
cp_only=$(med "seed001 cp -r -a loop only")
cp_sync=$(med "seed001 cp -r -a loop + sync")
c_full=$(med "cassette backup, full")
c_copy=$(med "cassette backup, full: copy stage only")
c_none=$(med "cassette backup, no change")
own_max=$(awk -F'\t' '$1 ~ /^cassette backup, (full|no change)$/ && $6 > m {m=$6} END {printf "%.1f", m/1024}' "$RESULTS")
echo "ratios (medians):"
awk -v sw="$seed_whole" -v co="$cp_only" -v cs="$cp_sync" -v cf="$c_full" -v cc="$c_copy" -v cn="$c_none" -v own="$own_max" 'BEGIN {
  printf "- cassette full speed / seed 001 whole speed (snapshot+copy+clear each): %.2f   (target >= 0.9)\n", sw/cf;
  printf "- cassette copy stage speed / cp -r -a loop speed (copy only each):     %.2f\n", co/cc;
  printf "- cassette copy stage speed / (cp -r -a + sync) speed:                    %.2f\n", cs/cc;
  printf "- cassette no-change time / cassette full time:                           %.3f  (target < 0.05)\n", cn/cf;
  printf "- cassette peak RSS (its own process, max over runs): %s MB   (target < 100)\n", own;
}'
echo
cat "$WORK/added.txt"; rm -f "$WORK/added.txt"
