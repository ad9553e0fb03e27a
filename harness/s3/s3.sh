#!/usr/bin/env bash
# Real object-storage servers on loopback, for cassette's object-storage tests: S3 (s3s-fs,
# moto), Azure Blob (Azurite) and Google Cloud Storage (fake-gcs-server).
#
#   s3.sh install                                       build/install every server (cached)
#   s3.sh start --kind s3s-fs|moto|azurite|fake-gcs --dir DIR [--port P] [--owner PID]
#                                                       start one server, print its port on stdout
#   s3.sh stop  --dir DIR                               stop the server started with that DIR
#   s3.sh logs  --dir DIR                               tail of its log
#
# Servers: s3s-fs 0.14.1 (crates.io; stores objects as files under DIR, checks SigV4 signatures)
#          moto[server] 5.x (PyPI, in a venv; in memory, does not check signatures, logs every
#          request line, e.g. "PUT /bucket/key HTTP/1.1" 200).
#          Azurite 3.37.0 (npm; blob service only, in memory; checks Shared Key signatures of
#          the well-known dev account devstoreaccount1; path-style URLs /ACCOUNT/CONTAINER/BLOB).
#          fake-gcs-server v1.56.1 (Go module, go install; objects stored under DIR; accepts any
#          bearer token).
# The S3 servers have access key cassette-test and secret cassette-test-secret. All listen on
# 127.0.0.1 only. `azurite-container PORT CONTAINER` creates a container on an Azurite server.
#
# Layout: one server per DIR; DIR is s3s-fs's data root (a bucket is a directory in it) and
# moto's working and temp directory. Beside it, in DIR/.. (give each server its own parent):
#   <kind>.log   the server's stdout and stderr     <kind>.pid   its pid
#   <kind>.port  its port                             fake-gcs.service-account.json  a
#   throwaway service account for fake-gcs-server's clients (GOOGLE_SERVICE_ACCOUNT)
# --owner PID: the server is stopped when process PID exits (the test fixture passes its own pid,
# so a killed test run leaves no server behind).
# Installs, never in the git tree: under $CASSETTE_CACHE_DIR (default ~/.cache/cassette):
#   s3s-fs/bin/s3s-fs, moto-venv/, azurite/node_modules/ (npm install --prefix),
#   fake-gcs-server/bin/fake-gcs-server (GOBIN=... go install).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=${CASSETTE_CACHE_DIR:-$HOME/.cache/cassette}
S3S_VERSION=0.14.1
S3S_ROOT=$CACHE_DIR/s3s-fs
S3S_BIN=$S3S_ROOT/bin/s3s-fs
MOTO_VENV=$CACHE_DIR/moto-venv
MOTO_SPEC='moto[server]>=5.1,<6'
AZURITE_VERSION=3.37.0
AZURITE_ROOT=$CACHE_DIR/azurite
AZURITE_BIN=$AZURITE_ROOT/node_modules/.bin/azurite-blob
FAKE_GCS_VERSION=v1.56.1
FAKE_GCS_BIN=$CACHE_DIR/fake-gcs-server/bin/fake-gcs-server
# Fixed: the Rust fixture (crates/testkit/src/s3.rs) has the same constants.
ACCESS_KEY=cassette-test
SECRET_KEY=cassette-test-secret
# Azurite's well-known development account (published in Azurite's README; not a secret).
AZURITE_ACCOUNT=devstoreaccount1
AZURITE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
KINDS="s3s-fs moto azurite fake-gcs"

die() { echo "s3.sh: error: $*" >&2; exit 1; }
log() { echo "s3.sh: $*" >&2; }

# --- install -----------------------------------------------------------------------------------
s3s_installed() { [ -x "$S3S_BIN" ] && [ "$("$S3S_BIN" --version 2>/dev/null)" = "s3s-fs $S3S_VERSION" ]; }
moto_installed() { [ -x "$MOTO_VENV/bin/python" ] && "$MOTO_VENV/bin/python" -c 'import moto.server, werkzeug' 2>/dev/null; }
# The quick check of start (importing moto.server takes a second; a broken venv fails start anyway).
moto_present() {
  [ -x "$MOTO_VENV/bin/python" ] &&
    "$MOTO_VENV/bin/python" -c 'import importlib.util as u; assert u.find_spec("moto") and u.find_spec("werkzeug") and u.find_spec("flask")' 2>/dev/null
}

