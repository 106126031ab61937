"""RoITeacherForward: a two-stage teacher classifies the student's RoIs.

Tiny Faster R-CNN student and Cascade Mask R-CNN teacher (the seed recipes'
layouts at 8-16 channels), so the mechanism is checked in seconds.
"""
import warnings

import pytest
import torch
from det_helpers import (build_in_mmdet, det_samples, tiny_backbone,
                         tiny_detector)

from distkd_mm.distillers.teacher_forward import RoITeacherForward

STUDENT = 'faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'
TEACHER = 'cascade_rcnn/cascade-mask-rcnn_r50_fpn_20e_coco.py'


def two_stage_cfg(teacher_classes: int = 80, **forward) -> dict:
    teacher = tiny_detector(TEACHER, teacher_classes)
    teacher['backbone'] = tiny_backbone(16)
    teacher['neck']['in_channels'] = [16, 32, 64, 128]
    return dict(
        type='Distiller',
        student=tiny_detector(STUDENT),
        teacher=teacher,
        teacher_forward=dict(type='RoITeacherForward', **forward),
        distill_losses=dict(
            loss_dist=dict(
                student='roi_head.bbox_head.fc_cls',
                teacher='roi_head.bbox_head.0.fc_cls',
                loss=dict(type='DISTLoss'))))


@pytest.fixture(scope='module')
def distiller():
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        model = build_in_mmdet(two_stage_cfg())
    return model.train()


@pytest.fixture(scope='module')
def batch(distiller):
    return distiller.data_preprocessor(det_samples(), True)


class RoIProbe:
    """Records the student's RoIs, optionally replacing them first."""

    def __init__(self, model, replace=None):
        self.rois = []
        self.replace = replace
        extractor = model.student.roi_head.bbox_roi_extractor
        # Registered before the step, so it runs before the hook that
        # RoITeacherForward's recorder adds for the step: the teacher gets
        # the replaced RoIs, as the student's extractor does.
        self.handle = extractor.register_forward_pre_hook(self)

    def __call__(self, module, args):
        feats, rois = args[:2]
        if self.replace is not None:
            rois = self.replace.clone()
        self.rois.append(rois)
        return (feats, rois, *args[2:])


def run_step(model, batch, replace=None):
    """One distillation step; return (rois, student logits, teacher
    logits) as the taps saw them."""
    probe = RoIProbe(model, replace)
    teacher_tap = dict(
        model.teacher.named_modules())[model.terms['loss_dist'].teacher_tap]
    outs = {}
    hooks = [
        model.student.roi_head.bbox_head.fc_cls.register_forward_hook(
            lambda m, a, o: outs.setdefault('student', o)),
        teacher_tap.register_forward_hook(
            lambda m, a, o: outs.setdefault('teacher', o)),
    ]
    try:
        losses = model.loss(batch['inputs'], batch['data_samples'])
    finally:
        probe.handle.remove()
        for h in hooks:
            h.remove()
    assert torch.isfinite(losses['loss_dist'])
    assert len(probe.rois) == 1
    return probe.rois[0], outs['student'], outs['teacher']


def test_teacher_logits_have_one_row_per_student_roi(distiller, batch):
    rois, s_logits, t_logits = run_step(distiller, batch)
    num_rois = rois.shape[0]
    # 2 images x 512 sampled RoIs, 80 classes + background on both sides.
    assert num_rois == 2 * 512
    assert s_logits.shape == t_logits.shape == (num_rois, 81)
    assert not t_logits.requires_grad


def test_teacher_logits_are_its_first_stage_head_on_the_student_rois(
        distiller, batch):
    rois, _, t_logits = run_step(distiller, batch)
    teacher = distiller.teacher
    extractor = teacher.roi_head.bbox_roi_extractor[0]
    with torch.no_grad():
        feats = teacher.extract_feat(
            distiller.teacher_inputs(batch['inputs'], batch['data_samples']))
        expected, _ = teacher.roi_head.bbox_head[0](
            extractor(feats[:extractor.num_inputs], rois))
    torch.testing.assert_close(t_logits, expected)


