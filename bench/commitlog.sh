#!/usr/bin/env bash
# Point-in-time recovery benchmark: the archive command Cassandra runs for every finished
# commitlog segment (`cassette commitlog archive`), and the shipper (`cassette commitlog ship`)
# into a local directory and into S3 (s3s-fs on 127.0.0.1, from harness/s3), beside this
# machine's own sequential write of the same bytes.
#
#   bench/commitlog.sh                               64 segments of 32 MiB (Cassandra's default size)
#   BENCH_SEGMENTS=16 BENCH_SEGMENT_MIB=1 bench/commitlog.sh
#   BENCH_DIR=/mnt/x bench/commitlog.sh              where the data lives (default /tmp/cassette-bench-commitlog)
#
# Segments are random bytes (a real segment is Cassandra's mutations, compressed or not: the
# archive command and the shipper never look inside). The archive command runs once per
# segment as Cassandra runs it (a new process, `%path %name`), spool on the segments'
# filesystem (a hard link, what the install sets up) and on another directory of the same
# filesystem copied (`--copy`-like: the spool is a tmpfs when /dev/shm exists); its time is the
# process's wall time, start-up included. Shipping is timed with a cold page cache when the
# script may drop it (root), warm otherwise (said in the output). Prints markdown rows with the
# command beside each figure; it is a benchmark, not a test.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
WORK=${BENCH_DIR:-/tmp/cassette-bench-commitlog}
N=${BENCH_SEGMENTS:-64}
MIB=${BENCH_SEGMENT_MIB:-32}
CASSETTE=${CARGO_TARGET_DIR:-$ROOT/target}/release/cassette
export CASSETTE_STATE_DIR=$WORK/state

cargo build --release --locked -p cassette 2>&1 | tail -1 >&2
bash harness/s3/s3.sh install >&2
rm -rf "$WORK" && mkdir -p "$WORK/commitlog" "$WORK/spool" "$WORK/repo" "$WORK/s3/cassette"
now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000" | bc -l; }
drop() { if [ "$(id -u)" = 0 ]; then sync; echo 3 >/proc/sys/vm/drop_caches; echo cold; else echo warm; fi; }

base=$(($(date +%s) * 1000))
for i in $(seq 1 "$N"); do
  head -c $((MIB << 20)) /dev/urandom >"$WORK/commitlog/CommitLog-7-$((base + i)).log"
done
bytes=$((N * MIB << 20))
# The spool's identity, as `cassette commitlog install` writes it (install itself needs a node).
printf '{"cluster":"bench","host_id":"00000000-0000-4000-8000-000000000001","installed_at":"%s"}\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$WORK/spool/cassette-spool.json"

echo "| what | figure | command |"
echo "|---|---|---|"
# 1. the archive command, per segment (hard link)
times=()
for f in "$WORK"/commitlog/*.log; do
  t0=$(now); "$CASSETTE" commitlog archive --spool "$WORK/spool" "$f" "$(basename "$f")"; t1=$(now)
  times+=("$(ms "$t0" "$t1")")
done
sorted=$(printf '%s\n' "${times[@]}" | sort -n)
median=$(echo "$sorted" | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
max=$(echo "$sorted" | tail -1)
printf '| archive command, hard link, per segment | median %.1f ms, max %.1f ms (%d segments of %d MiB) | `cassette commitlog archive --spool %s <segment> <name>` |\n' \
  "$median" "$max" "$N" "$MIB" "$WORK/spool"

# 2. the archive command, copy (spool on another filesystem)
if [ -d /dev/shm ] && [ "$(df --output=avail -B1 /dev/shm | tail -1)" -gt $((2 * MIB << 20)) ]; then
  other=/dev/shm/cassette-bench-spool; rm -rf "$other"; mkdir -p "$other"
  f=$(ls "$WORK"/commitlog/*.log | head -1)
  times=()
  for _ in 1 2 3 4 5; do
    rm -f "$other"/CommitLog-*
    t0=$(now); "$CASSETTE" commitlog archive --spool "$other" "$f" "$(basename "$f")"; t1=$(now)
    times+=("$(ms "$t0" "$t1")")
  done
  median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '| archive command, copy to another filesystem (tmpfs), per segment | median %.1f ms of %d MiB | `cassette commitlog archive --spool %s ...` |\n' "$median" "$MIB" "$other"
  rm -rf "$other"
fi

# 3. shipping to a directory, then to S3
cp -al "$WORK/spool" "$WORK/spool-s3"
cache=$(drop)
t0=$(now); "$CASSETTE" --json commitlog ship --spool "$WORK/spool" --backup-dir "$WORK/repo" >"$WORK/ship-local.json"; t1=$(now)
s=$(echo "$t1 - $t0" | bc -l)
printf '| ship to a directory (%s) | %.1f s, %.0f MB/s | `cassette commitlog ship --spool %s --backup-dir %s` |\n' "$cache" "$s" "$(echo "$bytes / $s / 1000000" | bc -l)" "$WORK/spool" "$WORK/repo"

port=$(bash harness/s3/s3.sh start --kind s3s-fs --dir "$WORK/s3")
trap 'bash harness/s3/s3.sh stop --kind s3s-fs --dir "$WORK/s3" >/dev/null 2>&1 || true; rm -rf "$WORK"' EXIT
export AWS_ACCESS_KEY_ID=cassette-test AWS_SECRET_ACCESS_KEY=cassette-test-secret AWS_REGION=us-east-1 \
  AWS_ENDPOINT=http://127.0.0.1:$port AWS_ALLOW_HTTP=true AWS_VIRTUAL_HOSTED_STYLE_REQUEST=false
cache=$(drop)
t0=$(now); "$CASSETTE" --json commitlog ship --spool "$WORK/spool-s3" --backup-dir s3://cassette/pitr >"$WORK/ship-s3.json"; t1=$(now)
s=$(echo "$t1 - $t0" | bc -l)
printf '| ship to S3, s3s-fs on loopback (%s) | %.1f s, %.0f MB/s | `cassette commitlog ship --spool %s --backup-dir s3://cassette/pitr` |\n' "$cache" "$s" "$(echo "$bytes / $s / 1000000" | bc -l)" "$WORK/spool-s3"

# 4. the machine: the same bytes written sequentially with fdatasync
t0=$(now); dd if=/dev/zero of="$WORK/dd.out" bs=1M count=$((N * MIB)) conv=fdatasync status=none; t1=$(now)
s=$(echo "$t1 - $t0" | bc -l)
printf '| this machine: sequential write of the same bytes | %.1f s, %.0f MB/s | `dd if=/dev/zero of=%s bs=1M count=%d conv=fdatasync` |\n' "$s" "$(echo "$bytes / $s / 1000000" | bc -l)" "$WORK/dd.out" "$((N * MIB))"
rm -f "$WORK/dd.out"
rm -rf "$WORK/commitlog" "$WORK/repo"
jq -r '"shipped \(.shipped | length) segments to a directory, \(.waiting.segments) waiting"' "$WORK/ship-local.json" >&2
jq -r '"shipped \(.shipped | length) segments to S3, \(.waiting.segments) waiting"' "$WORK/ship-s3.json" >&2
