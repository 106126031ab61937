"""Recorder taps: a ModuleList records its members; suggestions for a
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