def test_teacher_rows_follow_the_student_rois(distiller, batch):
    rois, _, t_logits = run_step(distiller, batch)
    # Same RoIs in another order: the teacher's rows are permuted alike,
    # so row i is always the teacher's verdict on the student's RoI i.
    perm = torch.randperm(
        rois.shape[0], generator=torch.Generator().manual_seed(0))
    _, _, t_perm = run_step(distiller, batch, replace=rois[perm])
    torch.testing.assert_close(t_perm, t_logits[perm])
    # Moved RoIs: the teacher classifies other image regions.
    moved = rois.clone()
    moved[:, 1:] = (moved[:, 1:] + torch.tensor([9., 7., 9., 7.])).clamp(0, 95)
    _, _, t_moved = run_step(distiller, batch, replace=moved)
    assert t_moved.shape == t_logits.shape
    assert not torch.allclose(t_moved, t_logits)


def test_teacher_runs_backbone_neck_and_first_stage_only(distiller, batch):
    teacher = distiller.teacher
    named = dict(teacher.named_modules())
    calls = {name: 0 for name in named if name}
    hooks = [
        named[name].register_forward_pre_hook(
            lambda m, a, name=name: calls.__setitem__(name, calls[name] + 1))
        for name in calls
    ]
    try:
        run_step(distiller, batch)
    finally:
        for h in hooks:
            h.remove()
    ran = {
        name.split('.')[0] + '.' + '.'.join(name.split('.')[1:3])
        for name, n in calls.items() if n
    }
    assert calls['backbone'] == calls['neck'] == 1
    assert calls['roi_head.bbox_head.0'] == 1
    assert not any(n for name, n in calls.items() if name.startswith(
        ('rpn_head', 'roi_head.mask', 'roi_head.bbox_head.1',
         'roi_head.bbox_head.2', 'roi_head.bbox_roi_extractor.1',
         'roi_head.bbox_roi_extractor.2')) or 'loss' in name), sorted(ran)


@pytest.mark.parametrize('student', [None, {}])
def test_without_the_student_rois_the_call_fails_clearly(
        distiller, batch, student):
    forward = distiller.teacher_run.forward
    with pytest.raises(RuntimeError, match='got no RoIs'):
        forward(distiller.teacher, batch['inputs'], batch['data_samples'],
                student)


def forward_hooks(model):
    return {
        name: len(m._forward_hooks) + len(m._forward_pre_hooks)
        for name, m in model.named_modules()
        if m._forward_hooks or m._forward_pre_hooks
    }


def test_no_hook_stays_on_student_or_teacher_between_steps(distiller, batch):
    # The RoIs are recorded in the step's scope only, like the taps: with
    # no hook outside it, a validation forward records nothing and no RoI
    # of one step can reach the next.
    run_step(distiller, batch)
    assert forward_hooks(distiller.student) == {}
    assert forward_hooks(distiller.teacher) == {}
    distiller.eval()
    try:
        with torch.no_grad():
            distiller(batch['inputs'], batch['data_samples'], mode='predict')
    finally:
        distiller.train()
    assert forward_hooks(distiller.student) == {}

    # A step that fails in the student (here: in its RoI extractor) leaves
    # no hook either.
    def broken(*args):
        raise KeyError('broken step')

    extractor = distiller.student.roi_head.bbox_roi_extractor
    handle = extractor.register_forward_hook(broken)
    try:
        with pytest.raises(KeyError, match='broken step'):
            distiller.loss(batch['inputs'], batch['data_samples'])
    finally:
        handle.remove()
    assert forward_hooks(distiller.student) == {}
    assert forward_hooks(distiller.teacher) == {}


