#!/usr/bin/env bash
# Installs deps, builds and runs every test.
#   scripts/test.sh              release build + ctest, then asan, then tsan (each its own build)
#   scripts/test.sh --quick      release only
#   scripts/test.sh --asan       asan only (ASan + UBSan)
#   scripts/test.sh --tsan       tsan only (ThreadSanitizer)
#   scripts/test.sh [flags] -- CTEST_ARGS...   e.g. -- -R cluster_test
# Flags combine (--quick --tsan = release and tsan). DFS_SKIP_DEPS=1 skips
# scripts/install-deps.sh. Exits non-zero if any build or test fails.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
JOBS="${JOBS:-2}"

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

kinds=()
ctest_extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) kinds+=(release) ;;
    --asan) kinds+=(asan) ;;
    --tsan) kinds+=(tsan) ;;
    --) shift; ctest_extra=("$@"); break ;;
    -h|--help) usage; exit 0 ;;
    *) echo "test.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
# Every test under each: the cluster tests are where the threads meet (the
# nodes' sync and trash threads, the master's journal writer, clients on
# several threads of one process), and the whole suite under TSan takes about two
# minutes here.
[ ${#kinds[@]} -gt 0 ] || kinds=(release asan tsan)

# Sanitizers stop at the first report, with a stack, so ctest sees a failure.
# No warning lands: the release build of the test command is -Werror.
export DFS_WERROR="${DFS_WERROR:-ON}"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# libzmq is not instrumented; scripts/tsan.supp says why its reports are noise.
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$ROOT/scripts/tsan.supp}"
# A test must never wait for a terminal.
exec </dev/null

total_start=$SECONDS
if [ "${DFS_SKIP_DEPS:-0}" != 1 ]; then
  echo "test.sh: installing dependencies (scripts/install-deps.sh)"
  "$ROOT/scripts/install-deps.sh" || { echo "test.sh: FAIL: installing dependencies failed" >&2; exit 1; }
fi

summary=()
failed=0
for kind in "${kinds[@]}"; do
  start=$SECONDS
  echo
  echo "==================== $kind: build ===================="
  if ! "$ROOT/scripts/build.sh" "$kind"; then
    summary+=("$kind: BUILD FAILED")
    failed=1
    continue
  fi
  echo
  echo "==================== $kind: ctest ===================="
  log="$ROOT/build/$kind/ctest.log"
  set +e
  (cd "$ROOT/build/$kind" && ctest --output-on-failure -j "$JOBS" --timeout 300 --no-tests=error \
      "${ctest_extra[@]}") 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  counts="$(grep -Eo '[0-9]+% tests passed, [0-9]+ tests failed out of [0-9]+' "$log" | tail -n 1 || true)"
  if [ "$rc" -eq 0 ]; then
    summary+=("$kind: PASS (${counts:-no count}, $((SECONDS - start)) s)")
  else
    summary+=("$kind: FAIL (${counts:-ctest exit $rc}, $((SECONDS - start)) s)")
    failed=1
  fi
done

echo
echo "==================== summary ===================="
for line in "${summary[@]}"; do echo "  $line"; done
if [ "$failed" -eq 0 ]; then
  echo "test.sh: ALL PASSED in $((SECONDS - total_start)) s [${kinds[*]}]"
else
  echo "test.sh: FAILED in $((SECONDS - total_start)) s [${kinds[*]}]" >&2
fi
exit "$failed"
