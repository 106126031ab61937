"""DIST on mmseg head logits: pixels as rows, aux weight, ignore pixels,
resizing, class-count checks, and arbitrary EncoderDecoder pairs."""
import pytest
import torch
from torch.nn import functional as F

from distkd_mm.losses import DISTLoss


def pearson(x: torch.Tensor, y: torch.Tensor, dim: int) -> torch.Tensor:
    x = x - x.mean(dim, keepdim=True)
    y = y - y.mean(dim, keepdim=True)
    return (x * y).sum(dim) / (x.norm(dim=dim) * y.norm(dim=dim) + 1e-8)


def dist_on_rows(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Reference DIST (tau 1, beta = gamma = 1) on a rows x classes matrix,
    in float64."""
    p, q = s.double().softmax(1), t.double().softmax(1)
    return (1 - pearson(p, q, 1).mean()) + (1 - pearson(p, q, 0).mean())


def official_flatten(x: torch.Tensor) -> torch.Tensor:
    """The official segmentation code's flattening: swap axes 1 and 3,
    then reshape to (N*W*H, C) (a different row order than ours)."""
    return x.transpose(1, 3).reshape(-1, x.size(1))


def batch_axis_dist(s: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The known mistake on dense maps: softmax over C, but the intra-class
    relation is taken across the N images only, separately per pixel,
    instead of across all N*H*W pixels."""
    p, q = s.double().softmax(1), t.double().softmax(1)
    inter = 1 - pearson(p, q, 1).mean()
    intra = 1 - pearson(p, q, 0).mean()
    return inter + intra


def capture(module: torch.nn.Module, store: list):
    return module.register_forward_hook(
        lambda mod, args, out: store.append(out))


def test_dense_dist_on_seg_logits_treats_every_pixel_as_a_row():
    # Decode-head-shaped logits: 2 crops of 64x128 at 1/8 -> 8x16, 19
    # classes, a confident teacher and a noisy student.
    torch.manual_seed(0)
    teacher = torch.randn(2, 19, 8, 16) * 4
    student = teacher + torch.randn(2, 19, 8, 16) * 3
    loss = DISTLoss()(student, teacher)
    flat = dist_on_rows(official_flatten(student), official_flatten(teacher))
    assert loss.item() == pytest.approx(flat.item(), rel=1e-5)
    wrong = batch_axis_dist(student, teacher)
    # With 2 images the per-pixel batch correlations are +-1: a very
    # different value, not a rounding difference.
    assert abs(loss.item() - wrong.item()) > 0.1


def test_loss_keys_and_aux_term_is_0_4_dist_of_aux_logits(
        build_seg_distiller, seg_batch):
    model = build_seg_distiller()
    inputs, samples = seg_batch()
    recorded = {k: [] for k in ('s', 't', 's_aux', 't_aux')}
    handles = [
        capture(model.student.decode_head.conv_seg, recorded['s']),
        capture(model.teacher.decode_head.conv_seg, recorded['t']),
        capture(model.student.auxiliary_head.conv_seg, recorded['s_aux']),
        capture(model.teacher.auxiliary_head.conv_seg, recorded['t_aux']),
    ]
    losses = model(inputs, samples, mode='loss')
    for handle in handles:
        handle.remove()
    # The student's own keys are unchanged; one key per DIST term.
    assert {'decode.loss_ce', 'aux.loss_ce', 'loss_dist',
            'loss_dist_aux'} <= set(losses)
    s, t = recorded['s'][0], recorded['t'][0]
    s_aux, t_aux = recorded['s_aux'][0], recorded['t_aux'][0]
    # At the heads' own resolution (1/8 of 32x64).
    assert s.shape == t.shape == s_aux.shape == (2, 19, 4, 8)
    assert losses['loss_dist'].item() == pytest.approx(
        dist_on_rows(official_flatten(s), official_flatten(t)).item(),
        rel=1e-5)
    aux = dist_on_rows(official_flatten(s_aux), official_flatten(t_aux))
    assert losses['loss_dist_aux'].item() == pytest.approx(
        0.4 * aux.item(), rel=1e-5)
    # Gradients reach the student through both terms, never the teacher.
    (losses['loss_dist'] + losses['loss_dist_aux']).backward()
    assert model.student.decode_head.conv_seg.weight.grad.abs().sum() > 0
    assert model.student.auxiliary_head.conv_seg.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_ignore_index_pixels_count_like_any_other(build_seg_distiller,
                                                  seg_batch):
    # As in the seed, DIST never reads the labels: a label map that is
    # entirely 255 (ignore) gives the same DIST terms as real labels, while
    # the student's cross-entropy does change.
    model = build_seg_distiller()
    model.student.eval()  # no dropout / batch statistics between the runs
    inputs, labelled = seg_batch()
    _, ignored = seg_batch(ignore_all=True)
    with torch.no_grad():
        real = model(inputs, labelled, mode='loss')
        blank = model(inputs, ignored, mode='loss')
    for key in ('loss_dist', 'loss_dist_aux'):
        assert torch.equal(real[key], blank[key]), key
    assert real['decode.loss_ce'] > 0
    assert blank['decode.loss_ce'] == 0


def test_teacher_maps_are_resized_to_the_student(build_seg_distiller,
                                                 seg_batch):
    # An output-stride-16 teacher gives 1/16 maps; the teacher's logits are
    # resized bilinearly (align_corners=False) to the student's 1/8 size,
    # the student's map is left alone.
    model = build_seg_distiller(teacher=dict(width=16, output_stride=16))
    inputs, samples = seg_batch()
    s_out, t_out = [], []
    h1 = capture(model.student.decode_head.conv_seg, s_out)
    h2 = capture(model.teacher.decode_head.conv_seg, t_out)
    losses = model(inputs, samples, mode='loss')
    h1.remove()
    h2.remove()
    s, t = s_out[0], t_out[0]
    assert s.shape[2:] == (4, 8) and t.shape[2:] == (2, 4)
    resized = F.interpolate(
        t, size=(4, 8), mode='bilinear', align_corners=False)
    assert losses['loss_dist'].item() == pytest.approx(
        DISTLoss()(s, resized).item(), rel=1e-6)


def test_without_resize_different_sizes_fail(build_seg_distiller, seg_batch,
                                             seg_taps):
    model = build_seg_distiller(
        teacher=dict(width=16, output_stride=16),
        distill_losses=seg_taps(resize_teacher=False))
    with pytest.raises(RuntimeError, match=r'\(2, 19, 2, 4\)'):
        model(*seg_batch(), mode='loss')


def test_different_class_count_fails_at_build_naming_both_counts(
        build_seg_distiller):
    # Resizing fixes the spatial size only; 10 teacher classes against 19
    # student classes cannot be paired pixel by pixel: refused when built.
    with pytest.raises(ValueError) as info:
        build_seg_distiller(teacher=dict(width=16, num_classes=10))
    message = str(info.value)
    assert "student's `decode_head` has num_classes=19" in message
    assert "teacher's `decode_head` has num_classes=10" in message


# A different decode head (FCN) and output stride 16 on the teacher.
FCN_OS16 = dict(decode='FCNHead', width=16, output_stride=16)
# A smaller PSP head than the student's, and two auxiliary heads (a
# ModuleList), distilling from the second.
SMALL_PSP_TWO_AUX = dict(decode='PSPHead', width=16, channels=8, aux=2)
PAIRS = [
    (dict(decode='ASPPHead'), FCN_OS16, 'auxiliary_head.conv_seg'),
    (dict(decode='PSPHead'), SMALL_PSP_TWO_AUX, 'auxiliary_head.1.conv_seg'),
    # A student without auxiliary head distils the decode head only.
    (dict(decode='ASPPHead', aux=None), dict(width=16), None),
]


@pytest.mark.parametrize('student,teacher,aux_tap', PAIRS)
def test_any_encoder_decoder_pair_by_naming_taps(build_seg_distiller,
                                                 seg_batch, seg_taps, student,
                                                 teacher, aux_tap):
    taps = seg_taps(aux_teacher=aux_tap or '')
    if aux_tap is None:
        del taps['loss_dist_aux']
    model = build_seg_distiller(
        student=student, teacher=teacher, distill_losses=taps)
    losses = model(*seg_batch(), mode='loss')
    assert set(taps) <= set(losses)
    total = sum(v for k, v in losses.items() if 'loss' in k)
    assert torch.isfinite(total)
    total.backward()
    assert model.student.decode_head.conv_seg.weight.grad.abs().sum() > 0
    assert not model.teacher.training
