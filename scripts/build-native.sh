#!/usr/bin/env bash
# Builds the native helpers with gcc (outputs git-ignored; each rebuilt only when its source is
# newer, or with --force):
#   packages/engine/native/bin/shoal-shim   the per-container monitor (static)
#   packages/network/native/bin/shoal-nft   the node's nftables helper (dynamic: it dlopens
#                                           libnftables.so.1 at run time)
set -euo pipefail
cd "$(dirname "$0")/.."
flags=(-std=gnu11 -O2 -Wall -Wextra -Wno-unused-result -s -fno-asynchronous-unwind-tables)

src=packages/engine/native/shim.c
out=packages/engine/native/bin/shoal-shim
mkdir -p "$(dirname "$out")"
if ! { [ -x "$out" ] && [ "$out" -nt "$src" ] && [ "${1:-}" != "--force" ]; }; then
  # Static and small: the shim's resident memory is one of the engine's goals (<= 3 MB).
  if ! gcc "${flags[@]}" -static -o "$out.tmp" "$src" 2>/dev/null; then
    gcc "${flags[@]}" -o "$out.tmp" "$src"
  fi
  mv "$out.tmp" "$out"
  printf 'build-native: %s\n' "$out" >&2
fi

src=packages/network/native/nft-helper.c
out=packages/network/native/bin/shoal-nft
mkdir -p "$(dirname "$out")"
if ! { [ -x "$out" ] && [ "$out" -nt "$src" ] && [ "${1:-}" != "--force" ]; }; then
  gcc "${flags[@]}" -o "$out.tmp" "$src"
  mv "$out.tmp" "$out"
  printf 'build-native: %s\n' "$out" >&2
fi
