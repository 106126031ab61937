"""Vanilla logit KD (Hinton et al.), the baseline DIST is compared to."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .utils import check_class_dim, check_real, flatten_logits


@MODELS.register_module()
class KDLoss(nn.Module):
    """Temperature-scaled KL distillation loss, `Distilling the Knowledge in
    a Neural Network <https://arxiv.org/abs/1503.02531>`_.

    ``loss = loss_weight * tau**2 * KL(softmax(T / tau) || softmax(S / tau))``
    summed over classes and averaged over rows ("batchmean"), as in the KD
    baseline of the DIST paper's code (tau=4). The ``tau**2`` factor keeps the
    gradient scale comparable across temperatures.

    Dense inputs (N, C, *spatial) are flattened like :class:`DISTLoss`, so
    every spatial position is a row and the sum is divided by the number of
    positions N * prod(spatial), not by N. The teacher is detached and the
    math runs in float32.

    Axes are never guessed, exactly as in :class:`DISTLoss`: (N, C) and
    (N, C, H, W[, D]) are implicit, 3-D logits ((batch, classes, length)
    or (batch, queries, classes)?) fail unless ``class_dim`` names the class
    axis, and with it every other axis indexes rows (the batchmean divides
    by their number, e.g. batch * queries). As there, the queries of two
    DETR-family detectors are not matched one to one (Hungarian matching in
    every forward), so a per-query KD between them distils noise; distil the
    FPN/neck features (``type='MimicLoss'``) or the encoder memory instead.

    Args:
        tau: Temperature dividing both logits. Defaults to 4.0.
        loss_weight: Outer weight of the loss. Defaults to 1.0.
        class_dim: The class axis of the logits (negative counts from the
            end; 0 is refused). ``None`` accepts (N, C) and (N, C, *spatial)
            with two or more spatial axes only; 3-D logits need it, e.g.
            ``-1`` for (batch, queries, classes). Defaults to None.
    """

    def __init__(self,
                 tau: float = 4.0,
                 loss_weight: float = 1.0,
                 class_dim: Optional[int] = None) -> None:
        super().__init__()
        check_class_dim(class_dim)
        check_real(
            'tau',
            tau,
            positive=True,
            hint='Use e.g. tau=4.0 (the usual KD temperature).')
        check_real(
            'loss_weight',
            loss_weight,
            hint='Use 0 to switch the loss off, not a negative.')
        self.tau = tau
        self.loss_weight = loss_weight
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
        student, teacher = flatten_logits(student, teacher, self.class_dim)
        with torch.autocast(device_type=student.device.type, enabled=False):
            log_p_s = F.log_softmax(student / self.tau, dim=1)
            # Teacher as log-probabilities: avoids 0 * log(0) when a teacher
            # probability underflows to zero.
            log_p_t = F.log_softmax(teacher / self.tau, dim=1)
            kl = F.kl_div(
                log_p_s, log_p_t, reduction='batchmean', log_target=True)
            return self.loss_weight * self.tau**2 * kl

    def extra_repr(self) -> str:
        return (f'tau={self.tau}, loss_weight={self.loss_weight}, '
                f'class_dim={self.class_dim}')
