"""FPNAdapter (per-level 1x1 convs) and MimicLoss (feature MSE)."""
import warnings

import pytest
import torch
from det_helpers import build_in_mmdet, det_samples, tiny_detector
from torch.nn import functional as F

from distkd_mm.distillers.connectors import FPNAdapter
from distkd_mm.losses.mimic_loss import MimicLoss


def test_adapter_is_one_1x1_conv_with_bias_per_level():
    adapter = FPNAdapter(256, 256, 5)
    assert len(adapter.convs) == 5
    for conv in adapter.convs:
        assert conv.kernel_size == (1, 1)
        assert conv.weight.shape == (256, 256, 1, 1)
        assert conv.bias is not None
    # Independent per level, not one shared conv.
    assert len({id(c.weight) for c in adapter.convs}) == 5


def test_adapter_maps_each_level_with_its_own_conv():
    torch.manual_seed(0)
    adapter = FPNAdapter(4, 6, 2)
    feats = (torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4))
    outs = adapter(feats)
    for conv, x, out in zip(adapter.convs, feats, outs):
        torch.testing.assert_close(out, conv(x))
        assert out.shape == (x.shape[0], 6, *x.shape[2:])


def test_adapter_rejects_another_number_of_levels():
    adapter = FPNAdapter(4, 4, 5)
    with pytest.raises(ValueError, match='tuple of 5 FPN maps.*tuple of 4'):
        adapter(tuple(torch.zeros(1, 4, 2, 2) for _ in range(4)))
    with pytest.raises(ValueError, match='but got Tensor'):
        adapter(torch.zeros(1, 4, 2, 2))


@pytest.mark.parametrize('kwargs', [
    dict(in_channels=0),
    dict(out_channels=2.5),
    dict(num_levels=True),
])
def test_adapter_rejects_bad_sizes(kwargs):
    with pytest.raises(ValueError, match='should be a positive int'):
        FPNAdapter(**kwargs)


def test_mimic_loss_is_weighted_mean_squared_error():
    torch.manual_seed(0)
    s = torch.randn(2, 3, 5, 5, requires_grad=True)
    t = torch.randn(2, 3, 5, 5)
    loss = MimicLoss(loss_weight=0.5)(s, t)
    torch.testing.assert_close(loss, 0.5 * F.mse_loss(s, t))
    loss.backward()
    assert s.grad is not None


def test_mimic_loss_detaches_the_teacher():
    t = torch.randn(1, 2, 3, 3, requires_grad=True)
    s = torch.randn(1, 2, 3, 3, requires_grad=True)
    MimicLoss()(s, t * 2).backward()
    assert t.grad is None


def test_mimic_loss_shape_mismatch_names_both_shapes():
    with pytest.raises(ValueError, match=r'\(1, 2, 4, 4\).*\(1, 3, 4, 4\)'):
        MimicLoss()(torch.zeros(1, 2, 4, 4), torch.zeros(1, 3, 4, 4))


@pytest.mark.parametrize('weight, error', [(-1.0, ValueError),
                                           ('1', TypeError)])
def test_mimic_loss_rejects_bad_weight(weight, error):
    with pytest.raises(error, match='`loss_weight`'):
        MimicLoss(loss_weight=weight)


def test_mimic_term_equals_summed_level_mse_and_trains_the_adapter():
    recipe = 'retinanet/retinanet_r50_fpn_1x_coco.py'
    cfg = dict(
        type='Distiller',
        student=tiny_detector(recipe),
        teacher=tiny_detector(recipe, width=16),
        distill_losses=dict(
            loss_mimic=dict(
                student='neck',
                teacher='neck',
                connector=dict(
                    type='FPNAdapter',
                    in_channels=16,
                    out_channels=16,
                    num_levels=5),
                loss=dict(type='MimicLoss'))))
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', UserWarning)  # no teacher_ckpt
        model = build_in_mmdet(cfg).train()
    batch = model.data_preprocessor(det_samples(), True)
    inputs = batch['inputs']
    losses = model.loss(inputs, batch['data_samples'])
    with torch.no_grad():
        s_feats = model.terms['loss_mimic'].connector(
            model.student.extract_feat(inputs))
        t_feats = model.teacher.extract_feat(inputs)
    expected = sum(F.mse_loss(s, t) for s, t in zip(s_feats, t_feats))
    torch.testing.assert_close(losses['loss_mimic'].detach(), expected)
    losses['loss_mimic'].backward()
    for conv in model.terms['loss_mimic'].connector.convs:
        assert conv.weight.grad.abs().sum() > 0
        assert conv.bias.grad.abs().sum() > 0
    # The connector is a student-side module: saved, unlike the teacher.
    keys = model.state_dict().keys()
    assert 'terms.loss_mimic.connector.convs.4.weight' in keys
