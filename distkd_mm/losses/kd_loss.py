"""Vanilla logit KD (Hinton et al.), the baseline DIST is compared to."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .utils import check_real, flatten_logits


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

    Args:
        tau: Temperature dividing both logits. Defaults to 4.0.
        loss_weight: Outer weight of the loss. Defaults to 1.0.
    """

    def __init__(self, tau: float = 4.0, loss_weight: float = 1.0) -> None:
        super().__init__()
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

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student: Student logits, (N, C) or (N, C, *spatial).
            teacher: Teacher logits of the same shape; no gradient flows
                into it.

        Returns:
            A float32 scalar tensor.
        """
        student, teacher = flatten_logits(student, teacher)
        with torch.autocast(device_type=student.device.type, enabled=False):
            log_p_s = F.log_softmax(student / self.tau, dim=1)
            # Teacher as log-probabilities: avoids 0 * log(0) when a teacher
            # probability underflows to zero.
            log_p_t = F.log_softmax(teacher / self.tau, dim=1)
            kl = F.kl_div(
                log_p_s, log_p_t, reduction='batchmean', log_target=True)
            return self.loss_weight * self.tau**2 * kl

    def extra_repr(self) -> str:
        return f'tau={self.tau}, loss_weight={self.loss_weight}'
