#!/usr/bin/env bash
# Multi-host test (issue 20): a partition, not a kill.
#
# Builds a small network with ip netns: one namespace holding a bridge, and
# one namespace per process (the master, node1..node4, the client), each
# joined to the bridge by a veth pair and given its own address on
# 10.77.0.0/24. The master binds its address; node1 and node2 bind theirs,
# node3 and node4 bind 0.0.0.0 and --advertise theirs (so clients and other
# nodes can only reach them through what they advertise). Every daemon runs
# with --insecure (no CURVE keys), which a non-loopback --bind requires.
#
# Then: /kept (24 MiB), /rewritten and /deleted are put at replication 3 in
# 1 MiB chunks (one file per chunk on the nodes: --volume-max-chunk 0); the
# link of the node holding the most chunks is cut (its bridge port set
# down: the process keeps running, nothing closes); the master must see it
# dead and copy its chunks to the others until fsck is healthy, and /kept
# must read back identical from the client's namespace. While it is cut off
# /rewritten is overwritten and /deleted removed, so the node holds stale
# replicas. The link is healed; the node must come back alive (same
# process), and the cluster must converge to exactly 3 replicas per chunk,
# on disk as in the master's locations: every chunk file on every node is a
# replica the master lists, the returning node's surplus copies and its
# stale replicas deleted. Both files must then read back identical, and
# every daemon must exit 0 on SIGTERM (a sanitizer report fails the test).
#
# Needs root (CAP_NET_ADMIN) and network namespaces; without them it prints
# "netns_partition: SKIPPED: ..." and exits 77 (CTest's SKIP_RETURN_CODE).
# Nothing is bound outside the namespaces it makes; they, their links and
# every process started are removed on exit, Ctrl-C and failure included
# (a run killed outright, SIGKILL, leaves its namespaces: the next run
# removes those whose run is gone and that hold no process).
#
#   tests/multihost/netns_partition.sh --bin-dir build/release
#   tests/multihost/netns_partition.sh --master-bin M --node-bin N --cli-bin C
# Options: --bin-dir DIR (DIR/master/dfs-master, DIR/filenode/dfs-node,
# DIR/client/dfs-cli), --master-bin, --node-bin, --cli-bin, --work DIR
# (where the run's folder is made; default $TMPDIR or /tmp), --time-limit
# SECONDS (every wait gives up once the run is this old; 240), --keep (keep
# the run's folder and logs; they are kept on failure anyway), -h/--help.
# Exit status: 0 passed, 1 failed, 2 usage error, 77 skipped.
set -euo pipefail

NAME=netns_partition
# The comment at the top of this file, up to its first line of code.
usage() { awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }
say() { printf '%s: [%5ss] %s\n' "$NAME" "$(elapsed)" "$*"; }
fail() { printf '%s: FAIL: %s\n' "$NAME" "$*" >&2; exit 1; }
skip() { printf '%s: SKIPPED: %s\n' "$NAME" "$*"; exit 77; }
# Microseconds since the epoch (bash 5's EPOCHREALTIME, no bc needed).
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
T0=$(now_us)
elapsed() { local us=$(($(now_us) - T0)); printf '%d.%d' $((us / 1000000)) $((us / 100000 % 10)); }

BIN_DIR="" MASTER_BIN="" NODE_BIN="" CLI_BIN="" WORK_BASE="${TMPDIR:-/tmp}" KEEP="" TIME_LIMIT=240
while [ $# -gt 0 ]; do
  case "$1" in
    --bin-dir) BIN_DIR="${2:?--bin-dir needs a folder}"; shift 2 ;;
    --master-bin) MASTER_BIN="${2:?--master-bin needs a path}"; shift 2 ;;
    --node-bin) NODE_BIN="${2:?--node-bin needs a path}"; shift 2 ;;
    --cli-bin) CLI_BIN="${2:?--cli-bin needs a path}"; shift 2 ;;
    --work) WORK_BASE="${2:?--work needs a folder}"; shift 2 ;;
    --time-limit) TIME_LIMIT="${2:?--time-limit needs seconds}"; shift 2 ;;
    --keep) KEEP=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "$NAME: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if [ -n "$BIN_DIR" ]; then
  : "${MASTER_BIN:=$BIN_DIR/master/dfs-master}" "${NODE_BIN:=$BIN_DIR/filenode/dfs-node}"
  : "${CLI_BIN:=$BIN_DIR/client/dfs-cli}"
