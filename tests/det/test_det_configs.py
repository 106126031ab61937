"""The four seed configs train on generated COCO data and evaluate.

Each config is loaded as shipped; only dataset paths, image scale and data
sizes change (plus a score threshold of 0, so an untrained student still
returns boxes). A Runner trains 2 iterations on CPU, then the student is
evaluated with mmdet's CocoMetric.
"""
import math
import os.path as osp

import pytest
import torch
from det_helpers import (FRCNN_DIST, FRCNN_MIMIC, RETINA_DIST, RETINA_MIMIC,
                         CallSpy)
from mmengine.hooks import Hook
from mmengine.runner import Runner


class MetricsCatcher(Hook):
    """Keeps the metrics of the last validation."""
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.metrics = None

    def after_val_epoch(self, runner, metrics=None) -> None:
        self.metrics = metrics


def train_and_evaluate(cfg, before_train=None):
    runner = Runner.from_cfg(cfg)
    catcher = MetricsCatcher()
    runner.register_hook(catcher)
    if before_train is not None:
        before_train(runner)
    runner.train()
    scalars = {
        k: v.current()
        for k, v in runner.message_hub.log_scalars.items()
    }
    return runner, catcher.metrics, scalars


def check_trained_and_evaluated(runner, metrics, scalars, student_keys):
    for key in ('train/loss_dist', *student_keys):
        assert key in scalars and math.isfinite(scalars[key]), key
    assert scalars['train/loss_dist'] > 0
    # CocoMetric scored the student's boxes against the val annotations.
    assert metrics is not None and 'coco/bbox_mAP' in metrics
    assert 0 <= metrics['coco/bbox_mAP'] <= 1
    assert runner.iter == 2


def watch_connector(runner, grads):
    """Record the gradient norm each mimic adapter parameter receives."""

    def record(name, grad):
        grads.setdefault(name, []).append(float(grad.abs().sum()))

    for name, p in runner.model.terms.named_parameters():
        p.register_hook(lambda g, name=name: record(name, g))


def check_mimic(runner, scalars, grads):
    model = runner.model
    assert math.isfinite(scalars['train/loss_mimic'])
    params = dict(model.terms.named_parameters())
    assert len(params) == 10  # 5 levels x (weight, bias)
    # Gradients reached every adapter parameter at every step...
    assert set(grads) == set(params)
    assert all(len(g) == 2 and all(v > 0 for v in g) for g in grads.values())
    # ...the optimizer updates them...
    in_optim = {
        id(p)
        for group in runner.optim_wrapper.optimizer.param_groups
        for p in group['params']
    }
    assert all(id(p) in in_optim for p in params.values())
    # ...and the checkpoint holds them (and not the teacher).
    saved = torch.load(
        osp.join(runner.work_dir, 'epoch_1.pth'),
        map_location='cpu',
        weights_only=False)['state_dict']
    for name, p in params.items():
        assert torch.equal(saved[f'terms.{name}'], p)
    assert not any(k.startswith('teacher.') for k in saved)


def spy_two_stage_teacher(runner, spy):
    """Count every teacher part a two-stage distillation must not run."""
    teacher = runner.model.teacher
    named = dict(teacher.named_modules())
    never = ['rpn_head', 'roi_head.mask_roi_extractor', 'roi_head.mask_head']
    never += [
        f'roi_head.{part}.{stage}'
        for part in ('bbox_head', 'bbox_roi_extractor') for stage in (1, 2)
    ]
    # Every loss module (RPN, bbox and mask losses of all stages).
    never += [name for name in named if 'loss' in name.split('.')[-1]]
    spy.modules(teacher, never)
    spy.methods(teacher, ['loss', 'predict'], 'teacher')
    spy.methods(teacher.rpn_head, ['loss', 'loss_by_feat', 'predict'],
                'rpn_head')
    spy.methods(teacher.roi_head, ['loss', 'bbox_loss', 'mask_loss'],
                'roi_head')
    for i, head in enumerate(teacher.roi_head.bbox_head):
        spy.methods(head, ['loss', 'loss_and_target', 'get_targets'],
                    f'bbox_head.{i}')
    # Positive controls: what the teacher does run.
    spy.modules(teacher, [
        'backbone', 'neck', 'roi_head.bbox_roi_extractor.0',
        'roi_head.bbox_head.0'
    ])
    return never


def test_retinanet_dist(make_det_cfg):
    runner, metrics, scalars = train_and_evaluate(make_det_cfg(RETINA_DIST))
    check_trained_and_evaluated(runner, metrics, scalars,
                                ['train/loss_cls', 'train/loss_bbox'])
    # The seed's schedule: lr 0.01, no clipping.
    assert runner.optim_wrapper.optimizer.defaults['lr'] == 0.01
    assert not runner.optim_wrapper.clip_grad_kwargs


def test_retinanet_dist_mimic(make_det_cfg):
    grads = {}
    runner, metrics, scalars = train_and_evaluate(
        make_det_cfg(RETINA_MIMIC), lambda r: watch_connector(r, grads))
    check_trained_and_evaluated(runner, metrics, scalars,
                                ['train/loss_cls', 'train/loss_bbox'])
    check_mimic(runner, scalars, grads)


@pytest.mark.parametrize(
    'config', [FRCNN_DIST, FRCNN_MIMIC], ids=['dist', 'dist-mimic'])
def test_faster_rcnn(make_det_cfg, config):
    spy, grads = CallSpy(), {}
    never = []

    def before_train(runner):
        never.extend(spy_two_stage_teacher(runner, spy))
        if list(runner.model.terms.parameters()):
            watch_connector(runner, grads)

    runner, metrics, scalars = train_and_evaluate(
        make_det_cfg(config), before_train)
    check_trained_and_evaluated(runner, metrics, scalars, [
        'train/loss_rpn_cls', 'train/loss_rpn_bbox', 'train/loss_cls',
        'train/loss_bbox'
    ])
    assert runner.optim_wrapper.optimizer.defaults['lr'] == 0.02
    # The teacher ran backbone, neck and its first-stage RoI head, once a
    # step; no RPN, mask head, later stage, target or loss, ever.
    called = {k: v for k, v in spy.calls.items() if v and k in never}
    assert not called, f'teacher ran {called}'
    assert not any(v for k, v in spy.calls.items() if k.endswith('()'))
    for part in ('backbone', 'roi_head.bbox_head.0'):
        assert spy.calls[part] == 2
    if config == FRCNN_MIMIC:
        check_mimic(runner, scalars, grads)
