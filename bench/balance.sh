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
die() { echo "balance.sh: $*" >&2; exit 1; }
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
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
B="$(cd "${1:-$ROOT/build/release}" && pwd)"
for bin in master/dfs-master filenode/dfs-node client/dfs-cli; do
  [ -x "$B/$bin" ] || die "no $bin under $B"
done
command -v python3 >/dev/null || die "python3 is needed to read dfs-cli's JSON"

WORK="$(mktemp -d "$BASE/dfs-balance.XXXXXX")"
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
  # shellcheck disable=SC2086
  "$B/master/dfs-master" --dir "$d/master" --port 0 --log-level warn --repair-holdoff 1s ${DFS_MASTER_ARGS:-} \
    > "$d/master.log" 2>&1 & PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$d/master/master.addr" ] && break; sleep 0.1; done
  [ -s "$d/master/master.addr" ] || die "dfs-master wrote no master.addr (see $d/master.log)"
  ADDR="$(tr -d '[:space:]' < "$d/master/master.addr")"
  node() {
    "$B/filenode/dfs-node" --dir "$d/node$1" --master "$ADDR" --port 0 --log-level warn --capacity "$CAPACITY" \
      > "$d/node$1.log" 2>&1 & PIDS+=("$!")
  }
  for i in 1 2 3 4; do node "$i"; done
  for _ in $(seq 100); do
    [ "$(cli --json nodes 2>/dev/null | grep -o '"alive"' | wc -l)" -ge 4 ] && break
    sleep 0.1
  done
  cli -q put -r 3 "$WORK/data" /big || die "put failed"
  # A reader, all along: every read compared with the original.
  ( reads=0; bad=0
    while [ ! -e "$d/stop-reading" ]; do
      if cli -q cat /big 2>>"$d/read-errors" | cmp -s - "$WORK/data"; then :; else bad=$((bad + 1)); fi
      reads=$((reads + 1))
    done
    echo "$reads $bad" > "$d/reads" ) &
  READER=$!
  node 5
  for _ in $(seq 100); do
    [ "$(cli --json nodes 2>/dev/null | grep -o '"alive"' | wc -l)" -ge 5 ] && break
    sleep 0.05
  done
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
