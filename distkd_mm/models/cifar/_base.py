"""Shared plumbing of the CIFAR networks: classifiers used as backbones.

The seed (CRD's CIFAR model zoo) defines each network with its classifier
inside. To load its released checkpoints unchanged, our networks keep that
layout: the backbone returns the logits as a one-tuple, and the config uses
mmpretrain's ``ClsHead`` (loss and prediction only, no layer of its own).
"""
import math
from typing import Tuple

import torch
from mmengine.model import BaseModule
from torch import nn


class CIFARClassifierBackbone(BaseModule):
    """Base class: ``forward`` returns ``(logits, )``."""

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor]:
        return (self.logits(x), )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


def check_choice(name: str, value, choices) -> None:
    """Raise the mmengine-style error for a value outside ``choices``."""
    if value not in choices:
        raise ValueError(f'`{name}` should be one of {sorted(choices)}, but '
                         f'got {value!r}.')


def kaiming_init(module: nn.Module) -> None:
    """Kaiming-normal (fan_out) convs, BN weight 1 and bias 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(
                m.weight, mode='fan_out', nonlinearity='relu')
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def he_normal_init(module: nn.Module, linear_std: float = None) -> None:
    """Convs N(0, sqrt(2 / (k*k*out))), BN 1/0, linear biases zero.

    Linear weights are drawn from N(0, linear_std) when it is given, else
    they keep PyTorch's default initialisation.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0, math.sqrt(2. / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            if linear_std is not None:
                nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (ShuffleNet)."""
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h,
                  w).transpose(1, 2).reshape(n, c, h, w)
