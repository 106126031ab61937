"""DIST with a hand-written backward that never holds a full-size temporary.

Plain autograd keeps about a dozen (rows x classes) fp32 tensors alive for
the backward pass: probabilities, centred copies, products. On a RetinaNet
P3 map (2 x 720 x 100 x 168) that is over 1.5 GB. Here the loss is computed
in chunks of rows, the column statistics of the intra-class term in two
passes, and the backward recomputes probabilities chunk by chunk from the
logits, so the only full-size tensor created is the gradient itself.
"""
from typing import Iterator, Optional, Tuple

import torch
from torch import Tensor

from .utils import (PEARSON_EPS, check_logits, class_axis, class_layout,
                    empty_loss, pearson)

_TINY = torch.finfo(torch.float32).tiny


def _row_chunks(x: Tensor, rows: int) -> Iterator[Tuple[tuple, Tensor]]:
    """Yield (index, view) pairs of (rows, C) views of logits, no copies.

    2-D (N, C) inputs are sliced by rows; dense (N, C, *spatial) inputs by
    sample and by runs of positions, transposed so the class axis is last.
    """
    if x.dim() == 2:
        for r0 in range(0, x.size(0), rows):
            yield (slice(r0, r0 + rows), ), x[r0:r0 + rows]
        return
    flat = x.reshape(x.size(0), x.size(1), -1)
    for n in range(flat.size(0)):
        for p0 in range(0, flat.size(2), rows):
            index = (n, slice(None), slice(p0, p0 + rows))
            yield index, flat[index].t()


def _probs(z: Tensor, tau: float, use_sigmoid: bool) -> Tensor:
    z = z.float() / tau
    return torch.sigmoid(z) if use_sigmoid else torch.softmax(z, dim=1)


class _LeanDIST(torch.autograd.Function):
    """Forward returns the unweighted DIST loss; see :func:`lean_dist_loss`."""

    @staticmethod
    def forward(ctx, student: Tensor, teacher: Tensor, beta: float,
                gamma: float, tau: float, use_sigmoid: bool,
                rows: int) -> Tensor:
        num_rows = student.numel() // student.size(1)
        sum_p = student.new_zeros(student.size(1), dtype=torch.float32)
        sum_q = torch.zeros_like(sum_p)
        row_rho = sum_p.new_zeros(())
        for index, s in _row_chunks(student, rows):
            p = _probs(s, tau, use_sigmoid)
            q = _probs(_take(teacher, index), tau, use_sigmoid)
            row_rho += pearson(p, q, dim=1).sum()
            sum_p += p.sum(0)
            sum_q += q.sum(0)
        mean_p, mean_q = sum_p / num_rows, sum_q / num_rows
        dot, sq_p, sq_q = (torch.zeros_like(sum_p) for _ in range(3))
        for index, s in _row_chunks(student, rows):
            x = _probs(s, tau, use_sigmoid) - mean_p
            y = _probs(_take(teacher, index), tau, use_sigmoid) - mean_q
            dot += (x * y).sum(0)
            sq_p += (x * x).sum(0)
            sq_q += (y * y).sum(0)
        norm_p, norm_q = sq_p.sqrt(), sq_q.sqrt()
        col_rho = dot / (norm_p * norm_q + PEARSON_EPS)
        inter = 1 - row_rho / num_rows
        intra = 1 - col_rho.mean()
        ctx.save_for_backward(student, teacher, mean_p, mean_q, dot, norm_p,
                              norm_q)
        ctx.hyper = (beta, gamma, tau, use_sigmoid, rows, num_rows)
        return tau**2 * (beta * inter + gamma * intra)

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        student, teacher, mean_p, mean_q, dot, norm_p, norm_q = \
            ctx.saved_tensors
        beta, gamma, tau, use_sigmoid, rows, num_rows = ctx.hyper
        scale = grad_out.float() * tau**2
        den = norm_p * norm_q + PEARSON_EPS
        # d rho_j / d x_j = y_j / den_j - dot_j * |y_j| x_j / (|x_j| den_j^2)
        col_x = _slope(dot, norm_p, norm_q, den)
        grad = torch.empty(
            student.shape, dtype=student.dtype, device=student.device)
        num_cols = student.size(1)
        for index, s in _row_chunks(student, rows):
            p = _probs(s, tau, use_sigmoid)
            q = _probs(_take(teacher, index), tau, use_sigmoid)
            g_p = (beta / num_rows) * _pearson_rows_grad(p, q)
            g_p += (gamma / num_cols) * ((q - mean_q) / den - col_x *
                                         (p - mean_p))
            g_p *= -scale
            if use_sigmoid:
                g_z = g_p * p * (1 - p)
            else:
                g_z = p * (g_p - (g_p * p).sum(1, keepdim=True))
            g_z /= tau
            _put(grad, index, g_z.to(grad.dtype))
        return grad, None, None, None, None, None, None


