#!/usr/bin/env bash
# Fill a folder with what `tools/setup_env.sh --system-torch` installs, for a
# machine without network (a GPU node) that already has torch and
# torchvision: run this where PyPI is reachable, carry DIR over, then there
#
#   make env SETUP_ARGS="--system-torch --find-links DIR --no-index"
#
#   bash tools/fetch_wheels.sh DIR [PYTHON_VERSION] [CUDA_VERSION]
#
# PYTHON_VERSION (default 3.12) is the target machine's; wheels for x86_64
# Linux. torch, torchvision and their nvidia-* libraries are left out (the
# target has them); the mmcv sdist is included (PyPI has no mmcv wheels).
# CUDA_VERSION (e.g. 13.0) adds the PyPI CUDA compiler packages of
# tools/mmcv_build.py, for a target without a CUDA toolkit. Packages the
# target already has are skipped there by pip, so extra wheels are harmless.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR=${1:?usage: bash tools/fetch_wheels.sh DIR [PYTHON_VERSION] [CUDA_VERSION]}
PYVER=${2:-3.12}
CUDA=${3:-}
PY="${PYTHON:-python3}"
# The sdist's metadata step imports torch: a python that has it.
TORCH_PY="${TORCH_PYTHON:-$ROOT/.venv/bin/python}"
mkdir -p "$DIR"
TARGET=(--only-binary=:all: --python-version "$PYVER" --implementation cp
        --abi "cp${PYVER/./}" --platform manylinux_2_28_x86_64
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64
        --platform manylinux2010_x86_64 --platform linux_x86_64 -d "$DIR")
pip_() { "$PY" -m pip --disable-pip-version-check "$@" \
         2> >(grep -v 'is ignored: it is neither' >&2); }

# timm requires torch and torchvision: fetched without its dependencies,
# its other ones named here.
reqs=$(mktemp)
trap 'rm -f "$reqs"' EXIT
grep -v '^timm' "$ROOT/requirements.txt" > "$reqs"
echo "[fetch] wheels for CPython $PYVER into $DIR"
pip_ download -q "${TARGET[@]}" -r "$reqs" 'mmdet==3.3.0' \
    'mmsegmentation==1.2.2' 'mmpretrain==1.2.0' 'setuptools>=70,<81' \
    wheel 'pip>=23' ninja huggingface_hub safetensors pyyaml
pip_ download -q "${TARGET[@]}" --no-deps \
    "$(grep '^timm' "$ROOT/requirements.txt")"
if [[ -n $CUDA ]]; then
    plan_reqs=$(cd "$ROOT/tools" && "$PY" -c "import mmcv_build as m
print(' '.join(m.pypi_nvcc_requirements('$CUDA')))")
    echo "[fetch] CUDA $CUDA compiler: $plan_reqs"
    # shellcheck disable=SC2086  # a list of requirements
    pip_ download -q "${TARGET[@]}" --no-deps $plan_reqs
fi
echo "[fetch] the mmcv 2.1.0 source"
"$TORCH_PY" -m pip download -q --no-deps --no-build-isolation \
    --no-binary :all: -d "$DIR" 'mmcv==2.1.0' \
    2> >(grep -v 'is ignored: it is neither' >&2)
du -sh "$DIR"
