#!/usr/bin/env bash
# The benchmark suite of issue 9: cassette against what operators use instead, on one real
# Cassandra 5.0 node, the same data, in one run. Writes BENCHMARKS.md and bench/throughput.png.
#
#   bash bench/suite.sh                      everything (about an hour on 2 cores)
#   SUITE_GB=1 SUITE_SMALL_FILES=0 bash bench/suite.sh    a quick run: 1 GB, no small-files variant
#
# Tools, each on the same node and data:
#   cassette   `cassette backup` / `cassette restore`, to a local directory and to S3 (s3s-fs on
#              loopback, harness/s3)
#   seed 001   its backup script (`nodetool snapshot`, `cp -r -a` of the snapshot, clear; see
#              bench/lib.sh) and its restore, online variant (TRUNCATE, `cp -r -a` back,
#              `nodetool refresh`, per table)
#   medusa     cassandra-medusa from PyPI (bench/medusa.sh), storage `local` and `s3_compatible`
#              (the same s3s-fs), `backup --mode differential` (its default: the first one on an
#              empty store uploads everything, later ones only new files; its `full` mode copies
#              everything every time), `restore-node --in-place`
#              (one table: `--keyspace K --table K.T`), 8 concurrent transfers, no bandwidth cap
#   physical   this machine's limit for the same bytes: `cat` of every file (read), `dd` of as
#              many bytes with fdatasync (write)
# Jobs: full backup (cold and warm page cache), backup after 5 % new data (cold), backup with no
# change (cold and warm), restore of one table (cold and warm), restore of the whole node (cold;
# each restore checked by counting rows per table).
# The variant with many small files (SUITE_SMALL_FILES, default 50,000) runs full and no-change
# backups on a second node.
#
# Environment: SUITE_DIR (default /tmp/cassette-suite), SUITE_GB (default 5.3: GB of SSTables),
# SUITE_ROUNDS (load rounds, each ending with a flush; default 6; the memtables also flush on
# their own as they fill, one SSTable per shard, so the node ends with about 1.5 files per MB), SUITE_SMALL_FILES
# (default 50000; 0 skips the variant), SUITE_TOOLS (default "seed cassette medusa"),
# SUITE_WARM_TOOLS (the tools whose full backup also runs warm; default "seed cassette": medusa's
# runs take long enough that the suite keeps them to the cold ones),
# SUITE_MEDUSA_TIMEOUT (seconds a medusa run may take, default 900), KEEP_RUNNING=1,
# SUITE_LOAD_ONLY=1 (load both data sets and stop: the nodes keep them for the next run).
# Cold: `sync; echo 3 > /proc/sys/vm/drop_caches` before the run. Warm: the data were just read.
# It is a benchmark, not a test: it reports missed targets, it never fails on one.
# The whole script is one { ... } block: bash reads it before running any of it, so editing this
# file while a run is going does not change that run.
{
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=${SUITE_DIR:-/tmp/cassette-suite}
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

GB=${SUITE_GB:-5.3}
ROUNDS=${SUITE_ROUNDS:-6}
SMALL_FILES=${SUITE_SMALL_FILES:-50000}
TOOLS=${SUITE_TOOLS:-"seed cassette medusa"}
WARM_TOOLS=${SUITE_WARM_TOOLS:-"seed cassette"}
MEDUSA_TIMEOUT=${SUITE_MEDUSA_TIMEOUT:-900}
KEYSPACES=(suite_a suite_b suite_c)
HARNESS="$ROOT/harness/cassandra/cassandra.sh"
NODETOOL="$ROOT/harness/cassandra/nodetool"
CASSETTE="$ROOT/target/release/cassette"
LOADER="$ROOT/target/release/cassette-bulk-load"
CQLBIN="$ROOT/target/release/cassette-cql"
MEDUSA="$ROOT/bench/medusa.sh"
CLUSTERS=${CASSETTE_CLUSTER_ROOT:-/tmp/cassette-clusters}
CACHE_DIR=${CASSETTE_CACHE_DIR:-$HOME/.cache/cassette}
RESULTS="$WORK/results.tsv"
COMMANDS="$WORK/commands.md"
NOTES="$WORK/notes.md"
has() { [[ " $TOOLS " == *" $1 "* ]]; }
say() { echo "== $(date +%H:%M:%S) $*" >&2; }

# --- 0. tools ------------------------------------------------------------------------------------
need_deb() { command -v "$1" >/dev/null || { apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }; }; }
[ -x /usr/bin/time ] || need_deb /usr/bin/time time
need_deb jq jq
need_deb bc bc
mkdir -p "$WORK"
# a server of an earlier run would serve a directory removed under it
bash harness/s3/s3.sh stop --kind s3s-fs --dir "$WORK/s3" >/dev/null 2>&1 || true
rm -rf "$WORK"/{backups,s3,medusa-*,state,*.time,*.out,*.err}
: >"$RESULTS"; : >"$COMMANDS"; : >"$NOTES"; : >"$WORK/load.txt"
say "build (release)"
cargo build --release --locked -p cassette -p cassette-testkit --bins 2>&1 | tail -1 >&2
bash harness/s3/s3.sh install >&2
has medusa && bash "$MEDUSA" install >&2
PLOT_VENV=$CACHE_DIR/plot-venv
if [ ! -x "$PLOT_VENV/bin/python" ] || ! "$PLOT_VENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
  say "installing matplotlib (PyPI) into $PLOT_VENV"
  python3 -m venv "$PLOT_VENV" && "$PLOT_VENV/bin/pip" install -q 'matplotlib==3.9.*' >&2