fi
for b in "$MASTER_BIN" "$NODE_BIN" "$CLI_BIN"; do
  if [ -z "$b" ]; then echo "$NAME: give --bin-dir or all of --master-bin, --node-bin, --cli-bin (see --help)" >&2; exit 2; fi
  [ -x "$b" ] || { echo "$NAME: no executable $b" >&2; exit 2; }
done
[[ "$TIME_LIMIT" =~ ^[0-9]+$ ]] || { echo "$NAME: --time-limit takes whole seconds" >&2; exit 2; }
MASTER_BIN="$(realpath "$MASTER_BIN")" NODE_BIN="$(realpath "$NODE_BIN")" CLI_BIN="$(realpath "$CLI_BIN")"

# --- Can this machine do it at all? ------------------------------------------
[ "$(id -u)" -eq 0 ] || skip "needs root and network namespaces (not root: run it with sudo)"
command -v ip >/dev/null 2>&1 || skip "needs root and network namespaces (no 'ip' command: install iproute2)"
command -v nsenter >/dev/null 2>&1 || skip "needs root and network namespaces (no 'nsenter' command: install util-linux)"
for tool in python3 cmp sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || fail "$tool is needed"
done

# Namespaces of runs killed outright (no trap ran): dfsnp-<pid>-... whose
# pid is gone and which no process is in.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^dfsnp-[0-9]+-[0-9a-f]+-/ {print $1}'); do
  pid="${ns#dfsnp-}"
  pid="${pid%%-*}"
  if [ ! -d "/proc/$pid" ] && [ -z "$(ip netns pids "$ns" 2>/dev/null)" ]; then
    if ip netns del "$ns" 2>/dev/null; then echo "$NAME: removed namespace $ns, left by a run that was killed"; fi
  fi
done

# Names unique to this run, so parallel runs never meet: namespaces
# dfsnp-<pid>-<random>-{br,master,node1..4,client}. Interface names live
# inside those namespaces only (nothing is made in the caller's namespace).
P="dfsnp-$$-$(printf '%04x' $((RANDOM % 65536)))"
BR="$P-br"
# Where ip netns add pins the namespaces (iproute2's NETNS_RUN_DIR).
NETNS_DIR=/var/run/netns
NETNS=()   # made so far, deleted on exit
PIDS=()    # daemons started, killed on exit
WORK=""
FAILED=1   # until the end is reached

