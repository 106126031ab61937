#!/usr/bin/env bash
# Run tools/benchmark.py at real sizes on a fresh GPU machine that has
# Python 3.12, torch and CUDA but no OpenMMLab packages and no network.
#
#   bash tools/gpu_check.sh [--dry-run] [WHEELS_DIR]
#   bash tools/gpu_check.sh --fetch-wheels DIR   # on a machine with PyPI
#
# WHEELS_DIR (or $WHEELS_DIR; default shared/wheels) must hold, for
# CPython 3.12 on x86_64 Linux:
#   wheels  mmengine 0.10.7, mmdet 3.3.0, mmsegmentation 1.2.2,
#           mmpretrain 1.2.0, addict, yapf, termcolor, terminaltables,
#           mat4py, modelindex, ordered-set, prettytable, ftfy, regex (cp312),
#           shapely (cp312), pycocotools (cp312), setuptools 80.x
#   sdist   mmcv-2.1.0.tar.gz (PyPI has no mmcv wheels; built here)
# Any other wheel there is installed too (--fetch-wheels adds wcwidth,
# platformdirs, einops and ninja: small, harmless when already present,
# and ninja lets MAX_JOBS parallelise the mmcv build).
#
# Steps: pip-install every wheel with --no-index --no-deps into
# $WORK_DIR/site (put on PYTHONPATH), build mmcv's CUDA ops in place
# (MMCV_WITH_OPS=1 FORCE_CUDA=1, about 3 minutes on 16 cores), check the
# imports, then run the benchmark: first with the student under bf16
# autocast (the issue's targets) plus the dense DIST memory comparison ->
# $OUT/bench.json, then, while the time budget lasts, fp32 ->
# $OUT/bench_fp32.json. Logs and printed tables go to $OUT as well.
#
# Environment: OUT (default ./gpu_check_out), WORK_DIR (default
# /tmp/distkd_gpu_check; a rerun on the same machine reuses its install and
# mmcv build), TORCH_CUDA_ARCH_LIST (default 9.0, Hopper), MAX_JOBS
# (default 16), GPU_CHECK_BUDGET_S (default 480: no benchmark starts past
# it), PYTHON (default python3).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
MMCV_VERSION=2.1.0
# Distribution name -> wheel file pattern (cp312 where compiled).
REQUIRED=(
  'mmengine-0.10.7-*.whl' 'mmdet-3.3.0-*.whl' 'mmsegmentation-1.2.2-*.whl'
  'mmpretrain-1.2.0-*.whl' 'addict-*.whl' 'yapf-*.whl' 'termcolor-*.whl'
  'terminaltables-*.whl' 'mat4py-*.whl' 'modelindex-*.whl'
  'ordered_set-*.whl' 'prettytable-*.whl' 'ftfy-*.whl' 'regex-*cp312*.whl'
  'shapely-*cp312*.whl' 'pycocotools-*cp312*.whl' 'setuptools-80.*.whl'
)
FETCH=(
  mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0
  addict yapf termcolor terminaltables mat4py modelindex ordered-set
  prettytable ftfy regex shapely pycocotools 'setuptools>=80,<81'
  wcwidth platformdirs einops ninja
)

DRY_RUN=0
FAILED=()

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

die() {
  echo "gpu_check: error: $*" >&2
  exit 1
}

say() {
  echo "== gpu_check: $*"
}

# Print a command; run it unless --dry-run.
run() {
  echo "+ $*"
  if [[ $DRY_RUN == 0 ]]; then
    "$@"
  fi
}

fetch_wheels() {
  local dir=$1
  mkdir -p "$dir"
  say "downloading wheels for CPython 3.12 x86_64 into $dir"
  run "$PYTHON" -m pip download --no-deps --only-binary=:all: \
    --python-version 3.12 --implementation cp --abi cp312 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 -d "$dir" "${FETCH[@]}"
  say "downloading the mmcv $MMCV_VERSION source"
  run "$PYTHON" -m pip download --no-deps --no-binary=:all: -d "$dir" \
    "mmcv==$MMCV_VERSION"
  if [[ $DRY_RUN == 0 ]]; then
    check_wheels "$dir"
    du -sh "$dir"
  fi
}

