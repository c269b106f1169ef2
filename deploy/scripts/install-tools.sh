#!/usr/bin/env bash
# Installs what deploy/test.sh needs beyond scripts/install-deps.sh. Idempotent and cached:
#   1. Debian packages for containers: podman, buildah, debootstrap, runc and friends (apt-get);
#   2. Debian's kubectl (kubernetes-client) and promtool (prometheus) unpacked into
#      deploy/.tools/ (apt-get download + dpkg -x: nothing is installed system-wide, no
#      service is started, and a kubectl that is already on the machine stays untouched);
#   3. the npm tools of deploy/tools/package.json + package-lock.json (dockerfilelint,
#      dockerfile-utils, kubernetes-models, TypeScript, yaml) into deploy/.npm/ with `npm ci`.
# deploy/.tools and deploy/.npm are git-ignored; delete them to start afresh.
# Run as root (CI is root). Needs the machine's Node.js/npm for step 3.
set -euo pipefail
cd "$(dirname "$0")/.."   # deploy/
DEPLOY=$PWD

apt_updated=0
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then
    apt-get update -qq
    apt_updated=1
  fi
}

# 1. Container packages.
packages=(podman buildah debootstrap uidmap slirp4netns fuse-overlayfs runc catatonit
          containernetworking-plugins iptables curl ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-tools: apt-get install ${missing[*]}"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. kubectl and promtool from Debian, unpacked locally (versions pinned by the distribution).
TOOLS=$DEPLOY/.tools
declare -A want=([kubernetes-client]=kubectl [prometheus]=promtool)
mkdir -p "$TOOLS/bin"
for pkg in "${!want[@]}"; do
  tool=${want[$pkg]}
  version=$(apt-cache policy "$pkg" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$version" ] || [ "$version" = "(none)" ]; then
    apt_update_once
    version=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2}')
  fi
  stamp=$TOOLS/$tool.version
  if [ -x "$TOOLS/bin/$tool" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    continue
  fi
  echo "install-tools: $tool from Debian's $pkg $version -> deploy/.tools/bin"
  tmp=$(mktemp -d "$TOOLS/unpack.XXXXXX")
  # apt's sandbox user cannot write into this directory: download as root.
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg=$version")
  dpkg -x "$tmp/${pkg}"_*.deb "$tmp/root"
  install -m 0755 "$tmp/root/usr/bin/$tool" "$TOOLS/bin/$tool"
  rm -rf "$tmp"
  echo "$version" >"$stamp"
done

# 3. npm tools, exactly as locked.
NPM=$DEPLOY/.npm
lock_sum=$(cat tools/package.json tools/package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$NPM/.lock-sum" 2>/dev/null)" != "$lock_sum" ] || [ ! -d "$NPM/node_modules" ]; then
  command -v npm >/dev/null || { echo "install-tools: npm is required (Node.js 18+)" >&2; exit 1; }
  echo "install-tools: npm ci -> deploy/.npm"
  mkdir -p "$NPM"
  cp tools/package.json tools/package-lock.json "$NPM/"
  (cd "$NPM" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_sum" >"$NPM/.lock-sum"
fi
echo "install-tools: podman $(podman --version | awk '{print $3}'), kubectl $("$TOOLS/bin/kubectl" version --client --short 2>/dev/null | awk '{print $3}'), promtool $("$TOOLS/bin/promtool" --version 2>&1 | awk 'NR==1 {print $3}'), node $(node --version)"
