"""The seed's CIFAR networks: shapes, sizes, and its checkpoint format."""

import pytest
import torch
from distkd_testing import load_tool
from mmengine.registry import MODELS, DefaultScope
from recipe_helpers import load

# type cfg, parameters in millions (CRD's published sizes), keys the seed's
# checkpoints hold.
NETS = {
    'resnet8x4': (dict(type='CIFARResNet', arch='resnet8x4'), 1.23,
                  ['layer2.0.downsample.0.weight', 'fc.weight']),
    'resnet32x4':
    (dict(type='CIFARResNet',
          arch='resnet32x4'), 7.43, ['layer3.4.bn2.running_var', 'fc.bias']),
    'resnet20': (dict(type='CIFARResNet',
                      arch='resnet20'), 0.28, ['layer1.2.conv2.weight']),
    'resnet56': (dict(type='CIFARResNet',
                      arch='resnet56'), 0.86, ['layer3.8.bn2.weight']),
    'wrn_40_1': (dict(type='CIFARWideResNet', depth=40, widen_factor=1), 0.57,
                 ['block2.layer.0.convShortcut.weight', 'bn1.weight']),
    'wrn_40_2': (dict(type='CIFARWideResNet', depth=40, widen_factor=2), 2.26,
                 ['block1.layer.0.convShortcut.weight', 'fc.weight']),
    'ResNet50': (dict(type='CIFARResNetV2', arch='ResNet50'), 23.71,
                 ['layer1.0.shortcut.0.weight', 'linear.weight']),
    'MobileNetV2':
    (dict(type='CIFARMobileNetV2'), 0.81,
     ['blocks.1.0.conv.3.weight', 'conv2.0.weight', 'classifier.0.weight']),
    'ShuffleV1': (dict(type='CIFARShuffleNetV1'), 0.95,
                  ['layer1.0.conv3.weight', 'linear.weight']),
    'ShuffleV2':
    (dict(type='CIFARShuffleNetV2'), 1.36,
     ['layer1.0.conv5.weight', 'layer3.3.bn3.bias', 'linear.weight']),
}


def _converter_tool():
    return load_tool('convert_cifar_ckpt')


@pytest.mark.parametrize('arch', sorted(NETS))
def test_forward_size_and_seed_keys(arch):
    cfg, millions, keys = NETS[arch]
    net = MODELS.build(cfg).eval()
    (logits, ) = net(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 100)
    count = sum(p.numel() for p in net.parameters()) / 1e6
    assert count == pytest.approx(millions, rel=0.02)
    state = net.state_dict()
    for key in keys:
        assert key in state, (key, list(state)[:8])


def _classifier(backbone: dict) -> dict:
    return dict(
        type='ImageClassifier', backbone=backbone, head=dict(type='ClsHead'))


@pytest.mark.parametrize('arch', ['wrn_40_2', 'ShuffleV2', 'MobileNetV2'])
def test_seed_checkpoint_round_trips_through_the_converter(arch, tmp_path):
    cfg, _, _ = NETS[arch]
    torch.manual_seed(0)
    net = MODELS.build(cfg).eval()
    # The seed's release format (CRD): un-prefixed keys under `model`.
    seed_file = tmp_path / 'ckpt_epoch_240.pth'
    torch.save(
        dict(
            epoch=240,
            model=net.state_dict(),
            accuracy=75.61,
            optimizer={'state': {}}), seed_file)
    out = tmp_path / 'converted.pth'
    _converter_tool().convert(str(seed_file), str(out))
    converted = torch.load(out, weights_only=True)
    assert converted['meta']['epoch'] == 240
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(_classifier(cfg)).eval()
    model.load_state_dict(converted['state_dict'], strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x, mode='tensor'), net(x)[0])


def test_config_teacher_reads_the_seed_file_directly(tmp_path):
    """`teacher_ckpt_converter='cifar_backbone'` in the CIFAR configs: the
    seed's file loads strictly, and the teacher gives the seed net's
    logits."""
    cfg = load('dist_resnet32x4_shufflenet-v1_1xb64-240e_cifar100.py')
    torch.manual_seed(0)
    seed_net = MODELS.build(cfg.model.teacher.backbone).eval()
    path = tmp_path / 'resnet32x4.pth'
    torch.save(dict(epoch=240, model=seed_net.state_dict()), path)
    cfg.model.teacher_ckpt = str(path)
    cfg.model.data_preprocessor = cfg.data_preprocessor
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        distiller = MODELS.build(cfg.model)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        got = distiller.teacher(x, mode='tensor')
        assert torch.allclose(got, seed_net(x)[0])


def test_converted_file_also_loads_with_the_config_converter(tmp_path):
    cfg, _, _ = NETS['resnet8x4']
    net = MODELS.build(cfg)
    seed_file = tmp_path / 'seed.pth'
    torch.save(dict(model=net.state_dict()), seed_file)
    _converter_tool().convert(str(seed_file), str(tmp_path / 'mm.pth'))
    from distkd_mm.utils.convert import get_converter
    from distkd_mm.utils.weights import load_weights
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(_classifier(cfg))
    # Idempotent: already-prefixed keys stay as they are.
    load_weights(
        model,
        str(tmp_path / 'mm.pth'),
        converter=get_converter('cifar_backbone'))


@pytest.mark.parametrize('cfg, message', [
    (dict(type='CIFARResNet', arch='resnet9'), '`arch` should be one of'),
    (dict(type='CIFARWideResNet', depth=41), '`depth` should be 6n \\+ 4'),
    (dict(type='CIFARShuffleNetV2', net_size=3), '`net_size` should be'),
    (dict(type='CIFARMobileNetV2', widen_factor=0), '`widen_factor`'),
])
def test_bad_arguments_say_what_to_use(cfg, message):
    with pytest.raises(ValueError, match=message):
        MODELS.build(cfg)
