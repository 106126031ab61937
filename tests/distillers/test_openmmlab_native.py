"""What an OpenMMLab user relies on: honest logs, the optimizer over the
student only, errors that name the key to write, warnings in the log file."""
import copy
import json
import os.path as osp

import pytest
import torch
from distkd_testing import REPO, captured_logs, runner_cfg, tiny_distiller
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import build_optim_wrapper
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner

WARMUP = 3


@pytest.fixture(scope='module')
def logged_run(imagenet_root, tmp_path_factory):
    """A tiny cls distillation (no teacher checkpoint, DIST warm-up over
    3 iterations), logged every iteration to the log file and scalars.json.
    """
    work = str(tmp_path_factory.mktemp('logged'))
    cfg = runner_cfg(imagenet_root, work, tiny_distiller(), 2)
    cfg.update(
        custom_hooks=[dict(type='DistillHook', warmup_iters=WARMUP)],
        visualizer=dict(
            type='Visualizer', vis_backends=[dict(type='LocalVisBackend')]),
        log_level='INFO')
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    scalars_file = osp.join(runner.log_dir, 'vis_data', 'scalars.json')
    with open(scalars_file) as f:
        scalars = [json.loads(line) for line in f]
    with open(osp.join(runner.log_dir, f'{runner.timestamp}.log')) as f:
        log = f.read()
    return [s for s in scalars if 'loss' in s], log


@pytest.mark.slow
def test_cls_log_loss_is_the_optimised_total(logged_run):
    train_logs, _ = logged_run
    assert len(train_logs) == 8  # 2 epochs of 4 iterations
    for entry in train_logs:
        # mmpretrain's bare `loss` is renamed; `loss` is the sum of terms.
        terms = {k: v for k, v in entry.items() if k.startswith('loss_')}
        assert set(terms) == {'loss_student', 'loss_dist'}, entry
        assert entry['loss'] == pytest.approx(sum(terms.values()), rel=1e-5)
        assert entry['loss'] != pytest.approx(entry['loss_student'])


def test_distill_hook_scale_is_logged(logged_run):
    train_logs, _ = logged_run
    scales = [entry['distill_scale'] for entry in train_logs]
    assert scales == pytest.approx([1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1])


def test_plugin_warning_reaches_the_log_file(logged_run):
    _, log = logged_run
    assert 'WARNING - `teacher_ckpt` is None' in log


IN1K = osp.join(REPO, 'configs', 'mmpretrain',
                'dist_r34-mmpretrain_r18_8xb32-100e_in1k.py')


def _groups(model, optim_cfg):
    """Optimizer groups as (numel, lr, weight decay), and the log lines."""
    with captured_logs(
            MMLogger.get_instance(f'optim-{id(model)}',
                                  log_level='INFO')) as records:
        with DefaultScope.overwrite_default_scope('mmpretrain'):
            wrapper = build_optim_wrapper(model, copy.deepcopy(optim_cfg))
    groups = [(sum(p.numel() for p in g['params']), g['lr'], g['weight_decay'])
              for g in wrapper.optimizer.param_groups]
    params = {
        id(p)
        for g in wrapper.optimizer.param_groups
        for p in g['params']
    }
    return groups, params, [r.getMessage() for r in records]


@pytest.mark.slow
@pytest.mark.parametrize('paramwise', [True, False])
def test_optimizer_is_built_over_the_student_only(paramwise):
    """The seed's ImageNet recipe (no decay on norms and biases) gives the
    Distiller exactly the plain student's groups; no teacher parameter and
    no `requires_grad=False` warning flood."""
    cfg = Config.fromfile(IN1K)
    cfg.model.teacher_ckpt = None  # random weights: no download
    optim_cfg = copy.deepcopy(cfg.optim_wrapper)
    if not paramwise:
        optim_cfg.pop('paramwise_cfg')
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        distiller = MODELS.build(cfg.model)
        student = MODELS.build(cfg.model.student)
    groups, params, messages = _groups(distiller, optim_cfg)
    plain_groups, _, _ = _groups(student, optim_cfg)
    assert groups == plain_groups
    # paramwise_cfg: one group per parameter, as MMEngine builds them.
    assert (len(groups) > 1) == paramwise
    assert not params & {id(p) for p in distiller.teacher.parameters()}
    assert params == {id(p) for p in distiller.student.parameters()}
    assert not [m for m in messages if 'requires_grad' in m]
    # The teacher is still there: frozen, in eval mode, moved with `.to`.
    assert sum(p.numel() for p in distiller.teacher.parameters()) > 2e7
    distiller.to(torch.float64)
    assert next(distiller.teacher.parameters()).dtype == torch.float64


def test_options_for_the_student_on_a_distiller_name_the_key():
    cfg = tiny_distiller(backbone=dict(init_cfg=None))
    with pytest.raises(
            ValueError, match=r'`--cfg-options model\.student\.backbone=...`'):
        MODELS.build(cfg)
