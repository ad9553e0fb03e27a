#!/usr/bin/env bash
# Backup and restore benchmark (issues 3 and 4): cassette vs seed 001's methods.
#   backup:  seed 001's `nodetool snapshot` + `cp -r -a` + clear, against `cassette backup` (full, no change)
#   restore: seed 001's restore loop, online variant (per table: TRUNCATE, `cp -r -a` into the live
#            table directory, `nodetool refresh`), against `cassette restore` (verify + truncate +
#            stage + `nodetool import --copy-data`), each followed by a row count per table
#
#   bench/run.sh                    start the bench node, load >= 2 GiB if needed, measure, print a table
#   BENCH_REPS=3 bench/run.sh       repeat every measurement 3 times (default 1)
#   KEEP_RUNNING=1 bench/run.sh     leave the bench node running afterwards (default: stop it)
#   BENCH_RESTORE=0 bench/run.sh    backup part only (what bench/backup.sh runs)
#
# It is a benchmark, not a test: it never fails on a missed target, it reports it.
# Cluster: `bench`, one node on 127.0.4.1, JMX 7700 (apart from the test clusters solo and trio).
# Data: keyspace `bench` (tables blobs, events, docs, kv), rows of 1-4 KiB of random bytes/text,
# written by crates/testkit/src/bin/cassette-bulk-load.rs; the keyspace has durable_writes=false and
# the tables have background compaction disabled, so the SSTables stay the same between runs.
# Layout of the data after a load: a major compaction split STCS-style (`nodetool compact -s`), then
# a few small fresh SSTables on top, like a node that has been compacting for a while.
# Environment: BENCH_DIR (default /tmp/cassette-bench: backup dirs, logs), BENCH_MIN_BYTES
# (default 2 GiB), BENCH_REPS, KEEP_RUNNING, BENCH_NO_DROP=1 (never drop the page cache),
# BENCH_RESTORE (default 1).
# The restores replace the bench keyspace's data with the backups just taken (same rows), and
# the `truncated-*` snapshots TRUNCATE leaves are cleared after each restore.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# run_timed, now, seed 001's scripts
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"

NAME=bench IP=127.0.4.1 JMX=7700 KS=bench
HARNESS="$ROOT/harness/cassandra/cassandra.sh"
NODETOOL="$ROOT/harness/cassandra/nodetool"
nt() { "$NODETOOL" -h 127.0.0.1 -p "$JMX" "$@"; }
WORK=${BENCH_DIR:-/tmp/cassette-bench}
MIN_BYTES=${BENCH_MIN_BYTES:-$((2 * 1024 * 1024 * 1024))}
REPS=${BENCH_REPS:-1}
RESTORE=${BENCH_RESTORE:-1}
CLUSTER_DIR=${CASSETTE_CLUSTER_ROOT:-/tmp/cassette-clusters}/$NAME
DATA_DIR=$CLUSTER_DIR/node1/data1
CASSETTE="$ROOT/target/release/cassette"
LOADER="$ROOT/target/release/cassette-bulk-load"
CQLBIN="$ROOT/target/release/cassette-cql"

say() { echo "== $*" >&2; }
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

# --- seed 001's scripts (bench/lib.sh) -----------------------------------------------------------
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


# --- restore helpers -----------------------------------------------------------------------------
# Small wrappers the restore scripts call: CQL (no cqlsh here) and nodetool on the bench node.
printf '#!/bin/bash\nexec "%s" --host %s "$@"\n' "$CQLBIN" "$IP" >"$WORK/cql.sh"
printf '#!/bin/bash\nexec "%s" -h 127.0.0.1 -p %s "$@"\n' "$NODETOOL" "$JMX" >"$WORK/nodetool.sh"
# cassette's nodetool during its restore: the real one, each call logged as "start end rc args"
# (cassette's --json report has per-table times only; this gives the stages inside them).
cat >"$WORK/nodetool-logged.sh" <<EOF
#!/bin/bash
t0=\$(date +%s.%N)
"$NODETOOL" "\$@"; rc=\$?
echo "\$t0 \$(date +%s.%N) \$rc \$*" >>"$WORK/restore-nodetool.log"
exit \$rc
EOF
chmod +x "$WORK/cql.sh" "$WORK/nodetool.sh" "$WORK/nodetool-logged.sh"

write_seed_restore_script

