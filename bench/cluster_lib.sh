# Shared by the cluster benchmarks (repair.sh, slow_node.sh, balance.sh):
# sourced, not run. Each run starts a fresh cluster from a build's binaries
# in a temporary folder, removed on exit (DFS_KEEP=1 keeps it).
#   bench_setup NAME BUILD       checks BUILD's binaries, makes WORK; sets B
#   start_master DIR [FLAGS...]  dfs-master --port 0 in DIR/master; sets ADDR
#   start_node DIR I [FLAGS...]  dfs-node in DIR/nodeI; sets NODE_PID[I]
#   wait_alive N                 until the master lists N nodes alive (10 s)
#   stop                         SIGKILLs everything started
#   cli ARGS / json EXPR / now / die MESSAGE
# Log level of the daemons: DFS_LOG_LEVEL (warn; the master's only).

BENCH_NAME=bench
PIDS=()
declare -A NODE_PID=()
die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
now() { date +%s.%N; }
cli() { "$B/client/dfs-cli" --master "$ADDR" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
stop() {
  [ ${#PIDS[@]} -eq 0 ] || { kill -9 "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }
  PIDS=()
  NODE_PID=()
}

bench_setup() {
  BENCH_NAME="$1"
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  B="$(cd "${2:-$root/build/release}" && pwd)"
  for bin in master/dfs-master filenode/dfs-node client/dfs-cli; do
    [ -x "$B/$bin" ] || die "no $bin under $B"
  done
  command -v python3 >/dev/null || die "python3 is needed to read dfs-cli's JSON"
  WORK="$(mktemp -d "${BASE:-/tmp}/dfs-${BENCH_NAME%.sh}.XXXXXX")"
  # dfs-cli's file cache: off, so reads measure the cluster (a bench about
  # the cache unsets DFS_NO_CACHE), and the run's own, removed with it.
  export XDG_CACHE_HOME="$WORK/cache" DFS_NO_CACHE=1
  trap 'stop; [ -n "${DFS_KEEP:-}" ] || rm -rf "$WORK"' EXIT
}

start_master() {
  local dir="$1"
  shift
  mkdir -p "$dir/master"
  "$B/master/dfs-master" --dir "$dir/master" --port 0 --log-level "${DFS_LOG_LEVEL:-warn}" "$@" \
    > "$dir/master.log" 2>&1 & PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$dir/master/master.addr" ] && break; sleep 0.1; done
  [ -s "$dir/master/master.addr" ] || die "dfs-master wrote no master.addr (see $dir/master.log)"
  ADDR="$(tr -d '[:space:]' < "$dir/master/master.addr")"
}

start_node() {
  local dir="$1" i="$2"
  shift 2
  "$B/filenode/dfs-node" --dir "$dir/node$i" --master "$ADDR" --port 0 --log-level warn "$@" \
    > "$dir/node$i.log" 2>&1 & PIDS+=("$!")
  NODE_PID[$i]=$!
}

wait_alive() {
  for _ in $(seq 100); do
    [ "$(cli --json nodes 2>/dev/null | grep -o '"alive"' | wc -l)" -ge "$1" ] && return 0
    sleep 0.1
  done
  die "fewer than $1 nodes alive after 10 s"
}
