#!/usr/bin/env bash
# A private BuildGrid 0.9.1 server (REAPI v2 + Remote Workers "Bots" API) for gantry's remote
# execution integration tests: its own PostgreSQL cluster, disk CAS, SQL scheduler, on loopback.
#
#   bash scripts/buildgrid.sh install     # the venv and PostgreSQL, when missing (scripts/test.sh)
#   bash scripts/buildgrid.sh start DIR   # venv if missing, initdb, postgres, migrate, bgd server
#   bash scripts/buildgrid.sh stop DIR    # stops both servers; removes nothing
#
# `start` picks free ports, so several servers (each with its own DIR) can run at once. It writes
# DIR/env (shell-sourceable, also printed) with BUILDGRID_URL=grpc://127.0.0.1:PORT, the
# instance name (empty), the pids and log paths. DIR may be reused after `stop`: the database
# and CAS are kept. No worker is started: BuildGrid ships none, gantry's worker speaks the Bots
# API itself (docs/notes-buildgrid.md).
#
# Environment knobs (all optional):
#   BUILDGRID_PYTHON                 a Python >= 3.13 for the venv (default: pyenv's 3.13.x, python3.13)
#   BUILDGRID_BOT_KEEPALIVE_TIMEOUT  seconds without UpdateBotSession before a bot is reaped and its
#                                    leases requeued (default 10; must be >= 4, see the notes)
#   BUILDGRID_MAX_JOB_ATTEMPTS       assignments of one action before it is aborted (default 5)
#   BUILDGRID_MAX_EXECUTION_TIMEOUT  seconds an action may stay EXECUTING (default 600)
#   BUILDGRID_MATCH_PROPERTY_KEYS    space-separated platform keys matched against workers'
#                                    device properties (OSFamily and ISA always are)
#   BUILDGRID_WILDCARD_PROPERTY_KEYS space-separated platform keys accepted but not matched
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ORACLE_DIR=$ROOT/tests/oracles/buildgrid
VENV=$ORACLE_DIR/.venv
BUILDGRID_VERSION=0.9.1

die() { echo "buildgrid.sh: $*" >&2; exit 1; }
log() { echo "buildgrid.sh: $*" >&2; }

# The versions this script was tested with; buildgrid's own requirements are unpinned.
constraints() {
  cat <<'EOF'
alembic==1.20.1
annotated-types==0.8.0
attrs==26.1.0
boto3==1.44.5
botocore==1.44.5
cachetools==8.0.1
certifi==2026.10.18
cffi==2.1.1
charset-normalizer==3.5.2
click==8.5.1
cryptography==50.0.2
dnspython==2.9.2
grpcio==1.85.1
grpcio-health-checking==1.85.1
grpcio-reflection==1.85.1
idna==3.20
janus==2.0.0
Jinja2==3.1.6
jmespath==1.1.0
jsonschema==4.26.0
jsonschema-specifications==2025.9.1
lark==1.3.1
Mako==1.4.3
MarkupSafe==3.0.4
mmh3==5.3.1
protobuf==7.36.2
psycopg==3.3.9
psycopg-binary==3.3.9
pycparser==3.12
pycurl==7.49.0
pydantic==2.14.3
pydantic_core==2.50.4
PyJWT==2.15.1
python-dateutil==2.9.0.post0
PyYAML==6.0.3
referencing==0.37.0
requests==2.34.2
rpds-py==2026.9.1
s3transfer==0.19.3
sentry-sdk==2.75.0
six==1.17.0
SQLAlchemy==2.1.9
typing-inspection==0.4.5
typing_extensions==4.16.0
urllib3==2.8.0
EOF
}

find_python() {
  local candidate
  if [ -n "${BUILDGRID_PYTHON:-}" ]; then echo "$BUILDGRID_PYTHON"; return; fi
  for candidate in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.13.0/bin/python3 \
    $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3 2>/dev/null | sort -rV) \
    python3.13 python3.14 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 13))' 2>/dev/null; then
      echo "$candidate"
      return
    fi
  done
  die "no Python >= 3.13 found (buildgrid $BUILDGRID_VERSION needs it); set BUILDGRID_PYTHON"
}

venv_ok() {
  [ -x "$VENV/bin/bgd" ] &&
    "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('buildgrid') != '$BUILDGRID_VERSION')" 2>/dev/null
}

