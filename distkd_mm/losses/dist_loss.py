"""DIST: relation-based distillation of class probabilities."""
import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor

from .lean_dist import lean_dist_loss
from .utils import check_real, empty_loss, flatten_logits, pearson


def dist_loss(student: Tensor,
              teacher: Tensor,
              beta: float = 1.0,
              gamma: float = 1.0,
              tau: float = 1.0,
              use_sigmoid: bool = False) -> Tensor:
    """DIST loss without the outer ``loss_weight``; see :class:`DISTLoss`.

    Returns:
        A float32 scalar tensor.
    """
    student, teacher = flatten_logits(student, teacher)
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
    """

    def __init__(self,
                 beta: float = 1.0,
                 gamma: float = 1.0,
                 tau: float = 1.0,
                 loss_weight: float = 1.0,
                 use_sigmoid: bool = False,
                 memory_lean: bool = True) -> None:
        super().__init__()
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

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student: Student logits, (N, C) or (N, C, *spatial).
            teacher: Teacher logits of the same shape; no gradient flows
                into it.

        Returns:
            A float32 scalar tensor.
        """
        if self.memory_lean:
            loss = lean_dist_loss(student, teacher, self.beta, self.gamma,
                                  self.tau, self.use_sigmoid)
        else:
            loss = dist_loss(student, teacher, self.beta, self.gamma, self.tau,
                             self.use_sigmoid)
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'beta={self.beta}, gamma={self.gamma}, tau={self.tau}, '
                f'loss_weight={self.loss_weight}, '
                f'use_sigmoid={self.use_sigmoid}')