# Rows per table of the keyspace ("table<TAB>rows" lines), by token-range count(*)s.
count_rows() { "$CQLBIN" --host "$IP" count "$KS" 2>>"$WORK/count.log"; }
# After a restore: the row counts must equal those before. Appends to $WORK/rowcheck.txt.
check_rows() {
  local label=$1 out="$WORK/rows-$2.tsv"
  count_rows >"$out" || true
  if [ -s "$out" ] && cmp -s "$WORK/rows-before.tsv" "$out"; then
    echo "- $label: row counts equal to before ($(tr '\t\n' '= ' <"$out"))" >>"$WORK/rowcheck.txt"
  else
    echo "- $label: **ROW COUNTS DIFFER** before: $(tr '\t\n' '= ' <"$WORK/rows-before.tsv") after: $(tr '\t\n' '= ' <"$out")" >>"$WORK/rowcheck.txt"
    ROWS_OK=0
  fi
}
# Between restores, untimed: the truncate snapshots go, and the two non-SSTable files seed 001's
# `cp .../*` puts into the live table directories (the snapshot's manifest.json and schema.cql).
tidy_live() {
  rm -f "$DATA_DIR/$KS"/*/manifest.json "$DATA_DIR/$KS"/*/schema.cql
  nt clearsnapshot --all -- "$KS" >/dev/null 2>&1 || true
}

export CASSETTE_NODETOOL="$NODETOOL" CASSETTE_JMX_PORT=$JMX CASSETTE_JMX_HOST=127.0.0.1 CASSETTE_CQL_HOST=$IP

RESULTS="$WORK/results.tsv"
: >"$RESULTS"
record() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" >>"$RESULTS"; }   # method rep secs bytes treeRSS ownRSS
COMMANDS="$WORK/commands.txt"
: >"$COMMANDS"
rm -f "$WORK/added.txt" "$WORK/rowcheck.txt" "$WORK/restore-stages.txt" "$WORK/count.log"
ROWS_OK=1
if [ "$RESTORE" = 1 ]; then
  say "counting rows per table (before any restore)"
  count_rows >"$WORK/rows-before.tsv"
  cat "$WORK/rows-before.tsv" >&2
