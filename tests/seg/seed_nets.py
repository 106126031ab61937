"""Test-only stand-ins for the seed's segmentation networks (CIRKD's).

Written from the layout the seed's code has (DIST_KD ``segmentation/models``
and CIRKD's ``resnetv1b.py``): module names, nesting and forward order are
what the seed's checkpoints are keyed by, so a state dict of these is a
checkpoint "in the seed's format". The tests convert it and check that our
mmseg modules compute the same logits.
"""
from typing import List

import torch
import torch.nn.functional as F
from torch import nn


def _bn_relu_conv(cin: int, cout: int, k: int, dilation: int = 1) -> list:
    pad = 0 if k == 1 else dilation
    return [
        nn.Conv2d(cin, cout, k, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(True)
    ]


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride, dilation, layer_dilation,
                 downsample):
        super().__init__()
        # First conv: the block's dilation; second: the stage's.
        self.conv1 = nn.Conv2d(
            cin, planes, 3, stride, dilation, dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, 1, layer_dilation, layer_dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride, dilation, layer_dilation,
                 downsample):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, 3, stride, dilation, dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return F.relu(out + identity)


class ResNetV1s(nn.Module):
    """Deep stem 64-64-128, output stride 8 (layer3 dilation 2, layer4 4;
    a stage's first block uses half its dilation, 1 for dilation 2)."""

    def __init__(self, depth: int):
        super().__init__()
        block, counts = {
            18: (BasicBlock, (2, 2, 2, 2)),
            101: (Bottleneck, (3, 4, 23, 3))
        }[depth]
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.conv3 = nn.Conv2d(64, 128, 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(128)
        self.inplanes = 128
        self.layer1 = self._layer(block, 64, counts[0], 1, 1)
        self.layer2 = self._layer(block, 128, counts[1], 2, 1)
        self.layer3 = self._layer(block, 256, counts[2], 1, 2)
        self.layer4 = self._layer(block, 512, counts[3], 1, 4)

    def _layer(self, block, planes, count, stride, dilation):
        out = planes * block.expansion
        downsample = None
        if stride != 1 or self.inplanes != out:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out, 1, stride, bias=False),
                nn.BatchNorm2d(out))
        first = 2 if dilation == 4 else 1
        blocks = [
            block(self.inplanes, planes, stride, first, dilation, downsample)
        ]
        self.inplanes = out
        blocks += [
            block(out, planes, 1, dilation, dilation, None)
            for _ in range(1, count)
        ]
        return nn.Sequential(*blocks)

    def forward(self, x) -> List[torch.Tensor]:
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.relu(self.bn3(self.conv3(x)))
        x = F.max_pool2d(x, 3, 2, 1)
        c1 = self.layer1(x)
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        return [c1, c2, c3, self.layer4(c3)]


class ASPPConv(nn.Module):

    def __init__(self, cin, cout, rate):
        super().__init__()
        self.block = nn.Sequential(*_bn_relu_conv(cin, cout, 3, rate))

    def forward(self, x):
        return self.block(x)


class AsppPooling(nn.Module):

    def __init__(self, cin, cout):
        super().__init__()
        self.gap = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), *_bn_relu_conv(cin, cout, 1))

    def forward(self, x):
        return F.interpolate(
            self.gap(x), x.shape[2:], mode='bilinear', align_corners=True)


class ASPP(nn.Module):

    def __init__(self, cin, cout):
        super().__init__()
        self.b0 = nn.Sequential(*_bn_relu_conv(cin, cout, 1))
        self.b1 = ASPPConv(cin, cout, 12)
        self.b2 = ASPPConv(cin, cout, 24)
        self.b3 = ASPPConv(cin, cout, 36)
        self.b4 = AsppPooling(cin, cout)
        self.project = nn.Sequential(*_bn_relu_conv(5 * cout, cout, 1),
                                     nn.Dropout(0.5))

    def forward(self, x):
        feats = [self.b0(x), self.b1(x), self.b2(x), self.b3(x), self.b4(x)]
        return self.project(torch.cat(feats, 1))


class DeepLabHead(nn.Module):

    def __init__(self, cin, nclass):
        super().__init__()
        cout = 128 if cin == 512 else 256
        self.aspp = ASPP(cin, cout)
        self.block = nn.Sequential(*_bn_relu_conv(cout, cout, 3),
                                   nn.Dropout(0.1), nn.Conv2d(cout, nclass, 1))

    def forward(self, x):
        return self.block(self.aspp(x))


class PyramidPooling(nn.Module):

    def __init__(self, cin):
        super().__init__()
        for i in range(1, 5):
            setattr(self, f'conv{i}',
                    nn.Sequential(*_bn_relu_conv(cin, cin // 4, 1)))

    def forward(self, x):
        feats = [x]
        for i, bins in enumerate((1, 2, 3, 6), 1):
            pooled = getattr(self, f'conv{i}')(F.adaptive_avg_pool2d(x, bins))
            feats.append(
                F.interpolate(
                    pooled, x.shape[2:], mode='bilinear', align_corners=True))
        return torch.cat(feats, 1)


class PSPHead(nn.Module):

    def __init__(self, cin, nclass):
        super().__init__()
        self.psp = PyramidPooling(cin)
        self.block = nn.Sequential(*_bn_relu_conv(cin * 2, 128, 3),
                                   nn.Dropout(0.1))
        self.classifier = nn.Conv2d(128, nclass, 1)

    def forward(self, x):
        return self.classifier(self.block(self.psp(x)))


class FCNHead(nn.Module):

    def __init__(self, cin, nclass):
        super().__init__()
        self.block = nn.Sequential(*_bn_relu_conv(cin, cin // 4, 3),
                                   nn.Dropout(0.1),
                                   nn.Conv2d(cin // 4, nclass, 1))

    def forward(self, x):
        return self.block(x)


class SegNet(nn.Module):
    """``pretrained`` (backbone), ``head``, ``auxlayer``: the seed's names.
    Returns [main logits, aux logits] at 1/8 resolution."""

    def __init__(self, head: str, depth: int, nclass: int = 19):
        super().__init__()
        self.pretrained = ResNetV1s(depth)
        cin = 512 if depth == 18 else 2048
        self.head = (DeepLabHead if head == 'deeplabv3' else PSPHead)(cin,
                                                                      nclass)
        self.auxlayer = FCNHead(cin // 2, nclass)

    def forward(self, x):
        _, _, c3, c4 = self.pretrained(x)
        return [self.head(c4), self.auxlayer(c3)]


def randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine terms, so that a mismatch in
    any BN mapping shows in the outputs."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=gen) * 0.1)