fi

# --- 1. S3 server --------------------------------------------------------------------------------
mkdir -p "$WORK/s3/cassette" "$WORK/s3/medusa"
S3_PORT=$(bash harness/s3/s3.sh start --kind s3s-fs --dir "$WORK/s3")
export AWS_ACCESS_KEY_ID=cassette-test AWS_SECRET_ACCESS_KEY=cassette-test-secret AWS_REGION=us-east-1 \
  AWS_ENDPOINT=http://127.0.0.1:$S3_PORT AWS_ALLOW_HTTP=true AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false
export CASSETTE_STATE_DIR=$WORK/state
stop_all() {
  bash harness/s3/s3.sh stop --kind s3s-fs --dir "$WORK/s3" >/dev/null 2>&1 || true
  if [ "${KEEP_RUNNING:-0}" != 1 ]; then
    bash "$HARNESS" stop --name suite >/dev/null 2>&1 || true
    bash "$HARNESS" stop --name suite-small >/dev/null 2>&1 || true
  fi
}
trap stop_all EXIT

# --- 2. measurement ------------------------------------------------------------------------------
drop_cache() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# measure VARIANT JOB TOOL TARGET CACHE STORED_DIR CMD...: one timed run, one line of results.tsv:
# variant job tool target cache seconds source_bytes stored_bytes written_bytes tree_rss own_rss rc
measure() {
  local variant=$1 job=$2 tool=$3 target=$4 cache=$5 stored=$6; shift 6
  local tag before after rc=0 written
  tag=$(echo "$variant-$job-$tool-$target-$cache" | tr ' /%' '__p')
  [ "$cache" = cold ] && drop_cache
  before=$(du -sb "$stored" 2>/dev/null | cut -f1 || echo 0)
  say "$variant / $job / $tool -> $target ($cache)"
  local load0; load0=$(cut -d' ' -f1 /proc/loadavg)
  run_timed "$tag" "$@" || rc=$?
  echo "$variant / $job / $tool -> $target ($cache): load average $load0 before, $(cut -d' ' -f1 /proc/loadavg) after" >>"$WORK/load.txt"
  after=$(du -sb "$stored" 2>/dev/null | cut -f1 || echo 0)
  written=$(awk -F': ' '/File system outputs/{print $2 * 512}' "$WORK/$tag.time")
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$job" "$tool" "$target" "$cache" "$WALL" \
    "$SOURCE_BYTES" "$((after - before))" "${written:-0}" "${TREE_RSS:-0}" "${OWN_RSS:-0}" "$rc" >>"$RESULTS"
  printf -- '- %s / %s / %s -> %s: `%s`\n' "$variant" "$job" "$tool" "$target" "$*" >>"$COMMANDS"
  LAST_TAG=$tag
  return 0
}