check_wheels() {
  local dir=$1 pattern missing=()
  [[ -d $dir ]] || missing=("the folder $dir itself")
  for pattern in "${REQUIRED[@]}" "mmcv-$MMCV_VERSION.tar.gz"; do
    if [[ -d $dir ]] && ! compgen -G "$dir/$pattern" >/dev/null; then
      missing+=("$pattern")
    fi
  done
  if ((${#missing[@]})); then
    local msg="missing in the wheels folder: ${missing[*]}; fill it with"
    msg+=" 'bash tools/gpu_check.sh --fetch-wheels $dir' on a machine"
    msg+=" that reaches PyPI"
    if [[ $DRY_RUN == 1 ]]; then
      echo "gpu_check: warning: $msg" >&2
    else
      die "$msg"
    fi
  fi
}

check_gpu() {
  say "checking torch and CUDA"
  run "$PYTHON" -c 'import sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__,
      "cuda", torch.version.cuda)
assert torch.cuda.is_available(), "torch sees no CUDA device"
print("gpu:", torch.cuda.get_device_name())'
  if [[ $DRY_RUN == 0 ]] && ! command -v nvcc >/dev/null; then
    die "nvcc not found (also not in /usr/local/cuda/bin): building" \
      "mmcv's CUDA ops needs the CUDA toolkit"
  fi
}

install_wheels() {
  local wheels=$1 site=$2
  if [[ -f $site/.installed ]]; then
    say "wheels already installed in $site"
    return
  fi
  say "installing the wheels of $wheels into $site"
  run "$PYTHON" -m pip install --quiet --no-index --no-deps --upgrade \
    --target "$site" "$wheels"/*.whl
  run touch "$site/.installed"
}

build_mmcv() {
  local wheels=$1 work=$2 src=$2/mmcv-$MMCV_VERSION
  local stamp=$src/.built-for-torch-$TORCH_VERSION
  if [[ -f $stamp ]]; then
    say "mmcv already built in $src for torch $TORCH_VERSION"
    return
  fi
  say "building mmcv $MMCV_VERSION with CUDA ops in $src" \
    "(log: $OUT/mmcv_build.log)"
  run rm -rf "$src"
  run tar -xzf "$wheels/mmcv-$MMCV_VERSION.tar.gz" -C "$work"
  if [[ $DRY_RUN == 0 ]] && "$PYTHON" -c 'import sys, torch
v = tuple(int(x) for x in torch.__version__.split(".")[:2])
sys.exit(v < (2, 14))'; then
    # torch >= 2.14 headers need C++20; mmcv 2.1.0 asks for C++17.
    run sed -i 's/c++17/c++20/g' "$src/setup.py"
  fi
  local start=$SECONDS
  echo "+ (cd $src && MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=$MAX_JOBS" \
    "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST $PYTHON setup.py" \
    "build_ext --inplace) > $OUT/mmcv_build.log"
  if [[ $DRY_RUN == 0 ]]; then
    if ! (cd "$src" && MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=$MAX_JOBS \
      TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST \
      "$PYTHON" setup.py build_ext --inplace) >"$OUT/mmcv_build.log" 2>&1
    then
      tail -n 40 "$OUT/mmcv_build.log" >&2
      die "the mmcv build failed; see $OUT/mmcv_build.log"
    fi
    touch "$stamp"
  fi
  [[ $DRY_RUN == 1 ]] || say "mmcv built in $((SECONDS - start)) s"
}

check_imports() {
  say "checking the OpenMMLab stack and distkd_mm import"
  run "$PYTHON" -c 'import mmcv, mmcv.ops, mmdet, mmengine, mmpretrain, mmseg
import distkd_mm
print("mmcv", mmcv.__version__, "mmengine", mmengine.__version__,
      "mmdet", mmdet.__version__, "mmseg", mmseg.__version__,
      "mmpretrain", mmpretrain.__version__, "distkd_mm",
      distkd_mm.__version__)'
}

# benchmark NAME ARGS...: run it with what is left of the time budget.
benchmark() {
  local name=$1 left
  shift
  left=$((BUDGET - SECONDS))
  if ((left < 60)); then
    say "skipping the $name benchmark: ${left}s left of ${BUDGET}s"
    return
  fi
  say "benchmark ($name), at most ${left}s -> $OUT/$name.json"
  echo "+ timeout $left $PYTHON tools/benchmark.py --device cuda $*" \
    "--json $OUT/$name.json | tee $OUT/$name.txt"
  if [[ $DRY_RUN == 0 ]] && ! (cd "$REPO" && timeout "$left" "$PYTHON" \
    tools/benchmark.py --device cuda "$@" --json "$OUT/$name.json") |
    tee "$OUT/$name.txt"; then
    echo "gpu_check: the $name benchmark failed or ran out of time" >&2
    FAILED+=("$name")
  fi
}

main() {
  local wheels=${WHEELS_DIR:-$REPO/shared/wheels}
  while (($#)); do
    case $1 in
      -h | --help) usage; exit 0 ;;
      --dry-run) DRY_RUN=1 ;;
      --fetch-wheels)
        [[ $# -ge 2 ]] || die "--fetch-wheels needs a folder"
        fetch_wheels "$2"
        exit 0 ;;
      -*) die "unknown option $1 (see --help)" ;;
      *) wheels=$1 ;;
    esac
    shift
  done
  wheels=$(cd "$wheels" 2>/dev/null && pwd || echo "$wheels")
  OUT=${OUT:-$PWD/gpu_check_out}
  local work=${WORK_DIR:-/tmp/distkd_gpu_check}
  MAX_JOBS=${MAX_JOBS:-16}
  TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
  BUDGET=${GPU_CHECK_BUDGET_S:-480}
  [[ -d /usr/local/cuda/bin ]] && PATH=$PATH:/usr/local/cuda/bin
  local site=$work/site
  # The in-place mmcv first, then this repo, then the installed wheels
  # (their ninja too) ahead of the machine's own packages.
  PYTHONPATH=$work/mmcv-$MMCV_VERSION:$REPO:$site${PYTHONPATH:+:$PYTHONPATH}
  export PYTHONPATH
  export PATH=$site/bin:$PATH
  say "repo $REPO, wheels $wheels, work $work, out $OUT"
  if [[ $DRY_RUN == 1 ]]; then
    say "dry run: printing the commands, running none"
  fi
  check_wheels "$wheels"
  run mkdir -p "$OUT" "$site"
  check_gpu
  TORCH_VERSION=unknown
  if [[ $DRY_RUN == 0 ]]; then
    TORCH_VERSION=$("$PYTHON" -c 'import torch; print(torch.__version__)')
  fi
  install_wheels "$wheels" "$site"
  build_mmcv "$wheels" "$work"
  check_imports
  benchmark bench --amp --dist-memory
  benchmark bench_fp32
  if ((${#FAILED[@]})); then
    die "benchmark run(s) failed: ${FAILED[*]} (after ${SECONDS}s)"
  fi
  say "done in ${SECONDS}s; results in $OUT"
}

main "$@"
