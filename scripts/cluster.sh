#!/usr/bin/env bash
# A local dfs cluster on loopback: one dfs-master and three dfs-node.
#   scripts/cluster.sh up            install deps, build release, start, wait until 3 nodes are alive
#   scripts/cluster.sh status        is it running? the master address and the nodes table
#   scripts/cluster.sh down [--wipe] stop every process (SIGTERM, then SIGKILL); --wipe deletes .cluster/
# All state lives in .cluster/ of the checkout: master/, node1..3/ (data),
# logs/*.log, *.pid. Data survives `down`; only `down --wipe` removes it.
# Environment: DFS_SKIP_DEPS=1 skips scripts/install-deps.sh, DFS_SKIP_BUILD=1
# skips the build (the binaries in build/release must exist).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CL="$ROOT/.cluster"
LOGS="$CL/logs"
BIN="$ROOT/build/release"
MASTER_BIN="$BIN/master/dfs-master"
NODE_BIN="$BIN/filenode/dfs-node"
CLI_BIN="$BIN/client/dfs-cli"
NODES=(node1 node2 node3)

MASTER_ADDR_TIMEOUT=15   # seconds for master.addr to appear
NODES_ALIVE_TIMEOUT=30   # seconds for all nodes to be reported alive
STOP_TIMEOUT=10          # seconds between SIGTERM and SIGKILL

say() { echo "cluster.sh: $*"; }
die() { echo "cluster.sh: $*" >&2; exit 1; }

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# The process name a pid file must point at (guards against reused pids).
expected_comm() {
  case "$1" in
    master) echo dfs-master ;;
    *) echo dfs-node ;;
  esac
}

# True while PID runs. A process that exited but is not reaped yet (a zombie:
# the daemons' parent is whatever adopted them) counts as gone.
running() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"              # the fields after "(comm) "
  [ "${stat%% *}" != Z ] && [ "${stat%% *}" != X ]
}

# Prints the pid recorded for NAME if that process is alive and is ours.
live_pid() {
  local name="$1" pidfile="$CL/$1.pid" pid comm
  [ -s "$pidfile" ] || return 1
  pid="$(cat "$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  running "$pid" || return 1
  comm="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  [ "$comm" = "$(expected_comm "$name")" ] || return 1
  echo "$pid"
}

log_tail() {
  local name="$1"
  echo "---- last lines of ${LOGS#"$ROOT"/}/$name.log ----" >&2
  tail -n 20 "$LOGS/$name.log" >&2 2>/dev/null || echo "(no log)" >&2
  echo "----" >&2
}

# start NAME BINARY ARGS...: runs the daemon in its own session so it outlives
# this script and the terminal; the wrapper records its own pid, then execs.
# fd 9 (our lock) is closed so the daemons do not hold it.
start() {
  local name="$1"; shift
  : > "$LOGS/$name.log"
  rm -f "$CL/$name.pid"
  setsid bash -c 'echo $$ > "$0"; exec "$@"' "$CL/$name.pid" "$@" \
    </dev/null >>"$LOGS/$name.log" 2>&1 9>&- &
  local i
  for i in $(seq 1 50); do           # the pid file appears within milliseconds
    [ -s "$CL/$name.pid" ] && return 0
    sleep 0.05
  done
  die "could not start $name (no pid file)"
}

master_addr() {
  local f="$CL/master/master.addr"
  [ -s "$f" ] || return 1
  tr -d '[:space:]' < "$f"
}

# Number of nodes the master reports alive (0 if it cannot be asked).
alive_nodes() {
  local json
  json="$("$CLI_BIN" --master "$1" --json --timeout 2 nodes 2>/dev/null)" || { echo 0; return; }
  grep -o '"state"[[:space:]]*:[[:space:]]*"alive"' <<<"$json" | wc -l
}

# stop NAME: SIGTERM, wait up to STOP_TIMEOUT, then SIGKILL.
stop() {
  local name="$1" pid waited=0
  if ! pid="$(live_pid "$name")"; then
    rm -f "$CL/$name.pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  while running "$pid"; do
    if [ "$waited" -ge $((STOP_TIMEOUT * 10)) ]; then
      say "$name (pid $pid) ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
    waited=$((waited + 1))
  done
  rm -f "$CL/$name.pid"
  say "stopped $name (pid $pid)"
}

stop_all() {
  local n
  for n in "${NODES[@]}"; do stop "$n"; done
  stop master
}

print_access() {
  local addr="$1"
  echo
  echo "dfs cluster is up."
  echo "  master:  $addr"
  echo "  data:    ${CL#"$ROOT"/}/   logs: ${LOGS#"$ROOT"/}/*.log"
  echo
  echo "Use it:"
  echo "  export DFS_MASTER=$addr"
  echo "  export PATH=\"$BIN/client:\$PATH\""
  echo "  dfs-cli nodes"
  echo
  "$CLI_BIN" --master "$addr" nodes || true
  echo
  echo "Stop it: scripts/cluster.sh down   (add --wipe to delete its data)"
  echo
  echo "Enter the shell (help lists the commands, Tab completes, Ctrl-D leaves):"
  echo "  $CLI_BIN --master $addr"
}

