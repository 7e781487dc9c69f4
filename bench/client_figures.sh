#!/usr/bin/env bash
# Issue 21's client figures, on a fresh local cluster (3 nodes):
#   cache: a 64 MiB get served from the file cache against the first, cold
#          get that filled it (the cache cleared before each round), side by
#          side, and a get with --no-cache beside them;
#   ls:    `dfs-cli ls` of a folder of 10,000 entries against an empty one
#          (the difference is what the listing costs beyond start-up).
# Medians of --runs rounds; every command is timed from fork to exit.
# --drop-caches (root): the kernel's page cache is dropped before each cold
# get, so the nodes read the chunks from their disks as a first get of a
# file written long ago would; the local copy a cached get makes is always
# the bound: `cp` of the same file is timed beside it.
#   bench/client_figures.sh [--runs N] [--entries N] [--drop-caches] [BUILD]   (BUILD: build/release)
set -euo pipefail
RUNS=7
ENTRIES=10000
DROP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS="$2"; shift 2 ;;
    --entries) ENTRIES="$2"; shift 2 ;;
    --drop-caches) DROP=1; shift ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) break ;;
  esac
done
# shellcheck source=bench/cluster_lib.sh
source "$(dirname "$0")/cluster_lib.sh"
bench_setup client_figures.sh "${1:-}"
unset DFS_NO_CACHE

start_master "$WORK"
for i in 1 2 3; do start_node "$WORK" "$i"; done
wait_alive 3

# ms of one command, fork to exit.
ms() {
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null
  t1=$(date +%s%N)
  echo $(( (t1 - t0) / 1000 ))
}
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}'; }

head -c $((64 << 20)) /dev/urandom > "$WORK/f64"
cli -q --no-cache put "$WORK/f64" /f64
: > "$WORK/cold"; : > "$WORK/cached"; : > "$WORK/nocache"; : > "$WORK/ratio"; : > "$WORK/cp"
for r in $(seq "$RUNS"); do
  cli cache clear >/dev/null
  rm -f "$WORK/out" "$WORK/out2" "$WORK/cp.out"
  if [ "$DROP" = 1 ]; then sync; echo 3 > /proc/sys/vm/drop_caches; fi
  c=$(ms cli -q get /f64 "$WORK/out")
  rm -f "$WORK/out"
  h=$(ms cli -q get /f64 "$WORK/out")
  n=$(ms cli -q --no-cache get /f64 "$WORK/out2")
  k=$(ms cp "$WORK/out2" "$WORK/cp.out")
  cmp -s "$WORK/f64" "$WORK/out" || die "the cached get returned other bytes"
  echo "$c" >> "$WORK/cold"; echo "$h" >> "$WORK/cached"; echo "$n" >> "$WORK/nocache"; echo "$k" >> "$WORK/cp"
  awk -v c="$c" -v h="$h" 'BEGIN {printf "%d\n", c / h * 1000}' >> "$WORK/ratio"
  echo "round $r: cold $((c / 1000)) ms, cached $((h / 1000)) ms, --no-cache (warm nodes) $((n / 1000)) ms, cp $((k / 1000)) ms"
done
echo "64 MiB get: cold (fills the cache$([ "$DROP" = 1 ] && echo ", page cache dropped")) $(median < "$WORK/cold") ms," \
     "from the cache $(median < "$WORK/cached") ms, --no-cache with warm nodes $(median < "$WORK/nocache") ms," \
     "cp of the file $(median < "$WORK/cp") ms; cold/cached $(sort -n "$WORK/ratio" | median | awk '{printf "%.2f", $1}')x (median of $RUNS)"

{ echo "mkdir -p /many"; for i in $(seq -f "%05g" 1 "$ENTRIES"); do echo "mkdir /many/e-$i"; done; } |
  cli shell -e >/dev/null || die "making $ENTRIES entries failed"
cli mkdir -p /empty
: > "$WORK/lsmany"; : > "$WORK/lsempty"; : > "$WORK/lsdiff"
for r in $(seq "$RUNS"); do
  e=$(ms cli ls /empty)
  m=$(ms cli ls /many)
  echo "$e" >> "$WORK/lsempty"; echo "$m" >> "$WORK/lsmany"; echo $((m - e)) >> "$WORK/lsdiff"
done
[ "$(cli ls /many | wc -l)" -eq "$ENTRIES" ] || die "ls /many did not list $ENTRIES entries"
echo "ls of $ENTRIES entries $(median < "$WORK/lsmany") ms, of an empty folder $(median < "$WORK/lsempty") ms;" \
     "beyond start-up $(median < "$WORK/lsdiff") ms (median of $RUNS)"
