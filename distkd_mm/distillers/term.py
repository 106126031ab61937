"""One distillation term: a student tap, a teacher tap and the loss between.

Each entry of ``Distiller(distill_losses=...)`` becomes a :class:`DistillTerm`
holding everything about it (taps, loss, connector, resize flag), so the
distiller never rejoins parallel per-name tables.
"""
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.model import BaseModule, ModuleDict
from mmengine.registry import MODELS
from torch.nn import functional as F

ENTRY_KEYS = ('student', 'teacher', 'loss', 'connector', 'resize_teacher')


class DistillTerm(BaseModule):
    """A loss between what a student tap and a teacher tap return.

    A tap called several times in a step (a head shared by FPN levels)
    pairs its calls in order and the term sums their losses; taps that
    return tuples (an FPN) pair element-wise.

    Args:
        name: The loss key, e.g. ``'loss_dist'``.
        student: Path of the student's tapped submodule.
        teacher: Path of the teacher's tapped submodule.
        loss: Config of the loss, called as ``loss(student, teacher)``.
        connector: Config of a trainable module applied to the student's
            output first (trained and saved with the student).
        resize_teacher: Resize dense teacher maps bilinearly to the
            student's spatial size instead of failing on a size mismatch.
    """

    def __init__(self,
                 name: str,
                 student: str,
                 teacher: str,
                 loss: dict,
                 connector: Optional[dict] = None,
                 resize_teacher: bool = False) -> None:
        super().__init__()
        self.name = name
        self.student_tap = student
        self.teacher_tap = teacher
        self.loss = MODELS.build(loss)
        self.connector = MODELS.build(connector) if connector else None
        self.resize_teacher = bool(resize_teacher)

    def forward(self, s_calls: List[Any], t_calls: List[Any]) -> torch.Tensor:
        """The summed loss over the taps' calls of one step."""
        if len(s_calls) != len(t_calls) or not s_calls:
            raise RuntimeError(
                f'{self.name}: student tap {self.student_tap!r} ran '
                f'{len(s_calls)} time(s) but teacher tap '
                f'{self.teacher_tap!r} ran {len(t_calls)} time(s) in this '
                'step; choose modules that run equally often.')
        total = 0.
        for call, (s_out, t_out) in enumerate(zip(s_calls, t_calls)):
            if self.connector is not None:
                s_out = self.connector(s_out)
            for s, t in self._pairs(s_out, t_out):
                if self.resize_teacher:
                    t = _resize_like(t, s)
                self._check_shapes(s, t, call)
                total = total + self.loss(s, t)
        return total

    def _pairs(self, s_out: Any, t_out: Any) -> Sequence:
        if isinstance(s_out, torch.Tensor) and isinstance(t_out, torch.Tensor):
            return [(s_out, t_out)]
        if (isinstance(s_out,
                       (tuple, list)) and isinstance(t_out, (tuple, list))
                and len(s_out) == len(t_out)):
            return list(zip(s_out, t_out))
        raise RuntimeError(
            f'{self.name}: student tap {self.student_tap!r} returned '
            f'{_describe(s_out)} but teacher tap {self.teacher_tap!r} '
            f'returned {_describe(t_out)}; tap modules whose outputs '
            'correspond.')

    def _check_shapes(self, s: torch.Tensor, t: torch.Tensor,
                      call: int) -> None:
        if s.shape == t.shape:
            return
        only_spatial = s.dim() == t.dim() > 2 and s.shape[:2] == t.shape[:2]
        hint = (f'Only the spatial sizes differ: set `resize_teacher=True` '
                f'in `distill_losses.{self.name}` to resize the teacher map '
                "to the student's size." if only_spatial else
                'Tap modules whose outputs line up, e.g. heads with the '
                'same classes.')
        raise RuntimeError(
            f'{self.name}: student tap {self.student_tap!r} output of shape '
            f'{tuple(s.shape)} does not match teacher tap '
            f'{self.teacher_tap!r} output of shape {tuple(t.shape)} (call '
            f'{call}). {hint}')


def build_terms(distill_losses: Dict[str, dict]) -> ModuleDict:
    """Check the ``distill_losses`` entries and build one term each."""
    if not isinstance(distill_losses, dict) or not distill_losses:
        raise ValueError('`distill_losses` should be a non-empty dict of '
                         'name -> dict(student=..., teacher=..., loss=...), '
                         f'but got {distill_losses!r}.')
    for name, cfg in distill_losses.items():
        if 'loss' not in name:
            raise ValueError(
                f'`distill_losses` names should contain "loss" (MMEngine '
                f'only sums such keys), but got {name!r}; try '
                f'"loss_{name}".')
        missing = {'student', 'teacher', 'loss'} - set(cfg)
        if missing:
            raise ValueError(f'`distill_losses.{name}` should have keys '
                             f'student, teacher and loss, but lacks '
                             f'{sorted(missing)}.')
        unknown = set(cfg) - set(ENTRY_KEYS)
        if unknown:
            raise ValueError(f'`distill_losses.{name}` should only have keys '
                             f'{sorted(ENTRY_KEYS)}, but got unknown '
                             f'{sorted(unknown)}; check the spelling.')
    return ModuleDict({
        name: DistillTerm(name, **cfg)
        for name, cfg in distill_losses.items()
    })


def _resize_like(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """Bilinearly resize a dense teacher map to the student's size.

    The teacher is resized (not the student) so the loss keeps the student's
    resolution and its gradient needs no interpolation.
    """
    if t.dim() < 3 or t.shape[2:] == s.shape[2:]:
        return t
    return F.interpolate(
        t, size=s.shape[2:], mode='bilinear', align_corners=False)


def _describe(out: Any) -> str:
    if isinstance(out, torch.Tensor):
        return f'a tensor of shape {tuple(out.shape)}'
    if isinstance(out, (tuple, list)):
        return f'a {type(out).__name__} of {len(out)}'
    return type(out).__name__