install_s3s() {
  if s3s_installed; then log "s3s-fs $S3S_VERSION found in $S3S_BIN"; return; fi
  command -v cargo >/dev/null || die "cargo is needed to build s3s-fs: install a Rust toolchain"
  local t0=$SECONDS out=$CACHE_DIR/s3s-fs-install.log
  # --locked: the crate's own Cargo.lock (newer s3s-fs releases need a newer Rust than ours).
  if ! cargo install s3s-fs --version "$S3S_VERSION" --features binary --locked --root "$S3S_ROOT" >"$out" 2>&1; then
    tail -30 "$out" >&2
    die "cargo install s3s-fs $S3S_VERSION failed (log: $out)"
  fi
  s3s_installed || die "cargo installed s3s-fs but $S3S_BIN --version does not say $S3S_VERSION"
  log "s3s-fs $S3S_VERSION installed in $S3S_BIN ($((SECONDS - t0)) s)"
}

install_moto() {
  if moto_installed; then log "moto $("$MOTO_VENV/bin/python" -c 'import moto; print(moto.__version__)') found in $MOTO_VENV"; return; fi
  local t0=$SECONDS out=$CACHE_DIR/moto-install.log
  command -v python3 >/dev/null || die "python3 is needed for moto: apt-get install python3 python3-venv"
  rm -rf "$MOTO_VENV"
  python3 -m venv "$MOTO_VENV" >"$out" 2>&1 || { cat "$out" >&2; die "python3 -m venv failed: apt-get install python3-venv"; }
  if ! "$MOTO_VENV/bin/pip" install -q --disable-pip-version-check "$MOTO_SPEC" >>"$out" 2>&1; then
    tail -30 "$out" >&2
    rm -rf "$MOTO_VENV"
    die "pip install '$MOTO_SPEC' failed (log: $out)"
  fi
  moto_installed || die "pip installed moto but 'import moto.server' fails in $MOTO_VENV"
  log "moto $("$MOTO_VENV/bin/python" -c 'import moto; print(moto.__version__)') installed in $MOTO_VENV ($((SECONDS - t0)) s)"
}

azurite_installed() {
  [ -x "$AZURITE_BIN" ] &&
    [ "$(node -p 'require(process.argv[1]).version' "$AZURITE_ROOT/node_modules/azurite/package.json" 2>/dev/null)" = "$AZURITE_VERSION" ]
}

install_azurite() {
  if azurite_installed; then log "Azurite $AZURITE_VERSION found in $AZURITE_ROOT"; return; fi
  command -v npm >/dev/null || die "npm is needed for Azurite: apt-get install nodejs npm"
  local t0=$SECONDS out=$CACHE_DIR/azurite-install.log
  mkdir -p "$AZURITE_ROOT"
  # Azurite 3.37 declares node >= 22 but runs on 20 (the blob service is all the tests use):
  # npm's engine warning is expected.
  if ! npm install --prefix "$AZURITE_ROOT" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >"$out" 2>&1; then
    tail -30 "$out" >&2
    die "npm install azurite@$AZURITE_VERSION failed (log: $out)"
  fi
  azurite_installed || die "npm installed azurite but $AZURITE_ROOT/node_modules/azurite is not version $AZURITE_VERSION"
  log "Azurite $AZURITE_VERSION installed in $AZURITE_ROOT ($((SECONDS - t0)) s)"
}

fake_gcs_installed() {
  [ -x "$FAKE_GCS_BIN" ] && go version -m "$FAKE_GCS_BIN" 2>/dev/null | grep -q "mod[[:space:]]*github.com/fsouza/fake-gcs-server[[:space:]]*$FAKE_GCS_VERSION"
}