cleanup() {
  local rc=$? ns pid
  set +e
  trap - EXIT INT TERM ERR
  for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # Anything else still inside our namespaces (a dfs-cli cut off mid-call).
  for ns in "${NETNS[@]}"; do
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
  done
  for ns in "${NETNS[@]}"; do ip netns del "$ns" 2>/dev/null; done
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "$FAILED" = 1 ] && [ "$rc" != 77 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; then
      for log in "$WORK"/*.log; do
        [ -f "$log" ] || continue
        echo "---- last lines of $(basename "$log") ----" >&2
        tail -n 15 "$log" >&2
      done
      echo "$NAME: the run's folder is kept: $WORK" >&2
    elif [ -n "$KEEP" ]; then
      echo "$NAME: the run's folder is kept: $WORK"
    else
      rm -rf "$WORK"
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
# A command that fails outside the checks below (set -e) still says where.
trap 'fail "line $LINENO: $BASH_COMMAND (exit status $?)"' ERR
trap 'echo "$NAME: interrupted" >&2; exit 130' INT
trap 'echo "$NAME: terminated" >&2; exit 143' TERM

# The bridge's namespace first: if it cannot be made, nothing here can.
if ! err=$(ip netns add "$BR" 2>&1); then
  skip "needs root and network namespaces (ip netns add: ${err:-failed})"
fi
NETNS+=("$BR")
# in_ns NS CMD...: CMD in namespace NS. nsenter enters the network
# namespace only and execs CMD (so a daemon's $! is its own pid); `ip netns
# exec` and `ip -n` also remount / and /sys, which fails in a chroot whose
# root is not a mount point (CI's).
in_ns() { local ns="$1"; shift; nsenter --net="$NETNS_DIR/$ns" "$@"; }
if ! err=$(in_ns "$BR" ip link add br0 type bridge 2>&1) || ! err=$(in_ns "$BR" ip link set br0 up 2>&1); then
  skip "needs root and network namespaces with a bridge (ip link add type bridge: ${err:-failed})"
fi

# add_host NAME ADDRESS: namespace $P-NAME, its eth0 paired with port
# v-NAME on the bridge, ADDRESS/24 on eth0, lo up.
add_host() {
  local ns="$P-$1" err
  ip netns add "$ns" || fail "ip netns add $ns"
  NETNS+=("$ns")
  if ! err=$(in_ns "$BR" ip link add "v-$1" type veth peer name eth0 netns "$ns" 2>&1); then
    skip "needs root and network namespaces with veth pairs (ip link add type veth: $err)"
  fi
  in_ns "$BR" ip link set "v-$1" master br0 up
  in_ns "$ns" ip link set lo up
  in_ns "$ns" ip addr add "$2/24" dev eth0
  in_ns "$ns" ip link set eth0 up
}
MASTER_IP=10.77.0.10
CLIENT_IP=10.77.0.20
node_ip() { echo "10.77.0.1$1"; }
add_host master "$MASTER_IP"
for i in 1 2 3 4; do add_host "node$i" "$(node_ip "$i")"; done
add_host client "$CLIENT_IP"

WORK="$(mktemp -d "$WORK_BASE/dfs-$NAME.XXXXXX")"
say "network $P: bridge in $BR; master $MASTER_IP, node1..4 $(node_ip 1)..$(node_ip 4), client $CLIENT_IP; folder $WORK"

# --- Helpers -----------------------------------------------------------------
cli() { in_ns "$P-client" "$CLI_BIN" --master "$ADDR" --timeout 3 "$@"; }
# json EXPR: EXPR over the JSON document on stdin (as d).
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# wait_for SECONDS WHAT CMD...: polls CMD every 0.2 s until it succeeds;
# fails after SECONDS, or sooner when the run reaches --time-limit, with
# what the last check saw (WHY, which the checks below set).
WHY=""
wait_for() {
  local limit="$1" what="$2" deadline end
  shift 2
  deadline=$(($(now_us) + limit * 1000000))
  end=$((T0 + TIME_LIMIT * 1000000))
  WHY=""
  until "$@"; do
    [ "$(now_us)" -gt "$deadline" ] && fail "$what: not within ${limit} s${WHY:+; last seen: $WHY}"
    [ "$(now_us)" -gt "$end" ] && fail "$what: not yet when the run reached --time-limit ${TIME_LIMIT} s${WHY:+; last seen: $WHY}"
    sleep 0.2
  done
}
running() { kill -0 "$1" 2>/dev/null; }
declare -A NODE_PID=() NODE_ID=()
# start_node I BIND ADVERTISE
start_node() {
  local i="$1" dir="$WORK/node$1"
  mkdir -p "$dir"
  # nsenter execs the daemon: $! is the daemon's own pid (a shell function
  # here, in_ns, would put a subshell in between).
  nsenter --net="$NETNS_DIR/$P-node$i" "$NODE_BIN" --dir "$dir" --master "$ADDR" --bind "$2" --advertise "$3" --port 0 \
    --insecure --volume-max-chunk 0 --log-level info > "$WORK/node$i.log" 2>&1 &
  PIDS+=("$!")
  NODE_PID[$i]=$!
}
# node_state ID: alive|dead|... as the master lists it.
node_state() { cli --json nodes 2>/dev/null | json "next((n['state'] for n in d['nodes'] if n['id'] == '$1'), 'none')"; }
node_is() { local st; st=$(node_state "$1") || st="(no answer)"; WHY="state $st"; [ "$st" = "$2" ]; }
alive_count() { cli --json nodes 2>/dev/null | json "sum(n['state'] == 'alive' for n in d['nodes'])"; }
all_alive() { local n; n=$(alive_count) || n="(no answer)"; WHY="$n alive"; [ "$n" = 4 ]; }
# healthy: fsck / exits 0, and the hold-off after the master's start is over.
healthy() {
  local out
  out=$(cli --json fsck / 2>/dev/null) || { WHY="fsck: ${out:0:400}"; WHY="${WHY%: }"; return 1; }
  WHY="fsck: ${out:0:400}"
  [ "$(json 'd["healthy"] and not d.get("holdoff", False)' <<< "$out")" = True ]
}
chunk_files() { find "$WORK/node$1/chunks" -name '*.chunk' -printf '%f\n' 2>/dev/null | sort; }
put_file() { cli -q put -f -r 3 --chunk-size 1M "$1" "$2" || fail "put $2"; }
get_same() {
  rm -f "$WORK/out"
  cli -q get "$1" "$WORK/out" || fail "get $1"
  cmp -s "$2" "$WORK/out" || fail "$1 read back differs from what was put"
  [ "$(sha256sum < "$2")" = "$(sha256sum < "$WORK/out")" ] || fail "$1: sha256 differs"
}

# layout_check [--converged] [--without ID]: compares the master's chunk
# locations of the files in FILES (stat --json) with the chunk files on
# the nodes' disks. Plain: every chunk has 3 replicas on live nodes (not ID).
# --converged: also every node's chunk files are exactly the replicas the
# master lists on it, no more (no surplus, stale or orphan file), and every
# chunk has exactly 3 replicas. Prints what is wrong; exit 1 if anything is.
layout_check() {
  local converged="" without="" f out
  while [ $# -gt 0 ]; do
    case "$1" in
      --converged) converged=1; shift ;;
      --without) without="$2"; shift 2 ;;
    esac
  done
  for f in "${FILES[@]}"; do
    cli --json stat "/$f" > "$WORK/stat.$f.json" 2>/dev/null || { WHY="stat /$f failed"; return 1; }
  done
  for i in 1 2 3 4; do chunk_files "$i" > "$WORK/disk.node$i"; done
  out=$(python3 - "$WORK" "$converged" "$without" "${FILES[*]}" "${NODE_ID[1]}" "${NODE_ID[2]}" "${NODE_ID[3]}" "${NODE_ID[4]}" <<'EOF'
import json, sys
work, converged, without, files, ids = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4].split(), sys.argv[5:]
want = {i: set() for i in ids}  # node id -> "<id>_<version>.chunk" the master lists there
bad = []
for f in files:
    st = json.load(open(f"{work}/stat.{f}.json"))
    for c in st["chunks"]:
        reps = [r for r in c["replicas"] if r != without]
        if len(reps) != 3 or len(set(reps)) != 3:
            bad.append(f"/{f} chunk {c['id']} v{c['version']}: replicas {c['replicas']}")
        for r in c["replicas"]:
            if r in want:
                want[r].add(f"{c['id']}_{c['version']}.chunk")
if converged:
    for n, i in enumerate(ids, 1):
        disk = set(open(f"{work}/disk.node{n}").read().split())
        extra, missing = sorted(disk - want[i]), sorted(want[i] - disk)
        if extra:
            bad.append(f"node{n}: {len(extra)} chunk files the master lists nowhere there: {' '.join(extra[:8])}")
        if missing:
            bad.append(f"node{n}: {len(missing)} replicas listed but not on disk: {' '.join(missing[:8])}")
print("; ".join(bad))
sys.exit(1 if bad else 0)
EOF
  ) || { WHY="$out"; return 1; }
}

# --- The cluster -------------------------------------------------------------
# Short hold-off and dead-after so the test takes seconds; --free-grace 0s:
# freed and trimmed replicas are deleted at once, so the disks can be counted.
mkdir -p "$WORK/master"
nsenter --net="$NETNS_DIR/$P-master" "$MASTER_BIN" --dir "$WORK/master" --bind "$MASTER_IP" --port 0 --insecure \
  --repair-holdoff 1s --dead-after 4s --free-grace 0s --log-level info > "$WORK/master.log" 2>&1 &
MASTER_PID=$!
PIDS+=("$MASTER_PID")
wait_for 30 "dfs-master wrote its address" test -s "$WORK/master/master.addr"
ADDR="$(tr -d '[:space:]' < "$WORK/master/master.addr")"
case "$ADDR" in "$MASTER_IP":*) ;; *) fail "the master says it is at $ADDR, not on $MASTER_IP" ;; esac
start_node 1 "$(node_ip 1)" "$(node_ip 1)"
start_node 2 "$(node_ip 2)" "$(node_ip 2)"
start_node 3 0.0.0.0 "$(node_ip 3)"
start_node 4 0.0.0.0 "$(node_ip 4)"
for i in 1 2 3 4; do
  wait_for 30 "node$i wrote its id" test -s "$WORK/node$i/node.id"
  NODE_ID[$i]="$(tr -d '[:space:]' < "$WORK/node$i/node.id")"
done
wait_for 30 "4 nodes alive" all_alive
for i in 1 2 3 4; do
  a=$(cli --json nodes | json "next(n['address'] for n in d['nodes'] if n['id'] == '${NODE_ID[$i]}')")
  case "$a" in "$(node_ip "$i")":*) ;; *) fail "node$i is listed at $a, not at its advertised $(node_ip "$i")" ;; esac
done
say "master at $ADDR, 4 nodes alive at their own addresses"

# --- Data --------------------------------------------------------------------
head -c $((24 << 20)) /dev/urandom > "$WORK/kept"
head -c $((6 << 20)) /dev/urandom > "$WORK/old"
head -c $(((5 << 20) + 12345)) /dev/urandom > "$WORK/new"
head -c $((4 << 20)) /dev/urandom > "$WORK/deleted"
put_file "$WORK/kept" /kept
put_file "$WORK/old" /rewritten
put_file "$WORK/deleted" /deleted
FILES=(kept rewritten deleted)
wait_for 60 "healthy after the puts" healthy
wait_for 30 "3 replicas of every chunk, on disk as the master lists them" layout_check --converged
get_same /kept "$WORK/kept"

# The node with the most chunk files, and the replicas it holds that will be
# stale once /rewritten is overwritten and /deleted removed.
V=1
for i in 2 3 4; do [ "$(chunk_files "$i" | wc -l)" -gt "$(chunk_files "$V" | wc -l)" ] && V=$i; done
VID="${NODE_ID[$V]}"
cli --json stat /rewritten | json "'\n'.join(f\"{c['id']}_{c['version']}.chunk\" for c in d['chunks'] if '$VID' in c['replicas'])" > "$WORK/stale"
cli --json stat /deleted | json "'\n'.join(f\"{c['id']}_{c['version']}.chunk\" for c in d['chunks'] if '$VID' in c['replicas'])" >> "$WORK/stale"
mapfile -t STALE_FILES < <(grep . "$WORK/stale")
STALE=${#STALE_FILES[@]}
[ "$STALE" -gt 0 ] || fail "node$V holds no replica of /rewritten or /deleted: nothing would be stale"
say "node$V ($VID) holds the most chunks ($(chunk_files "$V" | wc -l) files, $STALE of /rewritten and /deleted): cutting its link"

# --- The partition -----------------------------------------------------------
in_ns "$BR" ip link set "v-node$V" down
wait_for 30 "the master sees node$V dead" node_is "$VID" dead
say "node$V is dead to the master"
# While it is away: one file rewritten, one deleted; its copies of them go stale.
put_file "$WORK/new" /rewritten
cli rm /deleted || fail "rm /deleted"
FILES=(kept rewritten)
wait_for 90 "healthy without node$V" healthy
wait_for 30 "3 live replicas of every chunk without node$V" layout_check --without "$VID"
get_same /kept "$WORK/kept"
get_same /rewritten "$WORK/new"
running "${NODE_PID[$V]}" || fail "node$V's process is gone: the cut must not kill it"
for f in "${STALE_FILES[@]}"; do
  [ -f "$(find "$WORK/node$V/chunks" -name "$f" -print -quit)" ] || fail "node$V lost $f while cut off (nothing can reach it)"
done
say "re-replicated without node$V: fsck healthy, /kept and the new /rewritten read back identical; node$V still runs and holds $STALE stale replicas"

# --- The heal ----------------------------------------------------------------
in_ns "$BR" ip link set "v-node$V" up
wait_for 90 "node$V alive again after the heal" node_is "$VID" alive
running "${NODE_PID[$V]}" || fail "node$V's process is gone"
say "node$V is alive again (the same process)"
wait_for 60 "exactly 3 replicas of every chunk, and no other chunk file on any node" layout_check --converged
healthy || fail "not healthy once converged"
# DESIGN.md lists "over_replicated" in fsck --json; when it is there it must be 0.
over=$(cli --json fsck / | json 'd.get("over_replicated", 0)')
[ "$over" = 0 ] || fail "fsck: $over chunks over-replicated"
for f in "${STALE_FILES[@]}"; do
  [ -z "$(find "$WORK/node$V/chunks" -name "$f" -print -quit)" ] || fail "node$V still holds stale $f"
done
get_same /kept "$WORK/kept"
get_same /rewritten "$WORK/new"
if cli -q get /deleted "$WORK/out" 2>/dev/null; then fail "/deleted reads back"; fi
total=0
for i in 1 2 3 4; do total=$((total + $(chunk_files "$i" | wc -l))); done
say "converged: $total chunk files on the nodes, 3 per chunk, each listed by the master; node$V's $STALE stale replicas deleted; both files read back identical"

# --- Clean stop: every daemon exits 0 on SIGTERM ---------------------------
stop_pid() {
  local pid="$1" what="$2" rc=0
  kill -TERM "$pid" 2>/dev/null || fail "$what was not running at the end"
  exited() { ! running "$1"; }
  wait_for 30 "$what exits on SIGTERM" exited "$pid"
  wait "$pid" || rc=$?
  [ "$rc" = 0 ] || fail "$what exited with status $rc on SIGTERM (see its log)"
}
for i in 1 2 3 4; do stop_pid "${NODE_PID[$i]}" "node$i"; done
stop_pid "$MASTER_PID" "dfs-master"
PIDS=()
FAILED=0
say "PASSED"
