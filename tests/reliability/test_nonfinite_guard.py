"""The non-finite guard through a real Runner: a NaN teacher stops the run
naming the term and tap, the last good checkpoint stays intact; an
fp16-overflowing teacher is recomputed in fp32 and the run goes on."""
import glob
import os.path as osp

import pytest
import torch
from distkd_testing import runner_cfg, save_teacher, tiny_distiller
from mmengine.hooks import Hook
from mmengine.registry import HOOKS
from mmengine.runner import Runner

from distkd_mm.distillers.nonfinite import NonFiniteError


@HOOKS.register_module(force=True)
class ScaleHeadAtIterHook(Hook):
    """Multiplies ``<side>.head.fc.weight`` by ``factor`` at ``at_iter``."""

    def __init__(self, side: str, factor: float, at_iter: int) -> None:
        self.side, self.factor, self.at_iter = side, factor, at_iter

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if runner.iter == self.at_iter:
            fc = getattr(runner.model, self.side).head.fc
            with torch.no_grad():
                fc.weight.mul_(self.factor)


def run(root, tmp_path, side=None, factor=1., at_iter=0, **model_kwargs):
    teacher = save_teacher(tmp_path / 'teacher.pth')
    model = tiny_distiller(teacher_ckpt=teacher, **model_kwargs)
    cfg = runner_cfg(root, str(tmp_path / 'work'), model, max_epochs=2)
    if side is not None:
        cfg['custom_hooks'] = [
            dict(
                type='ScaleHeadAtIterHook',
                side=side,
                factor=factor,
                at_iter=at_iter)
        ]
    return Runner.from_cfg(cfg)


def finite_checkpoint(path: str) -> bool:
    state = torch.load(path, weights_only=False)['state_dict']
    return all(
        torch.isfinite(v).all() for v in state.values()
        if isinstance(v, torch.Tensor) and v.is_floating_point())


def log_text(tmp_path) -> str:
    logs = glob.glob(str(tmp_path / 'work' / '*' / '*.log'))
    return ''.join(open(p).read() for p in logs)


def test_nan_teacher_stops_the_run_and_keeps_the_last_checkpoint(
        imagenet_root, tmp_path):
    # 16 images, batch 4: iteration 5 is in the 2nd epoch.
    runner = run(imagenet_root, tmp_path, 'teacher', float('nan'), 5)
    with pytest.raises(
            NonFiniteError, match="loss_dist: teacher tap 'head.fc'.*in fp32"):
        runner.train()
    assert runner.iter == 5
    assert finite_checkpoint(str(tmp_path / 'work' / 'epoch_1.pth'))
    assert not osp.exists(tmp_path / 'work' / 'epoch_2.pth')


def test_fp16_overflowing_teacher_is_recomputed_in_fp32(
        imagenet_root, tmp_path):
    # Logits around 1e6: Inf in fp16, fine in fp32, from iteration 2 on.
    runner = run(
        imagenet_root, tmp_path, 'teacher', 1e6, 2, teacher_autocast='fp16')
    runner.train()
    assert finite_checkpoint(str(tmp_path / 'work' / 'epoch_2.pth'))
    log = log_text(tmp_path)
    assert log.count("teacher tap 'head.fc' gave NaN/Inf under "
                     'torch.float16 autocast; recomputing') == 1


def test_fp16_teacher_still_nan_in_fp32_raises(imagenet_root, tmp_path):
    runner = run(
        imagenet_root,
        tmp_path,
        'teacher',
        float('nan'),
        1,
        teacher_autocast='fp16')
    with pytest.raises(NonFiniteError, match='even after recomputing'):
        runner.train()


def test_diverged_student_raises_naming_the_term(imagenet_root, tmp_path):
    runner = run(imagenet_root, tmp_path, 'student', float('inf'), 5)
    with pytest.raises(
            NonFiniteError,
            match=r"loss_dist is nan .*student tap 'head.fc'.*diverged"):
        runner.train()
    assert finite_checkpoint(str(tmp_path / 'work' / 'epoch_1.pth'))
