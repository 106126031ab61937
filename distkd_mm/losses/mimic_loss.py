"""Feature mimicking: mean squared error between student and teacher maps."""
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor

from .utils import check_real


@MODELS.register_module()
class MimicLoss(nn.Module):
    """Mean squared error between a student and a teacher feature map.

    The "+mimic" term of the DIST detection recipes: the student's FPN
    feature (after a trainable 1x1 adapter, see
    :class:`~distkd_mm.distillers.connectors.FPNAdapter`) regresses the
    teacher's feature of the same level. ``loss = loss_weight *
    mean((S - T)**2)`` over all elements, as ``nn.MSELoss()`` in the official
    code; no normalisation and no masks. The teacher is detached and the
    math runs in float32 (squared differences overflow fp16 easily).

    Args:
        loss_weight: Outer weight of the loss. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        check_real(
            'loss_weight',
            loss_weight,
            hint='Use 0 to switch the loss off, not a negative.')
        self.loss_weight = loss_weight

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        """Compute the loss.

        Args:
            student: Student feature, any shape.
            teacher: Teacher feature of the same shape; no gradient flows
                into it.

        Returns:
            A float32 scalar tensor.
        """
        for name, x in (('student', student), ('teacher', teacher)):
            if not isinstance(x, Tensor):
                raise TypeError(f'`{name}` feature should be a torch.Tensor, '
                                f'but got {type(x).__name__}.')
        if student.shape != teacher.shape:
            raise ValueError(
                f'student feature of shape {tuple(student.shape)} and '
                f'teacher feature of shape {tuple(teacher.shape)} should be '
                'equal. Tap features of the same size, or add a connector '
                '(e.g. FPNAdapter with out_channels set to the teacher\'s '
                'channels) that maps the student feature to the teacher\'s.')
        with torch.autocast(device_type=student.device.type, enabled=False):
            loss = F.mse_loss(student.float(), teacher.detach().float())
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