def test_a_folded_teacher_classifies_the_same_student_rois(batch):
    # Folding runs the teacher three times in its first step, on the RoIs
    # the student sampled once.
    torch.manual_seed(0)
    plain = build_in_mmdet(two_stage_cfg()).train()
    folded = build_in_mmdet(dict(two_stage_cfg(), teacher_fuse=True)).train()
    folded.load_state_dict(plain.state_dict())
    folded.teacher.load_state_dict(plain.teacher.state_dict())
    losses = []
    for model in (plain, folded):
        torch.manual_seed(1)  # the same RoI sampling
        losses.append(model.loss(batch['inputs'], batch['data_samples']))
    assert folded.teacher_run.fast.folded
    torch.testing.assert_close(losses[1]['loss_dist'], losses[0]['loss_dist'])


def test_wrong_extractor_path_fails_at_build_with_a_suggestion():
    with pytest.raises(ValueError, match='bbox_roi_extractor'):
        build_in_mmdet(
            two_stage_cfg(student_roi_extractor='roi_head.bbox_roi_extract'))


def test_extractor_path_of_another_module_fails_at_the_first_step():
    model = build_in_mmdet(
        two_stage_cfg(student_roi_extractor='roi_head.bbox_head'))
    batch = model.data_preprocessor(det_samples(), True)
    with pytest.raises(RuntimeError, match=r'rois of shape \(num_rois, 5\)'):
        model.train().loss(batch['inputs'], batch['data_samples'])


@pytest.mark.slow
def test_single_stage_teacher_is_rejected_at_build():
    student = build_in_mmdet(tiny_detector(STUDENT))
    teacher = build_in_mmdet(
        tiny_detector('retinanet/'
                      'retinanet_r50_fpn_1x_coco.py'))
    with pytest.raises(ValueError, match='two-stage'):
        RoITeacherForward().attach(student, teacher)


@pytest.mark.parametrize('stage', [-1, 1.5, True])
def test_bad_stage_is_rejected(stage):
    with pytest.raises(ValueError, match='`stage`'):
        RoITeacherForward(stage=stage)


def test_stage_beyond_the_cascade_is_rejected():
    with pytest.raises(ValueError, match='3 cascade stages'):
        build_in_mmdet(two_stage_cfg(stage=3))


def test_other_class_count_fails_at_build_naming_both_counts():
    with pytest.raises(ValueError) as info:
        build_in_mmdet(two_stage_cfg(teacher_classes=20))
    msg = str(info.value)
    assert "student's `roi_head.bbox_head` has num_classes=80" in msg
    assert "teacher's `roi_head.bbox_head.0` has num_classes=20" in msg


def test_a_standard_roi_head_teacher_uses_its_only_stage():
    cfg = two_stage_cfg()
    cfg['teacher'] = tiny_detector(STUDENT, width=16)
    cfg['distill_losses']['loss_dist']['teacher'] = 'roi_head.bbox_head.fc_cls'
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        model = build_in_mmdet(cfg).train()
    rois, s_logits, t_logits = run_step(
        model, model.data_preprocessor(det_samples(), True))
    assert s_logits.shape == t_logits.shape == (rois.shape[0], 81)


def test_bf16_teacher_pools_the_student_rois_in_fp32(batch):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        model = build_in_mmdet(two_stage_cfg()).train()
    model.teacher_run.autocast = 'bf16'
    seen = {}
    extractor = model.teacher.roi_head.bbox_roi_extractor[0]
    handle = extractor.register_forward_pre_hook(lambda m, args: seen.update(
        feats=args[0][0].dtype, rois=args[1].dtype))
    try:
        losses = model.loss(batch['inputs'], batch['data_samples'])
    finally:
        handle.remove()
    # Box coordinates in bf16 would be rounded to several pixels.
    assert seen == dict(feats=torch.float32, rois=torch.float32)
    assert torch.isfinite(losses['loss_dist'])
