"""The seed configs train on generated COCO data and evaluate.

Each config is loaded as shipped; only dataset paths, image scale and data
sizes change (plus a score threshold of 0, so an untrained student still
returns boxes). A Runner trains one iteration on CPU, then the student is
evaluated with mmdet's CocoMetric. RetinaNet DIST runs through mmdet's own
tools/train.py instead (test_library_tools_det.py).
"""
import math
import os.path as osp

import pytest
import torch
from det_helpers import (FRCNN_DIST, FRCNN_MIMIC, RETINA_DIST, RETINA_MIMIC,
                         CallSpy)
from mmengine.config import Config
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
    # The one-image epoch: one training step.
    assert runner.iter == 1


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
    assert all(
        len(g) == runner.iter and all(v > 0 for v in g)
        for g in grads.values())
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


def model_without_mimic(config: str) -> dict:
    model = Config.fromfile(config).model.to_dict()
    model['distill_losses'].pop('loss_mimic', None)
    return model


@pytest.mark.parametrize(
    'dist, mimic', [(RETINA_DIST, RETINA_MIMIC), (FRCNN_DIST, FRCNN_MIMIC)],
    ids=['retinanet', 'faster-rcnn'])
def test_mimic_config_is_its_dist_config_plus_the_mimic_term(dist, mimic):
    # Why one Runner run per detector family is enough: RetinaNet DIST
    # trains through mmdet's tools/train.py (test_library_tools_det.py),
    # Faster R-CNN DIST+mimic below, and each DIST+mimic config is its
    # DIST config with the same FPN mimic term added.
    assert model_without_mimic(mimic) == model_without_mimic(dist)
    terms = Config.fromfile(mimic).model.distill_losses
    assert set(terms) == {'loss_dist', 'loss_mimic'}
    assert terms.loss_mimic.student == terms.loss_mimic.teacher == 'neck'
    assert terms.loss_mimic.connector.type == 'FPNAdapter'
    assert terms.loss_mimic.loss.type == 'MimicLoss'


@pytest.mark.slow
def test_faster_rcnn_dist_mimic_trains_and_evaluates(make_det_cfg):
    spy, grads = CallSpy(), {}
    never = []

    def before_train(runner):
        never.extend(spy_two_stage_teacher(runner, spy))
        watch_connector(runner, grads)

    runner, metrics, scalars = train_and_evaluate(
        make_det_cfg(FRCNN_MIMIC), before_train)
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
        assert spy.calls[part] == runner.iter
    check_mimic(runner, scalars, grads)
