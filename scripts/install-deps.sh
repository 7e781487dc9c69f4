#!/usr/bin/env bash
# Installs every Debian 12 package dfs needs to build, test and benchmark, and
# what scripts/{build,cluster,test}.sh use that a minbase Debian 12 root lacks.
# Safe to run again: apt-get runs only when something is missing. Uses sudo
# when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps.sh: not root and sudo is not installed; run it as root" >&2
    exit 1
  fi
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
PKGS=(
  # toolchain (build-essential brings gcc/g++ 12 and make)
  build-essential cmake ninja-build pkg-config ccache git
  # libraries
  libzmq3-dev cppzmq-dev
  libprotobuf-dev protobuf-compiler
  libboost-filesystem-dev
  libspdlog-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libcli11-dev libisal-dev libxxhash-dev nlohmann-json3-dev libabsl-dev
  # the shell's line editing and history (dfs-cli shell)
  libedit-dev
  # tools: iperf3 (network baselines), procps (ps, pkill, pgrep for
  # debugging a cluster), python3 (helper scripts), python3-pexpect
  # (bench/shell_complete.py times Tab on a pseudo-terminal), iproute2
  # (ip netns, veth, bridge: tests/multihost/netns_partition.sh)
  iperf3 procps python3 python3-pexpect iproute2
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps.sh: installing ${missing[*]}"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y -qq \
    --no-install-recommends "${missing[@]}"
else
  echo "install-deps.sh: all ${#PKGS[@]} packages already installed"
fi
