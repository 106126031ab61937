#!/usr/bin/env bash
# Bring the project virtual environment (.venv) up to date.
#
# The OpenMMLab 2.x stack does not install cleanly on current PyTorch: mmcv
# ships only as a source archive, needs pkg_resources (setuptools < 81) and,
# against torch 2.14 headers, C++20. This script pins the one combination
# measured to work (see README) and caches the built mmcv wheel under a key
# that includes the torch version, because a wheel built against another
# torch fails at import time.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DISTKD_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_VERSION=2.14.1
TORCHVISION_VERSION=0.29.1
MMCV_VERSION=2.1.0
CACHE="${DISTKD_CACHE:-$HOME/.cache/distkd_mm}"
WHEEL_DIR="$CACHE/wheels/torch-$TORCH_VERSION-$($PY -c 'import sys; print("cp%d%d" % sys.version_info[:2])')"

# Anything that changes what gets installed must change this stamp.
STAMP_INPUTS=("$ROOT/tools/setup_env.sh" "$ROOT/setup.py" "$ROOT/requirements.txt")
stamp() { cat "${STAMP_INPUTS[@]}" | sha256sum | cut -d' ' -f1; }
STAMP_FILE="$VENV/.distkd_stamp"

say() { printf '[setup] %s\n' "$*"; }

if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$(stamp)" ]]; then
    say "environment $VENV is up to date"
    exit 0
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# This machine's pip config lists local indexes that may be absent; pip
# warns once per package about them, which would bury what matters.
pip_() { "${PIP[@]}" "$@" 2> >(grep -v 'is ignored: it is neither' >&2); }

say "installing build tools (setuptools < 81: mmcv's setup.py imports pkg_resources)"
pip_ install -q 'setuptools>=70,<81' wheel 'pip>=23'

if ! "$VENV/bin/python" -c "import torch, torchvision, sys; \
sys.exit(not (torch.__version__.startswith('$TORCH_VERSION') and \
torchvision.__version__.startswith('$TORCHVISION_VERSION')))" 2>/dev/null; then
    say "installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION (large, one time)"
    pip_ install -q "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION"
fi

say "installing mmengine and pure-python dependencies"
pip_ install -q -r "$ROOT/requirements.txt"

if ! "$VENV/bin/python" -c "import mmcv.ops" 2>/dev/null; then
    mkdir -p "$WHEEL_DIR"
    wheel=$(ls "$WHEEL_DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    if [[ -z "$wheel" ]]; then
        say "building mmcv $MMCV_VERSION with CPU ops against torch $TORCH_VERSION (about 6 minutes on 2 cores)"
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        # Metadata preparation imports pkg_resources and torch, so it runs
        # in this environment rather than an isolated one.
        pip_ download -q --no-deps --no-build-isolation --no-binary :all: \
            "mmcv==$MMCV_VERSION" -d "$build"
        tar -xzf "$build"/mmcv-"$MMCV_VERSION".tar.gz -C "$build"
        # torch >= 2.10 headers need C++20; mmcv 2.1.0 hard-codes c++17.
        sed -i 's/-std=c++17/-std=c++20/g; s/std:c++17/std:c++20/g' \
            "$build/mmcv-$MMCV_VERSION/setup.py"
        (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=0 \
            MAX_JOBS="$(nproc)" "$VENV/bin/python" -m pip wheel -q \
            --no-build-isolation --no-deps -w "$build/dist" .)
        # Write under a temporary name first so an interrupted copy is never
        # mistaken for a good cached wheel.
        src=$(ls "$build"/dist/mmcv-*.whl)
        cp "$src" "$WHEEL_DIR/.partial.whl"
        mv "$WHEEL_DIR/.partial.whl" "$WHEEL_DIR/$(basename "$src")"
        wheel="$WHEEL_DIR/$(basename "$src")"
    else
        say "using cached mmcv wheel $wheel"
    fi
    pip_ install -q --no-deps --force-reinstall "$wheel"
fi

say "installing mmdet, mmsegmentation and mmpretrain"
pip_ install -q 'mmdet==3.3.0' 'mmsegmentation==1.2.2' 'mmpretrain==1.2.0' \
    "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "mmcv==$MMCV_VERSION"

say "installing distkd_mm in editable mode"
pip_ install -q --no-deps --no-build-isolation -e "$ROOT"

say "checking the stack imports"
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, mmpretrain, distkd_mm; \
print('[setup] torch', __import__('torch').__version__, '| mmcv', mmcv.__version__, \
'| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmpretrain', mmpretrain.__version__)"

stamp > "$STAMP_FILE"
say "done"