cmd_up() {
  mkdir -p "$CL" "$LOGS"
  exec 9>"$CL/.lock"
  flock -n 9 || die "another cluster.sh is working on ${CL#"$ROOT"/}; try again in a moment"

  local addr n all_up=1
  live_pid master >/dev/null || all_up=0
  for n in "${NODES[@]}"; do live_pid "$n" >/dev/null || all_up=0; done
  if [ "$all_up" = 1 ] && addr="$(master_addr)"; then
    say "the cluster is already running"
    print_access "$addr"
    return 0
  fi

  if [ "${DFS_SKIP_DEPS:-0}" != 1 ]; then
    say "installing dependencies (scripts/install-deps.sh)"
    "$ROOT/scripts/install-deps.sh" || die "installing dependencies failed (needs root or sudo)"
  fi
  if [ "${DFS_SKIP_BUILD:-0}" != 1 ]; then
    "$ROOT/scripts/build.sh" release || die "the release build failed"
  fi
  for b in "$MASTER_BIN" "$NODE_BIN" "$CLI_BIN"; do
    [ -x "$b" ] || die "missing $b; run scripts/build.sh release"
  done

  # Nodes are told the master's address once, at start; a master that died
  # comes back on new ports, so restart everything in that case.
  if ! live_pid master >/dev/null; then
    stop_all
    rm -f "$CL/master/master.addr"
    mkdir -p "$CL/master"
    say "starting dfs-master"
    start master "$MASTER_BIN" --dir "$CL/master" --port 0
    local pid deadline=$((SECONDS + MASTER_ADDR_TIMEOUT))
    pid="$(cat "$CL/master.pid")"
    until addr="$(master_addr)"; do
      if ! running "$pid"; then
        log_tail master
        rm -f "$CL/master.pid"
        die "dfs-master exited before writing master.addr"
      fi
      if [ "$SECONDS" -ge "$deadline" ]; then
        log_tail master
        stop master
        die "dfs-master wrote no master.addr within ${MASTER_ADDR_TIMEOUT}s"
      fi
      sleep 0.1
    done
  else
    addr="$(master_addr)" || die "dfs-master runs but ${CL#"$ROOT"/}/master/master.addr is missing"
    say "dfs-master already running at $addr"
  fi

  for n in "${NODES[@]}"; do
    if live_pid "$n" >/dev/null; then continue; fi
    mkdir -p "$CL/$n"
    say "starting dfs-node $n"
    start "$n" "$NODE_BIN" --dir "$CL/$n" --master "$addr"
  done

  local want=${#NODES[@]} alive=0 deadline=$((SECONDS + NODES_ALIVE_TIMEOUT))
  while :; do
    for n in master "${NODES[@]}"; do
      if ! live_pid "$n" >/dev/null; then
        log_tail "$n"
        stop_all
        die "$n exited while the cluster was starting"
      fi
    done
    alive="$(alive_nodes "$addr")"
    [ "$alive" -ge "$want" ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      "$CLI_BIN" --master "$addr" nodes >&2 || true
      for n in master "${NODES[@]}"; do log_tail "$n"; done
      die "only $alive of $want nodes alive after ${NODES_ALIVE_TIMEOUT}s (processes left running; scripts/cluster.sh down stops them)"
    fi
    sleep 0.2
  done
  print_access "$addr"
}

cmd_down() {
  local wipe=0
  case "${1:-}" in
    "") ;;
    --wipe) wipe=1 ;;
    *) usage >&2; exit 2 ;;
  esac
  if [ -d "$CL" ]; then
    exec 9>"$CL/.lock"
    flock -w 30 9 || die "another cluster.sh is working on ${CL#"$ROOT"/}"
    stop_all
  fi
  if [ "$wipe" = 1 ]; then
    rm -rf "$CL"
    say "removed ${CL#"$ROOT"/}"
  else
    say "cluster stopped; data kept in ${CL#"$ROOT"/} (down --wipe deletes it)"
  fi
}

# Exit status: 0 all processes run, 1 some do, 3 none (as LSB init scripts).
cmd_status() {
  local n pid running=0 total=$((${#NODES[@]} + 1)) addr=""
  for n in master "${NODES[@]}"; do
    if pid="$(live_pid "$n")"; then
      printf '  %-7s running (pid %s)\n' "$n" "$pid"
      running=$((running + 1))
    else
      printf '  %-7s stopped\n' "$n"
    fi
  done
  if [ "$running" -eq 0 ]; then
    say "the cluster is not running (scripts/cluster.sh up starts it)"
    return 3
  fi
  if live_pid master >/dev/null && addr="$(master_addr)"; then
    echo "master: $addr"
    echo "export DFS_MASTER=$addr"
    echo
    "$CLI_BIN" --master "$addr" nodes || true
  fi
  if [ "$running" -eq "$total" ]; then
    say "the cluster is running"
    return 0
  fi
  say "the cluster is partly running ($running of $total processes); scripts/cluster.sh up restarts the rest"
  return 1
}

case "${1:-}" in
  up) shift; [ $# -eq 0 ] || { usage >&2; exit 2; }; cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) shift; cmd_status ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
