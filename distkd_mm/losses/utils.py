"""Checks and helpers shared by the distillation losses.

Below every loss module of this package (``dist_loss``, ``lean_dist``,
``kd_loss``, ``mimic_loss``) and importing none of them, so the losses
import each other in one direction only.
"""
import math
import numbers
from typing import Optional, Tuple

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


# Why a per-query loss between two DETR-family detectors distils noise, and
# what to distil instead; shared by the 3-D error and the docs.
QUERY_NOTE = (
    'For query-based detectors (DETR, Deformable DETR, DINO, ...) note that '
    'student and teacher queries are not matched one to one: each model '
    'assigns its queries to objects by Hungarian matching in every forward, '
    'so query i of the student and query i of the teacher describe '
    'different objects. Distil what is aligned by position instead: the '
    "FPN/neck features with `type='MimicLoss'` (tap `neck`), or the "
    'encoder memory.')


def check_class_dim(class_dim: Optional[int]) -> None:
    """Validate a ``class_dim`` argument before any input is seen.

    Args:
        class_dim: ``None`` (implicit layouts only) or the class axis.
    """
    # bool is an int subclass; `class_dim=True` is a typo, not axis 1.
    if class_dim is not None and (isinstance(class_dim, bool)
                                  or not isinstance(class_dim, int)):
        raise TypeError(
            '`class_dim` should be None or an int (the class axis), but got '
            f'{class_dim!r} of type {type(class_dim).__name__}. Use e.g. '
            '`class_dim=-1` for (batch, queries, classes) logits.')
    if class_dim == 0:
        raise ValueError(
            '`class_dim` should not be 0, the batch axis of batch-first '
            'logits, but got 0. Use `class_dim=1` for (N, C, ...) or '
            '`class_dim=-1` for (..., C) logits.')


def class_axis(shape: Tuple[int, ...], class_dim: Optional[int]) -> int:
    """The non-negative class axis of logits of ``shape``.

    Without ``class_dim`` only the layouts nobody reads another way are
    accepted: (N, C) and dense (N, C, H, W[, D, ...]). A 3-D tensor is
    (N, C, L) in mmseg/1-D convolutions but (batch, queries, classes) in
    DETR-family heads, and a wrong guess trains silently on the wrong axis,
    so 3-D logits must name their class axis.

    Args:
        shape: Shape of the logits (at least 2 dims).
        class_dim: ``None`` or the class axis, negative counting from the
            end.

    Returns:
        The class axis in ``range(1, len(shape))``.
    """
    check_class_dim(class_dim)
    ndim = len(shape)
    if class_dim is None:
        if ndim == 3:
            raise ValueError(
                '`class_dim` should be set for 3-D logits, but got shape '
                f'{tuple(shape)} and `class_dim=None`: (batch, classes, '
                'length) and (batch, queries, classes) cannot be told '
                'apart. Set `class_dim=-1` in the loss config for (batch, '
                'queries, classes) logits, or `class_dim=1` for (batch, '
                f'classes, length). {QUERY_NOTE}')
        return 1
    if not -ndim <= class_dim < ndim:
        raise ValueError(
            f'`class_dim` should be in [{-ndim}, {ndim - 1}] for logits of '
            f'shape {tuple(shape)}, but got {class_dim}. Use `class_dim=-1` '
            'when the classes are the last axis, `class_dim=1` when they '
            'follow the batch axis.')
    axis = class_dim % ndim
    if axis == 0:
        raise ValueError(
            f'`class_dim` should not name the batch axis, but got '
            f'`class_dim={class_dim}` for logits of shape {tuple(shape)}, '
            'which is axis 0. Use `class_dim=-1` for (..., C) or '
            '`class_dim=1` for (N, C, ...) logits.')
    return axis


def class_layout(x: Tensor, axis: int) -> Tensor:
    """View logits in one of the two layouts the losses compute on.

    Returns (rows, C) when the classes are the last axis (a reshape, which is
    a view for contiguous input, so the memory-lean path stays lean) and
    (N, C, *other) otherwise; both give the same rows, since every axis but
    the class axis indexes rows and the losses do not depend on row order.

    Args:
        x: Logits with the classes on ``axis``.
        axis: Non-negative class axis, from :func:`class_axis`.
    """
    if axis == x.dim() - 1:
        # The row count is explicit: reshape(-1, 0) fails on zero classes.
        return x.reshape(math.prod(x.shape[:-1]), x.size(-1))
    return x if axis == 1 else x.movedim(axis, 1)


def flatten_logits(student: Tensor,
                   teacher: Tensor,
                   class_dim: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Check a student/teacher logit pair and flatten it to rows x classes.

    Dense maps (N, C, *spatial) become (N * prod(spatial), C): every spatial
    position is a sample and the class axis stays the last one. With
    ``class_dim`` the classes are read from that axis and every other axis
    indexes rows, e.g. (batch, queries, classes) -> (batch * queries,
    classes). Both tensors are cast to float32 and the teacher is detached.

    Args:
        student: Student logits, (N, C), (N, C, *spatial) with two or more
            spatial axes, or any layout whose class axis ``class_dim`` names.
        teacher: Teacher logits of the same shape.
        class_dim: The class axis; required for 3-D logits.

    Returns:
        The flattened float32 student and (detached) teacher logits.
    """
    check_logits(student, teacher)
    axis = class_axis(student.shape, class_dim)
    student = class_layout(student, axis)
    teacher = class_layout(teacher.detach(), axis)
    num_classes = student.size(1)
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
