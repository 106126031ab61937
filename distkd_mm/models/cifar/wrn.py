"""The seed's CIFAR Wide-ResNets (wrn_16_1/16_2/40_1/40_2).

Parameter names follow the seed's checkpoints: ``conv1``,
``block{i}.layer.{j}.bn1/conv1/bn2/conv2/convShortcut``, ``bn1``, ``fc``.
"""
from typing import Optional

import torch
from mmengine.registry import MODELS
from torch import nn
from torch.nn import functional as F

from ._base import CIFARClassifierBackbone, he_normal_init


class _WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3-BN-ReLU-conv3x3."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 drop_rate: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(
            in_channels, out_channels, 3, stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(
            out_channels, out_channels, 3, 1, padding=1, bias=False)
        self.drop_rate = drop_rate
        self.equal_in_out = in_channels == out_channels
        self.convShortcut = None
        if not self.equal_in_out:
            self.convShortcut = nn.Conv2d(
                in_channels, out_channels, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        act = self.relu1(self.bn1(x))
        out = self.relu2(self.bn2(self.conv1(act)))
        if self.drop_rate > 0:
            out = F.dropout(out, p=self.drop_rate, training=self.training)
        out = self.conv2(out)
        # With a projection the shortcut starts from the activated input;
        # an identity shortcut carries the raw input.
        shortcut = x if self.equal_in_out else self.convShortcut(act)
        return shortcut + out


class _NetworkBlock(nn.Module):

    def __init__(self, num_layers: int, in_channels: int, out_channels: int,
                 stride: int, drop_rate: float) -> None:
        super().__init__()
        self.layer = nn.Sequential(*[
            _WideBasicBlock(in_channels if i == 0 else out_channels,
                            out_channels, stride if i == 0 else 1, drop_rate)
            for i in range(num_layers)
        ])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


@MODELS.register_module()
class CIFARWideResNet(CIFARClassifierBackbone):
    """WRN-depth-k for CIFAR, `Wide Residual Networks
    <https://arxiv.org/abs/1605.07146>`_, in the seed's layout.

    Args:
        depth: Total depth, 6n + 4 (16 or 40 in the seed). Defaults to 40.
        widen_factor: Width multiplier k. Defaults to 2.
        num_classes: Number of classes. Defaults to 100.
        drop_rate: Dropout inside the blocks. Defaults to 0.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 depth: int = 40,
                 widen_factor: int = 2,
                 num_classes: int = 100,
                 drop_rate: float = 0.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f'`depth` should be 6n + 4 (e.g. 16, 40), but '
                             f'got {depth}.')
        n = (depth - 4) // 6
        widths = (16, 16 * widen_factor, 32 * widen_factor, 64 * widen_factor)
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.block1 = _NetworkBlock(n, widths[0], widths[1], 1, drop_rate)
        self.block2 = _NetworkBlock(n, widths[1], widths[2], 2, drop_rate)
        self.block3 = _NetworkBlock(n, widths[2], widths[3], 2, drop_rate)
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.relu = nn.ReLU(inplace=True)
        self.fc = nn.Linear(widths[3], num_classes)
        he_normal_init(self)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = self.block3(self.block2(self.block1(self.conv1(x))))
        x = self.relu(self.bn1(x))
        return self.fc(torch.flatten(F.avg_pool2d(x, 8), 1))
