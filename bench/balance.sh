#!/usr/bin/env bash
# The balancer (issue 20's joining-node figure): a fresh cluster of 1 master
# and 4 nodes of CAPACITY each per run, SIZE written at replication 3, then
# a fifth, empty node joins while a client reads the file in a loop (every
# read checked against the original bytes). Prints, per run, how long after
# the fifth node registered its use was within 20 % of the mean (by `dfs-cli
# --json balancer`, polled every 100 ms), and how many reads ran and failed
# meanwhile; then the medians.
#   bench/balance.sh [--runs N] [--size SIZE] [--capacity CAPACITY] [--dir DIR] [BUILD]
# BUILD defaults to build/release. Extra master flags: DFS_MASTER_ARGS.
set -euo pipefail

RUNS=3
SIZE=1G
CAPACITY=8G
BASE=/tmp
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --capacity) CAPACITY="$2"; shift 2 ;;
    --dir) BASE="$2"; shift 2 ;;
    -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
# shellcheck source=bench/cluster_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster_lib.sh"
bench_setup balance.sh "${1:-}"

head -c "$(numfmt --from=iec "$SIZE")" /dev/urandom > "$WORK/data"
: > "$WORK/results"
for run in $(seq "$RUNS"); do
  d="$WORK/cluster"
  rm -rf "$d"
  # shellcheck disable=SC2086
  start_master "$d" --repair-holdoff 1s ${DFS_MASTER_ARGS:-}
  for i in 1 2 3 4; do start_node "$d" "$i" --capacity "$CAPACITY"; done
  wait_alive 4
  cli -q put -r 3 "$WORK/data" /big || die "put failed"
  # A reader, all along: every read compared with the original.
  ( reads=0; bad=0
    while [ ! -e "$d/stop-reading" ]; do
      if cli -q cat /big 2>>"$d/read-errors" | cmp -s - "$WORK/data"; then :; else bad=$((bad + 1)); fi
      reads=$((reads + 1))
    done
    echo "$reads $bad" > "$d/reads" ) &
  READER=$!
  start_node "$d" 5 --capacity "$CAPACITY"
  wait_alive 5
  t0=$(now)
  while :; do
    within=$(cli --json balancer | json '(lambda n: (lambda m: all(abs(x["utilisation"] - m) <= 0.2 * m for x in n))(sum(x["utilisation"] for x in n) / len(n)))(d["nodes"])')
    [ "$within" = True ] && break
    if [ "$(echo "$(now) - $t0 > 300" | bc)" = 1 ]; then die "not balanced 300 s after the fifth node joined (see $d)"; fi
    sleep 0.1
  done
  took=$(echo "$(now) - $t0" | bc)
  touch "$d/stop-reading"; wait "$READER"
  read -r reads bad < "$d/reads"
  moved=$(cli --json balancer | json 'd["moved"]')
  printf 'run %d: every node within 20 %% of the mean %.2f s after the fifth joined; %d moves; %d reads, %d failed\n' \
    "$run" "$took" "$moved" "$reads" "$bad"
  echo "$took $reads $bad" >> "$WORK/results"
  stop
done
python3 - "$WORK/results" <<'PY'
import statistics, sys
rows = [list(map(float, l.split())) for l in open(sys.argv[1]) if l.strip()]
print("median over %d runs: balanced %.2f s after the fifth node joined; reads failed: %d of %d in all"
      % (len(rows), statistics.median(r[0] for r in rows), sum(r[2] for r in rows), sum(r[1] for r in rows)))
PY
