"""DIST's value against an independent float64 loop, its invariances, and
its dense, empty and low-precision inputs."""
import numpy as np
import pytest
import torch

from distkd_mm.losses import DISTLoss, dist_loss


def _np_probs(logits, tau, use_sigmoid):
    z = logits / tau
    if use_sigmoid:
        return 1.0 / (1.0 + np.exp(-z))
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _np_pearson(u, v):
    uc = u - u.mean()
    vc = v - v.mean()
    norms = np.sqrt((uc**2).sum()) * np.sqrt((vc**2).sum())
    return float((uc * vc).sum() / (norms + 1e-8))


def _np_dist(student, teacher, beta, gamma, tau, use_sigmoid, loss_weight):
    """Independent float64 re-derivation with explicit loops."""
    s = np.asarray(student, dtype=np.float64)
    t = np.asarray(teacher, dtype=np.float64)
    num_classes = s.shape[1]
    if s.ndim > 2:
        s = np.moveaxis(s, 1, -1).reshape(-1, num_classes)
        t = np.moveaxis(t, 1, -1).reshape(-1, num_classes)
    p = _np_probs(s, tau, use_sigmoid)
    q = _np_probs(t, tau, use_sigmoid)
    rows, cols = p.shape
    inter = 1 - sum(_np_pearson(p[i, :], q[i, :]) for i in range(rows)) / rows
    intra = 1 - sum(_np_pearson(p[:, j], q[:, j]) for j in range(cols)) / cols
    return loss_weight * tau**2 * (beta * inter + gamma * intra)


@pytest.mark.parametrize('shape', [(8, 5), (2, 4, 3, 5)])
@pytest.mark.parametrize('use_sigmoid', [False, True])
@pytest.mark.parametrize('tau', [1.0, 4.0])
@pytest.mark.parametrize('beta,gamma,loss_weight', [(1.0, 1.0, 1.0),
                                                    (0.5, 2.0, 3.0)])
def test_dist_matches_numpy_loop_reference(shape, use_sigmoid, tau, beta,
                                           gamma, loss_weight):
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(shape, generator=gen) * 3
    teacher = torch.randn(shape, generator=gen) * 3
    loss_fn = DISTLoss(
        beta=beta,
        gamma=gamma,
        tau=tau,
        loss_weight=loss_weight,
        use_sigmoid=use_sigmoid)
    loss = loss_fn(student, teacher)
    expected = _np_dist(student.numpy(), teacher.numpy(), beta, gamma, tau,
                        use_sigmoid, loss_weight)
    assert loss.shape == ()
    # Relative: tau**2 * loss_weight scales the value up to ~100, and the
    # fp32 computation is exact to ~1e-7 relative.
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_dist_hand_worked_two_by_two():
    # Logits are log-probabilities, so softmax gives back exactly
    #   P = [[.9, .1], [.2, .8]]   (student)
    #   Q = [[.6, .4], [.7, .3]]   (teacher).
    # With 2 entries the centred vector is +-(a - b) / 2, so every Pearson
    # correlation is the sign of (a_s - b_s) * (a_t - b_t):
    #   rows:    (.9-.1)(.6-.4) > 0 -> +1,  (.2-.8)(.7-.3) < 0 -> -1
    #            inter = 1 - (1 - 1) / 2 = 1
    #   columns: (.9-.2)(.6-.7) < 0 -> -1,  (.1-.8)(.4-.3) < 0 -> -1
    #            intra = 1 - (-1 - 1) / 2 = 2
    # loss = 2 * (0.5 * 1 + 1.5 * 2) = 7 (eps changes it by ~1e-7).
    student = torch.tensor([[.9, .1], [.2, .8]]).log()
    teacher = torch.tensor([[.6, .4], [.7, .3]]).log()
    loss = DISTLoss(beta=0.5, gamma=1.5, loss_weight=2.0)(student, teacher)
    assert loss.item() == pytest.approx(7.0, abs=1e-5)


def test_dist_softmax_is_invariant_to_per_row_logit_shift():
    gen = torch.Generator().manual_seed(1)
    student = torch.randn(6, 7, generator=gen)
    teacher = torch.randn(6, 7, generator=gen)
    shift = torch.randn(6, 1, generator=gen) * 10
    loss_fn = DISTLoss(tau=2.0)
    base = loss_fn(student, teacher)
    shifted = loss_fn(student + shift, teacher)
    assert shifted.item() == pytest.approx(base.item(), abs=1e-6)
    # Sanity: the loss does depend on the student at all.
    assert abs(loss_fn(student * 3, teacher).item() - base.item()) > 1e-3


