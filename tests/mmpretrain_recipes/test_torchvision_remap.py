"""torchvision ResNet weights (the seed's teachers) in mmpretrain's ResNet."""

import pytest
import torch
import torchvision
from distkd_testing import load_tool
from mmengine.registry import MODELS, DefaultScope
from recipe_helpers import load

from distkd_mm.utils.convert import (get_converter,
                                     torchvision_resnet_to_mmpretrain)
from distkd_mm.utils.weights import load_weights


def _mm_resnet(depth: int) -> torch.nn.Module:
    cfg = dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet', depth=depth, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(
            type='LinearClsHead',
            num_classes=1000,
            in_channels=512 if depth < 50 else 2048))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        return MODELS.build(cfg).eval()


def _randomise_bn(model: torch.nn.Module) -> None:
    """Non-trivial BN statistics, so a swapped BN would show."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + .5)


@pytest.mark.parametrize('arch, depth', [('resnet18', 18), ('resnet50', 50)])
def test_remapped_weights_load_strictly_and_give_the_same_logits(
        arch, depth, tmp_path):
    torch.manual_seed(0)
    tv = getattr(torchvision.models, arch)().eval()
    _randomise_bn(tv)
    path = tmp_path / f'{arch}.pth'
    torch.save(tv.state_dict(), path)  # torchvision's own file layout

    model = _mm_resnet(depth)
    load_weights(
        model,
        str(path),
        strict=True,
        converter=get_converter('torchvision_resnet'))
    x = torch.randn(2, 3, 64, 64)  # the remap does not depend on the size
    with torch.no_grad():
        expected = tv(x)
        got = model(x, mode='tensor')
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)


def test_without_the_converter_the_strict_load_refuses(tmp_path):
    path = tmp_path / 'tv.pth'
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(RuntimeError, match='does not match'):
        load_weights(_mm_resnet(18), str(path), strict=True)


def test_non_resnet_keys_are_refused():
    state = torchvision.models.mobilenet_v2().state_dict()
    with pytest.raises(ValueError, match='should be a torchvision ResNet'):
        torchvision_resnet_to_mmpretrain(state)


def test_unknown_converter_name_is_refused():
    with pytest.raises(ValueError, match='registered name'):
        get_converter('torchvision_resnett')


def test_tv_teacher_config_loads_a_torchvision_file(tmp_path):
    """dist_r34_r18 (seed row): the teacher config + `torchvision_resnet`."""
    torch.manual_seed(0)
    tv = torchvision.models.resnet34().eval()
    path = tmp_path / 'resnet34-b627a593.pth'
    torch.save(tv.state_dict(), path)
    cfg = load('dist_r34_r18_8xb32-100e_in1k.py')
    assert cfg.model.teacher_ckpt == 'torchvision://resnet34'
    cfg.model.teacher_ckpt = str(path)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        distiller = MODELS.build(cfg.model)
    x = torch.randn(2, 3, 64, 64)  # the remap does not depend on the size
    with torch.no_grad():
        assert torch.allclose(
            distiller.teacher(x, mode='tensor'), tv(x), atol=1e-4)


def test_offline_converter_tool(tmp_path):
    tool = load_tool('convert_torchvision_resnet')
    src = tmp_path / 'tv.pth'
    torch.save(torchvision.models.resnet18().state_dict(), src)
    tool.convert(str(src), str(tmp_path / 'mm.pth'))
    load_weights(_mm_resnet(18), str(tmp_path / 'mm.pth'), strict=True)
