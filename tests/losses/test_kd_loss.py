"""KD's value against an independent float64 loop."""
import math

import numpy as np
import pytest
import torch

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
