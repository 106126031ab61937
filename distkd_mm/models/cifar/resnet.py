"""CIFAR ResNets of the seed: resnet8..110, resnet8x4/32x4 and ResNet50.

Parameter names follow the seed's checkpoints: ``conv1``, ``bn1``,
``layer{i}.{j}.conv1/bn1/conv2/bn2``, the projection ``downsample.0/1``
(``shortcut.0/1`` in the ImageNet-style ``CIFARResNetV2``) and ``fc``
(``linear`` in ``CIFARResNetV2``).
"""
from typing import Optional

import torch
from mmengine.registry import MODELS
from torch import nn
from torch.nn import functional as F

from ._base import CIFARClassifierBackbone, check_choice, kaiming_init

# name -> (depth, widths of stem and the three stages)
_RESNET_ARCHS = {
    'resnet8': (8, (16, 16, 32, 64)),
    'resnet14': (14, (16, 16, 32, 64)),
    'resnet20': (20, (16, 16, 32, 64)),
    'resnet32': (32, (16, 16, 32, 64)),
    'resnet44': (44, (16, 16, 32, 64)),
    'resnet56': (56, (16, 16, 32, 64)),
    'resnet110': (110, (16, 16, 32, 64)),
    'resnet8x4': (8, (32, 64, 128, 256)),
    'resnet32x4': (32, (32, 64, 128, 256)),
}


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1):
    return nn.Conv2d(
        in_channels, out_channels, 3, stride, padding=1, bias=False)


class _BasicBlock(nn.Module):

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


@MODELS.register_module()
class CIFARResNet(CIFARClassifierBackbone):
    """The seed's CIFAR ResNet (basic blocks, 3 stages, 8x8 average pool).

    Args:
        arch: One of ``resnet8``, ``resnet14``, ``resnet20``, ``resnet32``,
            ``resnet44``, ``resnet56``, ``resnet110``, ``resnet8x4``,
            ``resnet32x4``.
        num_classes: Number of classes. Defaults to 100.
        init_cfg: MMEngine initialisation config; by default the seed's
            initialisation is applied at construction.
    """

    def __init__(self,
                 arch: str,
                 num_classes: int = 100,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_choice('arch', arch, _RESNET_ARCHS)
        depth, widths = _RESNET_ARCHS[arch]
        num_blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        in_channels = widths[0]
        for i, (channels, stride) in enumerate(zip(widths[1:], (1, 2, 2))):
            blocks = []
            for j in range(num_blocks):
                blocks.append(
                    _BasicBlock(in_channels, channels,
                                stride if j == 0 else 1))
                in_channels = channels
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self.avgpool = nn.AvgPool2d(8)
        self.fc = nn.Linear(in_channels, num_classes)
        kaiming_init(self)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + self.shortcut(x))


class _BasicBlockV2(nn.Module):
    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride, bias=False),
                nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


_RESNET_V2_ARCHS = {
    'ResNet18': (_BasicBlockV2, (2, 2, 2, 2)),
    'ResNet34': (_BasicBlockV2, (3, 4, 6, 3)),
    'ResNet50': (_Bottleneck, (3, 4, 6, 3)),
    'ResNet101': (_Bottleneck, (3, 4, 23, 3)),
    'ResNet152': (_Bottleneck, (3, 8, 36, 3)),
}


@MODELS.register_module()
class CIFARResNetV2(CIFARClassifierBackbone):
    """The seed's ImageNet-shaped ResNet for CIFAR (``cifar_ResNet50``).

    A 3x3 stride-1 stem without max-pool, four stages (64-512 wide, strides
    1/2/2/2), adaptive average pool and a classifier named ``linear``.

    Args:
        arch: ``ResNet18``, ``ResNet34``, ``ResNet50``, ``ResNet101`` or
            ``ResNet152``.
        num_classes: Number of classes. Defaults to 100.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 arch: str = 'ResNet50',
                 num_classes: int = 100,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        check_choice('arch', arch, _RESNET_V2_ARCHS)
        block, num_blocks = _RESNET_V2_ARCHS[arch]
        self.conv1 = nn.Conv2d(3, 64, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_channels = 64
        for i, (n, channels, stride) in enumerate(
                zip(num_blocks, (64, 128, 256, 512), (1, 2, 2, 2))):
            blocks = []
            for j in range(n):
                blocks.append(
                    block(in_channels, channels, stride if j == 0 else 1))
                in_channels = channels * block.expansion
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(in_channels, num_classes)
        kaiming_init(self)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(1, 5):
            x = getattr(self, f'layer{i}')(x)
        return self.linear(torch.flatten(self.avgpool(x), 1))
