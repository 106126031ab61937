"""One step of each timed case, its set-up done once beforehand."""
from contextlib import nullcontext
from typing import Callable, Tuple

import torch

from .data import dist_maps


def _precision(device: str, amp: bool):
    if not amp:
        return nullcontext()
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def case_fn(model: torch.nn.Module, case: str, inputs: torch.Tensor,
            samples: list, amp: bool) -> Callable[[], None]:
    """One step of ``case``; its set-up (optimizer, RoIs) is done here."""
    device = inputs.device.type
    if case in ('student', 'distill'):
        params = [p for p in model.parameters() if p.requires_grad]
        optim = torch.optim.SGD(
            params, lr=1e-4, momentum=0.9, weight_decay=1e-4)

        def train_step() -> None:
            with _precision(device, amp):
                if case == 'student':
                    losses = model.student(inputs, samples, mode='loss')
                else:
                    losses = model.loss(inputs, samples)
            loss, _ = model.parse_losses(losses)
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)

        return train_step
    student = model.teacher_run.record_student(model.student, inputs, samples)

    def teacher_step() -> None:
        if case == 'teacher_loss':
            with torch.no_grad(), _precision(device, amp):
                model.teacher(inputs, samples, mode='loss')
        else:
            with _precision(device, amp):
                model.run_teacher(inputs, samples, student=student)

    return teacher_step


def dist_fn(variant: str, scale: float,
            device: str) -> Callable[[], Tuple[torch.Tensor, torch.Tensor]]:
    """Forward + backward of plain or memory-lean sigmoid DIST on a dense
    map; returns the value and the student's gradient."""
    from distkd_mm.losses.dist_loss import dist_loss
    from distkd_mm.losses.lean_dist import lean_dist_loss
    loss_fn = dict(plain=dist_loss, lean=lean_dist_loss)[variant]
    student, teacher = dist_maps(scale, device)

    def run() -> Tuple[torch.Tensor, torch.Tensor]:
        x = student.detach().requires_grad_()
        value = loss_fn(x, teacher, use_sigmoid=True)
        value.backward()
        return value.detach(), x.grad

    return run
