#!/usr/bin/env bash
# Issue 10's measurements on a lent GPU, as one prepared command: a session gets minutes of device time, so
# everything is built beforehand (build/Release, dist) and this only runs, in order of what matters most:
#   1. gpu-check: the tensor-core layout tests, then every op against the CPU;
#   2. bench:gpu in each precision (tf32, bf16, fp32): the paper's configuration, its table and op split;
#   3. the plain-PyTorch anchor (bench/torch-anchor.py) on the same GPU, for ratios measured in one session;
#   4. the paper's 64-epoch runs, ikun_v1 with SGD, then with Adam, as far as the budget lasts.
# Each step has its own time limit. OUT gets five files, within what the device tool brings back (8 files of
# 16 MiB, no folders needed): summary.txt, one line per step as it ends (exit status, seconds; accuracy and
# epoch seconds of the training runs), so a session cut short still brings back what it measured;
# session.log, every step's output under a header; torch-anchor.json; train-sgd.jsonl and train-adam.jsonl,
# the runs' metrics. The run folders themselves (checkpoints of 100 MB) stay in WORK. A training run stopped
# by its limit gets SIGINT and saves its checkpoint (`ikun train --resume WORK/train-sgd` continues it).
#
# Usage: scripts/gpu-session.sh [--budget SECONDS] [--steps LIST] [--smoke]
#   --budget  seconds for the whole session (default 540); later steps get what the earlier ones left
#   --steps   which of check,bench,anchor,train,sanitize to run, comma-separated (default the first four), e.g.
#             a first short call with check,bench and a second with anchor,train; sanitize (not a default) runs
#             gpu-check's small shapes under compute-sanitizer's memcheck and racecheck (where the machine allows it)
#   --smoke   tiny sizes everywhere (gpu-check --small, bench --smoke, a 1-epoch sample run), for the
#             emulated device (IKUN_CUDA_EMULATE=1) in tests
# OUT: the folder for what comes back (the device tool's $OUT; default ./gpu-session); WORK: the run folders
# (default /tmp/ikun-gpu-session). A train step starts its run afresh in WORK (a run stopped at its limit can be
# continued by hand: ikun train --resume WORK/train-sgd).
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 2  # the project root: dist/, bench/ and build/ are read from there

budget=540 smoke=0 steps=check,bench,anchor,train
while [ $# -gt 0 ]; do
  case "$1" in
    --steps)
      [[ "${2:-}" =~ ^(check|bench|anchor|train|sanitize)(,(check|bench|anchor|train|sanitize))*$ ]] ||
        { echo "gpu-session: --steps takes a comma-separated list of check, bench, anchor, train and sanitize, got '${2:-}'" >&2; exit 2; }
      steps=$2; shift 2 ;;
    --budget)
      [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "gpu-session: --budget needs a positive whole number of seconds, got '${2:-}'" >&2; exit 2; }
      budget=$2; shift 2 ;;
    --smoke) smoke=1; shift ;;
    *) echo "gpu-session: unknown flag '$1' (flags: --budget SECONDS, --steps LIST, --smoke)" >&2; exit 2 ;;
  esac
done
for f in dist/bench/gpu-check.js dist/bench/gpu.js dist/lib/cli.js; do
  [ -f "$f" ] || { echo "gpu-session: $f is missing: build the addon and run npm run build:ts first" >&2; exit 2; }
done
# scripts/gpu-pack.sh brings Fashion-MNIST as plain IDX files in build/fashion-mnist
if [ -z "${IKUN_DATA:-}" ] && [ -f build/fashion-mnist/train-images-idx3-ubyte ]; then export IKUN_DATA=$PWD/build/fashion-mnist; fi
out=${OUT:-./gpu-session} work=${WORK:-/tmp/ikun-gpu-session}
mkdir -p "$out" "$work" || { echo "gpu-session: cannot create the folders '$out' and '$work'" >&2; exit 2; }
summary="$out/summary.txt" log="$out/session.log"
start=$(date +%s)
: > "$summary"
: > "$log"
echo "data: ${IKUN_DATA:-not set (the Debian folder, else the bundled sample)}" | tee -a "$log"

left() { echo $((budget - ($(date +%s) - start))); }
wanted() { [[ ",$steps," == *",$1,"* ]]; }

# step NAME LIMIT COMMAND...: runs COMMAND under min(LIMIT, what the budget has left), its output in WORK/NAME.log
# and under a header in session.log (skipped=1 where the budget had nothing left for it).
step() {
  local name=$1 limit=$2 remaining began rc
  shift 2
  # what the budget leaves, less the grace of a stopped step (--kill-after) and the summary after it
  remaining=$(( $(left) - 20 )) skipped=0
  if [ "$remaining" -lt 5 ]; then
    echo "$name: skipped, the budget is spent" | tee -a "$summary" "$log"
    skipped=1
    return 0
  fi
  [ "$limit" -gt "$remaining" ] && limit=$remaining
  began=$(date +%s)
  echo "== $name (limit ${limit} s): $*" | tee -a "$log"
  # --foreground: one SIGINT to the command alone (not a second one to its process group, which `ikun train`
  # would take as "stop at once" and skip its checkpoint)
  timeout --foreground --signal=INT --kill-after=15 "$limit" "$@" > "$work/$name.log" 2>&1
  rc=$?
  cat "$work/$name.log" >> "$log"
  local note=""
  case "$rc" in 124 | 130 | 137) note=" (stopped at its limit)" ;; esac
  echo "$name: exit $rc$note, $(( $(date +%s) - began )) s" | tee -a "$summary" "$log"
  tail -n 40 "$work/$name.log"
}

