"""mmseg's own tools/train.py trains a config of ours; tools/test.py (which
hands over to mmseg's) writes predicted masks to the ``--out`` folder.

The training run is also the DeepLabV3 config's Runner check: its log and
checkpoint show the losses, the mIoU and the student's pretrained init.
"""
import glob
import os.path as osp
import sys

import pytest
import torch
from distkd_testing import logged_scalars, run_library_tool
from mmengine.config import Config

from .test_seg_configs import CONFIGS, DEEPLAB, REPO, one_iteration


@pytest.mark.slow
def test_mmseg_train_and_test_scripts_run_our_config(cityscapes_root,
                                                     deeplabv3_r101_ckpt,
                                                     offline_resnet18_v1c,
                                                     tmp_path):
    import mmseg
    tools = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')
    cfg = Config.fromfile(osp.join(CONFIGS, DEEPLAB))
    cfg.model.teacher_ckpt = deeplabv3_r101_ckpt
    one_iteration(cfg, cityscapes_root, str(tmp_path / 'work'))
    config = str(tmp_path / 'deeplabv3_dist.py')
    cfg.dump(config)
    run_library_tool([sys.executable,
                      osp.join(tools, 'train.py'), config], tmp_path)
    ckpt = osp.join(cfg.work_dir, 'iter_1.pth')
    assert osp.isfile(ckpt)

    scalars = logged_scalars(cfg.work_dir)
    for key in ('decode.loss_ce', 'aux.loss_ce', 'loss_dist', 'loss_dist_aux',
                'loss'):
        assert key in scalars, key
    # mIoU through the student on the generated val image.
    assert 0 <= scalars['mIoU'] <= 100
    state = torch.load(ckpt, weights_only=False)['state_dict']
    # The student's backbone came from open-mmlab://resnet18_v1c (the
    # offline torch hub cache this process's environment points at); one
    # SGD step moved it a little.
    for key in ('stem.0.weight', 'layer4.1.conv2.weight'):
        trained = state[f'student.backbone.{key}'].flatten()
        loaded = offline_resnet18_v1c[key].flatten()
        assert torch.cosine_similarity(trained, loaded, dim=0) > 0.9, key

    run_library_tool([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), config, ckpt, '--out',
        str(tmp_path / 'masks')
    ], tmp_path)
    # mmseg's `--out`: one predicted label image per val image.
    val_images = glob.glob(
        osp.join(cityscapes_root, 'leftImg8bit', 'val', '*', '*.png'))
    assert len(list((tmp_path / 'masks').rglob('*.png'))) == len(val_images)
