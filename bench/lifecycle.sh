#!/usr/bin/env bash
# Backup lifecycle benchmark (issue 7): `cassette list` with 1,000 backups of a node, and a purge
# that deletes ~10,000 files. No Cassandra: the backups are synthetic, written by the repository
# crate (crates/repo/examples/synthetic_repo.rs) exactly as a backup lays them out: per backup 8
# SSTable components (half hard-linked from the previous backup, as deduplication leaves them),
# manifest.json, cassette-meta/schema.cql and journal.jsonl (11 files), then the node index.
#
#   bench/lifecycle.sh                       1,000 backups in target/bench-lifecycle, release build
#   BENCH_BACKUPS=5000 bench/lifecycle.sh    more backups
#   BENCH_PROFILE=debug bench/lifecycle.sh   use the debug build (no release build of cassette)
#   BENCH_DIR=/mnt/x bench/lifecycle.sh      another filesystem (default: target/, local disk)
#
# Printed: wall time of `cassette list` (indexed: the normal case; without index: the first
# listing after an upgrade, which reads every manifest and writes the index), of a dry-run purge,
# and of `purge --keep-last 1` (999 backups, 10,989 files) with files deleted per second.
# Page cache warm (the synthetic repository was just written). It is a benchmark, not a test:
# it reports a missed target, it never fails on one.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BACKUPS=${BENCH_BACKUPS:-1000}
FILES=${BENCH_FILES:-8}
PROFILE=${BENCH_PROFILE:-release}
DIR=${BENCH_DIR:-$ROOT/target/bench-lifecycle}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

if [ "$PROFILE" = release ]; then
  cargo build --release -q -p cassette --bin cassette
  cargo build --release -q -p cassette-repo --example synthetic_repo
else
  cargo build -q -p cassette --bin cassette
  cargo build -q -p cassette-repo --example synthetic_repo
fi
CASSETTE="$TARGET/$PROFILE/cassette"
SYNTH="$TARGET/$PROFILE/examples/synthetic_repo"

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.3f'; }
field() { sed -n "s/^  \"$1\": \\([0-9]*\\).*/\\1/p" "$2"; }

rm -rf "$DIR"
mkdir -p "$DIR"
t0=$(now); "$SYNTH" "$DIR" "$BACKUPS" "$FILES"; t1=$(now)
echo "synthetic repository written in $(secs "$t0" "$t1") s ($(find "$DIR" -type f | wc -l) files)"
NODE=$(echo "$DIR"/bench/*)

echo
echo "| operation | backups | seconds | notes |"
echo "|---|---|---|---|"
rm -f "$NODE/.index.json"
t0=$(now); "$CASSETTE" list --backup-dir "$DIR" > "$DIR/list.txt"; t1=$(now)
lines=$(($(wc -l < "$DIR/list.txt") - 1))
echo "| list, no index (reads every manifest, writes the index) | $lines | $(secs "$t0" "$t1") | first listing after an upgrade |"
for rep in 1 2 3; do
  t0=$(now); "$CASSETTE" list --backup-dir "$DIR" > "$DIR/list.txt"; t1=$(now)
  echo "| list, indexed (rep $rep) | $(($(wc -l < "$DIR/list.txt") - 1)) | $(secs "$t0" "$t1") | target < 1 s |"
done
t0=$(now); "$CASSETTE" --json list --backup-dir "$DIR" > "$DIR/list.json"; t1=$(now)
echo "| list --json, indexed | $BACKUPS | $(secs "$t0" "$t1") | |"
t0=$(now); "$CASSETTE" --json purge --keep-last 1 --dry-run --backup-dir "$DIR" > "$DIR/plan.json"; t1=$(now)
echo "| purge --keep-last 1 --dry-run | $(field deleted_backups "$DIR/plan.json") to delete | $(secs "$t0" "$t1") | plan only |"
sync
t0=$(now); "$CASSETTE" --json purge --keep-last 1 --backup-dir "$DIR" > "$DIR/purge.json"; t1=$(now)
files=$(field files_deleted "$DIR/purge.json")
s=$(secs "$t0" "$t1")
rate=$(echo "$files / $s" | bc -l | xargs printf '%.0f')
echo "| purge --keep-last 1 | $(field deleted_backups "$DIR/purge.json") deleted | $s | $files files: $rate files/s (target >= 1,000/s) |"
left=$(find "$DIR/bench" -type f ! -name '.*' | wc -l)
echo
echo "left after purge: $left files ($(ls "$NODE" | wc -l) backup), $("$CASSETTE" verify --backup-dir "$DIR" | head -1)"
rm -rf "$DIR"