ensure_venv() {
  mkdir -p "$ORACLE_DIR"
  # One installer at a time: concurrent `start`s wait here for the first one's venv.
  exec 9<"$ORACLE_DIR"
  flock 9
  if ! venv_ok; then
    local python started
    python=$(find_python)
    started=$(date +%s)
    log "installing buildgrid==$BUILDGRID_VERSION into $VENV (with $python)"
    rm -rf "$VENV"
    if ! { "$python" -m venv "$VENV" &&
      "$VENV/bin/pip" install -q --disable-pip-version-check "buildgrid==$BUILDGRID_VERSION" -c <(constraints); }; then
      rm -rf "$VENV"
      die "installing buildgrid failed"
    fi
    log "installed in $(($(date +%s) - started))s"
  fi
  flock -u 9
  exec 9<&-
}

find_pg_bin() {
  local dir
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  if command -v initdb >/dev/null 2>&1; then dirname "$(command -v initdb)"; return; fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing postgresql"
    local no_services=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && no_services=1
    fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >&2
    [ -z "$no_services" ] || rm -f /usr/sbin/policy-rc.d
    find_pg_bin
    return
  fi
  die "PostgreSQL not found (apt-get install postgresql, or set PG_BIN)"
}

free_port() {
  "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# PostgreSQL refuses to run as root: then its cluster belongs to `nobody`.
as_pg_owner() {
  if [ "$(id -u)" = 0 ]; then
    setpriv --reuid="$(id -u nobody)" --regid="$(id -g nobody)" --clear-groups -- "$@"
  else
    "$@"
  fi
}

# A zombie (exited, not yet reaped by whoever inherited it) counts as gone.
pid_alive() {
  [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [ "$(echo "${stat##*) }" | cut -d' ' -f1)" != Z ]
}

write_config() {
  local keepalive=${BUILDGRID_BOT_KEEPALIVE_TIMEOUT:-10} key match='' wildcard=''
  for key in ${BUILDGRID_MATCH_PROPERTY_KEYS:-}; do match+="
        - \"$key\""; done
  for key in ${BUILDGRID_WILDCARD_PROPERTY_KEYS:-}; do wildcard+="
        - \"$key\""; done
  [ -n "$match" ] || match=' []'
  [ -n "$wildcard" ] || wildcard=' []'
  cat >"$DIR/bgd.yml" <<EOF
# Written by scripts/buildgrid.sh: a BuildGrid $BUILDGRID_VERSION test server.
description: gantry's test BuildGrid
server:
  - !channel
    address: "127.0.0.1:$GRPC_PORT"
    insecure-mode: true
# gRPC turns SO_REUSEPORT on by default: two servers could then share one port.
grpc-server-options:
  grpc.so_reuseport: 0
authorization:
  method: none
monitoring:
  enabled: false
thread-pool-size: 20
connections:
  - !sql-connection &sql
    connection-string: postgresql://bgd@127.0.0.1:$PG_PORT/bgd
    pool-size: 5
    max-overflow: 10
storages:
  - !disk-storage &cas
    path: $DIR/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 100000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas
    action-cache: *ac
    # A bot silent for this long is reaped and its leases requeued (checked every second).
    bot-session-keepalive-timeout: $keepalive
    session-expiry-timer-interval: 1
    max-job-attempts: ${BUILDGRID_MAX_JOB_ATTEMPTS:-5}
    max-execution-timeout: ${BUILDGRID_MAX_EXECUTION_TIMEOUT:-600}
    execution-timer-interval: 5
    poll-interval: 0.5
    bot-poll-interval: 0.5
    property-set: !dynamic-property-set
      match-property-keys:$match
      wildcard-property-keys:$wildcard
    assigners:
      # Jobs are assigned by a thread that sleeps interval + up to jitter-factor seconds
      # between rounds (defaults 1 s + up to 1 s): that sleep, not the work, was a remote
      # action's latency. 50 ms without jitter.
      - !priority-age-assigner
        count: 1
        interval: 0.05
        jitter-factor: 0
        priority-assignment-percentage: 100
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      # Execution, Operations and Bots.
      - !execution
        scheduler: *scheduler
        operation-stream-keepalive-timeout: 10
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
EOF
}

# Waits until bgd answers GetCapabilities; fails early if it exits.
wait_for_bgd() {
  "$VENV/bin/python" - "$1" "$2" "$3" <<'EOF'
import os, sys, time
import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re_pb2
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as re_grpc

address, pid, deadline = sys.argv[1], int(sys.argv[2]), time.monotonic() + float(sys.argv[3])
while True:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            if stat.read().rsplit(") ", 1)[1].startswith("Z"):
                sys.exit(2)
    except FileNotFoundError:
        sys.exit(2)
    try:
        with grpc.insecure_channel(address) as channel:
            re_grpc.CapabilitiesStub(channel).GetCapabilities(re_pb2.GetCapabilitiesRequest(instance_name=""), timeout=2)
        sys.exit(0)
    except grpc.RpcError as error:
        if time.monotonic() > deadline:
            print(f"no answer from {address}: {error}", file=sys.stderr)
            sys.exit(1)
        time.sleep(0.2)
EOF
}

# True when the listening socket on $1 belongs to pid $2 (another server may have won the port).
port_owned_by() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Hltnp "sport = :$1" 2>/dev/null | grep -q "pid=$2,"
}

start() {
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  if [ -f "$DIR/env" ]; then
    # shellcheck disable=SC1091
    (. "$DIR/env" && { pid_alive "${BUILDGRID_PID:-}" || pid_alive "${POSTGRES_PID:-}"; }) &&
      die "$DIR already has a running server: stop it first"
    rm -f "$DIR/env"
  fi
  ensure_venv
  local pg_bin started
  pg_bin=$(find_pg_bin)
  started=$(date +%s%N)
  # A failed start stops whatever it had started.
  trap 'if [ -z "$start_done" ] && [ -f "$DIR/env" ]; then log "start failed: stopping"; stop >&2 || true; fi' EXIT

  # PostgreSQL's cluster: DIR/pg, or a /tmp directory when `nobody` cannot reach DIR.
  local pg_dir=$DIR/pg
  if [ -f "$DIR/pg-dir" ]; then pg_dir=$(cat "$DIR/pg-dir"); fi
  mkdir -p "$pg_dir"
  if [ "$(id -u)" = 0 ]; then
    chown "$(id -u nobody):$(id -g nobody)" "$pg_dir"
    if ! as_pg_owner test -w "$pg_dir"; then
      pg_dir=$(mktemp -d /tmp/gantry-buildgrid-pg.XXXXXX)
      chown "$(id -u nobody):$(id -g nobody)" "$pg_dir"
      log "nobody cannot write under $DIR: PostgreSQL's cluster is in $pg_dir"
    fi
  fi
  echo "$pg_dir" >"$DIR/pg-dir"
  if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
    (cd "$pg_dir" && as_pg_owner "$pg_bin/initdb" -D "$pg_dir/data" -U bgd --auth=trust -E UTF8 --no-locale \
      >"$pg_dir/initdb.log" 2>&1) || { cat "$pg_dir/initdb.log" >&2; die "initdb failed"; }
  fi

  local attempt pg_port='' socket_dir
  for attempt in 1 2 3 4 5; do
    pg_port=$(free_port)
    socket_dir=$pg_dir
    # A unix socket path is limited to 107 bytes; without one, TCP alone is used.
    [ ${#socket_dir} -lt 80 ] || socket_dir=''
    if (cd "$pg_dir" && as_pg_owner "$pg_bin/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $pg_port -c unix_socket_directories='$socket_dir' -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null); then
      break
    fi
    log "postgres did not start on port $pg_port (attempt $attempt), see $pg_dir/postgres.log"
    pg_port=''
  done
  [ -n "$pg_port" ] || die "postgres did not start"
  local pg_pid
  pg_pid=$(head -n1 "$pg_dir/data/postmaster.pid")
  PG_PORT=$pg_port
  {
    echo "POSTGRES_PID=$pg_pid"
    echo "POSTGRES_PORT=$pg_port"
    echo "POSTGRES_DATA=$pg_dir/data"
    echo "POSTGRES_BIN=$pg_bin"
  } >"$DIR/env"

  "$pg_bin/psql" -h 127.0.0.1 -p "$pg_port" -U bgd -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'bgd'" |
    grep -q 1 || "$pg_bin/createdb" -h 127.0.0.1 -p "$pg_port" -U bgd bgd
  "$VENV/bin/bgd" migrate apply "postgresql://bgd@127.0.0.1:$pg_port/bgd" >"$DIR/migrate.log" 2>&1 ||
    { cat "$DIR/migrate.log" >&2; die "bgd migrate apply failed"; }

  mkdir -p "$DIR/cas"
  local bgd_pid='' rc
  for attempt in 1 2 3 4 5; do
    GRPC_PORT=$(free_port)
    write_config
    setsid "$VENV/bin/bgd" server start -v --pid-file "$DIR/bgd.pid" "$DIR/bgd.yml" \
      >"$DIR/bgd.log" 2>&1 </dev/null &
    bgd_pid=$!
    rc=0
    wait_for_bgd "127.0.0.1:$GRPC_PORT" "$bgd_pid" 90 || rc=$?
    if [ "$rc" = 0 ] && port_owned_by "$GRPC_PORT" "$bgd_pid"; then
      break
    fi
    kill -TERM -- "-$bgd_pid" 2>/dev/null || true
    wait_gone "$bgd_pid" 150 || kill -KILL -- "-$bgd_pid" 2>/dev/null || true
    wait "$bgd_pid" 2>/dev/null || true
    bgd_pid=''
    # Only a lost race for the port is worth another try (rc 0: another server answered there).
    if [ "$rc" = 0 ] || { [ "$rc" = 2 ] && grep -q "Failed to bind" "$DIR/bgd.log"; }; then
      log "bgd server could not have port $GRPC_PORT (attempt $attempt), retrying"
      continue
    fi
    break
  done
  if [ -z "$bgd_pid" ]; then
    tail -n 30 "$DIR/bgd.log" >&2
    die "bgd server did not start, see $DIR/bgd.log"
  fi
  {
    echo "BUILDGRID_URL=grpc://127.0.0.1:$GRPC_PORT"
    echo "BUILDGRID_ADDRESS=127.0.0.1:$GRPC_PORT"
    echo "BUILDGRID_INSTANCE="
    echo "BUILDGRID_PID=$bgd_pid"
    echo "BUILDGRID_CONFIG=$DIR/bgd.yml"
    echo "BUILDGRID_LOG=$DIR/bgd.log"
    echo "BUILDGRID_CAS_DIR=$DIR/cas"
    echo "BUILDGRID_BOT_KEEPALIVE_TIMEOUT=${BUILDGRID_BOT_KEEPALIVE_TIMEOUT:-10}"
    echo "BGD=$VENV/bin/bgd"
    cat "$DIR/env"
  } >"$DIR/env.new"
  mv "$DIR/env.new" "$DIR/env"
  start_done=1
  cat "$DIR/env"
  local ms=$((($(date +%s%N) - started) / 1000000))
  log "ready in $((ms / 1000)).$((ms % 1000 / 100))s"
}

# Waits up to $2 tenths of a second for pid $1 to exit.
wait_gone() {
  local i
  for ((i = 0; i < $2; i++)); do
    pid_alive "$1" || return 0
    sleep 0.1
  done
  return 1
}

stop() {
  [ -f "$DIR/env" ] || die "$DIR/env not found: nothing to stop"
  local BUILDGRID_PID='' POSTGRES_PID='' POSTGRES_DATA='' POSTGRES_BIN=''
  # shellcheck disable=SC1091
  . "$DIR/env"
  if pid_alive "$BUILDGRID_PID" && grep -q bgd "/proc/$BUILDGRID_PID/cmdline" 2>/dev/null; then
    kill -TERM -- "-$BUILDGRID_PID" 2>/dev/null || kill -TERM "$BUILDGRID_PID" 2>/dev/null || true
    if ! wait_gone "$BUILDGRID_PID" 150; then
      log "bgd server $BUILDGRID_PID ignored SIGTERM: killing it"
      kill -KILL -- "-$BUILDGRID_PID" 2>/dev/null || kill -KILL "$BUILDGRID_PID" 2>/dev/null || true
      wait_gone "$BUILDGRID_PID" 50 || true
    fi
  fi
  if pid_alive "$POSTGRES_PID" && grep -q postgres "/proc/$POSTGRES_PID/cmdline" 2>/dev/null; then
    if ! (cd / && as_pg_owner "$POSTGRES_BIN/pg_ctl" -D "$POSTGRES_DATA" -m fast -w -t 30 stop >/dev/null); then
      kill -INT "$POSTGRES_PID" 2>/dev/null || true
      wait_gone "$POSTGRES_PID" 100 || kill -KILL "$POSTGRES_PID" 2>/dev/null || true
    fi
  fi
  if pid_alive "$BUILDGRID_PID" || pid_alive "$POSTGRES_PID"; then
    die "could not stop everything in $DIR"
  fi
  echo "stopped BuildGrid in $DIR"
}

if [ "${1:-}" = install ]; then
  ensure_venv
  log "postgresql in $(find_pg_bin); bgd in $VENV/bin"
  exit 0
fi
[ $# = 2 ] || die "usage: $0 install | start DIR | stop DIR"
DIR=$2
start_done=
case $1 in
  start) start ;;
  stop) stop ;;
  *) die "usage: $0 install | start DIR | stop DIR" ;;
esac
