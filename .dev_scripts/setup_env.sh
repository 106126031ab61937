#!/usr/bin/env bash
# Bring the project virtual environment (.venv) up to date.
#
#   bash .dev_scripts/setup_env.sh [--system-torch] [--find-links DIR]
#                                  [--no-index]
#   make env SETUP_ARGS="--system-torch --find-links DIR --no-index"
#
# A checkout's development environment; a user installs with pip into an
# existing one (README). Every version comes from requirements/stack.txt,
# passed to pip as constraints. mmcv ships only as a source archive, needs
# pkg_resources (gone in setuptools 81) and, against torch 2.14 headers,
# C++20.
# By default this script installs the stack's torch; --system-torch keeps
# the torch and torchvision of $PYTHON (a cluster's module or container)
# and builds everything else against them. .dev_scripts/mmcv_build.py
# decides mmcv's build switches (MMCV_WITH_OPS, FORCE_CUDA,
# TORCH_CUDA_ARCH_LIST, CUDA_HOME, the C++ standard) and prints why; the
# built wheel is cached under a key of torch, CUDA, archs and Python,
# because a wheel built for another torch fails at import time.
#
# Options (remembered in the venv, so a later plain `make` keeps them):
#   --system-torch      venv with --system-site-packages on $PYTHON's torch
#   --find-links DIR    also look for wheels and the mmcv sdist in DIR
#   --no-index          do not use package indexes (offline, with DIR)
# Environment: DISTKD_VENV (default .venv), DISTKD_CACHE (default
# ~/.cache/distkd_mm), PYTHON (default python3), MMCV_CUDA=0|1,
# TORCH_CUDA_ARCH_LIST, CUDA_HOME, MAX_JOBS; pip's own PIP_FIND_LINKS,
# PIP_NO_INDEX, ... apply as usual.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${DISTKD_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STACK="$ROOT/requirements/stack.txt"
MMCV_BUILD="$ROOT/.dev_scripts/mmcv_build.py"
read -r TORCH_VERSION TORCHVISION_VERSION MMCV_VERSION <<< "$("$PY" \
    "$ROOT/requirements/stack.py" pin torch torchvision mmcv | tr '\n' ' ')"
CACHE="${DISTKD_CACHE:-$HOME/.cache/distkd_mm}"
ARGS_FILE="$VENV/.distkd_args"
MMCV_MARKER="$VENV/.distkd_mmcv"
STAMP_FILE="$VENV/.distkd_stamp"

