#!/usr/bin/env bash
# Object storage benchmark (issues 6 and 7): cassette-object against the AWS CLI on a local S3
# server (s3s-fs on 127.0.0.1, from harness/s3), and cassette's garbage collection and listing
# on s3s-fs and on moto.
#
#   bench/object_store.sh                          everything below, once
#   BENCH_MIXED_GIB=1 bench/object_store.sh        a smaller "mixed" set (default 2 GiB in 200 files)
#   BENCH_SMALL_FILES=2000 bench/object_store.sh   fewer small files (default 10,000 of 4-64 KiB)
#   BENCH_HUGE_GIB=0 bench/object_store.sh         skip the single large file (default 5 GiB)
#   BENCH_PURGE_OBJECTS=N BENCH_LIST_BACKUPS=M     purge/list sizes (default 10,000 and 1,000)
#   BENCH_DIR=/mnt/x bench/object_store.sh         where data and servers live (default /tmp/cassette-bench-object)
#
# Measured, for each data set ("mixed": ~200 SSTable-like files of 100 KiB to 64 MiB; "small":
# 10,000 files of 4-64 KiB; all bytes random, so incompressible), one run each, in this order:
#   1. cassette upload    crates/object/examples/upload_bench.rs: RemoteRepo::upload_file, 8 files
#                         at once, 8 part buffers of 8 MiB (cassette's defaults)
#   2. aws s3 cp upload   `aws s3 cp --recursive` (awscli 1.x from PyPI, its defaults: 10 requests
#                         at once, 8 MiB parts from 8 MiB on)
#   3. cassette download  RemoteRepo::download_verified (size + BLAKE3 checked, each file fsynced)
#   4. aws s3 cp download (no fsync: also shown followed by `sync`)
# plus two diagnosis rows (not comparisons): cassette's upload again with glibc's
# MALLOC_MMAP_THRESHOLD_=1048576 (what its peak RSS is made of), and for the small set its
# download with 32 transfers at once (whether the server's per-GET latency bounds it);
# then one single large file (default 5 GiB) up and down with cassette; then
# crates/object/examples/purge_bench.rs on a fresh s3s-fs and on a fresh moto: gc of one
# tombstoned backup of 10,000 objects, and list_node of a node with 1,000 complete backups.
# Each transfer runs under /usr/bin/time -v (peak RSS of the process); cassette's own peak RSS
# is also printed by the example (VmHWM). Page cache warm (the data were just written). Each
# data set gets a fresh s3s-fs (objects are files on the same disk as the data). Wall times from
# the examples' own clocks (cassette) and `date +%s.%N` (aws).
#
# It is a benchmark, not a test: it reports missed targets, it never fails on one.
# Installs if missing: s3s-fs and moto (bash harness/s3/s3.sh install), awscli in a venv under
# $CASSETTE_CACHE_DIR (default ~/.cache/cassette)/awscli-venv (PyPI), and the Debian package
# `time` (for /usr/bin/time -v) through apt-get.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

WORK=${BENCH_DIR:-/tmp/cassette-bench-object}
MIXED_GIB=${BENCH_MIXED_GIB:-2}
MIXED_FILES=${BENCH_MIXED_FILES:-200}
SMALL_FILES=${BENCH_SMALL_FILES:-10000}
HUGE_GIB=${BENCH_HUGE_GIB:-5}
PURGE_OBJECTS=${BENCH_PURGE_OBJECTS:-10000}
LIST_BACKUPS=${BENCH_LIST_BACKUPS:-1000}
CACHE_DIR=${CASSETTE_CACHE_DIR:-$HOME/.cache/cassette}
AWS_VENV=$CACHE_DIR/awscli-venv
AWS=$AWS_VENV/bin/aws
S3SH="$ROOT/harness/s3/s3.sh"
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
UPLOAD="$TARGET/release/examples/upload_bench"
PURGE="$TARGET/release/examples/purge_bench"

