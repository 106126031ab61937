"""Guards and schedules around a Distiller run."""
from typing import Optional

import torch
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS

from ..distillers import Distiller


@HOOKS.register_module()
class DistillHook(Hook):
    """Distillation-weight schedule and frozen-teacher guard.

    - The distillation terms are scaled linearly from 0 to 1 over the first
      ``warmup_iters`` iterations (or ``warmup_epochs`` epochs) and switched
      off from ``stop_epoch`` / ``stop_iter`` on (the teacher then no longer
      runs). With either schedule, the factor is logged as
      ``distill_scale`` every iteration.
    - Every epoch, the teacher must still be frozen, in eval mode and equal
      to the weights it started with.

    The teacher's sanity gate is a hook of its own,
    :class:`~.teacher_gate.TeacherGateHook` (``default_hooks.teacher_gate``).

    Args:
        warmup_iters: Length of the linear warm-up, in iterations.
        warmup_epochs: Length of the linear warm-up, in epochs.
        stop_iter: First iteration without distillation.
        stop_epoch: First epoch without distillation.
    """

    priority = 'NORMAL'

    def __init__(self,
                 warmup_iters: int = 0,
                 warmup_epochs: int = 0,
                 stop_iter: Optional[int] = None,
                 stop_epoch: Optional[int] = None,
                 **gate_args) -> None:
        if gate_args:
            # The gate moved to its own hook; say where its options go.
            raise TypeError(
                f'`DistillHook` should get schedule options only, but got '
                f'{sorted(gate_args)}; the teacher gate is '
                '`default_hooks.teacher_gate = dict(type=\'TeacherGateHook\''
                ', ...)`, e.g. `--cfg-options default_hooks.teacher_gate.'
                'enable=False`.')
        if warmup_iters and warmup_epochs:
            raise ValueError('`warmup_iters` and `warmup_epochs` should not '
                             f'both be set, but got {warmup_iters} and '
                             f'{warmup_epochs}; keep one.')
        for name, value in dict(
                warmup_iters=warmup_iters,
                warmup_epochs=warmup_epochs,
                stop_iter=stop_iter or 0,
                stop_epoch=stop_epoch or 0).items():
            if not isinstance(value, int) or value < 0:
                raise ValueError(f'`{name}` should be a non-negative int, '
                                 f'but got {value!r}.')
        self.warmup_iters = warmup_iters
        self.warmup_epochs = warmup_epochs
        self.stop_iter = stop_iter
        self.stop_epoch = stop_epoch
        self._teacher_sum: Optional[float] = None

    @staticmethod
    def distiller(runner) -> Distiller:
        """The run's Distiller, unwrapped from DDP and the like."""
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not isinstance(model, Distiller):
            raise TypeError('DistillHook should be used with a Distiller '
                            f'model, but got {type(model).__name__}; remove '
                            'the hook or wrap the model in a Distiller.')
        return model

    def before_train(self, runner) -> None:
        self._teacher_sum = _checksum(self.distiller(runner).teacher)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None):
        scale = self.scale(runner.iter, runner.epoch, _iters_per_epoch(runner))
        self.distiller(runner).distill_scale = scale
        if self.schedules:
            # The log shows by how much the distillation terms were scaled.
            runner.message_hub.update_scalar('train/distill_scale', scale)

    @property
    def schedules(self) -> bool:
        """Whether a warm-up or a stop scales the distillation terms."""
        return bool(self.warmup_iters or self.warmup_epochs
                    or self.stop_iter is not None
                    or self.stop_epoch is not None)

    def scale(self, iteration: int, epoch: int, iters_per_epoch: int) -> float:
        """The distillation weight factor at this point of training."""
        if self.stop_iter is not None and iteration >= self.stop_iter:
            return 0.0
        if self.stop_epoch is not None and epoch >= self.stop_epoch:
            return 0.0
        warmup = self.warmup_iters or self.warmup_epochs * iters_per_epoch
        if warmup and iteration < warmup:
            return (iteration + 1) / warmup
        return 1.0

    def before_train_epoch(self, runner) -> None:
        self.check_frozen(runner)

    def after_train(self, runner) -> None:
        self.check_frozen(runner)

    def check_frozen(self, runner) -> None:
        """Fail when anything has made the teacher trainable or changed it."""
        teacher = self.distiller(runner).teacher
        problems = []
        if any(p.requires_grad for p in teacher.parameters()):
            problems.append('some teacher parameters require grad')
        if any(m.training for m in teacher.modules()):
            problems.append('some teacher modules are in train mode')
        if self._teacher_sum is not None and \
                _checksum(teacher) != self._teacher_sum:
            problems.append('the teacher weights have changed')
        if problems:
            raise RuntimeError(
                'The teacher should stay frozen, but ' + '; '.join(problems) +
                '. Something (a custom hook, optimizer or paramwise config) '
                'touched it; keep the teacher out of it.')


def _checksum(module: torch.nn.Module) -> float:
    with torch.no_grad():
        return float(
            sum(p.double().sum() for p in module.parameters()) +
            sum(b.double().sum()
                for b in module.buffers() if b.is_floating_point()))


def _iters_per_epoch(runner) -> int:
    try:
        return len(runner.train_dataloader)
    except TypeError:
        return 1
