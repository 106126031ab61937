"""mmdet's own tools/train.py trains a config of ours; tools/test.py (which
hands over to mmdet's) dumps predictions in mmdet's format and paints them.

The training run is also the RetinaNet DIST config's Runner check: its log
and checkpoint show the losses, the COCO evaluation and the schedule.
"""
import math
import os.path as osp
import pickle
import sys

import pytest
import torch
from det_helpers import REPO, RETINA_DIST, VAL_SIZES
from distkd_testing import logged_scalars, run_library_tool
from mmengine.config import Config


@pytest.mark.slow
def test_mmdet_train_and_test_scripts_run_our_config(make_det_cfg, tmp_path):
    import mmdet
    tools = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
    cfg = make_det_cfg(RETINA_DIST)
    config = str(tmp_path / 'retinanet_dist.py')
    cfg.dump(config)
    run_library_tool([sys.executable,
                      osp.join(tools, 'train.py'), config], tmp_path)
    ckpt = osp.join(cfg.work_dir, 'epoch_1.pth')
    assert osp.isfile(ckpt)

    # The student trained with its own losses and DIST, then CocoMetric
    # scored its boxes against the val annotations.
    scalars = logged_scalars(cfg.work_dir)
    for key in ('loss_dist', 'loss_cls', 'loss_bbox'):
        assert key in scalars and math.isfinite(scalars[key]), key
    assert scalars['loss_dist'] > 0
    assert 0 <= scalars['coco/bbox_mAP'] <= 1
    # The seed's schedule: lr 0.01, no clipping (a clipping optimizer
    # wrapper logs the gradient norm).
    saved = torch.load(ckpt, map_location='cpu', weights_only=False)
    groups = saved['optimizer']['param_groups']
    assert all(group['initial_lr'] == 0.01 for group in groups)
    assert 'grad_norm' not in scalars
    assert not Config.fromfile(RETINA_DIST).optim_wrapper.get('clip_grad')

    preds = str(tmp_path / 'preds.pkl')
    run_library_tool([
        sys.executable,
        osp.join(REPO, 'tools', 'test.py'), config, ckpt, '--out', preds,
        '--show-dir', 'painted'
    ], tmp_path)
    with open(preds, 'rb') as f:
        dumped = pickle.load(f)
    # mmdet's DumpDetResults: one dict per val image, boxes in pixels.
    assert len(dumped) == len(VAL_SIZES)
    assert dumped[0]['pred_instances']['bboxes'].shape[1] == 4
    painted = list((tmp_path / 'work').glob('*/painted/*.png'))
    assert len(painted) == len(VAL_SIZES)
