#!/usr/bin/env bash
# Load-aware placement (issue 20's slow-node figure): a fresh cluster of 1
# master and 4 nodes per run, three nodes capped at RATE (`dfs-node
# --max-write-rate`) and the fourth at a fifth of it, then SIZE put at
# replication R into the fresh cluster (no history of the nodes' speeds yet).
# Prints, per run, the put's time and the share of the file's chunks that
# landed on the slow node (a chunk counts once, whatever its replicas), then
# the medians. Blind placement would give it 1/4 of them at -r 1, 3/4 at -r 3.
#   bench/slow_node.sh [--runs N] [--size SIZE] [--rate RATE] [-r R] [--dir DIR] [BUILD]
# BUILD defaults to build/release. DFS_KEEP=1 keeps the run's folder.
set -euo pipefail

RUNS=3
SIZE=1G
RATE=200M
REPL=1
BASE=/tmp
die() { echo "slow_node.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --rate) RATE="$2"; shift 2 ;;
    -r) REPL="$2"; shift 2 ;;
    --dir) BASE="$2"; shift 2 ;;
    -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="$(cd "${1:-$ROOT/build/release}" && pwd)"
for bin in master/dfs-master filenode/dfs-node client/dfs-cli; do
  [ -x "$B/$bin" ] || die "no $bin under $B"
done
command -v python3 >/dev/null || die "python3 is needed to read dfs-cli's JSON"
FAST=$(numfmt --from=iec "$RATE")
SLOW=$((FAST / 5))

WORK="$(mktemp -d "$BASE/dfs-slow.XXXXXX")"
PIDS=()
stop() { [ ${#PIDS[@]} -eq 0 ] || { kill -9 "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }; PIDS=(); }
trap 'stop; [ -n "${DFS_KEEP:-}" ] || rm -rf "$WORK"' EXIT
now() { date +%s.%N; }
cli() { "$B/client/dfs-cli" --master "$ADDR" "$@"; }
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom > "$WORK/data"
: > "$WORK/results"
for run in $(seq "$RUNS"); do
  d="$WORK/cluster"
  rm -rf "$d"; mkdir -p "$d/master"
  "$B/master/dfs-master" --dir "$d/master" --port 0 --log-level "${DFS_LOG_LEVEL:-warn}" > "$d/master.log" 2>&1 & PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$d/master/master.addr" ] && break; sleep 0.1; done
  [ -s "$d/master/master.addr" ] || die "dfs-master wrote no master.addr (see $d/master.log)"
  ADDR="$(tr -d '[:space:]' < "$d/master/master.addr")"
  for i in 1 2 3 4; do
    rate=$FAST; [ "$i" = 4 ] && rate=$SLOW
    "$B/filenode/dfs-node" --dir "$d/node$i" --master "$ADDR" --port 0 --log-level warn --max-write-rate "$rate" \
      > "$d/node$i.log" 2>&1 & PIDS+=("$!")
  done
  for _ in $(seq 100); do
    [ "$(cli --json nodes 2>/dev/null | grep -o '"alive"' | wc -l)" -ge 4 ] && break
    sleep 0.1
  done
  t0=$(now); cli -q put -r "$REPL" "$WORK/data" /big || die "put failed"; took=$(echo "$(now) - $t0" | bc)
  slow_addr=$(cat "$d/node4/node.addr")
  # Which nodes hold each chunk: the master's answer (stat lists replicas).
  share=$(python3 - "$B/client/dfs-cli" "$ADDR" "$slow_addr" <<'PY'
import json, subprocess, sys
def cli(*a):
    return json.loads(subprocess.run([sys.argv[1], "--master", sys.argv[2], "--json", *a],
                                     capture_output=True, check=True).stdout)
slow = [n["id"] for n in cli("nodes")["nodes"] if n["address"] == sys.argv[3]][0]
chunks = cli("stat", "/big")["chunks"]
print("%d %d" % (sum(1 for c in chunks if slow in c["replicas"]), len(chunks)))
PY
)
  read -r on_slow total <<< "$share"
  printf 'run %d: put %.3f s; slow node holds %d of %d chunks (%.0f %%)\n' "$run" "$took" "$on_slow" "$total" \
    "$(echo "100 * $on_slow / $total" | bc -l)"
  echo "$took $on_slow $total" >> "$WORK/results"
  stop
done
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print("median over %d runs: put %.3f s, slow node holds %.1f %% of the chunks"
      % (len(rows), statistics.median(r[0] for r in rows), statistics.median(100 * r[1] / r[2] for r in rows)))
PY
