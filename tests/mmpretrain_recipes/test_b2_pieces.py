"""MobileNetV1, timm's RMSpropTF, FractionalStepLR and StudentEMAHook."""
import pytest
import torch
from distkd_testing import (runner_cfg, save_teacher, tiny_distiller,
                            write_image_folder)
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS
from mmengine.runner import Runner

import distkd_mm.models  # noqa: F401
import distkd_mm.optim  # noqa: F401


def test_mobilenet_v1_is_the_standard_net():
    net = MODELS.build(dict(type='MobileNetV1')).eval()
    (out, ) = net(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1024, 7, 7)
    # 3.21M without the classifier; 4.23M with the 1000-way fc.
    count = sum(p.numel() for p in net.parameters()) + 1024 * 1000 + 1000
    assert count / 1e6 == pytest.approx(4.23, rel=0.01)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 27  # stem + 13 x (depthwise, pointwise)
    assert sum(c.groups > 1 for c in convs) == 13


def test_mobilenet_v1_checks_its_arguments():
    with pytest.raises(ValueError, match='`out_indices` should be in'):
        MODELS.build(dict(type='MobileNetV1', out_indices=(14, )))
    net = MODELS.build(dict(type='MobileNetV1', frozen_stages=1))
    net.train()
    assert not any(p.requires_grad for p in net.layers[1].parameters())
    assert all(p.requires_grad for p in net.layers[2].parameters())


def test_rmsprop_tf_is_timms():
    from timm.optim import RMSpropTF
    model = torch.nn.Linear(4, 2)
    wrapper = build_optim_wrapper(
        model,
        dict(
            optimizer=dict(
                type='RMSpropTF', lr=0.048, eps=1e-3, momentum=0.9,
                alpha=0.9)))
    assert isinstance(wrapper.optimizer, RMSpropTF)
    assert wrapper.optimizer.defaults['eps'] == 1e-3


def test_fractional_step_lr_refuses_a_bad_step():
    from distkd_mm.optim import FractionalStepLR
    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    with pytest.raises(ValueError, match='`step_size` should be a positive'):
        FractionalStepLR(opt, step_size=0)


@pytest.mark.slow
def test_student_ema_hook_averages_the_student_only(tmp_path):
    root = str(tmp_path / 'data')
    # 8 images in batches of 4: two iterations an epoch, the first copies
    # the student into the average, the second averages; no validation.
    write_image_folder(root, 'train', 2, 4, 16, seed=0)
    model = tiny_distiller(teacher_ckpt=save_teacher(tmp_path / 'teacher.pth'))
    cfg = runner_cfg(root, str(tmp_path / 'work'), model, 1)
    cfg['train_cfg']['val_interval'] = 10
    cfg['custom_hooks'] = [
        dict(type='StudentEMAHook', momentum=0.5, update_buffers=True)
    ]
    # Unformatted: yapf takes seconds each time the Runner logs or dumps it.
    runner = Runner.from_cfg(Config(cfg, format_python_code=False))
    runner.train()
    (hook, ) = [
        h for h in runner.hooks if type(h).__name__ == 'StudentEMAHook'
    ]
    assert hook.src_model is runner.model.student
    ema_keys = set(hook.ema_model.module.state_dict())
    assert ema_keys == set(runner.model.student.state_dict())
    saved = torch.load(tmp_path / 'work' / 'epoch_1.pth', weights_only=False)
    ema = saved['ema_state_dict']
    assert {k[len('module.'):]
            for k in ema if k.startswith('module.')} == ema_keys
    # MMEngine's convention: the averaged weights are the ones in
    # `state_dict`, the raw ones in `ema_state_dict`.
    key = 'backbone.conv1.weight'
    assert torch.equal(saved['state_dict']['student.' + key],
                       hook.ema_model.module.state_dict()[key])
    assert not torch.equal(saved['state_dict']['student.' + key],
                           ema['module.' + key])

    cfg['work_dir'] = str(tmp_path / 'resumed')
    cfg['train_cfg']['max_epochs'] = 2
    cfg['load_from'] = str(tmp_path / 'work' / 'epoch_1.pth')
    cfg['resume'] = True
    runner = Runner.from_cfg(Config(cfg, format_python_code=False))
    runner.train()
    assert runner.epoch == 2


def test_a_timm_teacher_through_timm_classifier(make_batch):
    """The README's alternative: a timm model as the teacher (weights via
    `teacher_ckpt`; never `pretrained=True`, nothing downloads)."""
    from mmengine.registry import DefaultScope
    cfg = tiny_distiller(
        teacher=dict(
            type='mmpretrain.TimmClassifier',
            model_name='resnet18',
            pretrained=False,
            num_classes=10),
        distill_losses=dict(
            loss_dist=dict(
                student='head.fc',
                teacher='model.fc',
                loss=dict(type='DISTLoss'))))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg)
    batch = model.data_preprocessor(make_batch(n=2, size=32), True)
    losses = model(**batch, mode='loss')
    assert torch.isfinite(losses['loss_dist'])