say() { echo "== $*" >&2; }
now() { date +%s.%N; }
fmt() { printf "%.${2:-1}f" "$1"; }
calc() { echo "$*" | bc -l; }
# a field of a one-line JSON object
jf() { jq -r ".$1" <<<"$2"; }
# peak RSS in MiB from a /usr/bin/time -v report
time_rss() { awk -F': ' '/Maximum resident set size/ {printf "%.1f", $2 / 1024}' "$1"; }

# --- 0. tools ------------------------------------------------------------------------------------
if [ ! -x /usr/bin/time ]; then
  say "installing Debian package 'time' (for /usr/bin/time -v)"
  apt-get install -y time >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
fi
command -v jq >/dev/null || { say "installing Debian package 'jq'"; apt-get install -y jq >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y jq >/dev/null; }; }
if [ ! -x "$AWS" ]; then
  say "installing awscli from PyPI into $AWS_VENV"
  rm -rf "$AWS_VENV"
  python3 -m venv "$AWS_VENV"
  "$AWS_VENV/bin/pip" install -q --disable-pip-version-check awscli
fi
bash "$S3SH" install 2>&1 | sed 's/^/   /' >&2
say "cargo build --release -p cassette-object --examples"
cargo build --release -q -p cassette-object --examples

# --- servers and clean-up ------------------------------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK"
SERVER_DIRS=()
cleanup() {
  for d in "${SERVER_DIRS[@]}"; do bash "$S3SH" stop --dir "$d" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# start_server KIND NAME: a fresh server with bucket `cassette`; sets PORT and SDIR
start_server() {
  SDIR=$WORK/$2/data
  mkdir -p "$SDIR"
  SERVER_DIRS+=("$SDIR")
  PORT=$(bash "$S3SH" start --kind "$1" --dir "$SDIR" --owner $$ 2>/dev/null)
  case "$1" in
    s3s-fs) mkdir "$SDIR/cassette" ;;   # what s3s-fs's CreateBucket does
    moto) curl -sf -X PUT "http://127.0.0.1:$PORT/cassette" >/dev/null ;;
  esac
  export AWS_ENDPOINT=http://127.0.0.1:$PORT AWS_ENDPOINT_URL=http://127.0.0.1:$PORT
}
stop_server() {
  bash "$S3SH" stop --dir "$SDIR" >/dev/null 2>&1 || true
  rm -rf "$(dirname "$SDIR")"
}
export AWS_ACCESS_KEY_ID=cassette-test AWS_SECRET_ACCESS_KEY=cassette-test-secret AWS_REGION=us-east-1 AWS_ALLOW_HTTP=true
# awscli: path-style URLs (http://127.0.0.1:PORT/bucket/key), no other setting changed.
export AWS_CONFIG_FILE=$WORK/aws-config
printf '[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n' >"$AWS_CONFIG_FILE"