# --- 3. the node and its data --------------------------------------------------------------------
# start_node NAME IP JMX: a one-node cluster; sets DATA_DIR, IP, JMX, nt().
start_node() {
  NODE=$1 IP=$2 JMX=$3
  say "starting node $NODE ($IP, JMX $JMX)"
  bash "$HARNESS" start --name "$NODE" --nodes 1 --first-ip "$IP" --jmx-base "$JMX" --heap 2g >"$WORK/start-$NODE.log" 2>&1 \
    || { tail -30 "$WORK/start-$NODE.log" >&2; exit 1; }
  DATA_DIR=$CLUSTERS/$NODE/node1/data1
  export WORK DATA_DIR NODETOOL JMX
  export CASSETTE_NODETOOL="$NODETOOL" CASSETTE_JMX_PORT=$JMX CASSETTE_JMX_HOST=127.0.0.1 CASSETTE_CQL_HOST=$IP
}
nt() { "$NODETOOL" -h 127.0.0.1 -p "$JMX" "$@"; }
# bytes and files of the given keyspaces' live SSTables (snapshots and backups excluded)
live_files() { local k; for k in "$@"; do find "$DATA_DIR/$k" \( -name snapshots -o -name backups \) -prune -o -type f -print 2>/dev/null || true; done; }
live_bytes() { live_files "$@" | xargs -r -d '\n' stat -c %s | awk '{s+=$1} END {printf "%.0f\n", s}'; }
# load MB: that many MB more across the keyspaces, in rounds of one flush each
load_rounds() {
  local mb=$1 rounds=$2 r k per start
  per=$(awk -v m="$mb" -v r="$rounds" -v n="${#KEYSPACES[@]}" 'BEGIN{printf "%d", m/1.048576/r/n/1.06 + 1}')
  for r in $(seq 1 "$rounds"); do
    for k in "${KEYSPACES[@]}"; do
      start=$(cat "$CLUSTERS/$NODE/next-start-$k" 2>/dev/null || echo 0)
      out=$("$LOADER" --host "$IP" --keyspace "$k" --mib "$per" --start "$start" --concurrency 256)
      sed -E 's/.*next --start ([0-9]+).*/\1/' <<<"$out" >"$CLUSTERS/$NODE/next-start-$k"
    done
    nt flush   # every keyspace: one nodetool call (flush takes one keyspace at a time)
    say "  round $r/$rounds: $(live_files "${KEYSPACES[@]}" | wc -l) files, $(($(live_bytes "${KEYSPACES[@]}") / 1000000)) MB"
  done
}
count_rows() { local k; for k in "$@"; do "$CQLBIN" --host "$IP" count "$k" | sed "s/^/$k./"; done; }

# --- 4. the tools' jobs --------------------------------------------------------------------------
write_seed_script
write_seed_restore_script
# seed 001's whole backup of every keyspace: snapshot, its script, clear (one keyspace at a time,
# as the script takes one)
seed_backup() { # NAME DEST KEYSPACES...
  local name=$1 dest=$2 k; shift 2
  for k in "$@"; do
    "$NODETOOL" -h 127.0.0.1 -p "$JMX" snapshot -t "$name" "$k" >/dev/null
    (cd "$WORK" && "$WORK/seed001-copy.sh" "$DATA_DIR" "$k" "$name" "$dest/$k" >/dev/null 2>&1)
    "$NODETOOL" -h 127.0.0.1 -p "$JMX" clearsnapshot -t "$name" -- "$k" >/dev/null
  done
}
seed_restore_all() { # NAME SRC KEYSPACES...
  local name=$1 src=$2 k; shift 2
  for k in "$@"; do
    "$WORK/seed001-restore.sh" "$DATA_DIR" "$k" "$name" "$src/$k" "$WORK/cql.sh" "$WORK/nodetool.sh" >/dev/null
  done
}
# seed 001's restore steps for one table: TRUNCATE, cp -r -a into the live table dir, refresh
seed_restore_table() { # NAME SRC KEYSPACE TABLE
  local name=$1 src=$2 ks=$3 t=$4 dir
  dir=$(find "$DATA_DIR/$ks" -maxdepth 1 -type d -name "$t-*" | head -1)
  "$WORK/cql.sh" exec "TRUNCATE $ks.$t"
  cp -r -a "$src/$ks/$name/$t"/* "$dir/"
  "$WORK/nodetool.sh" refresh "$ks" "$t"
}
export -f seed_backup seed_restore_all seed_restore_table
cassette_backup() { # NAME DIR KEYSPACES...
  local name=$1 dir=$2; shift 2
  "$CASSETTE" --json backup --name "$name" --backup-dir "$dir" -k "$(IFS=,; echo "$*")" --allow-same-disk
}
medusa_run() { timeout "$MEDUSA_TIMEOUT" bash "$MEDUSA" "$@"; }
export -f cassette_backup medusa_run
export CASSETTE MEDUSA MEDUSA_TIMEOUT
# between restores, untimed: what seed 001's `cp .../*` leaves in the table dirs, and the
# truncated-* snapshots
tidy_live() {
  rm -f "$DATA_DIR"/suite*/*/manifest.json "$DATA_DIR"/suite*/*/schema.cql
  nt clearsnapshot --all >/dev/null 2>&1 || true
}
check_rows() { # LABEL KEYSPACES...
  local label=$1 out; shift
  out=$(count_rows "$@" 2>>"$WORK/count.log" || true)
  if [ "$out" = "$(cat "$WORK/rows-before.tsv")" ]; then
    echo "- $label: rows per table equal to before the restores" >>"$NOTES"
  else
    echo "- $label: **ROWS DIFFER** from before: $(tr '\t\n' '= ' <<<"$out")" >>"$NOTES"
  fi
}

# the small-files variant's data: 100 tables, one small SSTable each per round and flush
SKS=suite_small TABLES=100
load_small() {
  local have start out t0
  have=$(live_files $SKS | wc -l)
  if [ "$have" -lt "$SMALL_FILES" ]; then
    say "loading the small-files variant: $TABLES tables, one SSTable each per round, until $SMALL_FILES files"
    t0=$(now)
    while [ "$(live_files $SKS | wc -l)" -lt "$SMALL_FILES" ]; do
      start=$(cat "$CLUSTERS/$NODE/next-start-small" 2>/dev/null || echo 0)
      out=$("$LOADER" --host "$IP" --keyspace $SKS --small-tables $TABLES --rows-per-table 4 --start "$start")
      sed -E 's/.*next --start ([0-9]+).*/\1/' <<<"$out" >"$CLUSTERS/$NODE/next-start-small"
      nt flush -- $SKS
    done
    echo "- load of the small-files variant: $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s" >>"$NOTES"
  fi
}