install_fake_gcs() {
  if fake_gcs_installed; then log "fake-gcs-server $FAKE_GCS_VERSION found in $FAKE_GCS_BIN"; return; fi
  command -v go >/dev/null || die "Go (1.24 or newer) is needed to build fake-gcs-server: install it (Debian's golang-go is too old)"
  local t0=$SECONDS out=$CACHE_DIR/fake-gcs-install.log
  if ! GOBIN=$(dirname "$FAKE_GCS_BIN") GOFLAGS=-buildvcs=false go install "github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION" >"$out" 2>&1; then
    tail -30 "$out" >&2
    die "go install github.com/fsouza/fake-gcs-server@$FAKE_GCS_VERSION failed (log: $out)"
  fi
  fake_gcs_installed || die "go installed fake-gcs-server but $FAKE_GCS_BIN is not version $FAKE_GCS_VERSION"
  log "fake-gcs-server $FAKE_GCS_VERSION installed in $FAKE_GCS_BIN ($((SECONDS - t0)) s)"
}

cmd_install() {
  mkdir -p "$CACHE_DIR"
  # Two test runs installing at once would build into the same directories.
  exec 9>"$CACHE_DIR/.s3-install.lock"
  flock 9
  install_s3s
  install_moto
  install_azurite
  install_fake_gcs
}

# --- start / stop ------------------------------------------------------------------------------
KIND="" DIR="" PORT="" OWNER=""
parse_opts() {
  while [ $# -gt 0 ]; do
    case "$1" in
      --kind) KIND=$2; shift 2 ;;
      --dir) DIR=$2; shift 2 ;;
      --port) PORT=$2; shift 2 ;;
      --owner) OWNER=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  [ -n "$DIR" ] || die "--dir DIR is required"
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  STATE=$(dirname "$DIR")
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The running server's pid for KIND, if any.
server_pid() {
  local f=$STATE/$1.pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"
}

print_log_tail() {
  echo "----- tail of $STATE/$1.log -----" >&2
  tail -40 "$STATE/$1.log" >&2 2>/dev/null || echo "(no log)" >&2
}

cmd_start() {
  parse_opts "$@"
  case "$KIND" in
    s3s-fs) s3s_installed || die "s3s-fs $S3S_VERSION is not installed: run $0 install" ;;
    moto) moto_present || die "moto is not installed in $MOTO_VENV: run $0 install" ;;
    azurite) azurite_installed || die "Azurite $AZURITE_VERSION is not installed in $AZURITE_ROOT: run $0 install" ;;
    fake-gcs) [ -x "$FAKE_GCS_BIN" ] || die "fake-gcs-server is not installed in $FAKE_GCS_BIN: run $0 install" ;;
    *) die "--kind must be s3s-fs, moto, azurite or fake-gcs" ;;
  esac
  local pid logf=$STATE/$KIND.log
  if pid=$(server_pid "$KIND"); then
    log "$KIND already running for $DIR (pid $pid)"
    cat "$STATE/$KIND.port"
    return
  fi
  [ -n "$PORT" ] || PORT=$(free_port)
  [[ "$PORT" =~ ^[0-9]+$ ]] || die "--port must be a number"
  port_open "$PORT" && die "127.0.0.1:$PORT is taken by another process"

  cd "$DIR"
  # setsid: the server outlives the shell that started it (stop, or --owner, ends it).
  case "$KIND" in
    s3s-fs)
      RUST_LOG=${CASSETTE_S3S_LOG:-info} setsid nohup "$S3S_BIN" --host 127.0.0.1 --port "$PORT" \
        --access-key "$ACCESS_KEY" --secret-key "$SECRET_KEY" "$DIR" >"$logf" 2>&1 </dev/null &
      ;;
    moto)
      # moto_server.py: moto's own server, with werkzeug's uncoloured request log (one line a
      # request, which the tests count). TMPDIR: large bodies spill into DIR, not /tmp.
      TMPDIR=$DIR setsid nohup "$MOTO_VENV/bin/python" "$HERE/moto_server.py" \
        -H 127.0.0.1 -p "$PORT" >"$logf" 2>&1 </dev/null &
      ;;
    azurite)
      # Blob service only, in memory (at most 1 GiB of blob data), access log on; no telemetry.
      # --skipApiVersionCheck: object_store may send an API version newer than this Azurite's.
      setsid nohup "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --inMemoryPersistence \
        --extentMemoryLimit 1024 --skipApiVersionCheck --disableTelemetry >"$logf" 2>&1 </dev/null &
      ;;
    fake-gcs)
      write_gcs_service_account
      # Objects under DIR (a bucket is a directory of it); JSON and XML APIs on one port, behind
      # gcs_xml_put.py, which adds the XML upload object_store uses (see there) and stops the
      # server with itself. -public-host: the XML API answers requests for 127.0.0.1:PORT.
      setsid nohup python3 "$HERE/gcs_xml_put.py" --port "$PORT" --server "$FAKE_GCS_BIN" -- \
        -scheme http -host 127.0.0.1 -public-host "127.0.0.1:$PORT" -external-url "http://127.0.0.1:$PORT" \
        -backend filesystem -filesystem-root "$DIR" -log-level info >"$logf" 2>&1 </dev/null &
      ;;
  esac
  pid=$!
  echo "$pid" >"$STATE/$KIND.pid"
  echo "$PORT" >"$STATE/$KIND.port"

  local deadline=$((SECONDS + ${CASSETTE_S3_START_TIMEOUT:-60}))
  while ! port_open "$PORT"; do
    if ! kill -0 "$pid" 2>/dev/null; then print_log_tail "$KIND"; die "$KIND exited during start-up (see the log above)"; fi
    if [ $SECONDS -ge $deadline ]; then
      print_log_tail "$KIND"; kill -KILL "$pid" 2>/dev/null || true
      die "$KIND did not open 127.0.0.1:$PORT in time"
    fi
    sleep 0.2
  done
  if [ -n "$OWNER" ]; then
    # A watchdog: when the owner process is gone, stop the server.
    setsid nohup bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done; kill -TERM "$2" 2>/dev/null || true' \
      s3-watchdog "$OWNER" "$pid" >/dev/null 2>&1 </dev/null &
  fi
  log "$KIND listening on 127.0.0.1:$PORT (pid $pid, log $logf)"
  echo "$PORT"
}

