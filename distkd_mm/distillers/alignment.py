"""Build-time checks that a term's two taps can line up.

Run when the Distiller is built, before the Runner builds datasets and
dataloaders: a mismatch found here costs nothing, the same mismatch found at
the first step costs the data loading (minutes for COCO) first.
"""
from typing import Mapping, Optional, Tuple

from torch import nn

from .recorder import get_submodule


def tap_class_count(model: nn.Module, path: str) -> Optional[Tuple[int, str]]:
    """``(num_classes, owner path)`` of the head a tap belongs to.

    The tapped module itself or its nearest enclosing module that has an
    integer ``num_classes`` (mmpretrain, mmdet and mmseg heads all do);
    None for taps outside a head (a neck, a backbone stage).
    """
    parts = path.split('.') if path else []
    for end in range(len(parts), 0, -1):
        owner = '.'.join(parts[:end])
        count = getattr(
            get_submodule(model, owner, 'model'), 'num_classes', None)
        if isinstance(count, int) and not isinstance(count, bool):
            return count, owner
    return None


def check_class_counts(student: nn.Module, teacher: nn.Module,
                       terms: Mapping) -> None:
    """Fail when a term pairs heads with different numbers of classes.

    Args:
        student: The student model.
        teacher: The teacher model.
        terms: Term name -> :class:`~.term.DistillTerm`.

    Raises:
        ValueError: Naming the term, both heads and both class counts.
    """
    for name, term in terms.items():
        s = tap_class_count(student, term.student_tap)
        t = tap_class_count(teacher, term.teacher_tap)
        if s is None or t is None or s[0] == t[0]:
            continue
        raise ValueError(
            f'`{name}` should pair heads with the same classes, but the '
            f'student\'s `{s[1]}` has num_classes={s[0]} and the teacher\'s '
            f'`{t[1]}` has num_classes={t[0]}: class i of one is not class '
            'i of the other. Use a teacher trained on the student\'s '
            'classes (same set, same order), or set the student\'s '
            '`num_classes` to the dataset\'s if it is the one that is '
            'wrong.')
