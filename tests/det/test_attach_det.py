"""`--teacher` on a plain mmdet config: attach_teacher, then the Runner."""
import os.path as osp

from det_helpers import det_runner_cfg
from mmengine.runner import Runner

from distkd_mm.apis.attach import attach_teacher, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER = 'mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py'


def test_teacher_attached_to_plain_retinanet_config_trains(
        coco_root, teacher_ckpts, offline_resnet50, tmp_path):
    plain = load_config('mmdet::retinanet/retinanet_r50_fpn_2x_coco.py')
    # The X101 teacher checkpoint the RetinaNet DIST config's test uses.
    ckpt = teacher_ckpts(
        osp.join(
            REPO, 'configs/mmdet/dist_retinanet-x101_retinanet-r50_8xb2-2x_'
            'coco.py'))
    attached = attach_teacher(plain, TEACHER, ckpt)
    assert attached.model.distill_losses.loss_dist.loss.use_sigmoid
    path = str(tmp_path / 'attached.py')
    attached.dump(path)

    cfg = det_runner_cfg(path, coco_root, str(tmp_path / 'work'), ckpt)
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 1
    scalars = runner.message_hub.log_scalars
    for key in ('loss_cls', 'loss_bbox', 'loss_dist'):
        assert f'train/{key}' in scalars, key
    assert 'val/coco/bbox_mAP' in scalars
