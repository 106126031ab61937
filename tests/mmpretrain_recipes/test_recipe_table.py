"""The seed's recipe values, per config family, against the configs.

Source: the seed's configs (``resnet_dist.yaml``, ``resnet_kdt4.yaml``,
``dist_b2.yaml``, ``dist_cifar.yaml``), as summarised in
shared/reference/dist_official_code.md section 2.
"""
import math

import pytest
import torch
from mmengine.hub import get_config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, PARAM_SCHEDULERS, DefaultScope
from recipe_helpers import CONFIGS, load

# wd_rule: 'norm+bias' = no decay on norm layers and biases; '1-D' = none on
# any 1-D parameter; 'all' = decay everywhere.
SEED = {
    'imagenet-baseline':
    dict(
        epochs=100,
        optimizer='SGD',
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        wd=1e-4,
        wd_rule='norm+bias',
        schedule=('MultiStepLR', [30, 60, 90], 0.1),
        batch=32,
        gpus=8,
        label_smoothing=0.0,
        ema=None,
        loss=('DISTLoss', 1.0, 2.0),
        ce_weight=1.0),
    'imagenet-kd':
    dict(
        epochs=100,
        optimizer='SGD',
        lr=0.1,
        momentum=0.9,
        nesterov=True,
        wd=1e-4,
        wd_rule='norm+bias',
        schedule=('MultiStepLR', [30, 60, 90], 0.1),
        batch=32,
        gpus=8,
        label_smoothing=0.0,
        ema=None,
        loss=('KDLoss', 4.0, 1.0),
        ce_weight=0.9),
    'imagenet-b2':
    dict(
        epochs=450,
        optimizer='RMSpropTF',
        lr=0.048,
        momentum=0.9,
        eps=1e-3,
        alpha=0.9,
        wd=1e-5,
        wd_rule='1-D',
        schedule=('warmup3+FractionalStepLR', 2.4, 0.97),
        batch=96,
        gpus=8,
        label_smoothing=0.1,
        ema=0.9999,
        loss=('DISTLoss', 1.0, 2.0),
        ce_weight=1.0),
    'cifar100':
    dict(
        epochs=240,
        optimizer='SGD',
        lr=0.05,
        momentum=0.9,
        nesterov=False,
        wd=5e-4,
        wd_rule='all',
        schedule=('MultiStepLR', [150, 180, 210], 0.1),
        batch=64,
        gpus=1,
        label_smoothing=0.0,
        ema=None,
        loss=('DISTLoss', 4.0, 2.0),
        ce_weight=1.0),
}
CIFAR_LR_001 = ('mobilenet-v2', 'shufflenet-v1', 'shufflenet-v2')


def family(name: str) -> str:
    if 'cifar100' in name:
        return 'cifar100'
    if '450e' in name:
        return 'imagenet-b2'
    if 'swin-t' in name:
        return 'swin'
    return 'imagenet-kd' if name.startswith('kd_') else 'imagenet-baseline'


def test_every_family_has_configs_and_every_variant_its_dist_row():
    assert {family(n) for n in CONFIGS} == set(SEED) | {'swin'}
    for name in CONFIGS:
        # A KD baseline or an mmpretrain-teacher variant changes a DIST row.
        row = name.replace('-mmpretrain_', '_')
        row = 'dist_' + row[len('kd_'):] if row.startswith('kd_') else row
        assert row in CONFIGS, name


@pytest.mark.slow
@pytest.mark.parametrize('name', [n for n in CONFIGS if family(n) != 'swin'])
def test_config_matches_the_seed_recipe(name):
    seed = dict(SEED[family(name)])
    # Names are {algo}_{teacher}_{student}_{schedule}_{data}.py.
    if family(name) == 'cifar100' and name.split('_')[2] in CIFAR_LR_001:
        seed['lr'] = 0.01
    cfg = load(name)
    assert cfg.train_cfg.max_epochs == seed['epochs']
    opt = cfg.optim_wrapper.optimizer
    assert opt.type == seed['optimizer']
    assert opt.lr == pytest.approx(seed['lr'])
    assert opt.momentum == seed['momentum']
    assert opt.weight_decay == pytest.approx(seed['wd'])
    if 'nesterov' in seed:
        assert opt.get('nesterov', False) is seed['nesterov']
    for key in ('eps', 'alpha'):
        if key in seed:
            assert opt[key] == seed[key]
    paramwise = cfg.optim_wrapper.get('paramwise_cfg', {})
    if seed['wd_rule'] == 'all':
        assert not paramwise
    else:
        assert paramwise.get('norm_decay_mult') == 0.0
        assert paramwise.get('bias_decay_mult') == 0.0
        if seed['wd_rule'] == '1-D':
            assert paramwise.get('flat_decay_mult') == 0.0

    kind = seed['schedule'][0]
    sched = cfg.param_scheduler
    if kind == 'MultiStepLR':
        assert sched.type == 'MultiStepLR' and sched.by_epoch
        assert list(sched.milestones) == seed['schedule'][1]
        assert sched.gamma == seed['schedule'][2]
    else:
        warmup, decay = sched
        assert warmup.type == 'LinearLR'
        assert warmup.start_factor * opt.lr == pytest.approx(1e-6)
        assert decay.type == 'FractionalStepLR' and decay.begin == 3
        assert (decay.step_size, decay.gamma) == seed['schedule'][1:]

    assert cfg.train_dataloader.batch_size == seed['batch']
    assert cfg.auto_scale_lr.base_batch_size == seed['batch'] * seed['gpus']
    head_loss = cfg.model.student.head.loss
    smoothing = head_loss.get('label_smooth_val', 0.0)
    assert smoothing == seed['label_smoothing']
    assert head_loss.loss_weight == seed['ce_weight']
    ema = [h for h in cfg.get('custom_hooks', []) if 'EMA' in h.type]
    if seed['ema'] is None:
        assert not ema
    else:
        assert ema[0].type == 'StudentEMAHook'
        assert 1 - ema[0].momentum == pytest.approx(seed['ema'])
        assert ema[0].update_buffers is True
    (term, ) = cfg.model.distill_losses.values()
    loss_type, tau, weight = seed['loss']
    loss = MODELS.build(term.loss)  # defaults count as the seed's values
    assert type(loss).__name__ == loss_type
    assert (loss.tau, loss.loss_weight) == (tau, weight)