# medusa as tuned for a fair race: 8 transfers at once like cassette (its default is 1) and no
# 50 MB/s cap on S3 (its default); its nice 19 / idle-I/O priority for backups is its design, kept.
MEDUSA_TUNING=(--concurrent-transfers 8 --max-bandwidth 10000MB/s)
BK=$WORK/backups
# --- 5. variant: many small files (first: it is independent of the main data set) ---------------
SMALL_DESC=""
if [ "$SMALL_FILES" -gt 0 ]; then
  start_node suite-small 127.0.6.2 8000
  printf '#!/bin/bash\nexec "%s" --host %s "$@"\n' "$CQLBIN" "$IP" >"$WORK/cql.sh"
  printf '#!/bin/bash\nexec "%s" -h 127.0.0.1 -p %s "$@"\n' "$NODETOOL" "$JMX" >"$WORK/nodetool.sh"
  load_small
  SOURCE_BYTES=$(live_bytes $SKS)
  SMALL_DESC="keyspace $SKS, $TABLES tables, $(live_files $SKS | wc -l) files, $SOURCE_BYTES bytes"
  say "small-files data: $SMALL_DESC"
  if has medusa; then
    bash "$MEDUSA" config --cluster-dir "$CLUSTERS/suite-small" --ip "$IP" --jmx "$JMX" --storage local \
      --base-path "$WORK/medusa-small" "${MEDUSA_TUNING[@]}" --out "$WORK/medusa-small.ini" >&2
  fi
  for job in "full backup" "backup, no change"; do
    [ "${SUITE_LOAD_ONLY:-0}" = 1 ] && break
    n=$([ "$job" = "full backup" ] && echo full || echo nochange)
    has seed && measure small "$job" "seed 001" local cold "$BK/small-seed" seed_backup "$n" "$BK/small-seed" $SKS
    if has cassette; then
      measure small "$job" cassette local cold "$BK/small-cassette" cassette_backup "$n" "$BK/small-cassette" $SKS
      measure small "$job" cassette s3 cold "$WORK/s3/cassette" cassette_backup "$n" "s3://cassette/small" $SKS
    fi
    if has medusa; then
      measure small "$job" medusa local cold "$WORK/medusa-small" medusa_run backup --config "$WORK/medusa-small.ini" --name "$n" --mode differential
    fi
  done
fi
bash "$HARNESS" stop --name suite-small >/dev/null 2>&1 || true

