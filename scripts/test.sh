#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test: C++ unit and integration tests
# (ctest, against the real server binary on loopback) and the Python client tests (pytest,
# against the real server, through the package installed into a fresh venv), the deployment
# checks, then the unit, integration and fault tests again under AddressSanitizer+UBSan and
# ThreadSanitizer (clang, their own build directories) and a bounded libFuzzer run.
#
# Environment: BUILD_DIR (default build; the sanitizer builds go to $BUILD_DIR-asan and
# $BUILD_DIR-tsan), PERTURBD_SKIP_DEPLOY=1, PERTURBD_SKIP_SANITIZERS=1 (local runs only: CI runs
# them), FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}

echo "== C++ tests (ctest)"
(cd "$BUILD_DIR" && ctest --output-on-failure -j 2 --timeout 600)

if [ -d client/python ] && [ -f client/python/pyproject.toml ]; then
  echo "== Python tests (pytest, installed package)"
  VENV="$PWD/$BUILD_DIR/venv"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
  "$VENV/bin/python" -m pip install --no-build-isolation --no-deps --quiet ./client/python
  # Run from outside the source tree so that the installed package is the one imported.
  (cd "$BUILD_DIR" && PERTURBD_BIN="$PWD/server/perturbd" PERTURBD_REQUIRE_SERVER=1 PERTURBD_EXPECT_INSTALLED=1 \
     "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$OLDPWD/tests/python")
fi

echo "== Deployment: image, manifests, containers (deploy/test.sh)"
if [ "${PERTURBD_SKIP_DEPLOY:-0}" = 1 ]; then
  echo "skipped (PERTURBD_SKIP_DEPLOY=1)"
else
  PERTURBD_BIN="$PWD/$BUILD_DIR/server/perturbd" PERTURBD_CLI="$PWD/$BUILD_DIR/client/cpp/perturbd-cli" \
    ./deploy/test.sh
fi

echo "== Sanitizers (ASan+UBSan, TSan) and fuzzing (scripts/sanitizers.sh, scripts/fuzz.sh)"
if [ "${PERTURBD_SKIP_SANITIZERS:-0}" = 1 ]; then
  echo "skipped (PERTURBD_SKIP_SANITIZERS=1)"
else
  sanitizers_start=$SECONDS
  ASAN_BUILD_DIR="$BUILD_DIR-asan" TSAN_BUILD_DIR="$BUILD_DIR-tsan" ./scripts/sanitizers.sh all
  # Reuses the ASan+UBSan build: only the fuzzer binary is compiled and linked.
  ASAN_BUILD_DIR="$BUILD_DIR-asan" FUZZ_SECONDS="${FUZZ_SECONDS:-60}" ./scripts/fuzz.sh
  echo "== Sanitizers and fuzzing took $((SECONDS - sanitizers_start)) s"
fi
