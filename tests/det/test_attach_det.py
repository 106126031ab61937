"""`--teacher` on a plain mmdet config: attach_teacher, then the Runner."""
import os.path as osp

import pytest
import torch
from det_helpers import (build_in_mmdet, det_runner_cfg, det_samples,
                         tiny_detector)
from distkd_testing import save_random_teacher
from mmengine.config import Config
from mmengine.optim import OptimWrapper
from mmengine.runner import Runner

from distkd_mm.apis.attach import attach_teacher, load_config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TEACHER = 'mmdet::retinanet/retinanet_x101-64x4d_fpn_1x_coco.py'


@pytest.mark.slow
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


# (mmdet recipe, the class-map tap --teacher picks, FPN levels). RTMDet,
# YOLOX, YOLOF and CenterNet are their own models (their necks are not
# ResNet + FPN); the others are shrunk to a ResNet-18 at 8 channels with a
# 16-channel FPN.
FAMILIES = [
    ('retinanet/retinanet_r50_fpn_1x_coco.py', 'bbox_head.retina_cls', 5),
    ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'bbox_head.conv_cls', 5),
    ('atss/atss_r50_fpn_1x_coco.py', 'bbox_head.atss_cls', 5),
    ('gfl/gfl_r50_fpn_1x_coco.py', 'bbox_head.gfl_cls', 5),
    ('tood/tood_r50_fpn_1x_coco.py', 'bbox_head.tood_cls', 5),
    ('foveabox/fovea_r50_fpn_4xb4-1x_coco.py', 'bbox_head.conv_cls', 5),
    ('paa/paa_r50_fpn_1x_coco.py', 'bbox_head.atss_cls', 5),
    ('vfnet/vfnet_r50_fpn_1x_coco.py', 'bbox_head.vfnet_cls', 5),
    # Sigmoid from FCOSHead's default loss_cls (AutoAssignHead has none).
    ('autoassign/autoassign_r50-caffe_fpn_1x_coco.py', 'bbox_head.conv_cls', 5
     ),
    # RepPointsHead builds no conv_cls of its base AnchorFreeHead.
    ('reppoints/reppoints-moment_r50_fpn_1x_coco.py',
     'bbox_head.reppoints_cls_out', 5),
    # Sigmoid from its GaussianFocalLoss (no use_sigmoid switch).
    ('centernet/centernet-update_r50-caffe_fpn_ms-1x_coco.py',
     'bbox_head.conv_cls', 5),
    # A RetinaNet whose head is no RetinaHead: 'dense', not 'retinanet'.
    ('sabl/sabl-retinanet_r50_fpn_1x_coco.py', 'bbox_head.retina_cls', 5),
    ('rtmdet/rtmdet_tiny_8xb32-300e_coco.py', 'bbox_head.rtm_cls', 3),
    ('yolox/yolox_tiny_8xb8-300e_coco.py', 'bbox_head.multi_level_conv_cls',
     3),
    ('yolof/yolof_r50-c5_8xb8-1x_coco.py', 'bbox_head.cls_score', 1),
    ('centernet/centernet_r18_8xb16-crop512-140e_coco.py',
     'bbox_head.heatmap_head', 1),
]
# Heads whose default GroupNorm has 32 groups: too many for 16 channels.
_GN_HEADS = ('TOODHead', 'PAAHead', 'VFNetHead', 'AutoAssignHead',
             'CenterNetUpdateHead', 'RepPointsHead', 'FoveaHead')


def _family_model(recipe: str) -> dict:
    if recipe.startswith(('rtmdet', 'yolox', 'yolof', 'centernet/centernet_')):
        from mmengine.hub import get_config
        model = get_config(f'mmdet::{recipe}').model.to_dict()
        # YOLOX's multi-scale batch resize would grow the 64x96 test
        # images to 320-640 px: the step, not the pairing, would be slow.
        model['data_preprocessor'].pop('batch_augments', None)
        model['backbone'].pop('init_cfg', None)  # no download
        return model
    model = tiny_detector(recipe).to_dict()
    if model['bbox_head']['type'] in _GN_HEADS:
        model['bbox_head']['norm_cfg'] = dict(
            type='GN', num_groups=4, requires_grad=True)
    return model


