"""`mim train mmpretrain` (which runs mmpretrain's own tools/train.py) runs
a config of ours; tools/test.py hands over to mmpretrain's (its --out); the
loss curves plot with mmpretrain's log analysis tool."""
import os
import os.path as osp
import pickle
import runpy
import subprocess
import sys

import pytest
from distkd_testing import REPO, run_tool

DIGITS = osp.join(REPO, 'configs', 'demo', 'digits_dist.py')


def mmpretrain_tool(*path: str) -> str:
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', *path)


@pytest.fixture(scope='module')
def trained(demo_teacher_ckpt, tmp_path_factory) -> str:
    """The work dir of `mim train mmpretrain digits_dist.py`: one epoch of
    one batch (32 digits; the demo logs to scalars.json too)."""
    work = str(tmp_path_factory.mktemp('mmpretrain_tools') / 'work')
    bin_dir = osp.dirname(sys.executable)
    result = subprocess.run(
        [
            osp.join(bin_dir, 'mim'),
            'train',
            'mmpretrain',
            DIGITS,
            '--gpus',
            '0',
            '--work-dir',
            work,
            '--cfg-options',
            f'model.teacher_ckpt={demo_teacher_ckpt}',
            'train_cfg.max_epochs=1',
            'train_dataloader.dataset.indices=32',
            'val_dataloader.dataset.indices=32',
            'default_hooks.teacher_gate.enable=False'  # a random teacher
        ],
        env=dict(
            os.environ,
            PATH=f'{bin_dir}:{os.environ["PATH"]}',
            OMP_NUM_THREADS='1'),
        capture_output=True,
        text=True,
        timeout=600)
    output = result.stdout[-2000:] + result.stderr[-2000:]
    assert result.returncode == 0, output
    # mim ran mmpretrain's own tools/train.py on our config.
    assert f'Training command is {sys.executable} ' \
        f'{mmpretrain_tool("train.py")} {DIGITS}' in result.stdout, output
    return work


def scalars_of(work: str) -> str:
    (scalars, ) = [
        osp.join(root, name) for root, _, names in os.walk(work)
        for name in names if name == 'scalars.json'
    ]
    return scalars


@pytest.mark.slow
def test_mmpretrain_train_script_logs_the_total_and_each_term(trained):
    assert osp.isfile(osp.join(trained, 'epoch_1.pth'))
    text = open(scalars_of(trained)).read()
    for key in ('"loss"', '"loss_student"', '"loss_dist"'):
        assert key in text, key


@pytest.mark.slow
def test_test_script_dumps_mmpretrain_predictions(trained, tmp_path):
    """mmpretrain's flags through tools/test.py (run here by its ``main``):
    ``--out`` predictions, ``--tta`` (flip test-time augmentation around
    the Distiller; mmdet's ``--show-dir`` is in
    tests/det/test_library_tools_det.py)."""
    preds = str(tmp_path / 'preds.pkl')
    run_tool('test', DIGITS, osp.join(trained, 'epoch_1.pth'), '--out', preds,
             '--tta', '--work-dir', str(tmp_path), '--cfg-options',
             'test_dataloader.dataset.indices=8')
    with open(preds, 'rb') as f:
        dumped = pickle.load(f)
    assert len(dumped) == 8 and 'pred_label' in dumped[0]


@pytest.mark.slow
def test_loss_curves_plot_with_mmpretrain_analyze_logs(trained, tmp_path,
                                                       monkeypatch):
    out = str(tmp_path / 'curves.png')
    monkeypatch.setenv('MPLBACKEND', 'Agg')
    monkeypatch.setattr(sys, 'argv', [
        'analyze_logs.py', 'plot_curve',
        scalars_of(trained), '--keys', 'loss', 'loss_dist', '--out', out
    ])
    runpy.run_path(
        mmpretrain_tool('analysis_tools', 'analyze_logs.py'),
        run_name='__main__')
    assert os.path.getsize(out) > 1000