# --- data ----------------------------------------------------------------------------------------
# gen mixed DIR GIB FILES | gen small DIR FILES: random (incompressible) bytes, fixed sizes (seed 6)
gen() {
  python3 - "$@" <<'EOF'
import math, os, random, sys
kind, d = sys.argv[1], sys.argv[2]
rnd = random.Random(6)
if kind == "mixed":
    gib, n = float(sys.argv[3]), int(sys.argv[4])
    lo, hi, target = 100 << 10, 64 << 20, int(gib * (1 << 30))
    # log-uniform from 100 KiB to 64 MiB (about 2 GiB for 200 files), scaled to the target
    sizes = [math.exp(rnd.uniform(math.log(lo), math.log(hi))) for _ in range(n)]
    for _ in range(20):
        f = target / sum(sizes)
        sizes = [min(hi, max(lo, s * f)) for s in sizes]
    sizes = [int(s) for s in sizes]
    sizes[sizes.index(min(sizes))] += target - sum(sizes)
    names = [f"bench/t{i % 4}/nb-{i // 8 + 1}-big-C{i % 8}.db" for i in range(n)]
else:
    n = int(sys.argv[3])
    sizes = [rnd.randint(4 << 10, 64 << 10) for _ in range(n)]
    names = [f"bench/t{i % 100}/nb-{i // 100 + 1}-big-C{i % 8}.db" for i in range(n)]
for name, size in zip(names, sizes):
    p = os.path.join(d, name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        left = size
        while left:
            k = min(left, 4 << 20)
            f.write(os.urandom(k))
            left -= k
EOF
}

# --- header --------------------------------------------------------------------------------------
echo "# object storage benchmark, $(date -u +%Y-%m-%dT%H:%MZ), git $(git rev-parse --short HEAD)$(git diff --quiet HEAD 2>/dev/null || echo ' (+ uncommitted changes)')"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), kernel $(uname -r)"
free -g | sed 's/^/  /'
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg) (other processes: anything else running competes for the 2 cores)"
echo "disk of $WORK: $(df -h --output=source,fstype,size,avail "$(dirname "$WORK")" | tail -1 | tr -s ' ')"
echo "s3s-fs $("$CACHE_DIR/s3s-fs/bin/s3s-fs" --version | cut -d' ' -f2), moto $("$CACHE_DIR/moto-venv/bin/python" -c 'import moto; print(moto.__version__)'), $("$AWS" --version 2>&1 | cut -d' ' -f1,4)"
echo
echo "commands (PORT: the server's port; AWS_* set for it, see harness/s3/README.md):"
echo "  $UPLOAD --dir DATA --url s3://cassette/cas-SET --part-size-mib 8 --transfers 8 --buffers 8 --entries E.json"
echo "  $AWS s3 cp --recursive --only-show-errors DATA s3://cassette/aws-SET --endpoint-url http://127.0.0.1:PORT"
echo "  $UPLOAD --download OUT --url s3://cassette/cas-SET --transfers 8 --buffers 8 --entries E.json"
echo "  $AWS s3 cp --recursive --only-show-errors s3://cassette/aws-SET OUT2 --endpoint-url http://127.0.0.1:PORT"
echo "  $PURGE --url s3://cassette/purge --objects $PURGE_OBJECTS --backups $LIST_BACKUPS --concurrency 64 --runs 3"
echo "  diagnosis rows: MALLOC_MMAP_THRESHOLD_=1048576 before the upload command; --transfers 32 for the download"
echo "  each transfer under: /usr/bin/time -v -o T.txt ..."
echo
echo "## Runs"
echo

ROWS=()
RATIOS=()
# cassette_run MODE SET ARGS...: prints the command and its JSON line, adds a row; sets C_MBPS
# C_RSS. RUN_ENV (e.g. "MALLOC_MMAP_THRESHOLD_=1048576") is put in front of the command.
cassette_run() {
  local mode=$1 set=$2; shift 2
  sync
  local out
  out=$(env ${RUN_ENV:-} /usr/bin/time -v -o "$WORK/time.txt" "$UPLOAD" "$@")
  C_MBPS=$(jf mb_per_s "$out") C_RSS=$(jf peak_rss_mib "$out") out_json=$out
  ROWS+=("| $set | cassette $mode | $(jf files "$out") | $(jf bytes "$out") | $(jf seconds "$out") | $C_MBPS | $C_RSS | $(time_rss "$WORK/time.txt") |")
  echo "\$ ${RUN_ENV:+$RUN_ENV }${UPLOAD##*/} $*"
  echo "  $out"
}
# aws_run MODE SET FILES BYTES SRC DST: adds a row; sets A_MBPS A_RSS (A_MBPS_SYNC for downloads)
aws_run() {
  local mode=$1 set=$2 files=$3 bytes=$4 src=$5 dst=$6
  sync
  local t0 t1 t2 s
  t0=$(now)
  /usr/bin/time -v -o "$WORK/time.txt" "$AWS" s3 cp --recursive --only-show-errors "$src" "$dst" --endpoint-url "$AWS_ENDPOINT_URL"
  t1=$(now)
  s=$(calc "$t1 - $t0")
  A_MBPS=$(fmt "$(calc "$bytes / 1000000 / $s")") A_RSS=$(time_rss "$WORK/time.txt")
  ROWS+=("| $set | aws s3 cp $mode | $files | $bytes | $(fmt "$s" 3) | $A_MBPS | - | $A_RSS |")
  echo "  \$ aws s3 cp --recursive --only-show-errors $src $dst --endpoint-url $AWS_ENDPOINT_URL"
  echo "  $(fmt "$s" 3) s, $A_MBPS MB/s, peak RSS $A_RSS MiB (/usr/bin/time)"
  if [ "$mode" = download ]; then
    sync
    t2=$(now)
    s=$(calc "$t2 - $t0")
    A_MBPS_SYNC=$(fmt "$(calc "$bytes / 1000000 / $s")")
    echo "  + sync: $(fmt "$s" 3) s, $A_MBPS_SYNC MB/s"
    ROWS+=("| $set | aws s3 cp download + sync | $files | $bytes | $(fmt "$s" 3) | $A_MBPS_SYNC | - | - |")
  fi
}

