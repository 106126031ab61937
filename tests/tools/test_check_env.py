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
    for expected in [
            f'ok    torch {torch.__version__}', 'ok    torchvision ',
            'ok    mmcv 2.1.0', 'ok    mmengine 0.10.7', 'ok    mmdet 3.3.0',
            'ok    mmseg 1.2.2', 'ok    mmpretrain 1.2.0', 'ok    distkd_mm ',
            'info  mmcv ops compiled by ',
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
    assert 'ok    mmcv nms on cpu: kept boxes [0, 2] of 3' in out
    assert ('FAIL  mmcv ops on cuda:0: mmcv 2.1.0 was built with CPU ops '
            'only\n      fix: rebuild mmcv with CUDA ops on a GPU node: '
            '`MMCV_CUDA=1 make env`') in out
    assert out.splitlines()[-1] == '1 problem(s)'


def test_failing_package_lines_carry_their_fix(check_env, monkeypatch):
    lines = []
    report = check_env.Report(lines.append)
    check_env.check_package(report, 'mmdet')
    assert lines == ['ok    mmdet 3.3.0']
    monkeypatch.setitem(check_env.EXPECTED, 'mmseg', '9.9.9')
    check_env.check_package(report, 'mmseg')
    check_env.check_package(report, 'no_such_module_here')
    assert report.failures == 2
    assert lines[1] == ('FAIL  mmseg 1.2.2, but this project is set up with '
                        '9.9.9\n      fix: pip install mmsegmentation==9.9.9 '
                        '(or run `make env` (or `make env SETUP_ARGS='
                        '--system-torch` to keep the torch you have))')
    assert lines[2].startswith(
        "FAIL  no_such_module_here does not import (ModuleNotFoundError: No "
        "module named 'no_such_module_here')\n      fix: run `make env`")