if [ "$smoke" -eq 1 ]; then
  # the emulated device runs each tensor-core lane's products one by one: fp32 keeps the smoke run to seconds
  check_flags=(--small --filter linear) precisions=(fp32) bench_flags=(--smoke) anchor_flags=(--smoke --data data/sample)
  train_flags=(--sample --subset 256 --channels 4 --epochs 1 --precision fp32)
else
  check_flags=() precisions=(tf32 bf16 fp32) bench_flags=() anchor_flags=() train_flags=(--epochs 64)
fi

if command -v nvidia-smi > /dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 | tee -a "$log"
else
  echo "no nvidia-smi here" | tee -a "$log"
fi

wanted check && step gpu-check 150 node dist/bench/gpu-check.js "${check_flags[@]}"
if wanted sanitize; then
  if command -v compute-sanitizer > /dev/null; then
    for tool in memcheck racecheck; do
      step "sanitize-$tool" 240 compute-sanitizer --tool "$tool" --error-exitcode 1 node dist/bench/gpu-check.js --small
    done
  else
    echo "sanitize: skipped, no compute-sanitizer here" | tee -a "$summary" "$log"
  fi
fi
if wanted bench; then
  for precision in "${precisions[@]}"; do
    step "bench-gpu-$precision" 90 node dist/bench/gpu.js --precision "$precision" "${bench_flags[@]}"
  done
fi
if ! wanted anchor; then
  :
elif command -v python3 > /dev/null; then
  PYTHONUNBUFFERED=1 step torch-anchor 90 python3 bench/torch-anchor.py --json "$out/torch-anchor.json" "${anchor_flags[@]}"
else
  echo "torch-anchor: skipped, no python3 here" | tee -a "$summary" "$log"
fi
for opt in sgd adam; do
  wanted train || break
  rm -rf "${work:?}/train-$opt"
  step "train-$opt" 600 node dist/lib/cli.js train --device cuda --init ikun_v1 --opt "$opt" --no-progress \
    --out "$work/train-$opt" "${train_flags[@]}"
  [ "$skipped" -eq 1 ] && continue
  [ -f "$work/train-$opt/metrics.jsonl" ] && cp "$work/train-$opt/metrics.jsonl" "$out/train-$opt.jsonl"
  # the run's figures from its metrics.jsonl: epochs done, last and best test accuracy, median seconds
  node -e '
    const fs = require("fs"), file = process.argv[1] + "/metrics.jsonl";
    const parse = (l) => { try { return JSON.parse(l); } catch { return null; } };  // a line cut off by a kill
    const rows = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").map(parse).filter((r) => r && typeof r.test_acc === "number") : [];
    if (rows.length === 0) { console.log(`${process.argv[2]}: no epoch finished`); process.exit(0); }
    const last = rows[rows.length - 1], best = Math.max(...rows.map((r) => r.test_acc));
    // medians past epoch 1 (its caches are cold), epoch_s includes the test pass
    const median = (f) => { const v = (rows.length > 1 ? rows.slice(1) : rows).map(f).sort((a, b) => a - b); return v[(v.length - 1) >> 1]; };
    console.log(`${process.argv[2]}: ${rows.length} epochs, test accuracy last ${(100 * last.test_acc).toFixed(2)}% best ${(100 * best).toFixed(2)}%, ` +
      `median training epoch ${median((r) => r.epoch_s - r.test_s).toFixed(3)} s, test pass ${median((r) => r.test_s).toFixed(3)} s ` +
      `(epoch 1: ${(rows[0].epoch_s - rows[0].test_s).toFixed(3)} s)`);
  ' "$work/train-$opt" "train-$opt" | tee -a "$summary" "$log"
done
# Same-session ratios: each precision's training epoch (bench:gpu's table) against the plain-PyTorch anchor's.
if [ -f "$out/torch-anchor.json" ]; then
  for precision in "${precisions[@]}"; do
    [ -f "$work/bench-gpu-$precision.log" ] || continue
    node -e '
      const fs = require("fs"), [, logFile, anchorFile, precision] = process.argv;
      const row = fs.readFileSync(logFile, "utf8").split("\n").find((l) => l.startsWith("training epoch (s)"));
      const anchor = JSON.parse(fs.readFileSync(anchorFile, "utf8")), torch = anchor.epoch_s;
      const ikun = row ? Number(row.split("|")[1]) : NaN;
      if (!(ikun > 0) || !(torch > 0)) process.exit(0);
      console.log(`same-session ratio, ${precision}: ikun ${ikun.toFixed(3)} s per training epoch, plain PyTorch (its ${anchor.precision} ` +
        `precision) ${torch.toFixed(3)} s: ` +
        `${(torch / ikun).toFixed(2)}x (the goal, 5x SpikingJelly-cupy, is about ${(5 * 1.19 / 1.25).toFixed(2)}x plain PyTorch by the reference figures)`);
    ' "$work/bench-gpu-$precision.log" "$out/torch-anchor.json" "$precision" | tee -a "$summary" "$log"
  done
fi
echo "gpu-session: $(( $(date +%s) - start )) s of a ${budget} s budget" | tee -a "$summary" "$log"
