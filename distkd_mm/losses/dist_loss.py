"""DIST: relation-based distillation of class probabilities."""
from typing import Optional

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from .lean_dist import lean_dist_loss
from .utils import (check_class_dim, check_real, empty_loss, flatten_logits,
                    pearson)


def dist_loss(student: Tensor,
              teacher: Tensor,
              beta: float = 1.0,
              gamma: float = 1.0,
              tau: float = 1.0,
              use_sigmoid: bool = False,
              class_dim: Optional[int] = None) -> Tensor:
    """DIST loss without the outer ``loss_weight``; see :class:`DISTLoss`.

    Args:
        student: Student logits; layouts as in :class:`DISTLoss`.
        teacher: Teacher logits of the same shape.
        beta: Weight of the inter-class term.
        gamma: Weight of the intra-class term.
        tau: Temperature.
        use_sigmoid: Element-wise sigmoid instead of softmax.
        class_dim: The class axis, as in :class:`DISTLoss`; required for
            3-D logits.

    Returns:
        A float32 scalar tensor.
    """
    student, teacher = flatten_logits(student, teacher, class_dim)
    if student.numel() == 0:
        return empty_loss(student)
    # Under AMP the eps (1e-8) underflows in fp16 and bf16 loses the small
    # differences of probabilities, so the whole computation stays in fp32.
    with torch.autocast(device_type=student.device.type, enabled=False):
        if use_sigmoid:
            p_s = torch.sigmoid(student / tau)
            p_t = torch.sigmoid(teacher / tau)
        else:
            p_s = torch.softmax(student / tau, dim=1)
            p_t = torch.softmax(teacher / tau, dim=1)
        # inter: each row (sample / position) across classes.
        inter = 1 - pearson(p_s, p_t, dim=1).mean()
        # intra: each class across the rows of the local batch.
        intra = 1 - pearson(p_s, p_t, dim=0).mean()
        return tau**2 * (beta * inter + gamma * intra)


