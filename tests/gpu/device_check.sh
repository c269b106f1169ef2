#!/usr/bin/env bash
# The GPU check, in one go, on a machine with a CUDA device: configure and build only what the
# GPU tests and benchmark need, run `ctest -L gpu`, then the GPU benchmark (GPU vs 2-thread and
# all-thread CPU on large workloads). About 3-5 minutes on an H100 with 16 cores.
#
#   tests/gpu/device_check.sh [BUILD_DIR]        (default: build-gpu)
#   CUDA_ARCH=90 JOBS=16 tests/gpu/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build-gpu}
jobs=${JOBS:-16}
arch=${CUDA_ARCH:-90}

step() { printf '\n=== %s (%ds)\n' "$1" "$SECONDS"; }

step "device"
nvidia-smi -L || echo "nvidia-smi not found"

step "configure ($build, sm_$arch)"
generator=()
if command -v ninja >/dev/null; then generator=(-G Ninja); fi
cmake -S . -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DPERTURBD_ENABLE_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="$arch" \
  -DPERTURBD_BUILD_SERVER=OFF -DPERTURBD_BUILD_TESTS=ON -DPERTURBD_BUILD_BENCHMARKS=ON >/dev/null

step "build"
cmake --build "$build" -j"$jobs" --target gpu_backend_test gpu_pipeline_test gpu_benchmark

step "CPU host-path tests of the GPU code"
"$build"/tests/unit/perturbed/gpu_pipeline_test --gtest_brief=1

step "ctest -L gpu"
# A skipped GPU test is a failed check here: this script runs where a GPU must be.
if "$build"/tests/gpu/gpu_backend_test --gtest_filter='GpuTest.Reports*' 2>&1 | grep -q SKIPPED; then
  echo "GPU tests would be SKIPPED: no usable CUDA device" >&2
  exit 1
fi
ctest --test-dir "$build" -L gpu --output-on-failure --timeout 300

step "benchmark"
timeout 300 "$build"/bench/gpu_benchmark --reps=3

step "done"