say() { printf '[setup] %s\n' "$*"; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

# No options given: reuse the ones this venv was made with.
if (($# == 0)) && [[ -f "$ARGS_FILE" ]]; then
    read -r -a saved < "$ARGS_FILE"
    set -- "${saved[@]}"
fi
ARGS=("$@")
SYSTEM_TORCH=0
PIP_EXTRA=()
while (($#)); do
    case $1 in
        --system-torch) SYSTEM_TORCH=1 ;;
        --no-index) PIP_EXTRA+=(--no-index) ;;
        --find-links)
            [[ $# -ge 2 ]] || die "--find-links needs a folder"
            links=$(cd "$2" 2>/dev/null && pwd) ||
                die "--find-links: $2 is not a folder"
            PIP_EXTRA+=(--find-links "$links")
            shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
            exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
    shift
done

# Anything that changes what gets installed must change this stamp.
STAMP_INPUTS=("$0" "$MMCV_BUILD" "$STACK" "$ROOT/setup.py"
              "$ROOT/requirements.txt")
stamp() { { cat "${STAMP_INPUTS[@]}"; echo "${ARGS[*]}"; } | sha256sum |
          cut -d' ' -f1; }
# The mmcv build this machine calls for (PLAN_* variables).
plan() {
    local out
    out=$("$VENV/bin/python" "$MMCV_BUILD" plan --shell) ||
        die "cannot plan the mmcv build (see above)"
    eval "$out"
}

# Whether the installed mmcv is the build the plan asks for.
mmcv_matches_plan() {
    [[ "$(cat "$MMCV_MARKER" 2>/dev/null)" == "$PLAN_CACHE_KEY" ]] &&
        "$VENV/bin/python" -c 'import mmcv.ops' 2>/dev/null
}

# Install the PyPI CUDA compiler into the venv; sets PLAN_CUDA_HOME.
install_pypi_nvcc() {
    say "installing the CUDA compiler from PyPI: $PLAN_PIP_NVCC"
    # shellcheck disable=SC2086  # a list of requirements
    pip_ install -q $PLAN_PIP_NVCC
    PLAN_CUDA_HOME=$("$VENV/bin/python" "$MMCV_BUILD" cuda-home \
        "$VENV/cuda") || die "cannot assemble CUDA_HOME"
}

# Build mmcv's wheel as the plan says; prints the wheel's path.
build_mmcv() {
    local build=$1 src
    # Metadata preparation imports pkg_resources and torch, so it runs
    # in this environment rather than an isolated one.
    pip_ download -q --no-deps --no-build-isolation --no-binary :all: \
        mmcv -d "$build" >&2
    tar -xzf "$build/mmcv-$MMCV_VERSION.tar.gz" -C "$build"
    src="$build/mmcv-$MMCV_VERSION"
    if [[ $PLAN_CXX_STD != c++17 ]]; then
        # mmcv's setup.py hard-codes c++17 (torch >= 2.14 headers need C++20).
        sed -i "s/-std=c++17/-std=$PLAN_CXX_STD/g" "$src/setup.py"
        sed -i "s/std:c++17/std:$PLAN_CXX_STD/g" "$src/setup.py"
    fi
    (
        cd "$src"
        # torch builds in parallel (MAX_JOBS) only when `ninja` is on PATH;
        # the venv's ninja is not unless the venv is active.
        export PATH="$VENV/bin:$PATH"
        export MAX_JOBS="${MAX_JOBS:-$(nproc)}"
        # mmcv's own switches, as the plan sets them.
        eval "$PLAN_BUILD_ENV"
        if ((PLAN_CUDA)); then
            # The PyPI compiler's CUDA_HOME is assembled after the plan.
            export CUDA_HOME="$PLAN_CUDA_HOME" PATH="$PLAN_CUDA_HOME/bin:$PATH"
        fi
        "$VENV/bin/python" -m pip wheel -q --no-build-isolation --no-deps \
            "${PIP_EXTRA[@]}" -w "$build/dist" . >&2
    )
    ls "$build"/dist/mmcv-*.whl
}

# Install the mmcv build of the plan: cached wheel, else build and cache it.
ensure_mmcv() {
    if mmcv_matches_plan; then
        echo "$PLAN_CACHE_KEY" > "$MMCV_MARKER"
        return
    fi
    local dir="$CACHE/wheels/mmcv-$MMCV_VERSION/$PLAN_CACHE_KEY" wheel
    mkdir -p "$dir"
    wheel=$(ls "$dir"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
    if [[ -n "$wheel" ]]; then
        say "using cached mmcv wheel $wheel"
    else
        ((PLAN_CUDA)) && pip_ install -q ninja  # parallel CUDA compiles
        [[ -n $PLAN_PIP_NVCC ]] && install_pypi_nvcc
        say "building mmcv $MMCV_VERSION (CPU ops: about 6 minutes on 2" \
            "cores; CUDA ops for one arch: about 3 minutes on 16 cores)"
        build=$(mktemp -d)  # global: the EXIT trap removes it
        trap 'rm -rf "$build"' EXIT
        local built
        built=$(build_mmcv "$build")
        # Write under a temporary name first so an interrupted copy is never
        # mistaken for a good cached wheel.
        cp "$built" "$dir/.partial.whl"
        wheel="$dir/$(basename "$built")"
        mv "$dir/.partial.whl" "$wheel"
    fi
    pip_local install -q --no-deps --force-reinstall "$wheel"
    echo "$PLAN_CACHE_KEY" > "$MMCV_MARKER"
}

if [[ -f "$STAMP_FILE" && "$(cat "$STAMP_FILE")" == "$(stamp)" ]]; then
    plan
    if mmcv_matches_plan; then
        say "environment $VENV is up to date"
        exit 0
    fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtual environment $VENV"
    if ((SYSTEM_TORCH)); then
        # Without ensurepip (Debian's python3 lacking python3-venv) the
        # venv uses the system's pip, which it sees like the system's torch.
        "$PY" -c 'import ensurepip' 2>/dev/null || no_pip=--without-pip
        "$PY" -m venv --system-site-packages ${no_pip:-} "$VENV"
    else
        "$PY" -m venv "$VENV"
    fi
elif ((SYSTEM_TORCH)) && ! grep -qi 'include-system-site-packages *= *true' \
        "$VENV/pyvenv.cfg"; then
    die "$VENV was made without --system-torch; give a new DISTKD_VENV" \
        "or remove it"
fi
if ((SYSTEM_TORCH)); then
    # A venv's --system-site-packages reaches the base interpreter only. When
    # $PY itself runs in a venv (a container's /opt/torch/.venv, a conda
    # env's venv), its packages are made visible through a .pth file.
    parent=$("$PY" -c 'import site, sys
if sys.prefix != sys.base_prefix:
    print("\n".join(site.getsitepackages()))')
    if [[ -n $parent ]]; then
        purelib=$("$VENV/bin/python" -c \
            'import sysconfig; print(sysconfig.get_paths()["purelib"])')
        printf '%s\n' "$parent" > "$purelib/_distkd_parent_env.pth"
        say "--system-torch: $PY runs in a venv; its packages are visible"
    fi
fi
printf '%s\n' "${ARGS[*]}" > "$ARGS_FILE"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# This machine's pip config lists local indexes that may be absent; pip
# warns once per package about them, which would bury what matters.
# pip_: with the stack's constraints; pip_local: for mmcv's own wheel and
# source folder (a constraint by name does not apply to a file).
pip_local() { "${PIP[@]}" "$@" "${PIP_EXTRA[@]}" \
              2> >(grep -v 'is ignored: it is neither' >&2); }
pip_() { pip_local "$@" -c "$CONSTRAINTS"; }

if ((SYSTEM_TORCH)); then
    "$VENV/bin/python" -c 'import torch, torchvision' 2>/dev/null ||
        die "--system-torch: $PY has no torch and torchvision; load the" \
            "cluster's torch (module, container) first, or drop the option"
    # The stack less its torch, and the system's torch pinned: nothing
    # installed later may replace it. pip compares the distributions'
    # versions, which can lack the local label of torch.__version__
    # (X.Y.Z vs X.Y.Z+cu130).
    CONSTRAINTS="$VENV/.distkd_constraints.txt"
    {
        "$PY" "$ROOT/requirements/stack.py" without torch torchvision
        "$VENV/bin/python" -c 'from importlib.metadata import version
for name in ("torch", "torchvision"):
    print(f"{name}=={version(name)}")'
    } > "$CONSTRAINTS"
    say "using the system's $(grep '^torch' "$CONSTRAINTS" | tr '\n' ' ')"
else
    CONSTRAINTS=$STACK
fi

say "installing build tools (an old setuptools: mmcv's setup.py imports" \
    "pkg_resources)"
pip_ install -q setuptools wheel pip

if ((SYSTEM_TORCH == 0)) && ! "$VENV/bin/python" -c "import torch, torchvision, sys; \
sys.exit(not (torch.__version__.startswith('$TORCH_VERSION') and \
torchvision.__version__.startswith('$TORCHVISION_VERSION')))" 2>/dev/null; then
    say "installing torch $TORCH_VERSION and torchvision $TORCHVISION_VERSION (large, one time)"
    pip_ install -q torch torchvision
fi
plan  # early: it refuses an unsupported torch or a bad MMCV_CUDA
say "mmcv build: $PLAN_SUMMARY"

# A cluster image often has OpenCV as opencv-python-headless, while
# mmengine and mmcv ask for opencv-python by name: pip would add a second
# OpenCV (70 MB, and a download an offline node cannot make). Then the
# OpenMMLab packages install without their declared dependencies, and
# those, less OpenCV, explicitly.
OPENCV_ELSEWHERE=0
if ((SYSTEM_TORCH)) && "$VENV/bin/python" -c 'import cv2' 2>/dev/null &&
    ! "$VENV/bin/python" -c 'from importlib.metadata import version
version("opencv-python")' 2>/dev/null; then
    OPENCV_ELSEWHERE=1
    say "OpenCV is installed as another distribution; not adding opencv-python"
fi

# install_openmmlab NAME...: pip install, keeping the machine's OpenCV.
install_openmmlab() {
    if ((OPENCV_ELSEWHERE == 0)); then
        pip_ install -q "$@"
        return
    fi
    pip_ install -q --no-deps "$@"
    local deps
    deps=$("$VENV/bin/python" "$MMCV_BUILD" requirements "$@")
    # shellcheck disable=SC2086  # a list of requirements
    [[ -z $deps ]] || pip_ install -q $deps
}

say "installing mmengine and pure-python dependencies"
grep -v '^mmengine' "$ROOT/requirements.txt" > "$VENV/.distkd_requirements"
pip_ install -q -r "$VENV/.distkd_requirements"
install_openmmlab mmengine

ensure_mmcv

say "installing mmdet, mmsegmentation and mmpretrain"
install_openmmlab mmdet mmsegmentation mmpretrain

say "installing distkd_mm in editable mode"
pip_ install -q --no-deps --no-build-isolation -e "$ROOT"

say "checking the stack imports"
"$VENV/bin/python" -c "import mmcv.ops, mmdet, mmseg, mmpretrain, distkd_mm; \
print('[setup] torch', __import__('torch').__version__, '| mmcv', mmcv.__version__, \
'| mmdet', mmdet.__version__, '| mmseg', mmseg.__version__, '| mmpretrain', mmpretrain.__version__)"

stamp > "$STAMP_FILE"
say "done; \`$VENV/bin/python tools/check_env.py\` checks that mmcv's ops run"