@MODELS.register_module()
class DISTLoss(nn.Module):
    """DIST loss from `Knowledge Distillation from A Stronger Teacher
    <https://arxiv.org/abs/2205.10536>`_ (NeurIPS 2022).

    Instead of matching the teacher's probabilities exactly (KL), DIST only
    asks the student to preserve their *relations*, measured with Pearson
    correlation, which tolerates the large gap to a much stronger teacher:

    - inter-class: for every sample, the correlation between the student and
      teacher probability vectors across classes (the teacher's ranking of
      classes);
    - intra-class: for every class, the correlation across the samples of the
      batch (which samples the teacher finds more or less like that class).

    ``loss = loss_weight * tau**2 * (beta * (1 - mean_i rho(P_i, Q_i)) +
    gamma * (1 - mean_j rho(P^j, Q^j)))``, with ``P``/``Q`` the student and
    teacher softmax (or sigmoid) of the logits divided by ``tau``.

    Dense predictions (N, C, *spatial) are flattened so each spatial position
    is a row, as in the official segmentation/detection code: inter-class
    relations are per position, intra-class relations span all positions of
    the batch. The statistics use the local (per-GPU) batch only, as in the
    official code. The teacher is detached and the math runs in float32.

    Axes are never guessed. (N, C) and dense (N, C, H, W[, D]) logits need
    no argument. A 3-D tensor is ambiguous, (batch, classes, length) for a
    1-D dense head but (batch, queries, classes) for DETR-family heads, and
    a wrong guess correlates over the wrong axis without any error, so 3-D
    logits fail unless ``class_dim`` names the class axis. With
    ``class_dim`` every other axis indexes rows: (batch, queries, classes)
    with ``class_dim=-1`` is (batch * queries) rows of classes, and
    (N, H, W, C) with ``class_dim=-1`` equals (N, C, H, W) with the default.

    Query-based detectors (DETR, Deformable DETR, DINO): the student's and
    the teacher's queries are not matched one to one. Each model assigns its
    queries to objects by Hungarian matching in every forward, so query i of
    the student and query i of the teacher describe different objects, and
    DIST over ``class_dim=-1`` logits of two such models distils noise
    (``class_dim`` is for logits whose rows do correspond, e.g. a student and
    a teacher sharing the same queries or proposals). Distil what is aligned
    by position instead: the FPN/neck features with ``type='MimicLoss'``
    (:class:`~distkd_mm.losses.MimicLoss`), or the encoder memory.

    Args:
        beta: Weight of the inter-class term. Defaults to 1.0.
        gamma: Weight of the intra-class term. Defaults to 1.0.
        tau: Temperature dividing both logits. The loss is multiplied by
            ``tau**2`` like the official code (CIFAR recipe uses 4).
            Defaults to 1.0.
        loss_weight: Outer weight of the loss. Defaults to 1.0.
        use_sigmoid: Use element-wise sigmoid instead of softmax, for heads
            trained with sigmoid classification (e.g. RetinaNet).
            Defaults to False.
        memory_lean: Compute the gradient by hand, chunk by chunk, so the
            backward keeps no full-size temporaries (same value and
            gradient; less than half the peak memory on dense maps).
            Defaults to True.
        class_dim: The class axis of the logits (negative counts from the
            end; 0, the batch axis, is refused). ``None`` accepts (N, C) and
            (N, C, *spatial) with two or more spatial axes only; 3-D logits
            need it, e.g. ``-1`` for (batch, queries, classes) or ``1`` for
            (batch, classes, length). Defaults to None.
    """

    def __init__(self,
                 beta: float = 1.0,
                 gamma: float = 1.0,
                 tau: float = 1.0,
                 loss_weight: float = 1.0,
                 use_sigmoid: bool = False,
                 memory_lean: bool = True,
                 class_dim: Optional[int] = None) -> None:
        super().__init__()
        check_class_dim(class_dim)
        check_real(
            'tau',
            tau,
            positive=True,
            hint='Use e.g. tau=1.0 (ImageNet) or tau=4.0 (CIFAR).')
        weights = dict(beta=beta, gamma=gamma, loss_weight=loss_weight)
        for name, value in weights.items():
            check_real(name, value, hint='Use 0 to switch a term off.')
        if not isinstance(use_sigmoid, bool):
            raise TypeError('`use_sigmoid` should be a bool, but got '
                            f'{use_sigmoid!r} of type '
                            f'{type(use_sigmoid).__name__}. Use True for '
                            'sigmoid-based heads, False for softmax.')
        if not isinstance(memory_lean, bool):
            raise TypeError('`memory_lean` should be a bool, but got '
                            f'{memory_lean!r} of type '
                            f'{type(memory_lean).__name__}. Use True (less '
                            'memory, same value and gradient) or False.')
        self.beta = beta
        self.gamma = gamma
        self.tau = tau
        self.loss_weight = loss_weight
        self.use_sigmoid = use_sigmoid
        self.memory_lean = memory_lean
        self.class_dim = class_dim

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student: Student logits, (N, C), (N, C, *spatial) with two or
                more spatial axes, or any layout with ``class_dim`` set.
            teacher: Teacher logits of the same shape; no gradient flows
                into it.

        Returns:
            A float32 scalar tensor.
        """
        if self.memory_lean:
            loss = lean_dist_loss(
                student,
                teacher,
                self.beta,
                self.gamma,
                self.tau,
                self.use_sigmoid,
                class_dim=self.class_dim)
        else:
            loss = dist_loss(student, teacher, self.beta, self.gamma, self.tau,
                             self.use_sigmoid, self.class_dim)
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'beta={self.beta}, gamma={self.gamma}, tau={self.tau}, '
                f'loss_weight={self.loss_weight}, '
                f'use_sigmoid={self.use_sigmoid}, '
                f'class_dim={self.class_dim}')