def _take(x: Tensor, index: tuple) -> Tensor:
    return x.reshape(x.size(0), x.size(1), -1)[index].t() \
        if x.dim() > 2 else x[index]


def _put(grad: Tensor, index: tuple, value: Tensor) -> None:
    if grad.dim() > 2:
        grad.view(grad.size(0), grad.size(1), -1)[index] = value.t()
    else:
        grad[index] = value


def _slope(dot: Tensor, norm_x: Tensor, norm_y: Tensor, den: Tensor) -> Tensor:
    """``dot * |y| / (|x| den^2)``, ordered so that tiny norms neither
    underflow nor divide 0 by 0 (a constant vector has zero gradient)."""
    slope = (dot / den) * (norm_y / den) / norm_x.clamp_min(_TINY)
    return torch.where(norm_x > 0, slope, torch.zeros_like(slope))


def _pearson_rows_grad(p: Tensor, q: Tensor) -> Tensor:
    """d pearson(p_i, q_i) / d p_i for every row i."""
    x = p - p.mean(1, keepdim=True)
    y = q - q.mean(1, keepdim=True)
    nx, ny = x.norm(dim=1, keepdim=True), y.norm(dim=1, keepdim=True)
    den = nx * ny + PEARSON_EPS
    dot = (x * y).sum(1, keepdim=True)
    g = y / den - _slope(dot, nx, ny, den) * x
    # Centring is a projection: its gradient removes the row mean.
    return g - g.mean(1, keepdim=True)


def lean_dist_loss(student: Tensor,
                   teacher: Tensor,
                   beta: float = 1.0,
                   gamma: float = 1.0,
                   tau: float = 1.0,
                   use_sigmoid: bool = False,
                   chunk_rows: int = 4096,
                   class_dim: Optional[int] = None) -> Tensor:
    """The value and gradient of :func:`dist_loss`, in a fraction of the
    memory: only the student gradient is allocated at full size.

    Args:
        student: Student logits; layouts as in :class:`DISTLoss`.
        teacher: Teacher logits of the same shape.
        beta: Weight of the inter-class term.
        gamma: Weight of the intra-class term.
        tau: Temperature.
        use_sigmoid: Element-wise sigmoid instead of softmax.
        chunk_rows: Rows per chunk; bounds the temporaries.
        class_dim: The class axis, as in :class:`DISTLoss`; required for
            3-D logits.

    Returns:
        A float32 scalar tensor; the teacher gets no gradient.
    """
    check_logits(student, teacher)
    axis = class_axis(student.shape, class_dim)
    # Classes last becomes a (rows, C) view, so (batch, queries, classes)
    # costs no copy. A class axis in the middle of a dense map is moved to
    # 1 and copied once here: every chunk reshapes the whole map, which on
    # that strided view would copy it once per chunk.
    student = class_layout(student, axis)
    teacher = class_layout(teacher.detach(), axis)
    if 1 < axis < student.dim() - 1:
        student, teacher = student.contiguous(), teacher.contiguous()
    if student.numel() == 0:
        return empty_loss(student)
    with torch.autocast(device_type=student.device.type, enabled=False):
        return _LeanDIST.apply(student, teacher, beta, gamma, tau, use_sigmoid,
                               chunk_rows)