stop_kind() {
  local kind=$1 pid
  pid=$(server_pid "$kind") || { rm -f "$STATE/$kind.pid"; return 1; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$STATE/$kind.pid"; log "$kind stopped"; return 0; }
    sleep 0.2
  done
  log "$kind did not stop in 10 s: killing it"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$STATE/$kind.pid"
}

cmd_stop() {
  parse_opts "$@"
  local stopped=0
  for k in $KINDS; do stop_kind "$k" && stopped=1; done
  [ "$stopped" = 1 ] || log "no server running for $DIR"
}

# A service-account file for fake-gcs-server's clients: a throwaway RSA key (object_store signs
# its tokens with it; the server accepts any), and the e-mail the tokens name.
write_gcs_service_account() {
  local f=$STATE/fake-gcs.service-account.json
  [ -s "$f" ] && return
  command -v openssl >/dev/null || die "openssl is needed to make fake-gcs-server's throwaway service-account key: apt-get install openssl"
  (umask 077
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null |
      python3 -c 'import json, sys
json.dump({"type": "service_account", "project_id": "cassette-test", "private_key_id": "cassette-test",
           "private_key": sys.stdin.read(), "client_email": "cassette-test@cassette-test.iam.gserviceaccount.com",
           "token_uri": "http://127.0.0.1:1/token"}, sys.stdout, indent=1)' >"$f.tmp") ||
    die "could not write $f"
  mv "$f.tmp" "$f"
}

# Creates container NAME on the Azurite server listening on PORT (201, or 409 when it exists).
cmd_azurite_container() {
  [ $# -eq 2 ] || die "usage: $0 azurite-container PORT NAME"
  echo "$AZURITE_KEY" | python3 "$HERE/azurite_container.py" "$1" "$AZURITE_ACCOUNT" "$2"
}

cmd_logs() {
  parse_opts "$@"
  for k in $KINDS; do [ -f "$STATE/$k.log" ] && print_log_tail "$k"; done
  return 0
}

case "${1:-}" in
  install) shift; cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  logs) shift; cmd_logs "$@" ;;
  azurite-container) shift; cmd_azurite_container "$@" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
