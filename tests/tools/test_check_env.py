"""tools/check_env.py on this machine, and its failing lines' fixes."""
import pytest
from distkd_testing import load_tool


@pytest.fixture(scope='module')
def check_env():
    return load_tool('check_env')


def _mmcv_has_cuda_ops() -> bool:
    from mmcv.ops import get_compiling_cuda_version
    return get_compiling_cuda_version() != 'not available'


def test_this_machine_passes(check_env, capsys):
    import torch
    assert check_env.main([]) == 0
    lines = capsys.readouterr().out.splitlines()
    # The versions requirements/stack.txt pins, as `make env` installs them.
    pins = {
        name: check_env.STACK[dist].pin
        for name, dist in check_env.DISTRIBUTIONS.items()
    }
    assert pins['mmseg'] == check_env.STACK['mmsegmentation'].pin
    for expected in [
            f'ok    torch {torch.__version__}', 'ok    torchvision ',
            *(f'ok    {name} {pin}' for name, pin in pins.items()),
            'ok    distkd_mm ', 'info  mmcv ops compiled by ',
            'ok    mmcv nms on cpu: kept boxes [0, 2] of 3',
            'ok    mmcv roi_align on cpu: pooled a 4x4 map to 2x2 correctly'
    ]:
        assert any(line.startswith(expected) for line in lines), expected
    if not torch.cuda.is_available():
        assert any(
            line.startswith('info  CUDA: torch is a ') for line in lines)
    assert lines[-1] == 'all checks passed'


@pytest.mark.skipif(_mmcv_has_cuda_ops(), reason='this mmcv has CUDA kernels')
def test_missing_cuda_kernels_fail_with_the_fix(check_env, capsys):
    # Asked about a GPU this mmcv cannot use (its exit code: main's).
    assert check_env.main(['--device', 'cuda:0']) == 1
    out = capsys.readouterr().out
    mmcv = check_env.EXPECTED['mmcv']
    assert 'ok    mmcv nms on cpu: kept boxes [0, 2] of 3' in out
    # The pip command a pip-installed user has; `make env` from a checkout.
    assert (f'FAIL  mmcv ops on cuda:0: mmcv {mmcv} was built with CPU ops '
            'only\n      fix: rebuild mmcv with CUDA ops on a GPU node: '
            '`MMCV_WITH_OPS=1 FORCE_CUDA=1 pip install --no-build-isolation '
            f'--no-binary mmcv --no-deps --force-reinstall mmcv=={mmcv}` '
            '(nvcc from CUDA_HOME; TORCH_CUDA_ARCH_LIST picks the GPU archs; '
            'from a checkout: `MMCV_CUDA=1 make env`)') in out
    assert out.splitlines()[-1] == '1 problem(s)'


def test_failing_package_lines_carry_their_fix(check_env, monkeypatch):
    lines = []
    report = check_env.Report(lines.append)
    pins = check_env.EXPECTED
    check_env.check_package(report, 'mmdet')
    assert lines == [f'ok    mmdet {pins["mmdet"]}']
    installed = pins['mmseg']
    monkeypatch.setitem(check_env.EXPECTED, 'mmseg', '9.9.9')
    check_env.check_package(report, 'mmseg')
    check_env.check_package(report, 'no_such_module_here')
    assert report.failures == 2
    assert lines[1].startswith(
        f'FAIL  mmseg {installed}, but this project is set up with '
        '9.9.9\n      fix: pip install mmsegmentation==9.9.9 (or pip '
        f'install mmengine=={pins["mmengine"]} mmdet=={pins["mmdet"]} ')
    assert lines[2].startswith(
        "FAIL  no_such_module_here does not import (ModuleNotFoundError: No "
        "module named 'no_such_module_here')\n      fix: pip install ")
    # Every fix names a command a pip-installed user has, and the
    # checkout's alternative.
    assert all('`make env`' in line for line in lines[1:])
    assert (f'`MMCV_WITH_OPS=1 pip install --no-build-isolation '
            f'mmcv=={pins["mmcv"]}`') in lines[2]


def test_torch_below_the_stacks_floor_fails_with_the_fix(check_env):
    lines = []
    report = check_env.Report(lines.append)
    # The floor setup.py and requirements/stack.txt declare.
    assert check_env.MIN_TORCH == '2.5'
    assert not check_env.check_torch(report, '2.4.1+cu121', '12.1')
    assert check_env.check_torch(report, '2.5.0', None)
    assert check_env.check_torch(report, '2.14.1+cu130', '13.0')
    assert report.failures == 1
    assert lines == [
        'FAIL  torch 2.4.1+cu121 (CUDA 12.1 build) is older than 2.5, the '
        'oldest distkd_mm runs on (torch.serialization.safe_globals)\n'
        '      fix: pip install "torch>=2.5" (or, from a checkout, '
        '`make env`)', 'ok    torch 2.5.0 (CPU build)',
        'ok    torch 2.14.1+cu130 (CUDA 13.0 build)'
    ]
