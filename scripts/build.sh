#!/usr/bin/env bash
# Configures and builds dfs into build/<kind>.
#   scripts/build.sh [release|asan|tsan] [extra cmake -D options...]
#   release  RelWithDebInfo                       -> build/release
#   asan     RelWithDebInfo + ASan/UBSan          -> build/asan
#   tsan     RelWithDebInfo + ThreadSanitizer     -> build/tsan
# JOBS=N overrides the parallelism (default 2: this machine has 2 cores).
# DFS_WERROR=ON makes warnings errors in the release build (scripts/test.sh
# sets it); sanitizer builds at -O1 meet GCC's false positives
# (-Wmaybe-uninitialized and friends), so they keep warnings as warnings.
# ccache is picked up by CMakeLists.txt when it is installed.
# Build time (docs/architecture.md, "Build time"): dfs's own targets are unity
# builds (cmake/BuildSpeed.cmake; -DDFS_UNITY=OFF builds file by file, e.g. to
# find which two files of a target collide), so the heavy third-party headers
# (CLI11, fmt/spdlog, protobuf, GoogleTest, nlohmann/json) are compiled once
# per batch of 8 files instead of once per file.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
KIND="${1:-release}"
[ $# -gt 0 ] && shift
JOBS="${JOBS:-2}"

die() { echo "build.sh: $*" >&2; exit 1; }

# Sanitizer builds build what the tests need: no benchmarks.
WERROR=OFF
case "$KIND" in
  release) SANITIZE=""; BENCH=ON; WERROR="${DFS_WERROR:-OFF}" ;;
  asan) SANITIZE="asan"; BENCH=OFF ;;
  tsan) SANITIZE="tsan"; BENCH=OFF ;;
  -h|--help)
    sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
    exit 0 ;;
  *) echo "build.sh: unknown build kind '$KIND' (release, asan or tsan)" >&2; exit 2 ;;
esac

for tool in cmake ninja c++; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found; run scripts/install-deps.sh first"
done

BUILD_DIR="$ROOT/build/$KIND"
# Configure once; afterwards ninja re-runs cmake by itself when a CMakeLists
# changes. (Configuring again for nothing is not free: pkg_check_modules(libzmq)
# yields different flags on a second run, which recompiles every ZeroMQ user.)
if [ -f "$BUILD_DIR/build.ninja" ] && [ $# -eq 0 ]; then
  echo "build.sh: $KIND already configured in ${BUILD_DIR#"$ROOT"/}"
else
  echo "build.sh: configuring $KIND in ${BUILD_DIR#"$ROOT"/}"
  if ! cmake -G Ninja -S "$ROOT" -B "$BUILD_DIR" \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo \
        -DDFS_SANITIZE="$SANITIZE" \
        -DDFS_BUILD_BENCH="$BENCH" \
        -DDFS_WERROR="$WERROR" \
        "$@"; then
    die "cmake configure of '$KIND' failed (see the messages above; a stale $BUILD_DIR can be removed and rebuilt)"
  fi
fi

echo "build.sh: building $KIND with -j$JOBS"
start=$SECONDS
if ! cmake --build "$BUILD_DIR" -j "$JOBS"; then
  die "build of '$KIND' failed (see the compiler errors above)"
fi
echo "build.sh: $KIND built in $((SECONDS - start)) s -> ${BUILD_DIR#"$ROOT"/}"