# --- 6. main variant: >= 5 GB in >= 2,000 files ---------------------------------------------------
start_node suite 127.0.6.1 7900
printf '#!/bin/bash\nexec "%s" --host %s "$@"\n' "$CQLBIN" "$IP" >"$WORK/cql.sh"
printf '#!/bin/bash\nexec "%s" -h 127.0.0.1 -p %s "$@"\n' "$NODETOOL" "$JMX" >"$WORK/nodetool.sh"
chmod +x "$WORK/cql.sh" "$WORK/nodetool.sh"
want=$(awk -v g="$GB" 'BEGIN{printf "%.0f", g*1e9}')
have=$(live_bytes "${KEYSPACES[@]}")
if [ "$have" -lt "$want" ]; then
  say "loading $(((want - have) / 1000000)) MB in $ROUNDS rounds"
  t0=$(now)
  load_rounds "$(((want - have) / 1000000))" "$ROUNDS"
  echo "- load: $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}') s" >>"$NOTES"
fi
nt clearsnapshot --all >/dev/null 2>&1 || true
if [ "${SUITE_LOAD_ONLY:-0}" = 1 ]; then
  say "SUITE_LOAD_ONLY=1: the data sets are loaded; nodes stopped"
  exit 0
fi
SOURCE_BYTES=$(live_bytes "${KEYSPACES[@]}")
SOURCE_FILES=$(live_files "${KEYSPACES[@]}" | wc -l)
MAIN_DESC="${#KEYSPACES[@]} keyspaces (${KEYSPACES[*]}), 12 tables, $SOURCE_FILES files, $SOURCE_BYTES bytes"
say "data: $MAIN_DESC"
if has medusa; then
  bash "$MEDUSA" config --cluster-dir "$CLUSTERS/suite" --ip "$IP" --jmx "$JMX" --storage local \
    --base-path "$WORK/medusa-local" "${MEDUSA_TUNING[@]}" --out "$WORK/medusa-local.ini" >&2
  bash "$MEDUSA" config --cluster-dir "$CLUSTERS/suite" --ip "$IP" --jmx "$JMX" --storage s3 \
    --s3-port "$S3_PORT" --bucket medusa "${MEDUSA_TUNING[@]}" --out "$WORK/medusa-s3.ini" >&2
fi

# 6a. physical limit: read every file (cold), write as many bytes (fdatasync)
drop_cache
t0=$(now); live_files "${KEYSPACES[@]}" | xargs -r -d '\n' cat >/dev/null; t1=$(now)
printf 'main\tphysical read\tphysical\tlocal\tcold\t%s\t%s\t0\t0\t0\t0\t0\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')" "$SOURCE_BYTES" >>"$RESULTS"
t0=$(now); dd if=/dev/zero of="$WORK/dd.out" bs=8M count=$((SOURCE_BYTES / 8388608)) conv=fdatasync 2>/dev/null; t1=$(now); rm -f "$WORK/dd.out"
printf 'main\tphysical write\tphysical\tlocal\t-\t%s\t%s\t0\t0\t0\t0\t0\n' "$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')" "$SOURCE_BYTES" >>"$RESULTS"
echo "- physical: \`find <keyspace dirs> -type f | xargs cat >/dev/null\` after dropping the page cache; \`dd if=/dev/zero bs=8M count=$((SOURCE_BYTES / 8388608)) conv=fdatasync\`" >>"$COMMANDS"

# 6b. full backups, warm (the data were just read; their copies are thrown away) then cold
for cache in warm cold; do
  if [ "$cache" = warm ]; then live_files "${KEYSPACES[@]}" | xargs -r -d '\n' cat >/dev/null; fi
  s=$cache
  run_here() { has "$1" && { [ "$cache" = cold ] || [[ " $WARM_TOOLS " == *" $1 "* ]]; }; }
  run_here seed && measure main "full backup" "seed 001" local $cache "$BK/seed" seed_backup "full-$s" "$BK/seed" "${KEYSPACES[@]}"
  if run_here cassette; then
    measure main "full backup" cassette local $cache "$BK/cassette-$s" cassette_backup "full-$s" "$BK/cassette-$s" "${KEYSPACES[@]}"
    measure main "full backup" cassette s3 $cache "$WORK/s3/cassette" cassette_backup "full-$s" "s3://cassette/$s" "${KEYSPACES[@]}"
  fi
  if run_here medusa; then
    measure main "full backup" medusa local $cache "$WORK/medusa-local" medusa_run backup --config "$WORK/medusa-local.ini" --name "full-$s" --mode differential
    measure main "full backup" medusa s3 $cache "$WORK/s3/medusa" medusa_run backup --config "$WORK/medusa-s3.ini" --name "full-$s" --mode differential
  fi
  if [ "$cache" = warm ]; then
    # throw the warm copies away: the cold runs start from empty targets, like the warm ones did
    rm -rf "$BK" "$WORK/s3/cassette/warm" "$WORK/state" "$WORK/medusa-local"
    find "$WORK/s3/medusa" -mindepth 1 -delete 2>/dev/null || true
    mkdir -p "$WORK/s3/medusa"
  fi
