#!/usr/bin/env bash
# Builds the engine's native helpers (the per-container monitor `shoal-shim`) with gcc.
# Output: packages/engine/native/bin/shoal-shim (git-ignored). Rebuilds only when the source is newer.
set -euo pipefail
cd "$(dirname "$0")/.."
src=packages/engine/native/shim.c
out=packages/engine/native/bin/shoal-shim
mkdir -p "$(dirname "$out")"
if [ -x "$out" ] && [ "$out" -nt "$src" ] && [ "${1:-}" != "--force" ]; then exit 0; fi
# Static and small: the shim's resident memory is one of the engine's goals (<= 3 MB).
flags=(-std=gnu11 -O2 -Wall -Wextra -Wno-unused-result -s -fno-asynchronous-unwind-tables)
if ! gcc "${flags[@]}" -static -o "$out.tmp" "$src" 2>/dev/null; then
  gcc "${flags[@]}" -o "$out.tmp" "$src"
fi
mv "$out.tmp" "$out"
printf 'build-native: %s\n' "$out" >&2
