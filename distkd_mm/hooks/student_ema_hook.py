"""EMA of the student alone, for distillation runs with EMA (the seed's
stronger training strategy)."""
import copy
import logging

from mmengine.hooks import EMAHook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import HOOKS, MODELS
from mmengine.runner.checkpoint import load_state_dict

from ..utils.student_layout import (EMA_STATE, STUDENT_PREFIX, ema_model_key,
                                    student_state)


@HOOKS.register_module()
class StudentEMAHook(EMAHook):
    """MMEngine's ``EMAHook`` applied to ``model.student`` of a Distiller.

    The plain ``EMAHook`` deep-copies the whole model: with a Distiller that
    is a second frozen teacher in memory (800 MB for Swin-L), and without
    ``update_buffers`` every teacher weight is averaged at every iteration
    for nothing. This hook averages the student only; validation runs the
    averaged student, and checkpoints keep MMEngine's convention (the
    averaged weights in ``state_dict``, under ``student.``, the raw ones in
    ``ema_state_dict``), so ``tools/export_student.py`` exports the EMA
    student. On a model without a ``student`` it behaves as ``EMAHook``.

    Args:
        Same as :class:`mmengine.hooks.EMAHook`; e.g.
        ``dict(type='StudentEMAHook', momentum=1e-4, update_buffers=True)``
        is an EMA with decay 0.9999 over weights and BN statistics, updated
        every iteration.
    """

    def before_run(self, runner) -> None:
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        student = getattr(model, 'student', None)
        self.prefix = STUDENT_PREFIX if student is not None else ''
        self.src_model = student if student is not None else model
        self.ema_model = MODELS.build(
            self.ema_cfg, default_args=dict(model=self.src_model))

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        if EMA_STATE in checkpoint and runner._resume:
            self._swap_ema_state_dict(checkpoint)
            self.ema_model.load_state_dict(
                checkpoint[EMA_STATE], strict=self.strict_load)
            return
        if runner._resume:
            print_log(
                'There is no `ema_state_dict` in checkpoint. `StudentEMAHook`'
                ' will make a copy of `state_dict` as the initial '
                '`ema_state_dict`', 'current', logging.WARNING)
        state = checkpoint['state_dict']
        if self.prefix:
            state = student_state(state)
        load_state_dict(
            self.ema_model.module,
            copy.deepcopy(state),
            strict=self.strict_load)

    def _swap_ema_state_dict(self, checkpoint: dict) -> None:
        model_state = checkpoint['state_dict']
        ema_state = checkpoint[EMA_STATE]
        for key in ema_state:
            src_key = ema_model_key(key, self.prefix)
            if src_key is not None:
                ema_state[key], model_state[src_key] = (model_state[src_key],
                                                        ema_state[key])
