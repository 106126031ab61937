import math
import re

import numpy as np
import pytest
import torch
from mmengine.registry import MODELS

from distkd_mm.losses import KDLoss


def _np_kd(student, teacher, tau, loss_weight):
    """Independent float64 re-derivation with explicit loops."""
    s = np.asarray(student, dtype=np.float64)
    t = np.asarray(teacher, dtype=np.float64)
    num_classes = s.shape[1]
    if s.ndim > 2:
        s = np.moveaxis(s, 1, -1).reshape(-1, num_classes)
        t = np.moveaxis(t, 1, -1).reshape(-1, num_classes)
    total = 0.0
    for i in range(s.shape[0]):
        ps = [math.exp(v / tau) for v in s[i]]
        pt = [math.exp(v / tau) for v in t[i]]
        zs, zt = sum(ps), sum(pt)
        for c in range(num_classes):
            p, q = ps[c] / zs, pt[c] / zt
            total += q * math.log(q / p)
    return loss_weight * tau**2 * total / s.shape[0]


@pytest.mark.parametrize('shape', [(8, 5), (2, 4, 3, 5)])
@pytest.mark.parametrize('tau,loss_weight', [(1.0, 1.0), (4.0, 0.5)])
def test_kd_matches_numpy_loop_reference(shape, tau, loss_weight):
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(shape, generator=gen) * 3
    teacher = torch.randn(shape, generator=gen) * 3
    loss = KDLoss(tau=tau, loss_weight=loss_weight)(student, teacher)
    expected = _np_kd(student.numpy(), teacher.numpy(), tau, loss_weight)
    assert loss.shape == ()
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_kd_is_zero_on_identical_logits():
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))
    loss = KDLoss()(logits, logits.clone())
    assert abs(loss.item()) < 1e-6


def test_kd_gradient_reaches_student_only():
    gen = torch.Generator().manual_seed(2)
    student = torch.randn(4, 7, generator=gen, requires_grad=True)
    teacher = torch.randn(4, 7, generator=gen, requires_grad=True)
    KDLoss()(student, teacher).backward()
    assert teacher.grad is None
    assert student.grad.abs().sum().item() > 0


@pytest.mark.parametrize('dtype', [torch.float16, torch.bfloat16])
def test_kd_low_precision_inputs_give_fp32_result(dtype):
    gen = torch.Generator().manual_seed(3)
    student = torch.randn(5, 9, generator=gen).to(dtype)
    teacher = torch.randn(5, 9, generator=gen).to(dtype)
    loss_fn = KDLoss()
    loss = loss_fn(student, teacher)
    reference = loss_fn(student.float(), teacher.float())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), abs=1e-3)


def test_kd_builds_from_root_registry():
    loss_fn = MODELS.build(dict(type='KDLoss'))
    assert isinstance(loss_fn, KDLoss)
    assert (loss_fn.tau, loss_fn.loss_weight) == (4.0, 1.0)


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(tau=0.0), ValueError, r'`tau` should be a positive number.*0\.0'),
    (dict(tau=None), TypeError, r'`tau` should be a real number.*None'),
    (dict(loss_weight=-1), ValueError, r'`loss_weight` should .*got -1'),
])
def test_kd_invalid_arguments_raise_with_value(kwargs, error, match):
    with pytest.raises(error, match=match):
        KDLoss(**kwargs)


def test_kd_mismatched_shapes_name_both_shapes():
    with pytest.raises(
            ValueError,
            match=re.escape('student logits of shape (2, 3) and teacher '
                            'logits of shape (2, 4)')):
        KDLoss()(torch.randn(2, 3), torch.randn(2, 4))
