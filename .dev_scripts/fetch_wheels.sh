#!/usr/bin/env bash
# Fill a folder with what `.dev_scripts/setup_env.sh --system-torch`
# installs, for a machine without network (a GPU node) that already has
# torch and torchvision: run this where PyPI is reachable, carry DIR over,
# then there
#
#   make env SETUP_ARGS="--system-torch --find-links DIR --no-index"
#
#   bash .dev_scripts/fetch_wheels.sh DIR [PYTHON_VERSION] [CUDA_VERSION]
#
# PYTHON_VERSION (default 3.12) is the target machine's; wheels for x86_64
# Linux. torch, torchvision and their nvidia-* libraries are left out (the
# target has them); the mmcv sdist is included (PyPI has no mmcv wheels).
# CUDA_VERSION (e.g. 13.0) adds the PyPI CUDA compiler packages of
# .dev_scripts/mmcv_build.py, for a target without a CUDA toolkit. Packages the
# target already has are skipped there by pip, so extra wheels are harmless.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
USAGE='bash .dev_scripts/fetch_wheels.sh DIR [PYTHON_VERSION] [CUDA_VERSION]'
DIR=${1:?usage: $USAGE}
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

# The versions of requirements/stack.txt, less torch and torchvision (the
# target's own). timm requires torch and torchvision: fetched without its
# dependencies, its other ones named here.
reqs=$(mktemp) stack=$(mktemp)
trap 'rm -f "$reqs" "$stack"' EXIT
grep -v '^timm' "$ROOT/requirements.txt" > "$reqs"
"$PY" "$ROOT/requirements/stack.py" without torch torchvision > "$stack"
echo "[fetch] wheels for CPython $PYVER into $DIR"
pip_ download -q "${TARGET[@]}" -c "$stack" -r "$reqs" mmdet \
    mmsegmentation mmpretrain setuptools wheel pip ninja huggingface_hub \
    safetensors pyyaml
pip_ download -q "${TARGET[@]}" -c "$stack" --no-deps timm
if [[ -n $CUDA ]]; then
    plan_reqs=$(cd "$ROOT/.dev_scripts" && "$PY" -c "import mmcv_build as m
print(' '.join(m.pypi_nvcc_requirements('$CUDA')))")
    echo "[fetch] CUDA $CUDA compiler: $plan_reqs"
    # shellcheck disable=SC2086  # a list of requirements
    pip_ download -q "${TARGET[@]}" --no-deps $plan_reqs
fi
echo "[fetch] the mmcv source"
"$TORCH_PY" -m pip download -q --no-deps --no-build-isolation \
    --no-binary :all: -d "$DIR" -c "$stack" mmcv \
    2> >(grep -v 'is ignored: it is neither' >&2)
du -sh "$DIR"
