# perturbd: the gRPC server (and the perturbd-cli client, for health checks) on Debian 12.
#
#   podman build -t perturbd:0.1.0 .            (or docker build; BuildKit not required)
#   podman run --rm -p 127.0.0.1:50051:50051 -p 127.0.0.1:9464:9464 perturbd:0.1.0 --threads=4
#
# Stage 1 compiles the server and the CLI only (no tests, no benchmarks) against Debian's -dev
# packages. Stage 2 is debian:bookworm-slim with only the shared libraries the two binaries
# load: the build stage lists them (ldd → dpkg -S) and stage 2 installs exactly those packages.
# Arguments after the image name go to perturbd (ENTRYPOINT); see `perturbd --help`.
#
# Build arguments:
#   JOBS                   parallel compile jobs (default 2)
#   BUILD_TYPE             CMake build type (default RelWithDebInfo, the tested one, without -g)
#   CMAKE_ARGS             extra CMake arguments, e.g. -DPERTURBD_ENABLE_CUDA=ON
#   EXTRA_BUILD_PACKAGES   extra Debian packages for the build stage (e.g. nvidia-cuda-toolkit)
#   APT_COMPONENTS         extra Debian archive components for both stages (e.g. "contrib
#                          non-free" for CUDA); the runtime stage then finds the CUDA runtime
#                          libraries the binary links like any other library
#   VERSION, REVISION      image labels
# HEALTHCHECK is kept by docker and by `podman build --format docker` (OCI images drop it).

FROM debian:bookworm-slim AS build

ARG DEBIAN_FRONTEND=noninteractive
ARG EXTRA_BUILD_PACKAGES=""
ARG APT_COMPONENTS=""
# hadolint ignore=DL3008
RUN if [ -n "${APT_COMPONENTS}" ]; then \
      sed -i "s/^Components: main\$/Components: main ${APT_COMPONENTS}/" /etc/apt/sources.list.d/*.sources; \
    fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      cmake ninja-build g++ pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler libabsl-dev \
      prometheus-cpp-dev coinor-libclp-dev coinor-libcbc-dev ${EXTRA_BUILD_PACKAGES} \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY proto/ proto/
COPY solvers/ solvers/
COPY server/ server/
COPY client/cpp/ client/cpp/
COPY examples/ examples/

ARG JOBS=2
ARG BUILD_TYPE=RelWithDebInfo
ARG CMAKE_ARGS=""
# RelWithDebInfo without -g: the tested build's code (-O2; -g never changes code generation),
# compiled faster, nothing to strip but symbols.
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE="${BUILD_TYPE}" \
      -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O2 -DNDEBUG" \
      -DPERTURBD_BUILD_TESTS=OFF -DPERTURBD_BUILD_BENCHMARKS=OFF ${CMAKE_ARGS} \
 && cmake --build /build -j "${JOBS}" --target perturbd perturbd-cli \
 && install -D -m 0755 -s /build/server/perturbd /out/usr/local/bin/perturbd \
 && install -D -m 0755 -s /build/client/cpp/perturbd-cli /out/usr/local/bin/perturbd-cli \
 && rm -rf /build

# The Debian packages that own the shared libraries the binaries load (never -dev packages).
RUN for lib in $(ldd /out/usr/local/bin/* | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u); do \
      dpkg -S "*/$(basename "$lib")" | cut -d: -f1 | grep -v -- '-dev$' | head -n 1 \
        || { echo "no package owns $lib" >&2; exit 1; }; \
    done | sort -u > /out/runtime-packages.txt \
 && echo "runtime packages:" $(cat /out/runtime-packages.txt)


FROM debian:bookworm-slim

ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="perturbd" \
      org.opencontainers.image.description="Differentiable perturbed optimizers served over gRPC (Berthet et al., NeurIPS 2020)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/debian:bookworm-slim" \
      io.perturbd.ports.grpc="50051" \
      io.perturbd.ports.metrics="9464"

ARG DEBIAN_FRONTEND=noninteractive
ARG APT_COMPONENTS=""
COPY --from=build /out/runtime-packages.txt /usr/local/share/perturbd/runtime-packages.txt
# hadolint ignore=DL3008
RUN if [ -n "${APT_COMPONENTS}" ]; then \
      sed -i "s/^Components: main\$/Components: main ${APT_COMPONENTS}/" /etc/apt/sources.list.d/*.sources; \
    fi \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      $(cat /usr/local/share/perturbd/runtime-packages.txt) \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 perturbd \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin perturbd

COPY --from=build /out/usr/local/bin/ /usr/local/bin/

# Numeric user, so that Kubernetes' runAsNonRoot can verify it.
USER 10001:10001
EXPOSE 50051 9464
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --retries=3 \
  CMD ["perturbd-cli", "health", "--address=127.0.0.1:50051", "--timeout=3"]
ENTRYPOINT ["perturbd"]
