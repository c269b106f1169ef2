#!/usr/bin/env bash
# Installs the dependencies, builds, and starts the perturbd server on its defaults
# (gRPC on 0.0.0.0:50051, metrics on 0.0.0.0:9464/metrics). Extra arguments go to perturbd.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh
exec build/server/perturbd "$@"