# --- 1. data sets through cassette and aws ---------------------------------------------------------
for set in mixed small; do
  data=$WORK/data-$set
  t0=$(now)
  if [ $set = mixed ]; then gen mixed "$data" "$MIXED_GIB" "$MIXED_FILES"; else gen small "$data" "$SMALL_FILES"; fi
  files=$(find "$data" -type f | wc -l)
  bytes=$(find "$data" -type f -printf '%s\n' | awk '{s+=$1} END {printf "%.0f\n", s}')
  echo
  echo "### $set: $files files, $bytes bytes (generated in $(fmt "$(calc "$(now) - $t0")") s)"
  start_server s3s-fs "s3-$set"
  cassette_run upload $set --dir "$data" --url "s3://cassette/cas-$set" --part-size-mib 8 --transfers 8 --buffers 8 --entries "$WORK/entries-$set.json"
  cu_mbps=$C_MBPS cu_rss=$C_RSS
  aws_run upload $set "$files" "$bytes" "$data" "s3://cassette/aws-$set"
  au_mbps=$A_MBPS au_rss=$A_RSS
  # Diagnosis, not a comparison: the same upload with glibc's mmap threshold fixed at 1 MiB, so
  # every part buffer (up to 8 MiB) is its own mmap, returned to the system when freed and
  # never zeroed by memset (see RESULTS.md: what the peak RSS of the default run is made of).
  RUN_ENV=MALLOC_MMAP_THRESHOLD_=1048576 cassette_run "upload (diagnosis: MALLOC_MMAP_THRESHOLD_=1MiB)" $set --dir "$data" --url "s3://cassette/diag-$set" --part-size-mib 8 --transfers 8 --buffers 8 --entries "$WORK/entries-diag.json"
  cassette_run download $set --download "$WORK/out-$set" --url "s3://cassette/cas-$set" --transfers 8 --buffers 8 --entries "$WORK/entries-$set.json"
  cd_mbps=$C_MBPS cd_rss=$C_RSS
  diff -rq "$data" "$WORK/out-$set" >/dev/null || { echo "cassette's download of $set differs from the source" >&2; exit 1; }
  rm -rf "$WORK/out-$set"
  if [ $set = small ]; then
    # Diagnosis: is the small-file download bound by the server's per-GET latency? (32 at once)
    cassette_run "download (diagnosis: --transfers 32)" $set --download "$WORK/out-$set" --url "s3://cassette/cas-$set" --transfers 32 --buffers 8 --entries "$WORK/entries-$set.json"
    rm -rf "$WORK/out-$set"
  fi
  aws_run download $set "$files" "$bytes" "s3://cassette/aws-$set" "$WORK/out-$set"
  ad_mbps=$A_MBPS ad_mbps_sync=$A_MBPS_SYNC ad_rss=$A_RSS
  RATIOS+=("| $set ($files files) | upload | $cu_mbps / $au_mbps = **$(fmt "$(calc "$cu_mbps / $au_mbps")" 2)** | $cu_rss / $au_rss = **$(fmt "$(calc "$cu_rss / $au_rss")" 2)** |")
  RATIOS+=("| $set ($files files) | download (cassette fsyncs; aws + sync) | $cd_mbps / $ad_mbps_sync = **$(fmt "$(calc "$cd_mbps / $ad_mbps_sync")" 2)** (without sync: $(fmt "$(calc "$cd_mbps / $ad_mbps")" 2)) | $cd_rss / $ad_rss = **$(fmt "$(calc "$cd_rss / $ad_rss")" 2)** |")
  stop_server
  rm -rf "$data" "$WORK/out-$set"
