"""Single-stage detectors distil by naming their class-logit taps.

No detector-specific code: the teacher runs in ``tensor`` mode (backbone,
neck and head forward; mmdet's ``SingleStageDetector._forward``), its head
runs once per FPN level, and the Distiller pairs the calls in order.
"""
import warnings

import pytest
import torch
from det_helpers import build_in_mmdet, det_samples, tiny_detector
from distkd_testing import one_term_distiller

from distkd_mm.losses import dist_loss

RETINA = 'retinanet/retinanet_r50_fpn_1x_coco.py'


def distiller_cfg(student: dict,
                  teacher: dict,
                  s_tap: str,
                  t_tap: str,
                  use_sigmoid: bool = True) -> dict:
    return one_term_distiller(student, teacher, s_tap, t_tap,
                              dict(type='DISTLoss', use_sigmoid=use_sigmoid))


def step(cfg: dict) -> tuple:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        model = build_in_mmdet(cfg).train()
    batch = model.data_preprocessor(det_samples(), True)
    return model, model.loss(batch['inputs'], batch['data_samples'])


def test_teacher_tensor_mode_is_backbone_neck_and_head_forward_only():
    # What the Distiller relies on for single-stage teachers: no anchors,
    # targets or losses in `tensor` mode.
    model = build_in_mmdet(tiny_detector(RETINA)).eval()
    called = []
    for name in ('loss', 'loss_by_feat', 'get_targets', 'predict_by_feat'):
        setattr(
            model.bbox_head,
            name,
            lambda *a, name=name, **k: called.append(name))
    batch = model.data_preprocessor(det_samples(), False)
    with torch.no_grad():
        cls_scores, bbox_preds = model(batch['inputs'], mode='tensor')
    assert called == []
    assert len(cls_scores) == 5 and cls_scores[0].shape[1] == 9 * 80


@pytest.mark.parametrize(
    'recipe, tap',
    [('retinanet/retinanet_r50_fpn_1x_coco.py', 'bbox_head.retina_cls'),
     ('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', 'bbox_head.conv_cls'),
     ('atss/atss_r50_fpn_1x_coco.py', 'bbox_head.atss_cls'),
     ('gfl/gfl_r50_fpn_1x_coco.py', 'bbox_head.gfl_cls')],
    ids=['retinanet', 'fcos', 'atss', 'gfl'])
def test_single_stage_detectors_distil_by_naming_taps(recipe, tap):
    # A wider teacher of the same family: only the class logits must align.
    student = tiny_detector(recipe, width=8)
    teacher = tiny_detector(recipe, width=16)
    model, losses = step(distiller_cfg(student, teacher, tap, tap))
    assert torch.isfinite(losses['loss_dist']) and losses['loss_dist'] > 0
    # The student's own losses are still there.
    assert any(k.startswith('loss_cls') for k in losses)
    # The term trains the student's classifier.
    grad = torch.autograd.grad(
        losses['loss_dist'],
        dict(model.student.named_parameters())[f'{tap}.weight'])[0]
    assert grad.abs().sum() > 0


def test_per_level_terms_are_summed():
    student, teacher = tiny_detector(RETINA), tiny_detector(RETINA, width=16)
    cfg = distiller_cfg(student, teacher, 'bbox_head.retina_cls',
                        'bbox_head.retina_cls')
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        model = build_in_mmdet(cfg).train()
    batch = model.data_preprocessor(det_samples(), True)
    inputs = batch['inputs']
    with torch.no_grad():
        s_scores, _ = model.student(inputs, mode='tensor')
        t_scores, _ = model.teacher(inputs, mode='tensor')
        expected = sum(
            dist_loss(s, t, use_sigmoid=True)
            for s, t in zip(s_scores, t_scores))
        losses = model.loss(inputs, batch['data_samples'])
    assert len(s_scores) == 5
    torch.testing.assert_close(losses['loss_dist'], expected)


def test_other_class_count_fails_when_the_model_is_built():
    student = tiny_detector(RETINA)
    teacher = tiny_detector(RETINA, num_classes=20)
    tap = 'bbox_head.retina_cls'
    with pytest.raises(ValueError) as info:
        build_in_mmdet(distiller_cfg(student, teacher, tap, tap))
    msg = str(info.value)
    assert 'num_classes=80' in msg and 'num_classes=20' in msg


def test_softmax_over_several_anchors_fails_when_the_model_is_built():
    # RetinaNet with a softmax head: 9 anchors x (80 + 1) channels, one
    # softmax per anchor; DIST over all channels would mix them.
    student, teacher = tiny_detector(RETINA), tiny_detector(RETINA)
    for model in (student, teacher):
        model['bbox_head']['loss_cls'] = dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)
    tap = 'bbox_head.retina_cls'
    with pytest.raises(ValueError, match='9 anchors per location'):
        build_in_mmdet(
            distiller_cfg(student, teacher, tap, tap, use_sigmoid=False))
    # One prior per location (FCOS) takes a softmax as it is.
    fcos = tiny_detector('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    tap = 'bbox_head.conv_cls'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        build_in_mmdet(distiller_cfg(fcos, fcos, tap, tap, use_sigmoid=False))


def test_heads_whose_logits_do_not_line_up_fail_naming_both():
    # RetinaNet's 9 anchors x 80 classes vs FCOS's 80 classes per point.
    student = tiny_detector(RETINA)
    teacher = tiny_detector('fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py')
    with pytest.raises(RuntimeError) as info:
        step(
            distiller_cfg(student, teacher, 'bbox_head.retina_cls',
                          'bbox_head.conv_cls'))
    msg = str(info.value)
    assert "'bbox_head.retina_cls'" in msg and "'bbox_head.conv_cls'" in msg
    assert 'shape (2, 720, ' in msg and 'shape (2, 80, ' in msg