@pytest.mark.parametrize('use_sigmoid', [False, True])
def test_dense_input_equals_positions_as_rows(use_sigmoid):
    gen = torch.Generator().manual_seed(2)
    n, c, h, w = 2, 5, 3, 4
    student = torch.randn(n, c, h, w, generator=gen) * 2
    teacher = torch.randn(n, c, h, w, generator=gen) * 2
    loss_fn = DISTLoss(use_sigmoid=use_sigmoid)
    dense = loss_fn(student, teacher)

    def rows(x):
        return x.permute(0, 2, 3, 1).reshape(-1, c)

    flat = loss_fn(rows(student), rows(teacher))
    assert dense.item() == pytest.approx(flat.item(), abs=1e-6)

    # Wrong treatments must give a different number: each image as one
    # long (C*H*W) vector, or N as the batch axis with spatial dims averaged.
    per_image = loss_fn(student.reshape(n, -1), teacher.reshape(n, -1))
    pooled = loss_fn(student.mean((2, 3)), teacher.mean((2, 3)))
    assert abs(dense.item() - per_image.item()) > 1e-2
    assert abs(dense.item() - pooled.item()) > 1e-2


@pytest.mark.parametrize('use_sigmoid', [False, True])
@pytest.mark.parametrize('shape', [(8, 10), (2, 6, 4, 4)])
def test_dist_is_near_zero_on_identical_inputs(use_sigmoid, shape):
    logits = torch.randn(shape, generator=torch.Generator().manual_seed(3))
    loss = DISTLoss(use_sigmoid=use_sigmoid, tau=4.0)(logits, logits.clone())
    assert 0 <= loss.item() < 1e-4


def test_single_row_has_finite_loss_and_grad_in_fp16():
    # One row: every column is constant, so the intra correlation is
    # 0 / (0 + eps). In fp16 eps underflows to 0 and gives NaN; the loss must
    # run in fp32 (intra = 1) and the norm's gradient at zero stay finite.
    gen = torch.Generator().manual_seed(5)
    student = torch.randn(1, 4, generator=gen).half().requires_grad_()
    teacher = torch.randn(1, 4, generator=gen).half()
    loss = DISTLoss()(student, teacher)
    loss.backward()
    expected = _np_dist(student.detach().float().numpy(),
                        teacher.float().numpy(), 1, 1, 1, False, 1)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    assert torch.isfinite(student.grad).all()


def test_autocast_bf16_gives_fp32_result():
    gen = torch.Generator().manual_seed(7)
    features = torch.randn(16, 12, generator=gen)
    head = torch.nn.Linear(12, 10)
    teacher = torch.randn(16, 10, generator=gen)
    loss_fn = DISTLoss(tau=2.0)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        student = head(features)
        assert student.dtype == torch.bfloat16
        loss = loss_fn(student, teacher)
    reference = loss_fn(student.float(), teacher)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), abs=1e-3)
    loss.backward()
    assert head.weight.grad is not None


def test_functional_form_equals_module_without_weight():
    gen = torch.Generator().manual_seed(8)
    student = torch.randn(4, 6, generator=gen)
    teacher = torch.randn(4, 6, generator=gen)
    module = DISTLoss(beta=2.0, gamma=0.5, tau=3.0, loss_weight=4.0)
    functional = dist_loss(student, teacher, 2.0, 0.5, 3.0, False)
    assert module(student, teacher).item() == pytest.approx(
        4.0 * functional.item(), rel=1e-6)


@pytest.mark.parametrize('memory_lean', [True, False])
@pytest.mark.parametrize('shape', [(0, 10), (2, 5, 0, 4), (0, 5, 3, 3)])
def test_empty_input_gives_zero_loss_in_the_graph(memory_lean, shape):
    # An image without RoIs, or a batch without positions: no NaN, and the
    # student still gets a (zero) gradient, so DDP sees its parameters.
    student = torch.randn(shape, requires_grad=True)
    loss = DISTLoss(
        loss_weight=2.0, memory_lean=memory_lean)(student, torch.randn(shape))
    assert loss.dtype == torch.float32 and loss.item() == 0.
    assert loss.requires_grad
    loss.backward()
    assert student.grad is not None and student.grad.shape == student.shape
