"""MobileNetV1, the student of the seed's ResNet-50 -> MobileNet row."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import nn

# (output channels, stride) of the 13 depthwise-separable blocks.
_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
           (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))


def _conv_bn_relu(in_channels: int,
                  out_channels: int,
                  kernel_size: int,
                  stride: int = 1,
                  groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=False), nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class DepthwiseSeparable(nn.Sequential):
    """A 3x3 depthwise conv-BN-ReLU followed by a 1x1 conv-BN-ReLU."""

    def __init__(self, in_channels: int, out_channels: int,
                 stride: int) -> None:
        super().__init__(
            _conv_bn_relu(
                in_channels, in_channels, 3, stride, groups=in_channels),
            _conv_bn_relu(in_channels, out_channels, 1))


@MODELS.register_module()
class MobileNetV1(BaseModule):
    """MobileNetV1 backbone, `MobileNets: Efficient Convolutional Neural
    Networks for Mobile Vision Applications
    <https://arxiv.org/abs/1704.04861>`_.

    A 3x3 conv-BN-ReLU stem with stride 2 and 32 channels, then 13
    depthwise-separable blocks ending at 1024 channels and stride 32. Use it
    with ``GlobalAveragePooling`` and a ``LinearClsHead(in_channels=1024)``.

    Args:
        widen_factor: Channel multiplier. Defaults to 1.0.
        out_indices: Which of the 14 layers (0 is the stem, 13 the last
            block) to return. Defaults to ``(13, )``.
        frozen_stages: Layers ``0..frozen_stages`` are frozen; -1 freezes
            nothing. Defaults to -1.
        norm_eval: Keep BN layers in eval mode while training.
        init_cfg: MMEngine initialisation config. Defaults to Kaiming for
            convolutions and constant 1 / 0 for BN.
    """

    def __init__(self,
                 widen_factor: float = 1.0,
                 out_indices: Sequence[int] = (13, ),
                 frozen_stages: int = -1,
                 norm_eval: bool = False,
                 init_cfg: Optional[List[dict]] = None) -> None:
        if init_cfg is None:
            init_cfg = [
                dict(type='Kaiming', layer='Conv2d'),
                dict(type='Constant', val=1, layer='BatchNorm2d')
            ]
        super().__init__(init_cfg=init_cfg)
        if not widen_factor > 0:
            raise ValueError('`widen_factor` should be positive, but got '
                             f'{widen_factor}; use 1.0 for the standard net.')
        num_layers = len(_BLOCKS) + 1
        for index in out_indices:
            if not 0 <= index < num_layers:
                raise ValueError(
                    f'`out_indices` should be in range(0, {num_layers}), '
                    f'but got {tuple(out_indices)}; 13 is the last block.')
        if not -1 <= frozen_stages < num_layers:
            raise ValueError(f'`frozen_stages` should be in [-1, '
                             f'{num_layers - 1}], but got {frozen_stages}.')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval

        channels = max(8, int(32 * widen_factor))
        layers = [_conv_bn_relu(3, channels, 3, stride=2)]
        for out_channels, stride in _BLOCKS:
            out_channels = max(8, int(out_channels * widen_factor))
            layers.append(DepthwiseSeparable(channels, out_channels, stride))
            channels = out_channels
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels
        self._freeze_stages()

    def _freeze_stages(self) -> None:
        for layer in self.layers[:self.frozen_stages + 1]:
            layer.eval()
            for param in layer.parameters():
                param.requires_grad = False

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, ...]:
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> 'MobileNetV1':
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self
