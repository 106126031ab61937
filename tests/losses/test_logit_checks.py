"""What every logit loss shares (the checks of ``losses/utils.py``): its
arguments and inputs are validated with the value in the message, the
teacher gets no gradient, and low-precision inputs give an fp32 loss."""
import re

import pytest
import torch

from distkd_mm.losses import DISTLoss, KDLoss

# The lean and the plain DIST path, and KD: each validates on its own.
LOSSES = {
    'dist_lean': lambda **kw: DISTLoss(**kw),
    'dist_plain': lambda **kw: DISTLoss(memory_lean=False, **kw),
    'dist_sigmoid': lambda **kw: DISTLoss(use_sigmoid=True, **kw),
    'kd': lambda **kw: KDLoss(**kw),
}


@pytest.mark.parametrize('loss', ['dist_lean', 'dist_plain', 'kd'])
def test_mismatched_shapes_name_both_shapes(loss):
    with pytest.raises(
            ValueError,
            match=re.escape('student logits of shape (4, 10) and teacher '
                            'logits of shape (4, 11)')):
        LOSSES[loss]()(torch.randn(4, 10), torch.randn(4, 11))


@pytest.mark.parametrize('loss', ['dist_lean', 'dist_plain', 'kd'])
def test_one_dim_input_is_rejected(loss):
    with pytest.raises(ValueError, match=r'at least 2 dims.*\(10,\)'):
        LOSSES[loss]()(torch.randn(10), torch.randn(10))


@pytest.mark.parametrize('loss', list(LOSSES))
def test_gradient_reaches_the_student_only(loss):
    gen = torch.Generator().manual_seed(4)
    student = torch.randn(5, 6, generator=gen, requires_grad=True)
    teacher = torch.randn(5, 6, generator=gen, requires_grad=True)
    LOSSES[loss]()(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad.abs().sum().item() > 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
@pytest.mark.parametrize('loss', list(LOSSES))
def test_low_precision_inputs_give_an_fp32_result(loss, dtype):
    gen = torch.Generator().manual_seed(6)
    student = torch.randn(6, 8, 2, 2, generator=gen).to(dtype)
    teacher = torch.randn(6, 8, 2, 2, generator=gen).to(dtype)
    loss_fn = LOSSES[loss](tau=4.0)
    result = loss_fn(student, teacher)
    # Same (already rounded) values in fp32: only the math precision differs.
    reference = loss_fn(student.float(), teacher.float())
    assert result.dtype == torch.float32
    assert result.item() == pytest.approx(reference.item(), abs=1e-3)


@pytest.mark.parametrize('cls,kwargs,error,match', [
    (DISTLoss, dict(tau=0), ValueError,
     r'`tau` should be a positive number.*got 0'),
    (DISTLoss, dict(tau=-1.5), ValueError, r'`tau` should be .*got -1\.5'),
    (DISTLoss, dict(tau='4'), TypeError,
     r"`tau` should be a real number.*'4'"),
    (DISTLoss, dict(beta=-1), ValueError, r'`beta` should be .*got -1'),
    (DISTLoss, dict(gamma=-0.5), ValueError, r'`gamma` should be .*got -0\.5'),
    (DISTLoss, dict(loss_weight=-2.0), ValueError,
     r'`loss_weight` should .*got -2'),
    (DISTLoss, dict(use_sigmoid=1), TypeError,
     r'`use_sigmoid` should be a bool.*1'),
    (DISTLoss, dict(tau=float('inf')), ValueError,
     r'`tau` should be a finite.*inf'),
    (DISTLoss, dict(beta=float('nan')), ValueError,
     r'`beta` should be a finite.*nan'),
    (DISTLoss, dict(gamma=float('inf')), ValueError,
     r'`gamma` should be a finite'),
    (DISTLoss, dict(loss_weight=float('inf')), ValueError,
     r'`loss_weight` should be a finite number, but got inf'),
    (DISTLoss, dict(memory_lean='yes'), TypeError,
     r"`memory_lean` should be a bool, but got 'yes'"),
    (KDLoss, dict(tau=0.0), ValueError,
     r'`tau` should be a positive number.*0\.0'),
    (KDLoss, dict(tau=None), TypeError,
     r'`tau` should be a real number.*None'),
    (KDLoss, dict(loss_weight=-1), ValueError,
     r'`loss_weight` should .*got -1'),
])
def test_invalid_arguments_raise_with_the_value(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)
