#!/usr/bin/env bash
# Makes the local base image docker.io/library/debian:bookworm-slim for podman, so that the
# Dockerfile's unchanged `FROM debian:bookworm-slim` resolves where no image can be pulled.
#
#   deploy/scripts/base-image.sh            make it unless podman already has it
#   deploy/scripts/base-image.sh --force    debootstrap it again and replace it
#
# How: debootstrap --variant=minbase bookworm from the Debian mirror this machine's apt uses
# (/etc/apt/sources.list.d/*.sources or sources.list), slimmed like the official -slim image
# (no docs/man/locales, apt lists and caches removed), with this machine's apt sources; packed
# into a tarball that is cached (default /var/cache/perturbd-deploy, override with
# PERTURBD_BASE_CACHE) so that debootstrap runs once per machine; `podman import`, then tagged
# localhost/debian:bookworm and docker.io/library/debian:bookworm-slim.
#
# The base image and its tarball are a per-machine cache: deploy/test.sh does not delete them.
# Needs root, debootstrap and podman (deploy/scripts/install-tools.sh installs them).
set -euo pipefail

TAG=docker.io/library/debian:bookworm-slim
LOCAL_TAG=localhost/debian:bookworm
CACHE_DIR=${PERTURBD_BASE_CACHE:-/var/cache/perturbd-deploy}
TARBALL=$CACHE_DIR/debian-bookworm-minbase.tar
force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" = 0 ] && podman image exists "$TAG"; then
  echo "base image: $TAG present ($(podman image inspect --format '{{.Id}}' "$TAG" | cut -c1-12))"
  exit 0
fi

# The Debian mirror and suites apt uses here (deb822 .sources first, then one-line lists).
mirror_from_apt() {
  local f uri
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri=$(awk 'tolower($1)=="uris:" {for (i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && { echo "${uri%/}"; return; }
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri=$(awk '$1=="deb" {for (i=2;i<=NF;i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) {print $i; exit}}' "$f")
    [ -n "$uri" ] && { echo "${uri%/}"; return; }
  done
  echo "http://deb.debian.org/debian"
}

if [ "$force" = 1 ] || [ ! -s "$TARBALL" ]; then
  MIRROR=${PERTURBD_DEBIAN_MIRROR:-$(mirror_from_apt)}
  mkdir -p "$CACHE_DIR"
  work=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  rootfs=$work/rootfs
  echo "base image: debootstrap --variant=minbase bookworm from $MIRROR (a few minutes, once)"
  start=$SECONDS
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
  }
  # apt sources: this machine's Debian entries (bookworm, -updates, -security) when it has a
  # deb822 file for them, else the mirror's bookworm main.
  rm -f "$rootfs/etc/apt/sources.list"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    cp /etc/apt/sources.list.d/debian.sources "$rootfs/etc/apt/sources.list.d/debian.sources"
  else
    printf 'deb %s bookworm main\n' "$MIRROR" >"$rootfs/etc/apt/sources.list"
  fi
  # Slim it the way the official -slim image is: no docs, man pages or locales from now on,
  # apt cleans up after itself.
  cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
  cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' \
    >"$rootfs/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'APT::AutoRemove::SuggestsImportant "false";\n' \
    >"$rootfs/etc/apt/apt.conf.d/docker-autoremove-suggests"
  find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda,locale}/* \
         "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
         "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/tmp/* \
         "$rootfs"/etc/hostname "$rootfs"/etc/resolv.conf "$rootfs"/etc/machine-id
  : >"$rootfs/etc/machine-id"
  tar --numeric-owner --xattrs -C "$rootfs" -cf "$TARBALL.tmp" .
  mv "$TARBALL.tmp" "$TARBALL"
  echo "base image: rootfs cached in $TARBALL ($(du -h "$TARBALL" | cut -f1), $((SECONDS - start)) s)"
fi

old=$(podman image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)
id=$(podman import -q --change 'CMD ["bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
       --message "debootstrap --variant=minbase bookworm (perturbd deploy/scripts/base-image.sh)" \
       "$TARBALL" "$LOCAL_TAG")
podman tag "$id" "$TAG"
# A replaced base image (--force) has no tag left: remove it, by id.
if [ -n "$old" ] && [ "$old" != "${id#sha256:}" ]; then
  podman rmi "$old" >/dev/null 2>&1 || true
fi
echo "base image: $TAG = $(echo "$id" | sed 's/^sha256://' | cut -c1-12)"
