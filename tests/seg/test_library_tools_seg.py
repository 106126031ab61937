"""mmseg's own tools/train.py trains a config of ours; tools/test.py (which
hands over to mmseg's) writes predicted masks to the ``--out`` folder."""
import os.path as osp
import subprocess
import sys

from mmengine.config import Config

from .test_seg_configs import CONFIGS, DEEPLAB, REPO, shrink


def run(cmd, cwd) -> None:
    result = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    output = result.stdout[-2000:] + result.stderr[-3000:]
    assert result.returncode == 0, output


def test_mmseg_train_and_test_scripts_run_our_config(cityscapes_root,
                                                     deeplabv3_r101_ckpt,
                                                     offline_resnet18_v1c,
                                                     tmp_path):
    import mmseg
    tools = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
    cfg = Config.fromfile(osp.join(CONFIGS, DEEPLAB))
    cfg.model.teacher_ckpt = deeplabv3_r101_ckpt
    shrink(cfg, cityscapes_root)
    cfg.train_cfg.update(max_iters=2, val_interval=2)
    cfg.default_hooks.checkpoint.interval = 2
    cfg.work_dir = str(tmp_path / 'work')
    config = str(tmp_path / 'deeplabv3_dist.py')
    cfg.dump(config)
    run([sys.executable, osp.join(tools, 'train.py'), config], tmp_path)
    ckpt = osp.join(cfg.work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)

    run([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), config, ckpt, '--out',
        str(tmp_path / 'masks')
    ], tmp_path)
    # mmseg's `--out`: one predicted label image per val image.
    assert len(list((tmp_path / 'masks').rglob('*.png'))) == 2
