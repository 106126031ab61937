"""Recorder taps: a ModuleList records its members; inputs are recorded
before the module runs; no hook outlives the scope; suggestions for a
mistyped tap never name a loss module."""
import pytest
import torch
from distkd_testing import tiny_distiller
from mmengine.registry import MODELS
from torch import nn

from distkd_mm.distillers.recorder import Recorder


class PerLevel(nn.Module):
    """RTMDet/YOLOX-style: one conv per level in a ModuleList."""

    def __init__(self) -> None:
        super().__init__()
        self.cls = nn.ModuleList(nn.Conv2d(2, 3, 1) for _ in range(3))

    def forward(self, feats):
        return [conv(x) for conv, x in zip(self.cls, feats)]


def test_a_modulelist_tap_records_each_members_call_in_order():
    model = PerLevel()
    feats = [torch.randn(1, 2, s, s) for s in (8, 4, 2)]
    with Recorder(model, ['cls'], 'student') as outputs:
        model(feats)
    assert [o.shape[-1] for o in outputs['cls']] == [8, 4, 2]


def test_a_mistyped_tap_is_never_told_to_tap_a_loss_module():
    cfg = tiny_distiller()
    cfg['distill_losses']['loss_dist']['student'] = 'head.loss'
    with pytest.raises(ValueError) as info:
        MODELS.build(cfg)
    assert 'loss_module' not in str(info.value)


class Scale(nn.Module):

    def forward(self, x, factor=1.0):
        x.mul_(factor)  # in place: only a record taken before sees x
        return x


def test_an_input_tap_records_what_the_reader_takes_before_the_call():
    model = nn.Sequential(Scale())

    def first_and_factor(module, args, kwargs):
        return args[0].clone(), kwargs.get('factor')

    recorder = Recorder(model, ['0'], 'student', inputs=first_and_factor)
    with recorder as records:
        model[0](torch.ones(2), factor=3.0)
        model[0](torch.ones(2))
    (x0, f0), (x1, f1) = records['0']
    torch.testing.assert_close(x0, torch.ones(2))
    assert (f0, f1) == (3.0, None)
    assert not model[0]._forward_pre_hooks


def test_a_failing_reader_stops_the_call_and_leaves_no_hook():
    model = nn.Sequential(nn.Linear(2, 2))

    def refuse(module, args, kwargs):
        raise RuntimeError('`rois` should be (N, 5), but got (N, 4)')

    with pytest.raises(RuntimeError, match='should be'):
        with Recorder(model, ['0'], 'student', inputs=refuse):
            model(torch.ones(1, 2))
    assert not model[0]._forward_pre_hooks and not model[0]._forward_hooks