done
# stored bytes of the warm copies went away; the du above counts each run's own growth

# 6c. 5 % new data, then backups (seed 001: another full copy; medusa: differential)
say "adding 5 % new data"
load_rounds "$((SOURCE_BYTES / 20 / 1000000))" 1
nt clearsnapshot --all >/dev/null 2>&1 || true
SOURCE_BYTES=$(live_bytes "${KEYSPACES[@]}")
for job in "5% new data" "no change"; do
  n=$([ "$job" = "no change" ] && echo nochange || echo plus5)
  has seed && measure main "backup, $job" "seed 001" local cold "$BK/seed" seed_backup "$n" "$BK/seed" "${KEYSPACES[@]}"
  if has cassette; then
    measure main "backup, $job" cassette local cold "$BK/cassette-cold" cassette_backup "$n" "$BK/cassette-cold" "${KEYSPACES[@]}"
    measure main "backup, $job" cassette s3 cold "$WORK/s3/cassette" cassette_backup "$n" "s3://cassette/cold" "${KEYSPACES[@]}"
  fi
  if has medusa; then
    measure main "backup, $job" medusa local cold "$WORK/medusa-local" medusa_run backup --config "$WORK/medusa-local.ini" --name "$n" --mode differential
    measure main "backup, $job" medusa s3 cold "$WORK/s3/medusa" medusa_run backup --config "$WORK/medusa-s3.ini" --name "$n" --mode differential
  fi
done
# the no-change backups again, warm (the live files were just read); seed 001's copy is thrown
# away after it is measured, to spare the disk
live_files "${KEYSPACES[@]}" | xargs -r -d '\n' cat >/dev/null
has seed && { measure main "backup, no change" "seed 001" local warm "$BK/seed-warm" seed_backup nochange-warm "$BK/seed-warm" "${KEYSPACES[@]}"; rm -rf "$BK/seed-warm"; }
if has cassette; then
  measure main "backup, no change" cassette local warm "$BK/cassette-cold" cassette_backup nochange-warm "$BK/cassette-cold" "${KEYSPACES[@]}"
  measure main "backup, no change" cassette s3 warm "$WORK/s3/cassette" cassette_backup nochange-warm "s3://cassette/cold" "${KEYSPACES[@]}"
fi
if has medusa; then
  measure main "backup, no change" medusa local warm "$WORK/medusa-local" medusa_run backup --config "$WORK/medusa-local.ini" --name nochange-warm --mode differential
  measure main "backup, no change" medusa s3 warm "$WORK/s3/medusa" medusa_run backup --config "$WORK/medusa-s3.ini" --name nochange-warm --mode differential
fi

