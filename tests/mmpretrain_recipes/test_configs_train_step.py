"""Every classification config builds its full model and trains one step.

A step per distinct model: the configs a stepped one stands for build the
same teacher (the large ResNets shrunk to ResNet-50, see recipe_helpers),
student backbone and head, and optimiser, and differ in loss values only,
which test_recipe_table.py checks on every config. One KD row steps the
KD term.
"""
import math

import numpy as np
import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope
from recipe_helpers import (CONFIGS, STEP_SIZE, build_distiller, input_size,
                            load, make_batch, shrink_teacher)

# Variants (`{teacher}-mmpretrain`) differ from their seed-protocol config
# only in the teacher's checkpoint file, which these steps do not load.
SEED_CONFIGS = [n for n in CONFIGS if '-mmpretrain_' not in n]
STEPPED = [
    'dist_r34_r18_8xb32-100e_in1k.py',
    'kd_r34_r18_8xb32-100e_in1k.py',
    'dist_r50_r18_8xb32-100e_in1k.py',
    'dist_r50_r34_8xb32-100e_in1k.py',
    'dist_r50_mobilenet-v1_8xb32-100e_in1k.py',
    'dist_r50-sb_r18_8xb96-450e_in1k.py',
    'dist_r50-sb_r34_8xb96-450e_in1k.py',
    'dist_r50-sb_mobilenet-v2_8xb96-450e_in1k.py',
    'dist_r50-sb_efficientnet-b0_8xb96-450e_in1k.py',
    'dist_swin-l_r50_8xb96-450e_in1k.py',
    'dist_swin-l_swin-t_16xb64-300e_in1k.py',
    'dist_resnet32x4_resnet8x4_1xb64-240e_cifar100.py',
    'dist_resnet32x4_shufflenet-v1_1xb64-240e_cifar100.py',
    'dist_resnet32x4_shufflenet-v2_1xb64-240e_cifar100.py',
    'dist_resnet50_mobilenet-v2_1xb64-240e_cifar100.py',
    'dist_resnet56_resnet20_1xb64-240e_cifar100.py',
    'dist_wrn-40-2_wrn-40-1_1xb64-240e_cifar100.py',
]


def _step_model(name: str) -> str:
    """What a step of the config builds and runs, loss values aside."""
    cfg = load(name)
    student = cfg.model.student
    return repr((shrink_teacher(cfg.model.teacher), student.backbone,
                 student.get('neck'), student.head.type,
                 cfg.optim_wrapper.optimizer.type))


def _loss_types(name: str) -> set:
    return {t.loss.type for t in load(name).model.distill_losses.values()}


@pytest.mark.slow
def test_every_config_steps_through_a_stepped_one():
    stepped = {_step_model(n) for n in STEPPED}
    for name in SEED_CONFIGS:
        assert _step_model(name) in stepped, f'{name}: add it to STEPPED'
    assert set().union(*map(_loss_types, SEED_CONFIGS)) == set().union(
        *map(_loss_types, STEPPED))


@pytest.mark.slow
@pytest.mark.parametrize('name', STEPPED)
def test_config_builds_and_trains_one_step(name):
    torch.manual_seed(0)
    cfg = load(name)
    model = build_distiller(cfg)
    assert type(model).__name__ == 'Distiller'
    assert not any(p.requires_grad for p in model.teacher.parameters())
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    num_classes = cfg.model.student.head.get('num_classes', 100)
    batch = make_batch(2, STEP_SIZE, num_classes)
    model.train()
    before = [p.detach().clone() for p in model.student.parameters()]
    losses = model.train_step(batch, optim_wrapper)
    names = set(cfg.model.distill_losses)
    assert names <= set(losses), (names, losses.keys())
    assert 'loss' in losses
    for key, value in losses.items():
        assert math.isfinite(float(torch.as_tensor(value).detach())), key
    assert any(float(losses[n]) > 0 for n in names)
    changed = [
        not torch.equal(a, p.detach())
        for a, p in zip(before, model.student.parameters())
    ]
    assert any(changed), 'the optimizer step did not change the student'
    assert model.teacher.training is False


@pytest.mark.parametrize('name', [
    'dist_r34-mmpretrain_r18_8xb32-100e_in1k.py',
    'dist_r50-sb_r18_8xb96-450e_in1k.py',
    'dist_swin-l_swin-t_16xb64-300e_in1k.py',
    'dist_resnet32x4_resnet8x4_1xb64-240e_cifar100.py'
])
def test_train_pipeline_runs_on_an_image(name):
    """The data recipe (crop, RandAugment, erasing, ...) builds and runs."""
    from mmcv.transforms import Compose
    cfg = load(name)
    steps = [
        s for s in cfg.train_dataloader.dataset.pipeline
        if s.type != 'LoadImageFromFile'
    ]
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        pipeline = Compose(steps)
    size = input_size(name)
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (size + 16, size + 16, 3), dtype=np.uint8)
    if 'cifar' in name:
        img = img[:size, :size]
    out = pipeline(dict(img=img, gt_label=3, img_shape=img.shape[:2]))
    assert tuple(out['inputs'].shape) == (3, size, size)
