#!/usr/bin/env bash
# Prepares a fresh Debian machine (as root) to build, run and test Shoal. Idempotent: every
# step checks before it acts, so running it again is cheap.
#   1. Debian packages the project runs on (runc, iproute2, nftables, busybox-static, ...)
#   2. npm dependencies, including Node 24 (npm package `node`) used by every npm script
#   3. the TypeScript build and native helpers
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "setup: must run as root (Shoal manages namespaces, mounts and cgroups)" >&2
  exit 1
fi

say() { printf 'setup: %s\n' "$*" >&2; }
start=$(date +%s)

# Debian packages, one reason each:
#   runc            the container runtime the engine drives
#   iproute2        ip/bridge/tc: lab namespaces, veths, bridges, VXLAN, netem
#   nftables        VIP load balancing and lab forwarding rules (no IPVS in these kernels); its
#                   libnftables1 is what the node's nft helper (shoal-nft) loads
#   busybox-static  offline test images and in-namespace tools (ping, nc, httpd)
#   docker-registry a real OCI distribution registry for labs and tests
#   etcd-server etcd-client  the yardstick in the raft benchmark (and the etcd store backend)
#   zstd            zstd layers for the test images
#   tini            `--init` for containers (Docker's docker-init is tini)
#   curl            registry checks in tests and scripts
#   iputils-ping    ping with timing output for the lab tests
#   psmisc procps   fuser/pkill/ps for cleanup of crashed labs
#   kmod            modprobe of overlay/vxlan where the kernel has modules
#   gcc libc6-dev   builds the tiny per-container monitor (shim) and the node's nft helper
#   util-linux      nsenter, unshare, mount
#   openssl apache2-utils  test token server signing, htpasswd for registry auth tests
#   python3-minimal the lab's delay relay where the kernel has no netem qdisc
#   skopeo          an independent reader that checks the test images in the testkit tests
#   protobuf-compiler libprotobuf-dev  protoc and descriptor.proto for `npm run proto` and its
#                   drift test (packages/api generates its TypeScript with the ts-proto plugin)
#   golang-go       builds the static Go program of the seccomp test (crypto/rand, getrandom):
#                   every Go image depends on getrandom being allowed
#   iperf3          bulk TCP throughput of the overlay against the underlay (`npm run bench:network`)
#   git ca-certificates
pkgs=(runc iproute2 nftables busybox-static docker-registry etcd-server etcd-client zstd tini curl
  iputils-ping psmisc procps kmod gcc libc6-dev util-linux openssl apache2-utils skopeo python3-minimal
  protobuf-compiler libprotobuf-dev golang-go iperf3 git ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian starts services on install; the project starts its own instances.
for svc in docker-registry etcd; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" >/dev/null 2>&1 || true
  fi
done

# npm dependencies (Node 24 comes as the `node` package into node_modules/.bin).
stamp=node_modules/.shoal-lock-hash
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing npm dependencies"
  # The lock file is complete (every optional platform binding listed), so `npm ci` installs
  # exactly it and never rewrites it: a fresh clone stays clean after set-up (CI checks).
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
export PATH="$PWD/node_modules/.bin:$PATH"
say "node $(node --version)"

say "building"
npm run --silent build
# Bins of workspace packages are linked by npm only when their targets exist, i.e. after a build.
chmod +x packages/cli/dist/main.js packages/daemon/dist/main.js
[ -e node_modules/.bin/shoal ] && [ -e node_modules/.bin/shoald ] || npm rebuild --ignore-scripts --loglevel=error >/dev/null
if [ -x scripts/build-native.sh ]; then scripts/build-native.sh; fi

say "ready in $(( $(date +%s) - start )) s"
