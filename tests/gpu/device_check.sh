#!/usr/bin/env bash
# The GPU check in two halves, because a lent GPU machine (the `device` tool) has CUDA, CMake
# and a driver but none of this project's libraries (gRPC, abseil, GoogleTest, COIN-OR):
#
#   tests/gpu/device_check.sh pack [BUILD_DIR]   here: build the GPU tests, the server and the
#                                                GPU benchmark (CUDA on, sm_90), and copy them
#                                                with every shared library they need outside
#                                                glibc/libstdc++ into .gpu/ (about 50 MB;
#                                                ignore it: echo /.gpu/ >> .git/info/exclude)
#   bash .gpu/device_check.sh run                there (carry .gpu): the backend, router and
#                                                server GPU tests, compute-sanitizer memcheck
#                                                and racecheck, then bench/gpu_benchmark.
#
# On a machine that has both a GPU and the build dependencies, `pack` then `run` in one place
# does the same. `run` takes under a minute on an H100 (its machine start is extra).
set -euo pipefail

mode=${1:-}
case "$mode" in
pack)
  cd "$(dirname "$0")/../.."
  build=${2:-build-gpu}
  generator=()
  if command -v ninja >/dev/null; then generator=(-G Ninja); fi
  cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
    -DPERTURBD_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
    -DPERTURBD_BUILD_SERVER=ON -DPERTURBD_BUILD_TESTS=ON -DPERTURBD_BUILD_BENCHMARKS=ON >/dev/null
  cmake --build "$build" -j"${JOBS:-$(nproc)}" --target perturbd backend_router_test \
    gpu_backend_test server_gpu_test gpu_benchmark
  rm -rf .gpu && mkdir -p .gpu/bin .gpu/lib
  cp "$build"/server/perturbd "$build"/server/backend_router_test \
    "$build"/tests/gpu/gpu_backend_test "$build"/tests/gpu/server_gpu_test \
    "$build"/bench/gpu_benchmark .gpu/bin/
  cp "$0" .gpu/device_check.sh
  for b in .gpu/bin/*; do ldd "$b" | awk '/=>/ {print $1, $3}'; done | sort -u |
    grep -v -E '^(libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|libz)\.so' |
    while read -r name path; do cp -L "$path" ".gpu/lib/$name"; done
  du -sh .gpu
  ;;
run)
  cd "$(dirname "$0")"
  [[ -x bin/gpu_backend_test ]] || { echo "run: no bin/ here; pack first" >&2; exit 2; }
  export LD_LIBRARY_PATH=$PWD/lib:${LD_LIBRARY_PATH:-}
  export PERTURBD_SERVER_BINARY=$PWD/bin/perturbd
  out=${OUT:-/tmp/device_check}; mkdir -p "$out"
  step() { printf '\n=== %s (%ds)\n' "$1" "$SECONDS"; }
  failed=0
  check() { "$@" || { echo "FAILED: $*"; failed=1; }; }
  step device; nvidia-smi -L || true
  for b in bin/*; do if ldd "$b" | grep -q "not found"; then echo "missing libraries: $b"; fi; done
  # A skipped GPU test is a failed check here: this runs where a GPU must be.
  if bin/gpu_backend_test --gtest_filter='GpuTest.Reports*' 2>&1 | grep -q SKIPPED; then
    echo "GPU tests would be SKIPPED: no usable CUDA device" >&2
    exit 1
  fi
  step backend_router_test; check timeout 60 bin/backend_router_test --gtest_brief=1
  step gpu_backend_test; check timeout 120 bin/gpu_backend_test --gtest_brief=1
  step server_gpu_test; check timeout 180 bin/server_gpu_test --gtest_brief=1
  step "compute-sanitizer memcheck"
  check timeout 300 compute-sanitizer --tool memcheck --error-exitcode=9 \
    bin/gpu_backend_test --gtest_brief=1
  step "compute-sanitizer racecheck"
  check timeout 300 compute-sanitizer --tool racecheck --error-exitcode=9 \
    bin/gpu_backend_test --gtest_brief=1 --gtest_filter='Oracles/*'
  step benchmark; check timeout 300 bin/gpu_benchmark --reps=3 | tee "$out/gpu_benchmark.log"
  step done
  exit $failed
  ;;
*)
  echo "usage: $0 pack [BUILD_DIR] | run" >&2
  exit 2
  ;;
esac
