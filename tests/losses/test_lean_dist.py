"""The memory-lean DIST equals the plain autograd formula."""
import pytest
import torch

from distkd_mm.losses import DISTLoss
from distkd_mm.losses.dist_loss import dist_loss
from distkd_mm.losses.lean_dist import lean_dist_loss


@pytest.mark.parametrize('shape', [(8, 10), (2, 9, 6, 5), (3, 4, 2, 3, 2)])
@pytest.mark.parametrize('use_sigmoid', [False, True])
@pytest.mark.parametrize('tau', [1.0, 4.0])
def test_lean_value_and_gradient_equal_the_plain_formula(
        shape, use_sigmoid, tau):
    g = torch.Generator().manual_seed(hash((shape, use_sigmoid, tau)) % 997)
    s = torch.randn(shape, generator=g) * 3
    t = torch.randn(shape, generator=g) * 3
    plain_s, lean_s = s.clone().requires_grad_(), s.clone().requires_grad_()
    plain = dist_loss(plain_s, t, 0.5, 2.0, tau, use_sigmoid)
    # A chunk size that does not divide the rows: partial chunks count.
    lean = lean_dist_loss(lean_s, t, 0.5, 2.0, tau, use_sigmoid, 7)
    (3 * plain).backward()
    (3 * lean).backward()
    assert torch.allclose(lean, plain, rtol=1e-5, atol=1e-5)
    assert torch.allclose(lean_s.grad, plain_s.grad, rtol=1e-4, atol=1e-7)


def test_lean_handles_constant_rows_and_columns_without_nan():
    # A single row: every column has one value, its correlation is 0/eps.
    s = torch.randn(1, 6, requires_grad=True)
    t = torch.randn(1, 6)
    lean = lean_dist_loss(s, t)
    lean.backward()
    assert torch.isfinite(lean) and torch.isfinite(s.grad).all()
    assert torch.allclose(lean, dist_loss(s.detach(), t))


def test_lean_gradient_matches_for_half_precision_and_channels_last():
    s = torch.randn(2, 8, 5, 6).to(memory_format=torch.channels_last)
    t = torch.randn(2, 8, 5, 6)
    half = s.to(torch.bfloat16).requires_grad_()
    ref = s.to(torch.bfloat16).float().requires_grad_()
    lean_dist_loss(half, t.to(torch.bfloat16)).backward()
    dist_loss(ref, t.to(torch.bfloat16).float()).backward()
    assert half.grad.dtype == torch.bfloat16
    assert torch.allclose(half.grad.float(), ref.grad, rtol=2e-2, atol=1e-4)


def test_dist_loss_module_uses_the_lean_path_by_default():
    s = torch.randn(4, 5, 3, 3, requires_grad=True)
    t = torch.randn(4, 5, 3, 3)
    loss = DISTLoss(loss_weight=2.0)(s, t)
    lean_node = loss.grad_fn.next_functions[0][0]
    assert type(lean_node).__name__ == '_LeanDISTBackward'
    plain = DISTLoss(loss_weight=2.0, memory_lean=False)(s, t)
    assert torch.allclose(loss, plain, atol=1e-6)
