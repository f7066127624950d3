#!/usr/bin/env bash
# The local lab: fakepve (pinned, installed by scripts/install-fakepve.sh)
# plus the Talos node simulator on loopback, coupled like real hardware
# (src/lab/mod.rs explains the rules).
#
#   scripts/lab.sh [start] [LAB OPTIONS]   run in the foreground; Ctrl-C stops
#   scripts/lab.sh start --detach [...]    run in the background, print the
#                                          banner once ready, return
#   scripts/lab.sh stop                    stop a lab started either way
#   scripts/lab.sh status                  is one running? (exit 0 if so)
#   scripts/lab.sh env                     its PROXMOX_VE_* exports
#
# LAB OPTIONS: --port N (8006) --time-scale X (0.1) --poll-ms N (250)
#   --talos-version vX.Y.Z (v1.13.9) --leases FIRST-LAST (127.0.10.200-127.0.10.254)
#   --talos-port N (50000) --multi-cluster
#
# State (pid, env, CA, logs) lives in .tools/lab/ (PROXTALOS_LAB_DIR overrides).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DIR=${PROXTALOS_LAB_DIR:-$ROOT/.tools/lab}
PID_FILE=$DIR/lab.pid
die() { echo "lab: $*" >&2; exit 1; }

lab_pid() {
  local pid
  [ -f "$PID_FILE" ] || return 1
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

ensure_fakepve() {
  if [ -n "${PROXTALOS_FAKEPVE:-}" ]; then
    return 0
  fi
  command -v python3 >/dev/null || die "python3 not found: the lab runs fakepve (Python >= 3.10 with venv); install python3 and python3-venv"
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' ||
    die "python3 is $(python3 -V 2>&1 | cut -d' ' -f2); fakepve needs >= 3.10"
  PROXTALOS_FAKEPVE=$(bash scripts/install-fakepve.sh) || die "installing fakepve failed (scripts/install-fakepve.sh)"
  export PROXTALOS_FAKEPVE
}

ensure_etcd() {
  # Real etcd under the simulated control planes (pip only; the lab falls
  # back to its member model when this cannot run, e.g. not linux x86_64).
  if [ -z "${PROXTALOS_ETCD_BIN:-}" ]; then
    PROXTALOS_ETCD_BIN=$(bash scripts/install-etcd.sh) || { echo "lab: real etcd unavailable; the simulator's member model answers" >&2; return 0; }
    export PROXTALOS_ETCD_BIN
  fi
}

build() {
  command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
  echo "lab: building (cargo build --example lab --features sim) ..." >&2
  cargo build --quiet --example lab --features sim >&2 || die "build failed"
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  LAB_BIN=$target/debug/examples/lab
}

cmd=${1:-start}
[ $# -gt 0 ] && shift
case $cmd in
  start)
    detach=0
    args=()
    for a in "$@"; do
      if [ "$a" = --detach ] || [ "$a" = -d ]; then detach=1; else args+=("$a"); fi
    done
    if pid=$(lab_pid); then die "a lab is already running (pid $pid): scripts/lab.sh stop"; fi
    ensure_fakepve
    ensure_etcd
    build
    mkdir -p "$DIR"
    if [ $detach = 0 ]; then
      exec "$LAB_BIN" --state-dir "$DIR" ${args[@]+"${args[@]}"}
    fi
    log=$DIR/lab.log
    rm -f "$DIR/lab.env"
    setsid "$LAB_BIN" --state-dir "$DIR" ${args[@]+"${args[@]}"} >"$log" 2>&1 </dev/null &
    pid=$!
    for _ in $(seq 1 600); do
      if [ -f "$DIR/lab.env" ] && grep -q '^Stop:' "$log" 2>/dev/null; then
        sed -n '1,/^Stop:/p' "$log"
        echo "(running in the background, pid $pid; log: $log)"
        exit 0
      fi
      if ! kill -0 "$pid" 2>/dev/null; then
        cat "$log" >&2
        exit 1
      fi
      sleep 0.2
    done
    kill -TERM "$pid" 2>/dev/null || true
    die "the lab was not ready after 120 s; log: $log"
    ;;
  stop)
    pid=$(lab_pid) || { echo "lab: not running"; rm -f "$PID_FILE"; exit 0; }
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || { echo "lab: stopped (pid $pid)"; exit 0; }
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    # fakepve ends on its own when the lab's pipe closes.
    rm -f "$PID_FILE" "$DIR/lab.env"
    die "the lab (pid $pid) did not stop in 10 s and was killed"
    ;;
  status)
    if pid=$(lab_pid); then echo "lab: running (pid $pid)"; [ -f "$DIR/lab.env" ] && cat "$DIR/lab.env"; exit 0; fi
    echo "lab: not running"; exit 1
    ;;
  env)
    lab_pid >/dev/null && [ -f "$DIR/lab.env" ] || die "not running (scripts/lab.sh start --detach)"
    cat "$DIR/lab.env"
    ;;
  -h|--help|help)
    sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    die "unknown command $cmd (start, stop, status, env)"
    ;;
esac
