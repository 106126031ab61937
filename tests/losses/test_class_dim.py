"""The class axis is never guessed: (N, C) and (N, C, *spatial) are
implicit, 3-D logits name theirs with ``class_dim``, and every loss path
(lean DIST, plain DIST, KD, and a Distiller term built from a config)
reads it the same way."""
import math
import re

import numpy as np
import pytest
import torch

from distkd_mm.distillers.term import build_terms
from distkd_mm.losses import DISTLoss, KDLoss, dist_loss, lean_dist_loss

# Every path that reads the class axis on its own.
LOSSES = {
    'dist_lean': lambda **kw: DISTLoss(**kw),
    'dist_plain': lambda **kw: DISTLoss(memory_lean=False, **kw),
    'dist_sigmoid': lambda **kw: DISTLoss(use_sigmoid=True, **kw),
    'kd': lambda **kw: KDLoss(**kw),
}


def _np_pearson(u, v):
    uc, vc = u - u.mean(), v - v.mean()
    norms = math.sqrt((uc**2).sum()) * math.sqrt((vc**2).sum())
    return float((uc * vc).sum() / (norms + 1e-8))


def _np_probs(row, tau, use_sigmoid):
    z = np.asarray(row, dtype=np.float64) / tau
    if use_sigmoid:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z - z.max())
    return e / e.sum()


def _query_rows(x):
    """(batch, queries, classes) -> one float64 class vector per query,
    taken element by element (no reshape, no movedim)."""
    b, q, c = x.shape
    return np.array([[float(x[i, j, k]) for k in range(c)] for i in range(b)
                     for j in range(q)])


def _np_reference(name, student, teacher):
    """Float64 loops over the rows of (batch * queries, classes)."""
    s, t = _query_rows(student), _query_rows(teacher)
    if name == 'kd':
        tau = 4.0
        total = 0.0
        for i in range(len(s)):
            p, q = _np_probs(s[i], tau, False), _np_probs(t[i], tau, False)
            total += float((q * np.log(q / p)).sum())
        return tau**2 * total / len(s)
    use_sigmoid = name == 'dist_sigmoid'
    p = np.stack([_np_probs(r, 1.0, use_sigmoid) for r in s])
    q = np.stack([_np_probs(r, 1.0, use_sigmoid) for r in t])
    rows, cols = p.shape
    inter = 1 - sum(_np_pearson(p[i], q[i]) for i in range(rows)) / rows
    intra = 1 - sum(_np_pearson(p[:, j], q[:, j]) for j in range(cols)) / cols
    return inter + intra


def _pair(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen) * 3,
            torch.randn(shape, generator=gen) * 3)


@pytest.mark.parametrize('class_dim', [-1, 2])
@pytest.mark.parametrize('loss', list(LOSSES))
def test_queries_last_equal_the_loop_over_batch_times_queries_rows(
        loss, class_dim):
    # 3 images x 7 queries x 5 classes: read with dim 1 as the classes, the
    # loss would correlate 7-vectors over the queries instead.
    student, teacher = _pair((3, 7, 5))
    value = LOSSES[loss](class_dim=class_dim)(student, teacher)
    expected = _np_reference(loss, student.numpy(), teacher.numpy())
    assert value.item() == pytest.approx(expected, rel=1e-5)
    # And the same module on the rows reshaped by hand.
    by_hand = LOSSES[loss]()(student.reshape(21, 5), teacher.reshape(21, 5))
    assert value.item() == pytest.approx(by_hand.item(), rel=1e-6)


