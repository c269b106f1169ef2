#!/usr/bin/env bash
# Builds perturbd, perturbd-cli and the C++ tests with sanitizers and runs the unit,
# integration, fault and security tests under them (ctest; not the `soak` label). Run by
# scripts/test.sh (so by .ci/run) unless PERTURBD_SKIP_SANITIZERS=1.
#
#   ./scripts/sanitizers.sh            AddressSanitizer+UndefinedBehaviorSanitizer, then ThreadSanitizer
#   ./scripts/sanitizers.sh address    ASan+UBSan only   (build dir ${ASAN_BUILD_DIR:-build-asan})
#   ./scripts/sanitizers.sh thread     TSan only         (build dir ${TSAN_BUILD_DIR:-build-tsan})
#
# Both builds use clang (Debian's clang-14; the prebuilt gRPC, protobuf and abseil are plain
# C++ libraries that clang links against), -O1 with line tables only (-gline-tables-only:
# symbolized reports at a fraction of -g's compile and link time), benchmarks and CUDA off,
# and only the targets listed in ASAN_TARGETS / TSAN_TARGETS below.
# Any report fails the run: UBSan is not recoverable (-fno-sanitize-recover=all), ASan and TSan
# stop at the first error, LeakSanitizer checks every test process and the servers that exit
# normally.
#
# The ASan build also carries libFuzzer's coverage instrumentation (-fsanitize=fuzzer-no-link),
# so that scripts/fuzz.sh reuses it and only links the fuzzer.
#
# TSan builds and runs the multi-threaded code only (TSAN_TARGETS below: executor, engine,
# admission queue, the server under its integration, fault and security tests); the
# single-threaded suites are ASan's. Debian's abseil is not instrumented,
# so TSan cannot see absl::Mutex at all: the tests run with tests/sanitizers/absl_tsan_shim.cc
# preloaded, which reports absl::Mutex, CondVar and Notification to TSan.
# tests/sanitizers/tsan.supp silences what remains inside gRPC's callback plumbing only (see
# the file).
#
# Environment: JOBS (build parallelism, default nproc), SANITIZER_TEST_TIMEOUT (per test,
# default 900 s). Prints the build and test time of each half.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
JOBS=${JOBS:-$(nproc)}
ROOT=$PWD

# configure_sanitized DIR SANITIZERS [extra cmake args...]
configure_sanitized() {
  local dir=$1 sanitize=$2
  shift 2
  cmake -S "$ROOT" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DPERTURBD_SANITIZE="$sanitize" -DPERTURBD_BUILD_BENCHMARKS=OFF -DPERTURBD_ENABLE_CUDA=OFF \
    "$@" >/dev/null
}

# The ASan+UBSan build, shared with scripts/fuzz.sh (same flags, or CMake rebuilds everything).
configure_asan() {
  configure_sanitized "$1" address,undefined \
    -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only -fno-sanitize-recover=all -fsanitize=fuzzer-no-link" \
    -DPERTURBD_BUILD_FUZZERS=ON
}

# run_ctest DIR LABELS_TO_EXCLUDE: every test built in DIR but those labels. Tests discovered
# for a target that this build skipped show up as <target>_NOT_BUILT: ignored.
run_ctest() {
  local dir=$1 exclude=$2
  (cd "$dir" && ctest --output-on-failure -j 2 -LE "$exclude" -E '_NOT_BUILT' \
     --timeout "${SANITIZER_TEST_TIMEOUT:-900}")
}

# ASan+UBSan: the server and its CLI, the engine's unit tests (noise, executor, estimators),
# the server's unit tests, the integration, fault and security tests, and the fuzz corpus
# replay. The per-oracle unit tests (single-threaded, exercised through the integration
# tests and the fuzzer) are left to the plain build to keep CI short.
ASAN_TARGETS=(perturbd perturbd-cli noise_test executor_test perturbed_optimizer_test
              tensor_codec_test request_translator_test admission_queue_test
              bearer_token_auth_test backend_router_test perturbd_integration_test
              perturbd_fault_test request_fuzzer_replay)

run_address() {
  local dir=${ASAN_BUILD_DIR:-build-asan}
  local start=$SECONDS
  echo "== ASan+UBSan: configure and build ($dir)"
  configure_asan "$dir"
  cmake --build "$dir" -j "$JOBS" --target "${ASAN_TARGETS[@]}"
  echo "== ASan+UBSan: ctest (build took $((SECONDS - start)) s)"
  local tests_start=$SECONDS
  # allocator_may_return_null: an impossible allocation throws std::bad_alloc as in production
  # (the server turns it into RESOURCE_EXHAUSTED) instead of aborting under ASan.
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:allocator_may_return_null=1 \
  LSAN_OPTIONS=suppressions=$ROOT/tests/sanitizers/lsan.supp:print_suppressions=0 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest "$dir" '^soak$'
  echo "== ASan+UBSan: passed (tests $((SECONDS - tests_start)) s, total $((SECONDS - start)) s)"
}

# TSan: the code that runs on several threads — the executor, the engine, the admission
# queue, the server with its clients — built and run alone. The single-threaded codec and
# translator suites are ASan's.
TSAN_TARGETS=(perturbd perturbd-cli executor_test perturbed_optimizer_test
              admission_queue_test perturbd_integration_test perturbd_fault_test)

run_thread() {
  local dir=${TSAN_BUILD_DIR:-build-tsan}
  local start=$SECONDS
  echo "== TSan: configure and build ($dir)"
  configure_sanitized "$dir" thread -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only"
  cmake --build "$dir" -j "$JOBS" --target "${TSAN_TARGETS[@]}"
  clang++ -std=c++20 -O1 -g -fPIC -shared -o "$dir/libabsl_tsan_shim.so" \
    "$ROOT/tests/sanitizers/absl_tsan_shim.cc" -labsl_synchronization -ldl
  echo "== TSan: ctest (build took $((SECONDS - start)) s)"
  local tests_start=$SECONDS
  # ignore_noninstrumented_modules: libc calls made from inside gRPC/protobuf/abseil (memcpy,
  # sendmsg, free) are not race-checked, only those from our instrumented code.
  LD_PRELOAD="$(cd "$dir" && pwd)/libabsl_tsan_shim.so" \
  TSAN_OPTIONS=suppressions=$ROOT/tests/sanitizers/tsan.supp:halt_on_error=1:second_deadlock_stack=1:report_signal_unsafe=0:ignore_noninstrumented_modules=1:allocator_may_return_null=1 \
    run_ctest "$dir" '^(soak|fuzz)$'
  echo "== TSan: passed (tests $((SECONDS - tests_start)) s, total $((SECONDS - start)) s)"
}

main() {
  case "${1:-all}" in
    address) run_address ;;
    thread) run_thread ;;
    all)
      run_address
      run_thread
      ;;
    *)
      echo "usage: $0 [address|thread|all]" >&2
      exit 2
      ;;
  esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
