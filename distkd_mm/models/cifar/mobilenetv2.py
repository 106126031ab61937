"""The seed's CIFAR MobileNetV2 (``mobile_half``: expansion 6, width 0.5).

Parameter names follow the seed's checkpoints: ``conv1.0/1``,
``blocks.{i}.{j}.conv.{0..7}``, ``conv2.0/1`` and ``classifier.0``.
"""
from typing import Optional

import torch
from mmengine.registry import MODELS
from torch import nn

from ._base import CIFARClassifierBackbone, he_normal_init

# (expansion, channels, blocks, stride); expansion None = `expand_ratio`.
_SETTINGS = ((1, 16, 1, 1), (None, 24, 2, 1), (None, 32, 3, 2),
             (None, 64, 4, 2), (None, 96, 3, 1), (None, 160, 3, 2), (None, 320,
                                                                     1, 1))


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int,
                  stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            kernel_size // 2,
            bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class _InvertedResidual(nn.Module):

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 expand_ratio: int) -> None:
        super().__init__()
        mid = in_channels * expand_ratio
        self.use_residual = stride == 1 and in_channels == out_channels
        # The seed keeps the 1x1 expansion conv even for expansion 1.
        self.conv = nn.Sequential(
            nn.Conv2d(in_channels, mid, 1, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


@MODELS.register_module()
class CIFARMobileNetV2(CIFARClassifierBackbone):
    """MobileNetV2 for 32x32 inputs as in the seed (``cifar_MobileNetV2``).

    Args:
        expand_ratio: Expansion of the inverted residuals. Defaults to 6.
        widen_factor: Channel multiplier. Defaults to 0.5 (the seed's).
        num_classes: Number of classes. Defaults to 100.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 expand_ratio: int = 6,
                 widen_factor: float = 0.5,
                 num_classes: int = 100,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if not widen_factor > 0:
            raise ValueError('`widen_factor` should be positive, but got '
                             f'{widen_factor}.')
        channels = int(32 * widen_factor)
        self.conv1 = _conv_bn_relu(3, channels, 3, 2)
        self.blocks = nn.ModuleList()
        for t, c, n, s in _SETTINGS:
            out_channels = int(c * widen_factor)
            stage = []
            for j in range(n):
                stage.append(
                    _InvertedResidual(channels, out_channels,
                                      s if j == 0 else 1,
                                      expand_ratio if t is None else t))
                channels = out_channels
            self.blocks.append(nn.Sequential(*stage))
        last = int(1280 * widen_factor) if widen_factor > 1.0 else 1280
        self.conv2 = _conv_bn_relu(channels, last, 1, 1)
        self.classifier = nn.Sequential(nn.Linear(last, num_classes))
        # 32x32 input -> 2x2 map; ceil mode as in the seed.
        self.avgpool = nn.AvgPool2d(2, ceil_mode=True)
        he_normal_init(self, linear_std=0.01)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        for stage in self.blocks:
            x = stage(x)
        x = self.avgpool(self.conv2(x))
        return self.classifier(torch.flatten(x, 1))
