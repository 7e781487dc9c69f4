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
# shellcheck source=bench/cluster_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"
bench_setup slow_node.sh "${1:-}"
FAST=$(numfmt --from=iec "$RATE")
SLOW=$((FAST / 5))

head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom > "$WORK/data"
: > "$WORK/results"
for run in $(seq "$RUNS"); do
  d="$WORK/cluster"
  rm -rf "$d"
  start_master "$d"
  for i in 1 2 3 4; do
    rate=$FAST; [ "$i" = 4 ] && rate=$SLOW
    start_node "$d" "$i" --max-write-rate "$rate"
  done
  wait_alive 4
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