@pytest.mark.parametrize('use_sigmoid', [False, True])
def test_lean_gradient_equals_plain_on_queries_last(use_sigmoid):
    student, teacher = _pair((3, 7, 5), seed=1)
    lean_s = student.clone().requires_grad_()
    plain_s = student.clone().requires_grad_()
    # chunk_rows=4 does not divide the 21 rows: partial chunks count.
    lean = lean_dist_loss(
        lean_s, teacher, 0.5, 2.0, 2.0, use_sigmoid, 4, class_dim=-1)
    plain = dist_loss(plain_s, teacher, 0.5, 2.0, 2.0, use_sigmoid, -1)
    lean.backward()
    plain.backward()
    assert torch.allclose(lean, plain, rtol=1e-5, atol=1e-6)
    assert lean_s.grad.shape == (3, 7, 5)
    assert torch.allclose(lean_s.grad, plain_s.grad, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('shape', [(2, 100, 80), (4, 5, 6), (0, 100, 80)])
@pytest.mark.parametrize('loss', list(LOSSES))
def test_3d_logits_without_class_dim_fail_saying_what_to_set(loss, shape):
    # Empty inputs too: a batch without queries must not hide the mistake
    # until the first batch with some.
    student, teacher = torch.randn(shape), torch.randn(shape)
    with pytest.raises(ValueError) as info:
        LOSSES[loss]()(student, teacher)
    message = str(info.value)
    assert message.startswith('`class_dim` should be set for 3-D logits, '
                              f'but got shape {shape}')
    assert '`class_dim=-1`' in message and '(batch, queries, classes)' in \
        message
    assert '`class_dim=1`' in message and '(batch, classes, length)' in \
        message
    # Query-based detectors: why per-query distillation is wrong and what
    # to distil instead.
    assert 'not matched one to one' in message
    assert 'Hungarian' in message and "type='MimicLoss'" in message


@pytest.mark.parametrize('shape', [(8, 5), (2, 4, 3, 5), (2, 3, 4, 2, 3)])
@pytest.mark.parametrize('loss', list(LOSSES))
def test_class_dim_one_equals_the_default_layout(loss, shape):
    student, teacher = _pair(shape, seed=2)
    default = LOSSES[loss]()(student, teacher)
    named = LOSSES[loss](class_dim=1)(student, teacher)
    assert named.item() == pytest.approx(default.item(), rel=1e-6)


@pytest.mark.parametrize('class_dim', [-1, 3])
@pytest.mark.parametrize('loss', list(LOSSES))
def test_classes_last_dense_map_equals_it_permuted_to_channels_first(
        loss, class_dim):
    # (N, H, W, C), e.g. a head that permutes before its classifier.
    student, teacher = _pair((2, 3, 4, 5), seed=3)
    last = LOSSES[loss](class_dim=class_dim)(student, teacher)
    first = LOSSES[loss]()(student.permute(0, 3, 1, 2),
                           teacher.permute(0, 3, 1, 2))
    assert last.item() == pytest.approx(first.item(), rel=1e-6)
    # Without class_dim the same tensor is read as 3 classes at 4x5
    # positions: a different number, so the comparison above can fail.
    implicit = LOSSES[loss]()(student, teacher)
    assert abs(implicit.item() - last.item()) > 1e-3


@pytest.mark.parametrize('class_dim', [2, 3])
@pytest.mark.parametrize('use_sigmoid', [False, True])
def test_class_axis_in_the_middle_gives_equal_lean_and_plain_gradients(
        use_sigmoid, class_dim):
    # 4 classes on axis 2 or 3 of a 5-D map: the lean path moves the axis
    # (not a last-axis view).
    shape = [2, 3, 2, 3]
    shape.insert(class_dim, 4)
    student, teacher = _pair(tuple(shape), seed=4)
    moved = DISTLoss(use_sigmoid=use_sigmoid)(student.movedim(class_dim, 1),
                                              teacher.movedim(class_dim, 1))
    grads = []
    for memory_lean in (True, False):
        s = student.clone().requires_grad_()
        loss = DISTLoss(
            use_sigmoid=use_sigmoid,
            memory_lean=memory_lean,
            class_dim=class_dim)(s, teacher)
        loss.backward()
        assert loss.item() == pytest.approx(moved.item(), rel=1e-6)
        grads.append(s.grad)
    assert torch.allclose(grads[0], grads[1], rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('shape', [(2, 0, 80), (0, 7, 5), (2, 7, 0)])
@pytest.mark.parametrize('memory_lean', [True, False])
def test_empty_queries_give_a_zero_loss_in_the_graph(memory_lean, shape):
    student = torch.randn(shape, requires_grad=True)
    loss = DISTLoss(
        memory_lean=memory_lean, class_dim=-1)(student, torch.randn(shape))
    assert loss.item() == 0. and loss.requires_grad
    loss.backward()
    assert student.grad.shape == shape


@pytest.mark.parametrize('cls', [DISTLoss, KDLoss])
@pytest.mark.parametrize('class_dim,error,match', [
    ('-1', TypeError,
     "`class_dim` should be None or an int (the class axis), but got '-1' "
     'of type str'),
    (1.0, TypeError, '`class_dim` should be None or an int (the class axis), '
     'but got 1.0 of type float'),
    (True, TypeError, '`class_dim` should be None or an int (the class '
     'axis), but got True of type bool'),
    (0, ValueError, '`class_dim` should not be 0, the batch axis'),
])
def test_bad_class_dim_is_refused_at_construction(cls, class_dim, error,
                                                  match):
    with pytest.raises(error, match=re.escape(match)):
        cls(class_dim=class_dim)


@pytest.mark.parametrize('loss', list(LOSSES))
@pytest.mark.parametrize('class_dim,shape,match', [
    (3, (2, 7, 5), '`class_dim` should be in [-3, 2] for logits of shape '
     '(2, 7, 5), but got 3.'),
    (-4, (2, 7, 5), '`class_dim` should be in [-3, 2] for logits of shape '
     '(2, 7, 5), but got -4.'),
    (2, (8, 5), '`class_dim` should be in [-2, 1] for logits of shape '
     '(8, 5), but got 2.'),
    (-3, (2, 7, 5), '`class_dim` should not name the batch axis, but got '
     '`class_dim=-3` for logits of shape (2, 7, 5)'),
])
def test_class_dim_outside_the_logits_is_refused_at_the_first_call(
        loss, class_dim, shape, match):
    student, teacher = torch.randn(shape), torch.randn(shape)
    with pytest.raises(ValueError, match=re.escape(match)):
        LOSSES[loss](class_dim=class_dim)(student, teacher)


@pytest.mark.parametrize('fn', [dist_loss, lean_dist_loss])
def test_functional_forms_check_class_dim_too(fn):
    student, teacher = _pair((2, 7, 5))
    with pytest.raises(ValueError, match='`class_dim` should be set'):
        fn(student, teacher)
    with pytest.raises(TypeError, match='`class_dim` should be None or an'):
        fn(student, teacher, class_dim='last')


def _terms(**loss):
    return build_terms(
        dict(
            loss_dist=dict(
                student='decoder',
                teacher='decoder',
                loss=dict(type='DISTLoss', **loss))))['loss_dist']


def test_distill_term_reads_class_dim_from_the_loss_config():
    # A tap run once per decoder layer: calls pair in order and sum.
    calls = [_pair((2, 7, 5), seed=seed) for seed in (5, 6)]
    term = _terms(class_dim=-1)
    total = term([s for s, _ in calls], [t for _, t in calls])
    by_hand = sum(DISTLoss()(s.reshape(14, 5), t.reshape(14, 5))
                  for s, t in calls)
    assert total.item() == pytest.approx(by_hand.item(), rel=1e-6)
    with pytest.raises(ValueError, match='`class_dim` should be set for 3-D'):
        _terms()([s for s, _ in calls], [t for _, t in calls])
