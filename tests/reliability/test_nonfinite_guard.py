"""The non-finite guard: a NaN teacher stops a real run naming the term and
tap, the last good checkpoint stays intact; an fp16-overflowing teacher is
recomputed in fp32 and training goes on; a diverged student is named."""
import os.path as osp

import pytest
import torch
from distkd_testing import runner_cfg, tiny_distiller
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, MODELS
from mmengine.runner import Runner

from distkd_mm.distillers.nonfinite import NonFiniteError


@HOOKS.register_module(force=True)
class ScaleHeadAtIterHook(Hook):
    """Multiplies ``<side>.head.fc.weight`` by ``factor`` at ``at_iter``."""

    def __init__(self, side: str, factor: float, at_iter: int) -> None:
        self.side, self.factor, self.at_iter = side, factor, at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.at_iter:
            scale_head(getattr(runner.model, self.side), self.factor)


def scale_head(model, factor: float) -> None:
    with torch.no_grad():
        model.head.fc.weight.mul_(factor)


def train_steps(make_batch, steps: int, side: str, factor: float, at_step: int,
                **model_kwargs):
    """``steps`` training steps of a tiny Distiller whose ``side`` head is
    scaled by ``factor`` before step ``at_step``; returns the student."""
    model = MODELS.build(tiny_distiller(**model_kwargs)).train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.05))
    for step in range(steps):
        if step == at_step:
            scale_head(getattr(model, side), factor)
        model.train_step(make_batch(seed=step), optim)
    return model.student


@pytest.mark.slow
def test_nan_teacher_stops_the_run_and_keeps_the_last_checkpoint(
        imagenet_root, tmp_path):
    cfg = runner_cfg(imagenet_root, str(tmp_path / 'work'), tiny_distiller(),
                     2)
    # 16 images, batch 4: iteration 5 is in the 2nd epoch.
    cfg['custom_hooks'] = [
        dict(
            type='ScaleHeadAtIterHook',
            side='teacher',
            factor=float('nan'),
            at_iter=5)
    ]
    runner = Runner.from_cfg(cfg)
    with pytest.raises(
            NonFiniteError, match="loss_dist: teacher tap 'head.fc'.*in fp32"):
        runner.train()
    assert runner.iter == 5
    state = torch.load(
        tmp_path / 'work' / 'epoch_1.pth', weights_only=False)['state_dict']
    assert all(
        torch.isfinite(v).all() for v in state.values()
        if isinstance(v, torch.Tensor) and v.is_floating_point())
    assert not osp.exists(tmp_path / 'work' / 'epoch_2.pth')


def test_fp16_overflowing_teacher_is_recomputed_in_fp32(make_batch, log):
    # Logits around 1e6: Inf in fp16, fine in fp32, at both steps.
    student = train_steps(
        make_batch, 2, 'teacher', 1e6, 0, teacher_autocast='fp16')
    assert all(torch.isfinite(p).all() for p in student.parameters())
    assert log().count("teacher tap 'head.fc' gave NaN/Inf under "
                       'torch.float16 autocast; recomputing') == 1


def test_fp16_teacher_still_nan_in_fp32_raises(make_batch):
    with pytest.raises(NonFiniteError, match='even after recomputing'):
        train_steps(
            make_batch, 1, 'teacher', float('nan'), 0, teacher_autocast='fp16')


def test_diverged_student_raises_naming_the_term(make_batch):
    with pytest.raises(
            NonFiniteError,
            match=r"loss_dist is nan .*student tap 'head.fc'.*diverged"):
        train_steps(make_batch, 1, 'student', float('inf'), 0)
