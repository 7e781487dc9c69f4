#!/usr/bin/env bash
# Two builds side by side: rounds of A and B (in turn first), each on a fresh
# 1 master + 3 node cluster, so that a noisy, shared machine moves both
# alike. Prints every phase's runs and median per build, and B / A.
#   bench/ab.sh [--rounds N] [--dir DIR] BUILD_A BUILD_B [-- DFS-BENCH ARGS...]
# Default workload: small --files 4000 --size 64K --clients 4 -r 3.
# The figure compared is the phase's ops/s (files/s for small, MiB/s for large).
set -euo pipefail

ROUNDS=3
BASE=/tmp
die() { echo "ab.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) ROUNDS="$2"; shift 2 ;;
    --dir) BASE="$2"; shift 2 ;;
    -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 2 ] || die "usage: bench/ab.sh [--rounds N] [--dir DIR] BUILD_A BUILD_B [-- DFS-BENCH ARGS...]"
A="$(cd "$1" && pwd)"; B="$(cd "$2" && pwd)"; shift 2
[ "${1:-}" = "--" ] && shift
ARGS=("$@")
[ ${#ARGS[@]} -gt 0 ] || ARGS=(small --files 4000 --size 64K --clients 4 -r 3)
for b in "$A" "$B"; do
  for bin in master/dfs-master filenode/dfs-node client/dfs-cli bench/dfs-bench; do
    [ -x "$b/$bin" ] || die "no $bin under $b"
  done
done

WORK="$(mktemp -d "$BASE/dfs-ab.XXXXXX")"
PIDS=()
stop() { [ ${#PIDS[@]} -eq 0 ] || { kill "${PIDS[@]}" 2>/dev/null || true; wait "${PIDS[@]}" 2>/dev/null || true; }; PIDS=(); }
trap 'stop; rm -rf "$WORK"' EXIT

# run BUILD: one cluster, one dfs-bench --json; appends {"build":..,"data":..} to $WORK/results
run() {
  local b="$1" d="$WORK/cluster"
  rm -rf "$d"; mkdir -p "$d/master"
  "$b/master/dfs-master" --dir "$d/master" --port 0 --log-level warn > "$d/master.log" 2>&1 & PIDS+=("$!")
  for _ in $(seq 100); do [ -s "$d/master/master.addr" ] && break; sleep 0.1; done
  [ -s "$d/master/master.addr" ] || die "dfs-master wrote no master.addr (see $d/master.log)"
  local addr; addr="$(tr -d '[:space:]' < "$d/master/master.addr")"
  for i in 1 2 3; do
    "$b/filenode/dfs-node" --dir "$d/node$i" --master "$addr" --port 0 --log-level warn > "$d/node$i.log" 2>&1 &
    PIDS+=("$!")
  done
  local alive=0
  for _ in $(seq 100); do
    alive=$("$b/client/dfs-cli" --master "$addr" --json nodes 2>/dev/null | grep -o '"alive"' | wc -l || true)
    [ "$alive" -ge 3 ] && break
    sleep 0.1
  done
  [ "$alive" -ge 3 ] || die "3 nodes did not come up (see $d/*.log)"
  local out
  out="$("$b/bench/dfs-bench" --master "$addr" --json "${ARGS[@]}")" || die "dfs-bench failed on $b"
  echo "{\"build\":\"$b\",\"data\":$out}" >> "$WORK/results"
  stop
}

# The order flips every round: whichever build runs second was measured
# 3-6 % slower than the first on this VM (the same build in both slots:
# session 11), so a fixed order would bias every ratio.
for r in $(seq "$ROUNDS"); do
  echo "ab.sh: round $r of $ROUNDS" >&2
  if [ $((r % 2)) -eq 1 ]; then run "$A"; run "$B"; else run "$B"; run "$A"; fi
done

python3 - "$WORK/results" "$A" "$B" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
a, b = sys.argv[2], sys.argv[3]
def runs(build, phase, key):
    return [p[key] for r in rows if r["build"] == build for p in r["data"]["phases"] if p["name"] == phase]
phases = [p["name"] for p in rows[0]["data"]["phases"]]
key = "ops_per_s" if rows[0]["data"]["workload"] == "small" else "mib_per_s"
for phase in phases:
    ma = statistics.median(runs(a, phase, key))
    mb = statistics.median(runs(b, phase, key))
    for name, build, m in (("A", a, ma), ("B", b, mb)):
        vals = ", ".join(f"{v:.0f}" for v in runs(build, phase, key))
        print(f"{phase:5s} {name} {m:9.1f} {key}  runs [{vals}]  {build}")
    print(f"{phase:5s} B / A {mb / ma:.3f}")
PY