@pytest.mark.slow
@pytest.mark.parametrize('recipe,tap,levels', FAMILIES)
def test_teacher_attaches_to_dense_detectors_and_steps(recipe, tap, levels,
                                                       tmp_path):
    """``--teacher`` on plain mmdet models of sixteen dense heads: the
    preset is guessed, taps the head's class maps (a ModuleList member by
    member), and a training step of the built Distiller is finite."""
    from mmengine.logging import MessageHub

    # TOOD's head reads the epoch (a Runner's hook sets it).
    MessageHub.get_current_instance().update_info('epoch', 0)
    model = _family_model(recipe)
    teacher = str(tmp_path / 'teacher.py')
    Config(dict(model=model, default_scope='mmdet')).dump(teacher)
    ckpt = save_random_teacher(teacher, tmp_path / 'teacher.pth')
    cfg = attach_teacher(Config(dict(model=model)), teacher, ckpt)
    term = cfg.model.distill_losses.loss_dist
    assert term.student == term.teacher == tap
    assert term.loss.use_sigmoid  # all of them score classes by sigmoid
    assert cfg.default_hooks.teacher_gate.type == 'TeacherGateHook'

    distiller = build_in_mmdet(cfg.model.to_dict())
    batch = distiller.data_preprocessor(det_samples(), True)
    taps = distiller.run_teacher(batch['inputs'], batch['data_samples'])
    assert len(taps[tap]) == levels  # one call per level
    optim = OptimWrapper(torch.optim.SGD(distiller.parameters(), lr=1e-3))
    log_vars = distiller.train_step(det_samples(), optim)
    assert log_vars['loss_dist'] > 0
    assert all(torch.isfinite(v) for v in log_vars.values())


@pytest.mark.parametrize('recipe', [
    'dino/dino-4scale_r50_8xb2-12e_coco.py',
    'detr/detr_r50_8xb2-150e_coco.py',
    'deformable_detr/deformable-detr_r50_16xb2-50e_coco.py',
    'mask2former/mask2former_r50_8xb2-lsj-50e_coco-panoptic.py',
])
def test_query_based_detectors_are_refused_saying_why(recipe):
    plain = load_config(f'mmdet::{recipe}')
    for preset in (None, 'dense', 'two-stage'):
        with pytest.raises(ValueError) as info:
            attach_teacher(plain, f'mmdet::{recipe}', preset=preset)
        message = str(info.value)
        assert 'Hungarian assignment' in message
        assert 'not the same object' in message
        assert 'FPN/neck feature mimic' in message
        assert 'loss_' not in message.split('e.g.')[0]  # no loss_dice...


@pytest.mark.parametrize('recipe,reason', [
    ('ssd/ssd300_coco.py', 'one softmax per anchor'),
    ('yolo/yolov3_d53_8xb8-320-273e_coco.py', 'boxes, objectness and'),
    ('guided_anchoring/ga-retinanet_r50_fpn_1x_coco.py', 'masked conv'),
    ('condinst/condinst_r50_fpn_ms-poly-90k_coco_instance.py',
     "runs the box head's loss"),
    ('sparse_rcnn/sparse-rcnn_r50_fpn_1x_coco.py', 'Hungarian assignment'),
    ('ddq/ddq-detr-4scale_r50_8xb2-12e_coco.py', 'Hungarian assignment'),
])
def test_heads_whose_class_maps_do_not_line_up_are_refused_saying_why(
        recipe, reason):
    """Refused when the config is attached (no model is built), naming the
    reason, never "no preset is known" or a failure at the first step."""
    plain = load_config(f'mmdet::{recipe}')
    with pytest.raises(ValueError) as info:
        attach_teacher(plain, f'mmdet::{recipe}')
    message = str(info.value)
    assert reason in message
    assert 'no preset is known' not in message
    assert '`distill_losses`' in message or 'FPN/neck feature' in message


@pytest.mark.slow
def test_gate_stops_a_random_detection_teacher_by_the_map_floor(make_det_cfg):
    """The shipped RetinaNet config with a random X101 teacher: COCO mAP
    scored on the evaluated images only is ~0, below the 0.01 floor."""
    from det_helpers import RETINA_DIST
    cfg = make_det_cfg(RETINA_DIST)
    cfg.default_hooks.teacher_gate.update(enable=True, max_eval_batches=1)
    runner = Runner.from_cfg(cfg)
    with pytest.raises(RuntimeError, match='the mAP floor 0.01') as info:
        runner.train()
    assert 'coco/bbox_mAP=' in str(info.value)
    assert runner.iter == 0
    # The real validation afterwards still scores every image.
    assert runner.val_loop.evaluator.metrics[0].img_ids is None
