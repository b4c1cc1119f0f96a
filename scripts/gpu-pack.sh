#!/usr/bin/env bash
# Packs what scripts/gpu-session.sh needs on a lent GPU machine into .device/, with the workplace's
# device-pack tool (../shared/tools/device-pack.sh): node, the built addon (build/Release), dist/ and, inside
# dist/, the production npm packages (dist/node_modules: Node resolves dist/'s imports there), and Fashion-MNIST
# as plain IDX files in build/fashion-mnist (gpu-session.sh reads them there), since that machine has no
# Node.js, no network and none of the ignored folders of this checkout. The data travel inside the xz payload
# rather than as the Debian package's .gz files (26.4 MB against 30.9): a call carries at most 64 MiB, the
# checkout's tracked files included, and node (24 MB), the addon and the packages take most of the rest.
# Build first: npx cmake-js compile (the real CUDA build, not the emulated one) and npm run build:ts.
# Usage: scripts/gpu-pack.sh [PATH ...]   (extra paths to pack, e.g. build-emulated/Release/ikun.node for a dry
# run of the pack here). Then the device tool's run, with carry [".device"] and a command such as
#   source .device/env.sh && scripts/gpu-session.sh --budget 420
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
pack_tool=${IKUN_DEVICE_PACK:-$root/../shared/tools/device-pack.sh}
[ -x "$pack_tool" ] || { echo "gpu-pack: the device-pack tool is not at $pack_tool (set IKUN_DEVICE_PACK to it)" >&2; exit 2; }
[ -f build/Release/ikun.node ] || { echo "gpu-pack: build/Release/ikun.node is missing: run npx cmake-js compile first" >&2; exit 2; }
[ -f dist/bench/gpu.js ] && [ -f dist/lib/cli.js ] || { echo "gpu-pack: dist/ is missing or incomplete: run npm run build:ts first" >&2; exit 2; }
node -e 'const c = require("./build/Release/ikun.node").buildInfo().cuda; if (!c.compiled || c.emulated) process.exit(3)' || {
  rc=$?
  [ "$rc" -eq 3 ] && echo "gpu-pack: build/Release/ikun.node is not a CUDA build (nvcc not found, or the emulated one): nothing would run on the GPU" >&2
  [ "$rc" -ne 3 ] && echo "gpu-pack: build/Release/ikun.node does not load (above)" >&2
  exit 2
}

# The production packages alone (no vitest, no TypeScript): a few MB compressed, within the 64 MiB a call carries.
staging=$(mktemp -d)
trap 'rm -rf "$staging" dist/node_modules' EXIT
cp package.json package-lock.json "$staging/"
(cd "$staging" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline > npm.log 2>&1) ||
  { echo "gpu-pack: npm ci --omit=dev failed:" >&2; cat "$staging/npm.log" >&2; exit 1; }
rm -rf dist/node_modules
mv "$staging/node_modules" dist/node_modules

debian=/usr/share/datasets/fashion-mnist
if [ ! -f "$debian/train-images-idx3-ubyte.gz" ]; then
  apt-get install -y dataset-fashion-mnist > /dev/null 2>&1 || { apt-get update > /dev/null && apt-get install -y dataset-fashion-mnist > /dev/null; } ||
    { echo "gpu-pack: Fashion-MNIST is not in $debian and apt-get could not install dataset-fashion-mnist" >&2; exit 1; }
fi
mkdir -p build/fashion-mnist
for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
  if [ ! -f "build/fashion-mnist/$f" ]; then
    gunzip -c "$debian/$f.gz" > "build/fashion-mnist/$f.tmp"
    mv "build/fashion-mnist/$f.tmp" "build/fashion-mnist/$f"
  fi
done
rm -rf .device/fashion-mnist  # an earlier pack's --data copy, which would travel twice
"$pack_tool" build/Release build/fashion-mnist dist "$@"
# what travels: .device and the files git does not ignore (tracked or not)
total=$(( $(du -sb .device | cut -f1) + $(git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -n 1 | cut -f1) ))
echo "gpu-pack: $((total / 1048576)) MiB travel with the checkout's files (the limit is 64 MiB)"
[ "$total" -le $((64 * 1048576)) ] || { echo "gpu-pack: over the device tool's 64 MiB" >&2; exit 1; }
