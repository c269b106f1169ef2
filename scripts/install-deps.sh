#!/usr/bin/env bash
# Installs everything perturbd needs to build, run and test, from Debian 12's own repositories.
# Run as root. Idempotent: a second run installs nothing new.
set -euo pipefail
packages=(
  # build
  cmake ninja-build g++ pkg-config
  # C++ libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev
  prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  coinor-libclp-dev coinor-libcbc-dev
  # Python client, its tests and the in-process peer
  python3 python3-venv python3-pip python3-setuptools python3-wheel python3-grpcio
  python3-grpc-tools python3-protobuf python3-numpy python3-scipy python3-torch python3-pytest
  python3-sklearn
  # tools used by the tests (openssl makes the TLS test certificates at test time)
  curl openssl
  # sanitizer builds and the fuzzer (scripts/sanitizers.sh, scripts/fuzz.sh): clang, its
  # runtime libraries (ASan, UBSan, TSan, libFuzzer) and llvm-symbolizer for readable reports
  clang libclang-rt-14-dev llvm
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
