#!/usr/bin/env bash
# What this machine allows, and dfs's data path held against it, in one run.
#   bench/limits.sh [--build DIR] [--dir DIR] [--runs N] [--size SIZE]
#                   [--small-files N] [--small-size SIZE] [--clients C] [--keep]
# Limits: loopback TCP (iperf3 on 127.0.0.1, a free port), ZeroMQ 1 MiB
# messages and 4 KiB round trips (bus/zmq_throughput.cc), sequential write +
# fdatasync of 1 GiB and (as root, after dropping the page cache) its read
# with dd, the same with 4 dd at once (dfs moves 4 chunks at once) and the
# write with O_DIRECT (the device past the page cache), and
# 4 KiB write+fdatasync ops/s, all in the file system of --dir, and the CPU
# (user + system) one 4 KiB or 64 KiB write+fdatasync and one ZeroMQ message
# cost: the small-file figures are held against the CPU floor those give
# (what a file's messages and syncs alone cost, with no dfs code). Small puts
# are also held against the disk alone: bench/small_put_disk_model puts the
# same files with dfs's syncs (3 volumes and a journal, group commit) and no
# messages, C clients one file at a time: the most this disk allows them.
# Then a private 1 master + 3 node cluster on free ports under --dir runs
# dfs-bench large (-r 1 and -r 3) and small (-r 3), N runs each, and every
# figure is printed with its median and its ratio to the limit that bounds it.
# First, on the fresh nodes, 64 chunk streams at once pass through every
# node (-r 3 --parallel 64): each node's peak resident memory (VmHWM) is
# printed against its credit pool plus its idle size.
# --build: the build tree with the binaries (default build/release, else the
# first build/*/ that has them). --dir: where data goes (default /tmp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${DFS_BUILD:-}"
BASE=/tmp
RUNS=3
SIZE=1G
SMALL_FILES=2000
SMALL_SIZE=64K
CLIENTS=4
KEEP=0
NODES=3
NODE_PIDS=()
CREDIT_POOL=256M

die() { echo "limits.sh: $*" >&2; exit 1; }
say() { echo "limits.sh: $*" >&2; }
# dd_sync_cpu N DD-ARGS...: runs dd (N synced writes); prints "<writes/s> <CPU us per write>",
# the CPU (user + system) of dd itself, from wait4.
dd_sync_cpu() {
  python3 - "$@" <<'PY'
import os, subprocess, sys, time
n = int(sys.argv[1])
t0 = time.monotonic()
p = subprocess.Popen(["dd"] + sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
_, status, ru = os.wait4(p.pid, 0)
p.returncode = 0
elapsed = time.monotonic() - t0
if status != 0:
    sys.exit("dd failed")
print(n / max(elapsed, 1e-6), (ru.ru_utime + ru.ru_stime) / n * 1e6)
PY
}

while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD="$2"; shift 2 ;;
    --dir) BASE="$2"; shift 2 ;;
    --runs) RUNS="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --small-files) SMALL_FILES="$2"; shift 2 ;;
    --small-size) SMALL_SIZE="$2"; shift 2 ;;
    --clients) CLIENTS="$2"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

has_bins() { [ -x "$1/master/dfs-master" ] && [ -x "$1/filenode/dfs-node" ] && [ -x "$1/client/dfs-cli" ] &&
             [ -x "$1/bench/dfs-bench" ] && [ -x "$1/bench/zmq_throughput" ]; }