fi

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
  if [ "$RESTORE" = 1 ]; then
    # (d) seed 001's restore, online variant, from the seed backup of (a)
    say "restore: seed 001 (TRUNCATE + cp -r -a + nodetool refresh per table)"
    tidy_live
    drop_cache
    run_timed "seed-restore-$rep" "$WORK/seed001-restore.sh" "$DATA_DIR" "$KS" "$tag" "$WORK/seed-backups" "$WORK/cql.sh" "$WORK/nodetool.sh"
    sr_wall=$WALL sr_rss=$TREE_RSS
    t0=$(now); sync; sr_sync=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
    record "seed001 restore (TRUNCATE+cp -a+refresh)" "$rep" "$sr_wall" "$seed_bytes" "$sr_rss" "-"
    record "seed001 restore + sync" "$rep" "$(awk -v a="$sr_wall" -v b="$sr_sync" 'BEGIN{printf "%.2f", a+b}')" "$seed_bytes" "-" "-"
    awk -v rep="$rep" '/^STAGE/ { if (prev != "") t[prev] += $3 - pt; prev = $2; pt = $3 }
      END { printf "- rep %s, seed 001 restore: TRUNCATE %.1f s, cp -r -a %.1f s, nodetool refresh %.1f s (sums over the tables)\n", rep, t["truncate"], t["cp"], t["refresh"] }' \
      "$WORK/seed-restore-$rep.err" >>"$WORK/restore-stages.txt"
    check_rows "rep $rep, after seed 001's restore" "seed-$rep"
    [ "$rep" = 1 ] && echo "$WORK/seed001-restore.sh $DATA_DIR $KS $tag $WORK/seed-backups $WORK/cql.sh $WORK/nodetool.sh   # seed 001 restore, online variant" >>"$COMMANDS"

    # (e) cassette restore of the full backup of (b)
    say "restore: cassette restore --name $full"
    tidy_live
    : >"$WORK/restore-nodetool.log"
    drop_cache
    run_timed "cassette-restore-$rep" env CASSETTE_NODETOOL="$WORK/nodetool-logged.sh" CASSETTE_LOG=cassette_restore=info,cassette_cassandra=debug \
      "$CASSETTE" --json --log-json restore --name "$full" --backup-dir "$WORK/cassette-backups" -k "$KS"
    cr_wall=$WALL cr_t0=$RUN_T0 cr_tree=$TREE_RSS cr_own=$OWN_RSS
    t0=$(now); sync; cr_sync=$(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
    read -r cr_bytes cr_complete cr_ms < <(jq -r '[.verified_bytes, .complete, .duration_ms] | @tsv' "$WORK/cassette-restore-$rep.out")
    record "cassette restore (verify+truncate+stage+import)" "$rep" "$cr_wall" "$cr_bytes" "$cr_tree" "$cr_own"
    record "cassette restore + sync" "$rep" "$(awk -v a="$cr_wall" -v b="$cr_sync" 'BEGIN{printf "%.2f", a+b}')" "$cr_bytes" "-" "-"
    # stages: process start -> "restore started" (locate); -> the first nodetool call (verify +
    # schema check + the first table's TRUNCATE and staging); the nodetool calls themselves (import,
    # and any other); the gaps between calls (TRUNCATE + staging of the next tables); the rest
    # (journal, exit) is what remains of the wall time.
    started=$(jq -r 'select(.fields.message == "restore started") | .timestamp' "$WORK/cassette-restore-$rep.err" | head -1)
    started=$(date -d "$started" +%s.%N)
    awk -v rep="$rep" -v t0="$cr_t0" -v st="$started" -v wall="$cr_wall" -v ok="$cr_complete" '
      NR == 1 { first = $1; prev = $1 }
      { gap += $1 - prev; prev = $2 }
      / import / { im += $2 - $1; nim++; next }
      { other += $2 - $1; nother++ }
      END {
        loc = st - t0; ver = first - st; rest = wall - loc - ver - gap - im - other;
        printf "- rep %s, cassette restore (complete: %s): start+locate %.1f s, **until the first nodetool call (verify = re-hash every file, schema check, first TRUNCATE and staging) %.1f s (%.0f %%)**, nodetool import --copy-data %.1f s (%d runs), other nodetool calls %.1f s (%d runs), between calls (TRUNCATE + staging) %.1f s, rest %.1f s\n",
          rep, ok, loc, ver, 100 * ver / wall, im, nim, other, nother, gap, rest }' \
      "$WORK/restore-nodetool.log" >>"$WORK/restore-stages.txt"
    jq -r '.tables[] | "  - \(.table): \(.files) files, \(.bytes) bytes, \(.duration_ms) ms (truncate+stage+import)"' "$WORK/cassette-restore-$rep.out" >>"$WORK/restore-stages.txt"
    check_rows "rep $rep, after cassette restore" "cassette-$rep"
    [ "$rep" = 1 ] && echo "cassette --json restore --name $full --backup-dir $WORK/cassette-backups -k $KS   (same env; CASSETTE_NODETOOL=$WORK/nodetool-logged.sh, which logs each call and runs the real one)" >>"$COMMANDS"
    tidy_live
  fi
done

# --- report --------------------------------------------------------------------------------------
echo
echo "# cassette backup and restore benchmark ($(date -u +%Y-%m-%dT%H:%M:%SZ))"
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
seed_restore=$(med "seed001 restore (TRUNCATE+cp -a+refresh)")
seed_restore_sync=$(med "seed001 restore + sync")
c_restore=$(med "cassette restore (verify+truncate+stage+import)")
c_restore_sync=$(med "cassette restore + sync")
own_restore=$(awk -F'\t' '$1 ~ /^cassette restore \(/ && $6 > m {m=$6} END {printf "%.1f", m/1024}' "$RESULTS")
echo "ratios (medians):"
awk -v sw="$seed_whole" -v co="$cp_only" -v cs="$cp_sync" -v cf="$c_full" -v cc="$c_copy" -v cn="$c_none" -v own="$own_max" 'BEGIN {
  printf "- cassette full speed / seed 001 whole speed (snapshot+copy+clear each): %.2f   (target >= 0.9)\n", sw/cf;
  printf "- cassette copy stage speed / cp -r -a loop speed (copy only each):     %.2f\n", co/cc;
  printf "- cassette copy stage speed / (cp -r -a + sync) speed:                    %.2f\n", cs/cc;
  printf "- cassette no-change time / cassette full time:                           %.3f  (target < 0.05)\n", cn/cf;
  printf "- cassette peak RSS (its own process, max over runs): %s MB   (target < 100)\n", own;
}'
if [ "$RESTORE" = 1 ]; then
  awk -v sr="$seed_restore" -v srs="$seed_restore_sync" -v cr="$c_restore" -v crs="$c_restore_sync" -v own="$own_restore" 'BEGIN {
    printf "- cassette restore speed / seed 001 restore speed (whole runs):        %.2f   (target >= 0.9)\n", sr/cr;
    printf "- the same, each followed by sync:                                      %.2f\n", srs/crs;
    printf "- cassette restore peak RSS (its own process, max over runs): %s MB   (target < 100)\n", own;
  }'
fi
echo
cat "$WORK/added.txt"; rm -f "$WORK/added.txt"
if [ "$RESTORE" = 1 ]; then
  echo
  echo "restore stages:"
  cat "$WORK/restore-stages.txt"
  echo
  echo "row checks (rows per table before the restores: $(tr '\t\n' '= ' <"$WORK/rows-before.tsv")):"
  cat "$WORK/rowcheck.txt"
  [ "$ROWS_OK" = 1 ] || echo "!! a restore did not bring back the same rows"
fi
