"""The seed's CIFAR ShuffleNetV1 (g=3) and ShuffleNetV2 (1x).

Parameter names follow the seed's checkpoints: ``conv1``, ``bn1``,
``layer{i}.{j}.conv*/bn*``, (V2) ``conv2``/``bn2`` and ``linear``.
"""
from typing import Optional, Sequence

import torch
from mmengine.registry import MODELS
from torch import nn
from torch.nn import functional as F

from ._base import CIFARClassifierBackbone, channel_shuffle


class _ShuffleV1Block(nn.Module):
    """Group-conv bottleneck; stride 2 concatenates an average-pooled input
    instead of adding it."""

    def __init__(self, in_channels: int, out_channels: int, stride: int,
                 groups: int) -> None:
        super().__init__()
        mid = out_channels // 4
        # The stem's 24 channels do not split into groups.
        self.first_groups = 1 if in_channels == 24 else groups
        self.stride = stride
        self.conv1 = nn.Conv2d(
            in_channels, mid, 1, groups=self.first_groups, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_channels, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = channel_shuffle(out, self.first_groups)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            shortcut = F.avg_pool2d(x, 3, stride=2, padding=1)
            return F.relu(torch.cat([out, shortcut], 1))
        return F.relu(out + x)


@MODELS.register_module()
class CIFARShuffleNetV1(CIFARClassifierBackbone):
    """ShuffleNetV1 for 32x32 inputs as in the seed (``cifar_ShuffleV1``).

    Args:
        out_channels: Output widths of the three stages.
        num_blocks: Blocks per stage.
        groups: Groups of the 1x1 convolutions.
        num_classes: Number of classes. Defaults to 100.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 out_channels: Sequence[int] = (240, 480, 960),
                 num_blocks: Sequence[int] = (4, 8, 4),
                 groups: int = 3,
                 num_classes: int = 100,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        channels = 24
        for i, (width, n) in enumerate(zip(out_channels, num_blocks)):
            blocks = []
            for j in range(n):
                # The first block concatenates its input: it adds the rest.
                blocks.append(
                    _ShuffleV1Block(channels,
                                    width - channels if j == 0 else width,
                                    2 if j == 0 else 1, groups))
                channels = width
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
        self.linear = nn.Linear(channels, num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(torch.flatten(F.avg_pool2d(x, 4), 1))


class _ShuffleV2Block(nn.Module):
    """Channel split in halves; one half goes through 1x1-dw3x3-1x1."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        half = channels // 2
        self.conv1 = nn.Conv2d(half, half, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, half, 3, 1, 1, groups=half, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv3 = nn.Conv2d(half, half, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        half = x.shape[1] // 2
        x1, x2 = x[:, :half], x[:, half:]
        out = F.relu(self.bn1(self.conv1(x2)))
        out = self.bn2(self.conv2(out))
        out = F.relu(self.bn3(self.conv3(out)))
        return channel_shuffle(torch.cat([x1, out], 1), 2)


class _ShuffleV2DownBlock(nn.Module):
    """Both branches downsample (stride 2) and are concatenated."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        mid = out_channels // 2
        # Left branch: dw3x3 (stride 2) - 1x1.
        self.conv1 = nn.Conv2d(
            in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        # Right branch: 1x1 - dw3x3 (stride 2) - 1x1.
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


# net_size -> (stage widths + last conv width, blocks after each DownBlock)
_V2_SIZES = {
    0.5: ((48, 96, 192, 1024), (3, 7, 3)),
    1: ((116, 232, 464, 1024), (3, 7, 3)),
    1.5: ((176, 352, 704, 1024), (3, 7, 3)),
    2: ((224, 488, 976, 2048), (3, 7, 3)),
}


@MODELS.register_module()
class CIFARShuffleNetV2(CIFARClassifierBackbone):
    """ShuffleNetV2 for 32x32 inputs as in the seed (``cifar_ShuffleV2``).

    Args:
        net_size: Width setting: 0.5, 1, 1.5 or 2. Defaults to 1.
        num_classes: Number of classes. Defaults to 100.
        init_cfg: MMEngine initialisation config.
    """

    def __init__(self,
                 net_size: float = 1,
                 num_classes: int = 100,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if net_size not in _V2_SIZES:
            raise ValueError('`net_size` should be one of '
                             f'{sorted(_V2_SIZES)}, but got {net_size!r}.')
        widths, num_blocks = _V2_SIZES[net_size]
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        channels = 24
        for i, (width, n) in enumerate(zip(widths[:3], num_blocks)):
            blocks = [_ShuffleV2DownBlock(channels, width)]
            blocks += [_ShuffleV2Block(width) for _ in range(n)]
            self.add_module(f'layer{i + 1}', nn.Sequential(*blocks))
            channels = width
        self.conv2 = nn.Conv2d(channels, widths[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(widths[3])
        self.linear = nn.Linear(widths[3], num_classes)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return self.linear(torch.flatten(F.avg_pool2d(x, 4), 1))
