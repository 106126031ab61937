"""TeacherGateHook in a shipped config: a random teacher stops the run."""
import os
import os.path as osp

import pytest
from distkd_testing import REPO, unformatted
from mmengine.config import Config
from mmengine.runner import Runner

from distkd_mm.apis.cli import unique_experiment_name
from distkd_mm.hooks import TeacherGateHook

DIGITS_DIST = osp.join(REPO, 'configs/demo/digits_dist.py')


@pytest.mark.slow
def test_gate_stops_a_random_teacher_in_a_shipped_config(
        demo_teacher_ckpt, tmp_path):
    """configs/demo/digits_dist.py as shipped, a random teacher checkpoint:
    stopped before the first step, naming score, chance and the fix;
    nothing written but the log (and the Runner's config dump)."""
    cfg = Config.fromfile(DIGITS_DIST)
    cfg.model.teacher_ckpt = demo_teacher_ckpt
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = unique_experiment_name('gate')
    runner = Runner.from_cfg(unformatted(cfg))
    gate = next(h for h in runner.hooks if isinstance(h, TeacherGateHook))
    assert gate.max_eval_batches == 1
    with pytest.raises(RuntimeError) as error:
        runner.train()
    message = str(error.value)
    assert 'accuracy/top1=' in message and 'near chance' in message
    assert 'chance = 100 / 10 classes = 10' in message
    assert 'configs/demo/digits_teacher.py' in message  # the fix
    assert 'teacher_ckpt' in message and 'class order' in message
    assert runner.iter == 0
    written = [
        osp.relpath(osp.join(d, f), cfg.work_dir)
        for d, _, files in os.walk(cfg.work_dir) for f in files
    ]
    assert not [f for f in written if f.endswith('.pth')], written
    assert not [f for f in written if 'vis_data' in f and 'scalars' in f]
    log = open(osp.join(runner.log_dir, f'{runner.timestamp}.log')).read()
    assert 'Teacher before training' in log


@pytest.mark.slow
def test_gate_can_be_tuned_and_switched_off_with_cfg_options(
        demo_teacher_ckpt, tmp_path):
    cfg = Config.fromfile(DIGITS_DIST)
    cfg.merge_from_dict({
        'default_hooks.teacher_gate.enable': False,
        'default_hooks.teacher_gate.max_eval_batches': 2,
        'train_cfg.max_epochs': 1,
        'model.teacher_ckpt': demo_teacher_ckpt,
    })
    cfg.work_dir = str(tmp_path / 'work')
    cfg.experiment_name = unique_experiment_name('gate_off')
    cfg.train_dataloader.dataset.indices = 64
    cfg.val_dataloader.dataset.indices = 64
    runner = Runner.from_cfg(unformatted(cfg))
    gate = next(h for h in runner.hooks if isinstance(h, TeacherGateHook))
    assert not gate.enable and gate.max_eval_batches == 2
    runner.train()
    assert runner.iter == 2


@pytest.mark.parametrize('args,match', [
    (dict(max_eval_batches=0), '`max_eval_batches` should be a positive'),
    (dict(enable='no'), '`enable` should be True or False'),
    (dict(chance_factor=0), '`chance_factor` should be a positive'),
])
def test_bad_gate_options_fail_when_built(args, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TeacherGateHook(**args)
