#!/usr/bin/env bash
# Builds the libFuzzer target tests/fuzz/request_fuzzer.cc (clang, ASan+UBSan, coverage of every
# library; the build dir is shared with `scripts/sanitizers.sh address`) and fuzzes request
# decoding, translation, validation and small engine runs for a bounded time.
#
#   ./scripts/fuzz.sh              60 s
#   FUZZ_SECONDS=600 ./scripts/fuzz.sh
#
# The committed corpus (tests/fuzz/corpus/) is the seed and is never modified: new inputs go
# to a temporary directory. A crash stops the run with a non-zero status and leaves the input in
# ${FUZZ_ARTIFACTS:-build-asan/fuzz-artifacts}/crash-*; once fixed, commit that file into
# tests/fuzz/corpus/ so that every build replays it (ctest request_fuzzer_corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=sanitizers.sh
source ./scripts/sanitizers.sh
DIR=${ASAN_BUILD_DIR:-build-asan}
SECONDS_TO_FUZZ=${FUZZ_SECONDS:-60}
ARTIFACTS=${FUZZ_ARTIFACTS:-$DIR/fuzz-artifacts}
JOBS=${JOBS:-$(nproc)}

start=$SECONDS
echo "== fuzz: build request_fuzzer ($DIR)"
configure_asan "$DIR"
cmake --build "$DIR" -j "$JOBS" --target request_fuzzer
work=$(mktemp -d)
trap 'rm -rf "$work" "$work.log"' EXIT
mkdir -p "$ARTIFACTS"
echo "== fuzz: ${SECONDS_TO_FUZZ} s (build took $((SECONDS - start)) s)"
set +e
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$DIR/tests/fuzz/request_fuzzer" -max_total_time="$SECONDS_TO_FUZZ" -rss_limit_mb=2048 \
  -max_len=4096 -timeout=10 -print_final_stats=1 -artifact_prefix="$ARTIFACTS/" \
  "$work" tests/fuzz/corpus >"$work.log" 2>&1
status=$?
set -e
grep -E "^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::|ERROR|SUMMARY|Test unit written" "$work.log" || true
if [ "$status" -ne 0 ]; then
  tail -n 60 "$work.log"
  echo "== fuzz: FAILED (status $status); inputs in $ARTIFACTS" >&2
  exit 1
fi
echo "== fuzz: no crash in ${SECONDS_TO_FUZZ} s; $(ls "$work" | wc -l) new corpus inputs (discarded); total $((SECONDS - start)) s"