def test_swin_t_row_uses_the_swin_recipe_with_dist():
    cfg = load('dist_swin-l_swin-t_16xb64-300e_in1k.py')
    swin = get_config('mmpretrain::swin_transformer/swin-tiny_16xb64_in1k.py')
    assert _unscoped(cfg.optim_wrapper) == _unscoped(swin.optim_wrapper)
    assert cfg.optim_wrapper.optimizer.type == 'AdamW'
    assert cfg.train_cfg == swin.train_cfg and cfg.train_cfg.max_epochs == 300
    assert cfg.train_dataloader.batch_size == 64
    assert cfg.auto_scale_lr.base_batch_size == 1024
    assert _unscoped(cfg.model.student) == _unscoped(swin.model)
    term = cfg.model.distill_losses.loss_dist.loss
    assert (term.type, term.tau, term.loss_weight) == ('DISTLoss', 1.0, 2.0)


def _unscoped(cfg):
    """A config dict without the `_scope_` keys `pkg::` loading adds."""
    if isinstance(cfg, dict):
        return {k: _unscoped(v) for k, v in cfg.items() if k != '_scope_'}
    if isinstance(cfg, (list, tuple)):
        return [_unscoped(v) for v in cfg]
    return cfg


def _lr_curve(cfg, epochs: int, epoch_length: int) -> list:
    """Step the config's schedulers as ParamSchedulerHook does."""
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=cfg.optim_wrapper.optimizer.lr)
    schedulers = []
    for s in ([cfg.param_scheduler] if isinstance(cfg.param_scheduler, dict)
              else cfg.param_scheduler):
        s = dict(s)
        convert = s.pop('convert_to_iter_based', False)
        cls = PARAM_SCHEDULERS.get(s.pop('type'))
        if convert:
            schedulers.append(
                cls.build_iter_from_epoch(opt, epoch_length=epoch_length, **s))
        else:
            schedulers.append(cls(opt, **s))
    lrs = []
    for _ in range(epochs):
        for _ in range(epoch_length):
            lrs.append(opt.param_groups[0]['lr'])
            opt.step()
            for s in schedulers:
                if not s.by_epoch:
                    s.step()
        for s in schedulers:
            if s.by_epoch:
                s.step()
    return lrs


def test_b2_lr_schedule_is_the_seed_closed_form():
    """Warm-up 1e-6/0.016/0.032 per epoch, then 0.048 * 0.97^k, a decay
    every 2.4 epochs (a fractional number of iterations here: 16.8)."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        cfg = load('dist_r50-sb_r18_8xb96-450e_in1k.py')
        length, epochs = 7, 12
        lrs = _lr_curve(cfg, epochs, length)
    for step, lr in enumerate(lrs):
        epoch = step // length
        if epoch < 3:
            expected = 1e-6 + (0.048 - 1e-6) * epoch / 3
        else:
            k = math.floor((step - 3 * length) / (2.4 * length))
            expected = 0.048 * 0.97**k
        assert lr == pytest.approx(expected, rel=1e-6), (step, lr, expected)


def test_cifar_lr_schedule_decays_at_150_180_210():
    cfg = load('dist_resnet32x4_resnet8x4_1xb64-240e_cifar100.py')
    lrs = _lr_curve(cfg, 240, 1)
    assert lrs[149] == pytest.approx(0.05) and lrs[150] == pytest.approx(5e-3)
    assert lrs[180] == pytest.approx(5e-4) and lrs[239] == pytest.approx(5e-5)


@pytest.mark.parametrize('name, no_decay', [
    ('dist_r34-mmpretrain_r18_8xb32-100e_in1k.py', True),
    ('dist_r50-sb_mobilenet-v2_8xb96-450e_in1k.py', True),
    ('dist_resnet56_resnet20_1xb64-240e_cifar100.py', False),
])
def test_weight_decay_rule_on_the_built_student(name, no_decay):
    cfg = load(name)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        student = MODELS.build(cfg.model.student)
        optim = build_optim_wrapper(student, cfg.optim_wrapper).optimizer
    wd = cfg.optim_wrapper.optimizer.weight_decay
    decay = {
        id(p): g['weight_decay']
        for g in optim.param_groups
        for p in g['params']
    }
    for pname, param in student.named_parameters():
        want = 0.0 if (no_decay and param.ndim == 1) else wd
        assert decay[id(param)] == pytest.approx(want), pname