done

# --- 2. one large file -----------------------------------------------------------------------------
if [ "$HUGE_GIB" != 0 ]; then
  data=$WORK/data-huge
  mkdir -p "$data/bench/t0"
  t0=$(now)
  head -c "${HUGE_GIB}G" /dev/urandom >"$data/bench/t0/nb-1-big-Data.db"
  echo
  echo "### huge: one file of ${HUGE_GIB} GiB (generated in $(fmt "$(calc "$(now) - $t0")") s)"
  # s3s-fs's debug log tells how long its CompleteMultipartUpload took: it assembles the object
  # from the part files (reads each part, MD5s it, writes it into the object) within that request.
  CASSETTE_S3S_LOG=s3s_fs=debug start_server s3s-fs s3-huge
  cassette_run upload "huge" --dir "$data" --url "s3://cassette/cas-huge" --part-size-mib 8 --transfers 8 --buffers 8 --entries "$WORK/entries-huge.json"
  hu_rss=$C_RSS hu_s=$(jf seconds "$out_json")
  complete_s=$(awk '/^ *20[0-9-]*T[0-9:.]*Z / {ts=$1} /in s3s_fs::s3::complete_multipart_upload/ && !a {a=ts} /output: CompleteMultipartUploadOutput/ {b=ts} END {print a, b}' "$(dirname "$SDIR")/s3s-fs.log" |
    python3 -c 'import sys, datetime as d; a, b = sys.stdin.read().split(); f = lambda t: d.datetime.fromisoformat(t.rstrip("Z")); print("%.1f" % (f(b) - f(a)).total_seconds())' 2>/dev/null || echo "?")
  echo "  of which s3s-fs's CompleteMultipartUpload (assembling the parts into one file, server side): $complete_s s (from its debug log)"
  cassette_run download "huge" --download "$WORK/out-huge" --url "s3://cassette/cas-huge" --transfers 8 --buffers 8 --entries "$WORK/entries-huge.json"
  hd_rss=$C_RSS
  cmp -s "$data/bench/t0/nb-1-big-Data.db" "$WORK/out-huge/bench/t0/nb-1-big-Data.db" || { echo "the large file came back different" >&2; exit 1; }
  stop_server
  rm -rf "$data" "$WORK/out-huge"
fi

echo
echo "## Transfers (one run each; MB = 10^6 bytes; peak RSS in MiB)"
echo
echo "| set | tool | files | bytes | seconds | MB/s | peak RSS (VmHWM, own) | peak RSS (/usr/bin/time) |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "| set | direction | MB/s cassette ÷ aws | peak RSS cassette ÷ aws |"
echo "|---|---|---|---|"
printf '%s\n' "${RATIOS[@]}"
if [ "$HUGE_GIB" != 0 ]; then
  echo
  echo "large file (${HUGE_GIB} GiB): cassette peak RSS upload $hu_rss MiB, download $hd_rss MiB (design bound: 8 MiB parts x 8 buffers = 64 MiB in flight, plus the process baseline)"
  echo "large file upload: $hu_s s, of which $complete_s s in s3s-fs's CompleteMultipartUpload (server-side assembly of the parts)"
fi

# --- 3. garbage collection and listing -------------------------------------------------------------
echo
echo "## Purge (gc of one tombstoned backup) and list, cassette-object"
for kind in s3s-fs moto; do
  start_server $kind "gc-$kind"
  echo
  echo "### $kind"
  echo
  echo "\$ ${PURGE##*/} --url s3://cassette/purge --objects $PURGE_OBJECTS --backups $LIST_BACKUPS --concurrency 64 --runs 3"
  echo
  echo '```'
  /usr/bin/time -v -o "$WORK/time.txt" "$PURGE" --url s3://cassette/purge --objects "$PURGE_OBJECTS" --backups "$LIST_BACKUPS" --concurrency 64 --runs 3
  echo '```'
  echo "peak RSS of purge_bench: $(time_rss "$WORK/time.txt") MiB"
  stop_server
done
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