# 6d. restores, from the no-change backups (the data as it is now): one table (each run twice:
# cold, then warm with what the first run read still cached), then the node
count_rows "${KEYSPACES[@]}" >"$WORK/rows-before.tsv"
T_KS=suite_a T_TABLE=blobs
SOURCE_BYTES=$(find "$DATA_DIR/$T_KS"/"$T_TABLE"-* \( -name snapshots -o -name backups \) -prune -o -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f\n", s}')
tidy_live
has seed && { measure main "restore one table" "seed 001" local cold "$DATA_DIR" seed_restore_table nochange "$BK/seed" $T_KS $T_TABLE; tidy_live; }
if has cassette; then
  measure main "restore one table" cassette local cold "$DATA_DIR" "$CASSETTE" --json restore --name nochange --backup-dir "$BK/cassette-cold" -t $T_KS.$T_TABLE --new-restore --clear-truncate-snapshots
  tidy_live
  measure main "restore one table" cassette local warm "$DATA_DIR" "$CASSETTE" --json restore --name nochange --backup-dir "$BK/cassette-cold" -t $T_KS.$T_TABLE --new-restore --clear-truncate-snapshots
  tidy_live
  measure main "restore one table" cassette s3 cold "$DATA_DIR" "$CASSETTE" --json restore --name nochange --backup-dir s3://cassette/cold -t $T_KS.$T_TABLE --new-restore --clear-truncate-snapshots
  tidy_live
  measure main "restore one table" cassette s3 warm "$DATA_DIR" "$CASSETTE" --json restore --name nochange --backup-dir s3://cassette/cold -t $T_KS.$T_TABLE --new-restore --clear-truncate-snapshots
  tidy_live
fi
if has medusa; then
  measure main "restore one table" medusa local cold "$DATA_DIR" medusa_run restore --config "$WORK/medusa-local.ini" --name nochange --keyspace $T_KS --table $T_KS.$T_TABLE
  tidy_live
  measure main "restore one table" medusa local warm "$DATA_DIR" medusa_run restore --config "$WORK/medusa-local.ini" --name nochange --keyspace $T_KS --table $T_KS.$T_TABLE
  tidy_live
  measure main "restore one table" medusa s3 cold "$DATA_DIR" medusa_run restore --config "$WORK/medusa-s3.ini" --name nochange --keyspace $T_KS --table $T_KS.$T_TABLE
  tidy_live
  measure main "restore one table" medusa s3 warm "$DATA_DIR" medusa_run restore --config "$WORK/medusa-s3.ini" --name nochange --keyspace $T_KS --table $T_KS.$T_TABLE
  tidy_live
fi
check_rows "after the one-table restores" "${KEYSPACES[@]}"

SOURCE_BYTES=$(live_bytes "${KEYSPACES[@]}")
if has seed; then
  measure main "restore whole node" "seed 001" local cold "$DATA_DIR" seed_restore_all nochange "$BK/seed" "${KEYSPACES[@]}"
  tidy_live; check_rows "after seed 001's restore" "${KEYSPACES[@]}"
fi
if has cassette; then
  measure main "restore whole node" cassette local cold "$DATA_DIR" "$CASSETTE" --json restore --name nochange --backup-dir "$BK/cassette-cold" --new-restore --clear-truncate-snapshots
  tidy_live; check_rows "after cassette's restore (local)" "${KEYSPACES[@]}"
  measure main "restore whole node" cassette s3 cold "$DATA_DIR" "$CASSETTE" --json restore --name nochange --backup-dir s3://cassette/cold --new-restore --clear-truncate-snapshots
  tidy_live; check_rows "after cassette's restore (S3)" "${KEYSPACES[@]}"
fi
if has medusa; then
  measure main "restore whole node" medusa local cold "$DATA_DIR" medusa_run restore --config "$WORK/medusa-local.ini" --name nochange
  tidy_live; check_rows "after medusa's restore-node (local)" "${KEYSPACES[@]}"
  measure main "restore whole node" medusa s3 cold "$DATA_DIR" medusa_run restore --config "$WORK/medusa-s3.ini" --name nochange
  tidy_live; check_rows "after medusa's restore-node (S3)" "${KEYSPACES[@]}"
fi
bash "$HARNESS" stop --name suite >/dev/null 2>&1 || true

# --- 7. report -----------------------------------------------------------------------------------
say "writing BENCHMARKS.md and bench/throughput.png"
"$PLOT_VENV/bin/python" "$ROOT/bench/report.py" --results "$RESULTS" --commands "$COMMANDS" --notes "$NOTES" \
  --main "$MAIN_DESC" --small "$SMALL_DESC" --machine "$(uname -srm); $(nproc) cores; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'); $(free -g | awk '/Mem:/{print $2}') GiB RAM; $(df -h "$WORK" | awk 'NR==2{print $1", "$2}')" \
  --git "$(git rev-parse --short HEAD)$(git diff --quiet || echo ' + uncommitted changes')" \
  --cassandra "$(cat "$CACHE_DIR/cassandra-5.0/lib/.version" 2>/dev/null || echo 5.0)" \
  --medusa "$("$CACHE_DIR/medusa-venv/bin/pip" show cassandra-medusa 2>/dev/null | awk '/^Version/{print $2}')" \
  --out "$ROOT/BENCHMARKS.md" --plot "$ROOT/bench/throughput.png"
cp "$RESULTS" "$ROOT/bench/suite-results.tsv"
say "done: BENCHMARKS.md"
exit 0
}