if [ -z "$BUILD" ]; then
  BUILD="$ROOT/build/release"
  if ! has_bins "$BUILD"; then
    for d in "$ROOT"/build/*/; do if has_bins "$d"; then BUILD="${d%/}"; break; fi; done
  fi
fi
has_bins "$BUILD" || die "no dfs-master, dfs-node, dfs-cli, dfs-bench and zmq_throughput under $BUILD (--build DIR)"
command -v iperf3 >/dev/null || die "iperf3 is missing (apt-get install iperf3)"
command -v python3 >/dev/null || die "python3 is missing (it summarises the runs)"

WORK="$(mktemp -d "$BASE/dfs-limits.XXXXXX")"
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ "$KEEP" = 1 ]; then say "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
RESULTS="$WORK/results.jsonl"   # one JSON object per line: {"kind":..., ...}
: > "$RESULTS"
record() { echo "$1" >> "$RESULTS"; }

ROOT_USER=0
[ "$(id -u)" = 0 ] && ROOT_USER=1
drop_caches() { [ "$ROOT_USER" = 1 ] && sync && echo 3 > /proc/sys/vm/drop_caches; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

dd_rate() {  # dd's last line: "N bytes (...) copied, S s, R MB/s" -> MiB/s
  python3 -c 'import re,sys; m=re.match(r"(\d+) bytes.*copied, ([\d.]+) s", sys.stdin.read().strip().splitlines()[-1]); print(int(m.group(1))/float(m.group(2))/1048576)'
}
# parallel_dd write|read: 4 dd at once on 256 MiB files -> total MiB/s.
parallel_dd() {
  local i t0 t1 pids=()
  t0=$(date +%s.%N)
  for i in 1 2 3 4; do
    if [ "$1" = write ]; then
      dd if=/dev/zero of="$WORK/dd4.$i" bs=1M count=256 conv=fdatasync 2>/dev/null &
    else
      dd if="$WORK/dd4.$i" of=/dev/null bs=1M 2>/dev/null &
    fi
    pids+=("$!")
  done
  wait "${pids[@]}"
  t1=$(date +%s.%N)
  python3 -c 'import sys; print(1024 / (float(sys.argv[2]) - float(sys.argv[1])))' "$t0" "$t1"
}

# ---- limits (each measured RUNS times; the summary takes medians) ----------
for run in $(seq 1 "$RUNS"); do
  say "limits, run $run of $RUNS: loopback TCP (iperf3, 3 s)"
  PORT="$(free_port)"
  iperf3 -s -B 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
  IPERF=$!
  PIDS+=("$IPERF")
  # The server needs a moment to listen; each client try is bounded so a
  # wedged one cannot hang the run.
  ok=0
  for _ in $(seq 1 100); do
    # iperf3 may exit 0 with only an "error" in its JSON (server not ready).
    if timeout 30 iperf3 -c 127.0.0.1 -p "$PORT" -t 3 -J > "$WORK/iperf.json" 2>/dev/null &&
       python3 -c 'import json,sys; json.load(open(sys.argv[1]))["end"]["sum_received"]' "$WORK/iperf.json" 2>/dev/null
    then
      ok=1
      break
    fi
    sleep 0.1
  done
  kill "$IPERF" 2>/dev/null || true
  wait "$IPERF" 2>/dev/null || true
  [ "$ok" = 1 ] || die "iperf3 could not measure loopback TCP on port $PORT"
  TCP=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["end"]["sum_received"]["bits_per_second"]/8/1048576)' "$WORK/iperf.json")
  record "{\"kind\":\"limit\",\"name\":\"tcp\",\"value\":$TCP}"

  say "limits, run $run of $RUNS: ZeroMQ 1 MiB messages and 4 KiB round trips"
  ZMQ="$("$BUILD/bench/zmq_throughput")"
  record "{\"kind\":\"zmq\",\"data\":$ZMQ}"

  say "limits, run $run of $RUNS: disk, 1 GiB sequential write + fdatasync in $BASE"
  W=$(dd if=/dev/zero of="$WORK/dd.test" bs=1M count=1024 conv=fdatasync 2>&1 | dd_rate)
  record "{\"kind\":\"limit\",\"name\":\"disk_write\",\"value\":$W}"
  # The device itself, past the page cache (the bound a node could reach).
  say "limits, run $run of $RUNS: disk, 1 GiB written with O_DIRECT + fdatasync"
  WD=$(dd if=/dev/zero of="$WORK/dd.direct" bs=1M count=1024 oflag=direct conv=fdatasync 2>&1 | dd_rate)
  rm -f "$WORK/dd.direct"
  record "{\"kind\":\"limit\",\"name\":\"disk_write_direct\",\"value\":$WD}"
  # dfs writes and reads 4 chunks at once; a disk (a virtual one especially)
  # may do more with 4 requests in flight than with 1, so measure that too.
  say "limits, run $run of $RUNS: disk, 4 x 256 MiB written + fdatasync at once"
  W4=$(parallel_dd write)
  record "{\"kind\":\"limit\",\"name\":\"disk_write4\",\"value\":$W4}"
  if [ "$ROOT_USER" = 1 ]; then
    say "limits, run $run of $RUNS: disk, 1 GiB sequential read after dropping the page cache"
    drop_caches
    R=$(dd if="$WORK/dd.test" of=/dev/null bs=1M 2>&1 | dd_rate)
    record "{\"kind\":\"limit\",\"name\":\"disk_read\",\"value\":$R}"
    say "limits, run $run of $RUNS: disk, 4 x 256 MiB read at once after dropping the page cache"
    drop_caches
    R4=$(parallel_dd read)
    record "{\"kind\":\"limit\",\"name\":\"disk_read4\",\"value\":$R4}"
  fi
  rm -f "$WORK/dd.test" "$WORK"/dd4.*
  say "limits, run $run of $RUNS: disk, 4 KiB and 64 KiB write + fdatasync, 2000 times each"
  read -r F C4 < <(dd_sync_cpu 2000 if=/dev/zero of="$WORK/sync.test" bs=4k count=2000 oflag=dsync)
  read -r _ C64 < <(dd_sync_cpu 2000 if=/dev/zero of="$WORK/sync64.test" bs=64k count=2000 oflag=dsync)
  [ -n "${F:-}" ] && [ -n "${C4:-}" ] && [ -n "${C64:-}" ] || die "dd with oflag=dsync failed in $WORK"
  # The same writes over space already written and synced (the files just
  # made): the sync then carries the data alone, no new blocks or size. dfs
  # writes small chunks and journal records that way (prepared space).
  read -r _ P4 < <(dd_sync_cpu 2000 if=/dev/zero of="$WORK/sync.test" bs=4k count=2000 oflag=dsync conv=notrunc)
  read -r _ P64 < <(dd_sync_cpu 2000 if=/dev/zero of="$WORK/sync64.test" bs=64k count=2000 oflag=dsync conv=notrunc)
  [ -n "${P4:-}" ] && [ -n "${P64:-}" ] || die "dd with oflag=dsync conv=notrunc failed in $WORK"
  record "{\"kind\":\"limit\",\"name\":\"fsync_ops\",\"value\":$F}"
  record "{\"kind\":\"limit\",\"name\":\"fsync_cpu_4k\",\"value\":$C4}"
  record "{\"kind\":\"limit\",\"name\":\"fsync_cpu_64k\",\"value\":$C64}"
  record "{\"kind\":\"limit\",\"name\":\"fsync_cpu_4k_prepared\",\"value\":$P4}"
  record "{\"kind\":\"limit\",\"name\":\"fsync_cpu_64k_prepared\",\"value\":$P64}"
  rm -f "$WORK/sync.test" "$WORK/sync64.test"
  if [ -x "$BUILD/bench/small_put_disk_model" ]; then
    say "limits, run $run of $RUNS: $SMALL_FILES x $SMALL_SIZE puts by $CLIENTS clients on the disk alone (3 replicas + journal, no messages)"
    M="$("$BUILD/bench/small_put_disk_model" "$WORK" "$CLIENTS" "$SMALL_FILES" "$(numfmt --from=iec "$SMALL_SIZE")" 3)" ||
      die "small_put_disk_model failed in $WORK"
    record "{\"kind\":\"limit\",\"name\":\"small_put_disk_model\",\"value\":$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["files_per_s"])' "$M")}"
  fi
done

# ---- a private cluster -----------------------------------------------------
say "starting dfs-master and $NODES dfs-node under $WORK"
mkdir -p "$WORK/master"
"$BUILD/master/dfs-master" --dir "$WORK/master" --port 0 --log-level warn > "$WORK/master.log" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 100); do [ -s "$WORK/master/master.addr" ] && break; sleep 0.1; done
[ -s "$WORK/master/master.addr" ] || die "dfs-master wrote no master.addr (see $WORK/master.log)"
ADDR="$(tr -d '[:space:]' < "$WORK/master/master.addr")"
for i in $(seq 1 "$NODES"); do
  mkdir -p "$WORK/node$i"
  "$BUILD/filenode/dfs-node" --dir "$WORK/node$i" --master "$ADDR" --credit-pool "$CREDIT_POOL" --log-level warn \
    > "$WORK/node$i.log" 2>&1 &
  PIDS+=("$!")
  NODE_PIDS+=("$!")
done
alive=0
for _ in $(seq 1 150); do
  alive=$("$BUILD/client/dfs-cli" --master "$ADDR" --json nodes 2>/dev/null | grep -o '"alive"' | wc -l || true)
  [ "$alive" -ge "$NODES" ] && break
  sleep 0.2
done
[ "$alive" -ge "$NODES" ] || die "only $alive of $NODES nodes alive"

BENCH=("$BUILD/bench/dfs-bench" --master "$ADDR" --json)
DROP=()
[ "$ROOT_USER" = 1 ] && DROP=(--drop-caches)

# Memory: 64 streams of 8 MiB chunks through all three nodes at once.
kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
for p in "${NODE_PIDS[@]}"; do record "{\"kind\":\"rss_idle\",\"pid\":$p,\"kib\":$(kib "$p" VmRSS)}"; done
say "memory: dfs-bench large --size 1G -r 3 --chunk-size 8M --parallel 64 (64 streams through each node)"
"${BENCH[@]}" large --size 1G -r 3 --chunk-size 8M --parallel 64 > /dev/null || die "the 64-stream put failed"
for p in "${NODE_PIDS[@]}"; do record "{\"kind\":\"rss_peak\",\"pid\":$p,\"kib\":$(kib "$p" VmHWM)}"; done
for r in 1 3; do
  for run in $(seq 1 "$RUNS"); do
    say "dfs-bench large --size $SIZE -r $r (run $run of $RUNS)"
    out="$("${BENCH[@]}" large --size "$SIZE" -r "$r" "${DROP[@]}")" || die "dfs-bench large failed"
    record "{\"kind\":\"large\",\"r\":$r,\"data\":$out}"
  done
done
for run in $(seq 1 "$RUNS"); do
  say "dfs-bench small --files $SMALL_FILES --size $SMALL_SIZE --clients $CLIENTS -r 3 (run $run of $RUNS)"
  out="$("${BENCH[@]}" small --files "$SMALL_FILES" --size "$SMALL_SIZE" --clients "$CLIENTS" -r 3 "${DROP[@]}")" ||
    die "dfs-bench small failed"
  record "{\"kind\":\"small\",\"r\":3,\"data\":$out}"
done

# ---- the summary -----------------------------------------------------------
python3 - "$RESULTS" "$ROOT_USER" "$SIZE" "$SMALL_FILES" "$SMALL_SIZE" "$CLIENTS" "$CREDIT_POOL" <<'PY'
import json, os, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
root, size, files, fsize, clients = sys.argv[2] == "1", sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
pool = sys.argv[7]
names = {r["name"] for r in rows if r["kind"] == "limit"}
lim = {n: statistics.median([r["value"] for r in rows if r["kind"] == "limit" and r["name"] == n]) for n in names}
zs = [r["data"] for r in rows if r["kind"] == "zmq"]
z = {k: statistics.median([d[k] for d in zs]) for k in zs[0]}
zmq = max(z["zmq_1mib_copy_mib_per_s"], z["zmq_1mib_zerocopy_mib_per_s"])
cores = os.cpu_count() or 1
# The CPU floor under one small file: what its messages and syncs alone cost
# on this machine, with no dfs code at all. A put at -r 3 in a run sends 8
# small messages (3 acks, a chunk report from each replica, complete and its
# answer, which brings the next file's lease) and 3 that carry the data (the
# client to each replica at once), and syncs 3
# replicas (a data write + fdatasync each) and 1 journal commit, each the
# cheaper of an append and a write over prepared space. A get sends 3 small
# ones (locate, its answer, the read request) and 1 with the data. The data
# messages cost as 64 KiB ones.
c4, c64 = z["zmq_4k_cpu_us_per_message"], z["zmq_64k_cpu_us_per_message"]
sync4 = min(lim["fsync_cpu_4k"], lim.get("fsync_cpu_4k_prepared", lim["fsync_cpu_4k"]))
sync64 = min(lim["fsync_cpu_64k"], lim.get("fsync_cpu_64k_prepared", lim["fsync_cpu_64k"]))
put_floor_us = 8 * c4 + 3 * c64 + 3 * sync64 + sync4
get_floor_us = 3 * c4 + c64
print(f"\nThis machine (medians of {len(zs)} runs each, measured in this run):")
print(f"  loopback TCP (iperf3, one stream)       {lim['tcp']:9.0f} MiB/s")
print(f"  ZeroMQ 1 MiB messages (copy / 0-copy)   {z['zmq_1mib_copy_mib_per_s']:9.0f} / {z['zmq_1mib_zerocopy_mib_per_s']:.0f} MiB/s")
print(f"  ZeroMQ 4 KiB round trips, 1 in flight   {z['zmq_4k_round_trips_per_s']:9.0f} /s")
print(f"  disk write + fdatasync, 1 GiB           {lim['disk_write']:9.0f} MiB/s  (4 writers at once: {lim['disk_write4']:.0f}, "
      f"O_DIRECT: {lim['disk_write_direct']:.0f})")
if "disk_read" in lim:
    print(f"  disk read, 1 GiB, page cache dropped    {lim['disk_read']:9.0f} MiB/s  (4 readers at once: {lim['disk_read4']:.0f})")
print(f"  4 KiB write + fdatasync                 {lim['fsync_ops']:9.0f} /s")
print(f"  CPU per write + fdatasync, appended     {lim['fsync_cpu_4k']:9.1f} us (4 KiB) / {lim['fsync_cpu_64k']:.1f} us (64 KiB)")
if "fsync_cpu_4k_prepared" in lim:
    print(f"  the same over prepared space            {lim['fsync_cpu_4k_prepared']:9.1f} us (4 KiB) / "
          f"{lim['fsync_cpu_64k_prepared']:.1f} us (64 KiB)")
if "small_put_disk_model" in lim:
    print(f"  small puts on the disk alone (model)    {lim['small_put_disk_model']:9.0f} files/s  ({clients} clients, "
          f"{fsize} x 3 replicas + a journal record, group commit, no messages)")
print(f"  CPU per ZeroMQ message, 4 pairs at once {z['zmq_4k_cpu_us_per_message']:9.1f} us (4 KiB) / "
      f"{z['zmq_64k_cpu_us_per_message']:.1f} us (64 KiB), all threads, user + system; {cores} cores")
print("  page cache: " + ("dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before every get"
                          if root else "NOT dropped (not root): gets may read the nodes' page cache"))

out = []
for r in (1, 3):
    runs = [x["data"] for x in rows if x["kind"] == "large" and x["r"] == r]
    for phase in ("put", "get"):
        v = [next(p["mib_per_s"] for p in d["phases"] if p["name"] == phase) for d in runs]
        if phase == "put":
            disk = max(lim["disk_write"], lim["disk_write4"], lim["disk_write_direct"])
            bound = min(zmq / r, disk / r)
            why = f"min(ZeroMQ, disk write)/{r}: every replica crosses loopback and lands on this one disk"
        else:
            disk = max(lim.get("disk_read", 0), lim.get("disk_read4", 0)) if root else float("inf")
            bound = min(zmq, disk)
            why = "min(ZeroMQ, disk read)" if root else "ZeroMQ (page cache not dropped)"
        out.append((f"large {size} -r {r} {phase}", "MiB/s", v, bound, why))
runs = [x["data"] for x in rows if x["kind"] == "small"]
for phase in ("put", "get"):
    v = [next(p["ops_per_s"] for p in d["phases"] if p["name"] == phase) for d in runs]
    if phase == "put":
        bound = cores * 1e6 / put_floor_us
        why = (f"CPU floor, {cores} cores / {put_floor_us:.0f} us: 8 small + 3 data messages, "
               f"3 data + 1 journal write+fdatasync per file, no dfs code")
        if lim.get("small_put_disk_model", float("inf")) < bound:
            bound = lim["small_put_disk_model"]
            why = f"the disk alone: {clients} clients' syncs with no messages (small_put_disk_model)"
    else:
        bound = cores * 1e6 / get_floor_us
        why = f"CPU floor, {cores} cores / {get_floor_us:.0f} us: 3 small + 1 data message per file, no dfs code"
    out.append((f"small {files} x {fsize} -c {clients} -r 3 {phase}", "files/s", v, bound, why))
idle = {r["pid"]: r["kib"] for r in rows if r["kind"] == "rss_idle"}
peak = {r["pid"]: r["kib"] for r in rows if r["kind"] == "rss_peak"}
if peak:
    print(f"\nNode memory under 64 concurrent streams (credit pool {pool} each):")
    for pid in sorted(peak):
        print(f"  node pid {pid}: idle {idle[pid] / 1024:6.1f} MiB, peak {peak[pid] / 1024:6.1f} MiB, "
              f"peak - idle {(peak[pid] - idle[pid]) / 1024:6.1f} MiB")
print("\ndfs (median of runs; ratio = median / limit):")
for name, unit, v, bound, why in out:
    m = statistics.median(v)
    runs_s = ", ".join(f"{x:.0f}" for x in v)
    print(f"  {name:34s} {m:9.1f} {unit:8s} runs [{runs_s}]  limit {bound:8.0f}  ratio {m / bound:5.2f}  ({why})")
PY
