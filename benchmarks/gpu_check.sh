#!/usr/bin/env bash
# One GPU check anyone can run (< 8 minutes on one GPU), from a checkout with only part of the data
# (MNIST and Tiny Shakespeare suffice; tests that need a missing data set skip with their reason).
#
#   HASTEN_DATA=/path/to/data benchmarks/gpu_check.sh [SUMMARY_FILE]
#
# Steps, each with its own time limit (470 s in all); a failed or timed-out step is recorded and the next one runs:
#   1. the GPU-marked tests (pytest -m gpu)
#   2. hasten demo --device cuda (1 seed, short budget)
#   3. FlashAdamW fused vs torch AdamW(fused=True) step time, bytes/param and peak memory on a 100.7M-parameter
#      MLP (optimizer_step.py; an MLP stands in for the issue's GPT: the step cost depends on the tensors
#      only), Muon / AdamW step time on the shakespeare model, and flashoptim.py --quick on shakespeare
#   4. Trainer / plain loop overhead on CUDA (mnist, shakespeare)
#   5. hasten profile --device cuda shakespeare
# The summary file (default gpu-check-<date>.md) holds each step's status, time and last lines;
# full logs go beside it. GPU_CHECK_DRY_RUN=1 prints the commands without running them (CPU-side check).
set -u
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
HASTEN=${HASTEN:-hasten}
STAMP=$(date -u +%Y%m%d-%H%M%S)
SUMMARY=${1:-gpu-check-$STAMP.md}
LOGS="${SUMMARY%.md}-logs"
DRY=${GPU_CHECK_DRY_RUN:-0}
mkdir -p "$LOGS" benchmarks/results
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}"

{
  echo "# GPU check $STAMP"
  echo
  echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
  echo "- data: ${HASTEN_DATA:-<default>} ($(ls "${HASTEN_DATA:-../shared/data}" 2>/dev/null | tr '\n' ' '))"
  if [ "$DRY" = 1 ]; then echo "- device: (dry run)"; else
    echo "- device: $($PY -c 'import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else "NO CUDA DEVICE")' 2>&1)"
    echo "- torch: $($PY -c 'import torch; print(torch.__version__, torch.version.cuda)' 2>&1)"
  fi
  echo
  echo "| step | status | seconds |"
  echo "|---|---|---|"
} > "$SUMMARY"

FAILED=0
step() {  # step NAME LIMIT_SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  local log="$LOGS/$name.log" started=$SECONDS status
  if [ "$DRY" = 1 ]; then
    echo "would run ($limit s): $*" | tee "$log"
    status=dry-run
  else
    echo "== $name: $*" >&2
    timeout "$limit" "$@" > "$log" 2>&1
    case $? in
      0) status=ok ;;
      124) status="timed out after ${limit}s"; FAILED=1 ;;
      *) status="failed"; FAILED=1 ;;
    esac
  fi
  echo "| $name | $status | $((SECONDS - started)) |" >> "$SUMMARY"
  { echo; echo "<details><summary>$name: last lines</summary>"; echo; echo '```'; tail -n 25 "$log"; echo '```'
    echo "</details>"; } >> "$SUMMARY.tail"
}

step gpu-tests 90 $PY -m pytest -m gpu -q -rs -p no:cacheprovider tests
step demo 100 $HASTEN demo --device cuda --seeds 1 --duration 300ba --eval-interval 100ba --out "$LOGS/demo"
step optimizer-step 80 $PY benchmarks/optimizer_step.py --device cuda --width 4096 --depth 6 \
  --out "benchmarks/results/optimizer_step-cuda.json"
step flashoptim 60 $PY benchmarks/flashoptim.py --device cuda --workloads shakespeare --quick \
  --out "benchmarks/results/flashoptim-cuda-quick.json"
step overhead 90 $PY benchmarks/overhead.py --device cuda --repeats 3 --steps 200 \
  --out "benchmarks/results/overhead-cuda.json"
step profile 50 $HASTEN profile shakespeare --device cuda

[ -f "$SUMMARY.tail" ] && cat "$SUMMARY.tail" >> "$SUMMARY" && rm -f "$SUMMARY.tail"
echo "summary: $SUMMARY" >&2
exit $FAILED
