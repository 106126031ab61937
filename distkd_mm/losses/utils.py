"""Checks and helpers shared by the distillation losses.

Below every loss module of this package (``dist_loss``, ``lean_dist``,
``kd_loss``, ``mimic_loss``) and importing none of them, so the losses
import each other in one direction only.
"""
import math
import numbers
from typing import Tuple

from torch import Tensor

# Added to the product of the two norms (not inside a square root), as in
# the official code. It keeps a constant vector (zero norm) from producing
# NaN: its correlation is then 0 instead of 0 / 0.
PEARSON_EPS = 1e-8


def check_real(name: str,
               value: object,
               positive: bool = False,
               hint: str = '') -> None:
    """Validate a scalar hyper-parameter in MMEngine's message style.

    Args:
        name: Argument name shown in the message.
        value: The value given by the user.
        positive: Require ``value > 0`` instead of ``value >= 0``.
        hint: How to fix it, appended to the message.
    """
    # bool is a numbers.Real subclass; ``tau=True`` is almost surely a typo.
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'`{name}` should be a real number, but got '
                        f'{value!r} of type {type(value).__name__}. {hint}')
    if not math.isfinite(value):
        raise ValueError(f'`{name}` should be a finite number, but got '
                         f'{value!r}; a non-finite {name} makes every loss '
                         f'NaN or Inf. {hint}')
    if positive and not value > 0:
        raise ValueError(f'`{name}` should be a positive number, but got '
                         f'{value!r}. {hint}')
    if not positive and not value >= 0:
        raise ValueError(f'`{name}` should be a non-negative number, but '
                         f'got {value!r}. {hint}')


def check_logits(student: Tensor, teacher: Tensor) -> None:
    """Reject a student/teacher pair that is not two equal float tensors.

    Args:
        student: Student logits, (N, C) or (N, C, *spatial).
        teacher: Teacher logits of the same shape.
    """
    for name, x in (('student', student), ('teacher', teacher)):
        if not isinstance(x, Tensor):
            raise TypeError(f'`{name}` logits should be a torch.Tensor, but '
                            f'got {type(x).__name__}.')
        if not x.is_floating_point():
            raise TypeError(f'`{name}` logits should be a floating point '
                            f'tensor, but got dtype {x.dtype}. Pass the raw '
                            'logits of the classifier/head.')
    if student.shape != teacher.shape:
        raise ValueError(
            f'student logits of shape {tuple(student.shape)} and teacher '
            f'logits of shape {tuple(teacher.shape)} should be equal. Tap '
            'modules with the same number of classes/channels, or add a '
            'connector that maps the student output to the teacher shape.')
    if student.dim() < 2:
        raise ValueError(
            'logits should have at least 2 dims (N, C) or (N, C, *spatial), '
            f'but got shape {tuple(student.shape)}. Add the batch axis, '
            'e.g. `x[None]`.')


def flatten_logits(student: Tensor, teacher: Tensor) -> Tuple[Tensor, Tensor]:
    """Check a student/teacher logit pair and flatten it to rows x classes.

    Dense maps (N, C, *spatial) become (N * prod(spatial), C): every spatial
    position is a sample and the class axis stays the last one. Both tensors
    are cast to float32 and the teacher is detached.

    Args:
        student: Student logits, (N, C) or (N, C, *spatial).
        teacher: Teacher logits of the same shape.

    Returns:
        The flattened float32 student and (detached) teacher logits.
    """
    check_logits(student, teacher)
    num_classes = student.size(1)
    teacher = teacher.detach()
    if student.dim() > 2:
        # movedim + reshape copies once; keeping C last makes each row one
        # position's class vector (N*H*W rows) rather than one image.
        student = student.movedim(1, -1).reshape(-1, num_classes)
        teacher = teacher.movedim(1, -1).reshape(-1, num_classes)
    return student.float(), teacher.float()


def empty_loss(student: Tensor) -> Tensor:
    """The loss of an input without rows (an image without RoIs, a batch
    without positions): zero, float32, and still in the graph, so the
    backward and DDP's gradient sync see the student's parameters."""
    return student.float().sum() * 0.


def pearson(x: Tensor, y: Tensor, dim: int) -> Tensor:
    """Pearson correlation of matching vectors of ``x`` and ``y`` along
    ``dim``: cosine similarity of the mean-centred vectors, with the eps
    added to the product of the norms as in the official code
    (``F.cosine_similarity`` clamps the norms instead)."""
    x = x - x.mean(dim, keepdim=True)
    y = y - y.mean(dim, keepdim=True)
    num = (x * y).sum(dim)
    den = x.norm(dim=dim) * y.norm(dim=dim) + PEARSON_EPS
    return num / den
