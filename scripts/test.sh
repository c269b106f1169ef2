#!/usr/bin/env bash
# Installs the dependencies, builds, and runs every test: C++ unit and integration tests
# (ctest, against the real server binary on loopback) and the Python client tests (pytest,
# against the real server, through the package installed into a fresh venv).
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
