"""mmpretrain's own tools and `mim train mmpretrain` run a config of ours;
tools/test.py hands over to mmpretrain's (its --out); the loss curves plot
with mmpretrain's log analysis tool."""
import os
import os.path as osp
import pickle
import subprocess
import sys

import pytest
from distkd_testing import REPO, cli

DIGITS = osp.join(REPO, 'configs', 'demo', 'digits_dist.py')


def mmpretrain_tool(*path: str) -> str:
    import mmpretrain
    return osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools', *path)


def short_run(teacher_ckpt: str) -> list:
    """One epoch on 64 digits (the demo logs to scalars.json too)."""
    return [
        '--cfg-options', f'model.teacher_ckpt={teacher_ckpt}',
        'train_cfg.max_epochs=1', 'train_dataloader.dataset.indices=64',
        'val_dataloader.dataset.indices=64'
    ]


@pytest.fixture(scope='module')
def trained(demo_teacher_ckpt, tmp_path_factory) -> str:
    """The work dir of mmpretrain's tools/train.py on digits_dist.py."""
    tmp = tmp_path_factory.mktemp('mmpretrain_tools')
    work = str(tmp / 'work')
    result = cli([
        mmpretrain_tool('train.py'), DIGITS, '--work-dir', work,
        *short_run(demo_teacher_ckpt)
    ], tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    return work


def test_mmpretrain_train_script_logs_the_total_and_each_term(trained):
    assert osp.isfile(osp.join(trained, 'epoch_1.pth'))
    (scalars, ) = [
        osp.join(root, name) for root, _, names in os.walk(trained)
        for name in names if name == 'scalars.json'
    ]
    text = open(scalars).read()
    for key in ('"loss"', '"loss_student"', '"loss_dist"'):
        assert key in text, key


def test_test_script_dumps_mmpretrain_predictions(trained, tmp_path):
    """mmpretrain's flags through tools/test.py: ``--out`` predictions,
    ``--tta`` (flip test-time augmentation around the Distiller; mmdet's
    ``--show-dir`` is in tests/det/test_library_tools_det.py)."""
    preds = str(tmp_path / 'preds.pkl')
    result = cli([
        'tools/test.py', DIGITS,
        osp.join(trained, 'epoch_1.pth'), '--out', preds, '--tta',
        '--work-dir',
        str(tmp_path), '--cfg-options', 'test_dataloader.dataset.indices=8'
    ], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(preds, 'rb') as f:
        dumped = pickle.load(f)
    assert len(dumped) == 8 and 'pred_label' in dumped[0]


def test_loss_curves_plot_with_mmpretrain_analyze_logs(trained, tmp_path):
    (scalars, ) = [
        osp.join(root, name) for root, _, names in os.walk(trained)
        for name in names if name == 'scalars.json'
    ]
    out = str(tmp_path / 'curves.png')
    result = cli([
        mmpretrain_tool('analysis_tools', 'analyze_logs.py'), 'plot_curve',
        scalars, '--keys', 'loss', 'loss_dist', '--out', out
    ],
                 tmp_path,
                 MPLBACKEND='Agg')
    assert result.returncode == 0, result.stderr[-3000:]
    assert os.path.getsize(out) > 1000


def test_mim_train_mmpretrain_runs_our_config(demo_teacher_ckpt, tmp_path):
    bin_dir = osp.dirname(sys.executable)
    work = tmp_path / 'work'
    result = subprocess.run([
        osp.join(bin_dir, 'mim'), 'train', 'mmpretrain', DIGITS, '--gpus', '0',
        '--work-dir',
        str(work), *short_run(demo_teacher_ckpt)
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
    assert (work / 'epoch_1.pth').is_file()
