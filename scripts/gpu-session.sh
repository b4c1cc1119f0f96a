#!/usr/bin/env bash
# Issue 10's measurements on a lent GPU, as one prepared command: a session gets minutes of device time, so
# everything is built beforehand (build/Release, dist) and this only runs, in order of what matters most:
#   1. gpu-check: the tensor-core layout tests, then every op against the CPU;
#   2. bench:gpu in each precision (tf32, bf16, fp32): the paper's configuration, its table and op split;
#   3. the plain-PyTorch anchor (bench/torch-anchor.py) on the same GPU, for ratios measured in one session;
#   4. the paper's 64-epoch runs, ikun_v1 with SGD, then with Adam, as far as the budget lasts.
# Each step has its own time limit and log in OUT; summary.txt gets one line per step (exit status, seconds)
# as it ends, so a session cut short still brings back what it measured. A training run stopped by its limit
# gets SIGINT and saves its checkpoint (`ikun train --resume` continues it).
#
# Usage: scripts/gpu-session.sh [--budget SECONDS] [--smoke]
#   --budget  seconds for the whole session (default 540); later steps get what the earlier ones left
#   --smoke   tiny sizes everywhere (gpu-check --small, bench --smoke, a 1-epoch sample run), for the
#             emulated device (IKUN_CUDA_EMULATE=1) in tests
# OUT: the folder for the logs (the device tool's $OUT; default ./gpu-session). Run from the project root.
set -uo pipefail

budget=540 smoke=0
while [ $# -gt 0 ]; do
  case "$1" in
    --budget)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "gpu-session: --budget needs a positive whole number of seconds, got '${2:-}'" >&2; exit 2; }
      budget=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    *) echo "gpu-session: unknown flag '$1' (flags: --budget SECONDS, --smoke)" >&2; exit 2 ;;
  esac
done
for f in dist/bench/gpu-check.js dist/bench/gpu.js dist/lib/cli.js; do
  [ -f "$f" ] || { echo "gpu-session: $f is missing: run it from the project root after npm run build:ts (and build the addon)" >&2; exit 2; }
done
out=${OUT:-./gpu-session}
mkdir -p "$out" || { echo "gpu-session: cannot create the log folder '$out'" >&2; exit 2; }
summary="$out/summary.txt"
start=$(date +%s)
: > "$summary"

left() { echo $((budget - ($(date +%s) - start))); }

# step NAME LIMIT COMMAND...: runs COMMAND under min(LIMIT, what the budget has left), its output in OUT/NAME.log
# (skipped=1 where the budget had nothing left for it).
step() {
  local name=$1 limit=$2 remaining began rc
  shift 2
  remaining=$(left) skipped=0
  if [ "$remaining" -lt 5 ]; then
    echo "$name: skipped, the budget is spent" | tee -a "$summary"
    skipped=1
    return 0
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  began=$(date +%s)
  echo "== $name (limit ${limit} s): $*"
  timeout --signal=INT --kill-after=30 "$limit" "$@" > "$out/$name.log" 2>&1
  rc=$?
  local note=""
  [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ] && note=" (stopped at its limit)"
  echo "$name: exit $rc$note, $(( $(date +%s) - began )) s" | tee -a "$summary"
  tail -n 40 "$out/$name.log"
}

if [ "$smoke" -eq 1 ]; then
  # the emulated device runs each tensor-core lane's products one by one: fp32 keeps the smoke run to seconds
  check_flags=(--small --filter linear) precisions=(fp32) bench_flags=(--smoke) anchor_flags=(--smoke --data data/sample)
  train_flags=(--sample --subset 256 --channels 4 --epochs 1 --precision fp32)
else
  check_flags=() precisions=(tf32 bf16 fp32) bench_flags=() anchor_flags=() train_flags=(--epochs 64)
fi

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1
else
  echo "no nvidia-smi here" > "$out/gpu.txt"
fi
cat "$out/gpu.txt"

step gpu-check 150 node dist/bench/gpu-check.js "${check_flags[@]}"
for precision in "${precisions[@]}"; do
  step "bench-gpu-$precision" 90 node dist/bench/gpu.js --precision "$precision" "${bench_flags[@]}"
done
if command -v python3 > /dev/null; then
  step torch-anchor 90 python3 bench/torch-anchor.py --json "$out/torch-anchor.json" "${anchor_flags[@]}"
else
  echo "torch-anchor: skipped, no python3 here" | tee -a "$summary"
fi
for opt in sgd adam; do
  rm -rf "$out/train-$opt"
  step "train-$opt" 600 node dist/lib/cli.js train --device cuda --init ikun_v1 --opt "$opt" --no-progress \
    --out "$out/train-$opt" "${train_flags[@]}"
  [ "$skipped" -eq 1 ] && continue
  # the run's figures from its metrics.jsonl: epochs done, last and best test accuracy, mean seconds
  node -e '
    const fs = require("fs"), file = process.argv[1] + "/metrics.jsonl";
    const rows = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
    if (rows.length === 0) { console.log(`${process.argv[2]}: no epoch finished`); process.exit(0); }
    const last = rows[rows.length - 1], best = Math.max(...rows.map((r) => r.test_acc));
    const mean = (f) => rows.reduce((s, r) => s + f(r), 0) / rows.length;  // epoch_s includes the test pass
    console.log(`${process.argv[2]}: ${rows.length} epochs, test accuracy last ${(100 * last.test_acc).toFixed(2)}% best ${(100 * best).toFixed(2)}%, ` +
      `mean training epoch ${mean((r) => r.epoch_s - r.test_s).toFixed(3)} s, test pass ${mean((r) => r.test_s).toFixed(3)} s`);
  ' "$out/train-$opt" "train-$opt" | tee -a "$summary"
done
echo "gpu-session: $(( $(date +%s) - start )) s of a ${budget} s budget" | tee -a "$summary"
