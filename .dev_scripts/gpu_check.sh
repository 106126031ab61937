#!/usr/bin/env bash
# Check distkd_mm on a fresh GPU machine that has Python, a CUDA torch and
# nvcc but no OpenMMLab packages and no network, in stages:
#
#   setup       .dev_scripts/setup_env.sh --system-torch --find-links WHEELS
#               --no-index: a venv on the machine's own torch, mmcv built
#               with CUDA ops (about 3 minutes on 16 cores)
#   check       tools/check_env.py (versions; mmcv ops on CPU and GPU)
#   bench_fast  tools/benchmark.py, R34 -> R18 and RetinaNet X101 -> R50,
#               teacher eager vs folded vs folded+compiled, student bf16
#   bench       tools/benchmark.py, the other tasks and dense DIST memory
#   train       tests/gpu/train_smoke.py: tools/train.py, one config per
#               task, a few iterations on generated data
#   precision   tools/teacher_precision.py on the trained digits teacher
#
#   bash .dev_scripts/gpu_check.sh [--dry-run] [--stages "setup ..."] WHEELS
#   bash .dev_scripts/fetch_wheels.sh WHEELS 3.12  # first, where PyPI is
#                                                  # reachable
#
# WHEELS holds what .dev_scripts/fetch_wheels.sh downloads (cp312 wheels and
# the mmcv sdist). Each stage runs with what is left of the time budget and
# writes to $OUT: setup.log, check_env.txt, bench_fast.json, bench.json,
# train.log, precision.json. A failed stage is reported; the others run.
# A second call on the same machine skips a finished setup.
#
# Environment: OUT (default ./gpu_check_out), WORK_DIR (default
# /tmp/distkd_gpu_check), GPU_CHECK_BUDGET_S (default 540: no stage starts
# past it), PYTHON (default python3), MAX_JOBS (default: all cores).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
DRY_RUN=0
FAILED=()
STAGES="setup check bench_fast bench train precision"

die() {
  echo "gpu_check: error: $*" >&2
  exit 1
}

say() {
  echo "== gpu_check [${SECONDS}s]: $*"
}

# stage NAME LOG CMD...: run CMD with what is left of the budget, its
# output shown and kept in $OUT/LOG.
stage() {
  local name=$1 log=$2 left
  shift 2
  [[ " $STAGES " == *" $name "* ]] || return 0
  left=$((BUDGET - SECONDS))
  if ((left < 30)); then
    say "skipping $name: ${left}s left of ${BUDGET}s"
    FAILED+=("$name(skipped)")
    return 0
  fi
  say "$name (at most ${left}s): $*"
  [[ $DRY_RUN == 1 ]] && return 0
  if ! (cd "$REPO" && timeout "$left" "$@") 2>&1 | tee "$OUT/$log"; then
    say "$name failed or ran out of time"
    FAILED+=("$name")
  fi
}

main() {
  local wheels=
  while (($#)); do
    case $1 in
      -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
        exit 0 ;;
      --dry-run) DRY_RUN=1 ;;
      --stages) STAGES=$2; shift ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) wheels=$1 ;;
    esac
    shift
  done
  [[ -n $wheels ]] || die "give the wheels folder (see --help)"
  [[ -d $wheels ]] || die "$wheels is not a folder; fill it with" \
    "'bash .dev_scripts/fetch_wheels.sh $wheels 3.12' where PyPI is reachable"
  wheels=$(cd "$wheels" && pwd)
  OUT=${OUT:-$PWD/gpu_check_out}
  BUDGET=${GPU_CHECK_BUDGET_S:-540}
  local work=${WORK_DIR:-/tmp/distkd_gpu_check}
  local venv=$work/venv py
  py=$venv/bin/python
  [[ -d /usr/local/cuda/bin ]] && PATH=$PATH:/usr/local/cuda/bin
  say "repo $REPO, wheels $wheels, work $work, out $OUT, stages: $STAGES"
  if [[ $DRY_RUN == 1 ]]; then
    say "dry run: printing the stages, running none"
  else
    mkdir -p "$OUT" "$work"
    "$PYTHON" -c 'import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__,
      "cuda", torch.version.cuda, "gpu",
      torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
    if command -v nvcc >/dev/null; then nvcc --version | tail -n 2; fi
  fi

  stage setup setup.log env DISTKD_VENV="$venv" PYTHON="$PYTHON" bash \
    .dev_scripts/setup_env.sh --system-torch --find-links "$wheels" --no-index
  stage check check_env.txt "$py" tools/check_env.py
  stage bench_fast bench_fast.txt "$py" tools/benchmark.py --device cuda \
    --amp --tasks cls retinanet --teacher-modes eager fused fused+compiled \
    --steps 8 --warmup 2 --json "$OUT/bench_fast.json"
  stage bench bench.txt "$py" tools/benchmark.py --device cuda --amp \
    --tasks faster-rcnn seg seg-psp --dist-memory --steps 8 --warmup 2 \
    --json "$OUT/bench.json"
  stage train train.log "$py" tests/gpu/train_smoke.py "$work/smoke"
  stage precision precision.txt "$py" tools/teacher_precision.py \
    configs/demo/digits_dist.py --device cuda --batches 8 --teacher-ckpt \
    "$work/smoke/cls/digits_teacher/epoch_2.pth"
  if ((${#FAILED[@]})); then
    die "stage(s) not done: ${FAILED[*]} (after ${SECONDS}s)"
  fi
  say "done in ${SECONDS}s; results in $OUT"
}

main "$@"
