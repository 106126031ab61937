"""Check that this environment can run distkd_mm, and say how to fix it.

    python tools/check_env.py [--device cuda:0 ...]

Prints the versions of torch, torchvision, mmcv, mmengine, mmdet, mmseg,
mmpretrain and distkd_mm, the CUDA build and the GPUs torch sees, then runs
a tiny ``nms`` and ``roi_align`` of mmcv on the CPU and on every visible GPU
(plus any ``--device``): an mmcv without CUDA kernels imports fine and fails
only inside a detector. Each line is ``ok``, ``info`` or ``FAIL`` with its
fix; the exit status is the number of failures (0: all good).
"""
import argparse
import importlib
import importlib.util
import os.path as osp
import platform
import sys
from typing import Callable, List, Optional, Sequence

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# Import name -> distribution name, of the packages checked against the
# stack's pins.
DISTRIBUTIONS = {
    'mmcv': 'mmcv',
    'mmengine': 'mmengine',
    'mmdet': 'mmdet',
    'mmseg': 'mmsegmentation',
    'mmpretrain': 'mmpretrain',
}


def _load(*parts: str):
    """A module of this checkout by path: the checks run even where
    distkd_mm (or the stack) does not import."""
    path = osp.join(REPO, *parts)
    spec = importlib.util.spec_from_file_location(
        '_distkd_' + osp.splitext(parts[-1])[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_stack = _load('requirements', 'stack.py')
STACK = _stack.read_stack()
# The versions the stack pins (requirements/stack.txt); others may work
# but are not what this project was checked with.
EXPECTED = {name: STACK[dist].pin for name, dist in DISTRIBUTIONS.items()}
MIN_TORCH = STACK['torch'].floor
SETUP_FIX = ('pip install ' +
             ' '.join(f'{dist}=={STACK[dist].pin}'
                      for dist in DISTRIBUTIONS.values() if dist != 'mmcv') +
             ', and mmcv from source: `MMCV_WITH_OPS=1 pip '
             'install --no-build-isolation mmcv=={}` (from a checkout, '
             '`make env` does it all)'.format(STACK['mmcv'].pin))


class Report:
    """Collects the lines; counts the failures."""

    def __init__(self, write: Callable[[str], None] = print) -> None:
        self.write = write
        self.failures = 0

    def ok(self, what: str) -> None:
        self.write(f'ok    {what}')

    def info(self, what: str) -> None:
        self.write(f'info  {what}')

    def fail(self, what: str, fix: str) -> None:
        self.failures += 1
        self.write(f'FAIL  {what}\n      fix: {fix}')


def load_mmcv_ops_helpers():
    """distkd_mm/utils/mmcv_ops.py by path: it needs only torch, so the
    probes run even when distkd_mm itself does not import. The checkout's,
    else the installed package's (``mim run distkd_mm check_env``)."""
    if osp.isdir(osp.join(REPO, 'distkd_mm')):
        return _load('distkd_mm', 'utils', 'mmcv_ops.py')
    # find_spec of a top-level package locates it without importing it.
    package = importlib.util.find_spec('distkd_mm').submodule_search_locations
    return _load(package[0], 'utils', 'mmcv_ops.py')


def check_torch(report: Report, version: str, cuda: Optional[str]) -> bool:
    """One line for torch ``version`` (CUDA ``cuda`` or a CPU build):
    ``FAIL`` below the stack's floor. Returns whether it is supported."""
    build = f'CUDA {cuda} build' if cuda else 'CPU build'
    if _stack.version_tuple(version) < _stack.version_tuple(MIN_TORCH):
        report.fail(
            f'torch {version} ({build}) is older than {MIN_TORCH}, the '
            'oldest distkd_mm runs on (torch.serialization.safe_globals)',
            f'pip install "torch>={MIN_TORCH}" (or, from a checkout, '
            '`make env`)')
        return False
    report.ok(f'torch {version} ({build})')
    return True


def check_packages(report: Report) -> Optional[object]:
    """One line per package; returns torch, or None without it."""
    report.ok(f'python {platform.python_version()} ({sys.executable})')
    try:
        import torch
    except ImportError as err:
        report.fail(f'torch does not import ({err})', SETUP_FIX)
        return None
    check_torch(report, torch.__version__, torch.version.cuda)
    for name in ('torchvision', *EXPECTED, 'distkd_mm'):
        check_package(report, name)
    return torch


def check_package(report: Report, name: str) -> None:
    """Import ``name``; compare its version with the one set up."""
    try:
        version = importlib.import_module(name).__version__
    except Exception as err:  # mmdet asserts on mmcv's version, ...
        first = str(err).strip().splitlines()[0] if str(err) else ''
        fix = SETUP_FIX
        if name == 'distkd_mm':
            fix = 'fix the lines above first, then ' + SETUP_FIX
        report.fail(
            f'{name} does not import ({type(err).__name__}: '
            f'{first})', fix)
        return
    expected = EXPECTED.get(name)
    if expected and version != expected:
        report.fail(
            f'{name} {version}, but this project is set up with {expected}',
            f'pip install {DISTRIBUTIONS[name]}=={expected} (or '
            f'{SETUP_FIX})')
    else:
        report.ok(f'{name} {version}')


def check_mmcv_build(report: Report) -> None:
    """How mmcv's ops were compiled, or why they do not load."""
    try:
        from mmcv.ops import get_compiler_version, get_compiling_cuda_version
    except Exception as err:
        first = str(err).strip().splitlines()[0] if str(err) else ''
        why = ('this mmcv has no compiled ops (mmcv-lite, or built with '
               'MMCV_WITH_OPS=0)' if 'mmcv._ext' in first else
               'an mmcv built against another torch fails like this')
        report.fail(
            f'mmcv.ops does not load ({type(err).__name__}: {first}); {why}',
            load_mmcv_ops_helpers().rebuild_fix(cuda=False))
        return
    report.info(f'mmcv ops compiled by {get_compiler_version()}, CUDA: '
                f'{get_compiling_cuda_version()}')


def cuda_devices(torch, report: Report) -> List[str]:
    """The GPUs torch sees, one info line each."""
    if not torch.version.cuda:
        report.info('CUDA: torch is a CPU build; no GPU will be used')
        return []
    if not torch.cuda.is_available():
        report.info(f'CUDA: torch is a CUDA {torch.version.cuda} build, '
                    'but no GPU is visible')
        return []
    devices = []
    for i in range(torch.cuda.device_count()):
        cap = '{}.{}'.format(*torch.cuda.get_device_capability(i))
        report.info(f'GPU cuda:{i}: {torch.cuda.get_device_name(i)} '
                    f'(capability {cap})')
        devices.append(f'cuda:{i}')
    return devices


def check_ops(report: Report, helpers, devices: Sequence[str]) -> None:
    """Run mmcv's nms and roi_align on each device."""
    for device in devices:
        if device.startswith('cuda'):
            problem = helpers.cuda_ops_problem(device)
            if problem:
                report.fail(f'mmcv ops on {device}: {problem}',
                            helpers.rebuild_fix())
                continue
        for op, ok, detail in helpers.probe_ops(device):
            if ok:
                report.ok(f'mmcv {op} on {device}: {detail}')
            else:
                report.fail(f'mmcv {op} on {device}: {detail}',
                            helpers.rebuild_fix(cuda=device != 'cpu'))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument(
        '--device',
        action='append',
        default=[],
        help='also probe mmcv ops on this device (e.g. cuda:0)')
    args = parser.parse_args(argv)
    report = Report()
    torch = check_packages(report)
    if torch is None:
        return report.failures
    check_mmcv_build(report)
    devices = ['cpu'] + cuda_devices(torch, report)
    devices += [d for d in args.device if d not in devices]
    check_ops(report, load_mmcv_ops_helpers(), devices)
    report.write(f'{report.failures} problem(s)' if report.
                 failures else 'all checks passed')
    return min(report.failures, 100)


if __name__ == '__main__':
    sys.exit(main())
