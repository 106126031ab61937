"""The seed's segmentation networks (CIRKD's) as mmseg modules.

The seed's Cityscapes rows (DIST_KD ``segmentation/``, built on CIRKD) use
a gluon-style "v1s" ResNet and their own DeepLabV3 head, which mmseg's zoo
does not have exactly:

* :class:`ResNetV1s`: mmseg's ``ResNetV1c`` with the 64-64-128 deep stem
  (``stem_channels=128``), and, in the dilated stages of a ResNet-18/34,
  the second 3x3 conv of every basic block dilated too. mmseg's
  ``BasicBlock`` dilates only its first conv; the seed's dilates both
  (its first block of a stage uses the halved dilation on the first conv,
  which is mmseg's ``contract_dilation=True``).
* :class:`SeedASPPHead`: ASPP (1x1, three dilated 3x3, image pooling) ->
  1x1 projection + BN-ReLU + Dropout(0.5) -> 3x3 conv-BN-ReLU ->
  Dropout(0.1) -> 1x1 classifier. mmseg's ``ASPPHead`` has no projection
  and no Dropout(0.5).

PSPNet's head and the auxiliary FCN head of the seed equal mmseg's
``PSPHead`` and ``FCNHead(num_convs=1, concat_input=False)``.

Needs mmseg, so ``import distkd_mm`` does not import it; configs list
``'distkd_mm.models.seg'`` in ``custom_imports``.
"""
from typing import List, Sequence

import torch
from mmcv.cnn import ConvModule
from mmengine.registry import MODELS
from mmseg.models.backbones.resnet import BasicBlock, ResNetV1c
from mmseg.models.decode_heads.decode_head import BaseDecodeHead
from mmseg.models.utils import resize
from torch import Tensor, nn


@MODELS.register_module()
class ResNetV1s(ResNetV1c):
    """The seed's dilated "v1s" ResNet (CIRKD's ``resnet*_v1s``).

    Args:
        stem_channels (int): Output channels of the deep stem; the seed's
            64-64-128 stem is 128. Defaults to 128.
        **kwargs: Arguments of mmseg's ``ResNetV1c`` (``depth``,
            ``strides``, ``dilations``, ``contract_dilation``, ...).
    """

    def __init__(self, stem_channels: int = 128, **kwargs) -> None:
        super().__init__(stem_channels=stem_channels, **kwargs)
        if self.block is not BasicBlock:
            return  # a bottleneck has one 3x3 conv: mmseg's is the seed's
        for name, dilation in zip(self.res_layers, self.dilations):
            for block in getattr(self, name):
                block.conv2.dilation = (dilation, dilation)
                block.conv2.padding = (dilation, dilation)


@MODELS.register_module()
class SeedASPPHead(BaseDecodeHead):
    """The DeepLabV3 head of the seed's segmentation code.

    Its parameters map one to one onto the seed's ``head.*`` keys (see
    ``cirkd_segmentation`` in :mod:`distkd_mm.utils.convert`).

    Args:
        dilations (Sequence[int]): Dilations of the three 3x3 ASPP branches.
            Defaults to (12, 24, 36), the seed's.
        project_dropout (float): Dropout after the 1x1 projection.
            Defaults to 0.5, the seed's.
        **kwargs: Arguments of mmseg's ``BaseDecodeHead`` (``in_channels``,
            ``channels`` = 128 for the seed's R18, 256 for its R101, ...).
    """

    def __init__(self,
                 dilations: Sequence[int] = (12, 24, 36),
                 project_dropout: float = 0.5,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.aspp = nn.ModuleList(
            [self._conv(self.in_channels, 1, 1)] +
            [self._conv(self.in_channels, 3, d) for d in dilations])
        self.image_pool = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), self._conv(self.in_channels, 1, 1))
        self.project = self._conv(self.channels * (len(dilations) + 2), 1, 1)
        self.project_dropout = nn.Dropout(project_dropout)
        self.bottleneck = self._conv(self.channels, 3, 1)

    def _conv(self, in_channels: int, kernel: int,
              dilation: int) -> ConvModule:
        return ConvModule(
            in_channels,
            self.channels,
            kernel,
            padding=0 if kernel == 1 else dilation,
            dilation=dilation,
            conv_cfg=self.conv_cfg,
            norm_cfg=self.norm_cfg,
            act_cfg=self.act_cfg)

    def forward(self, inputs: List[Tensor]) -> Tensor:
        x = self._transform_inputs(inputs)
        pooled = resize(
            self.image_pool(x),
            size=x.shape[2:],
            mode='bilinear',
            align_corners=self.align_corners)
        feats = torch.cat([branch(x) for branch in self.aspp] + [pooled], 1)
        feats = self.bottleneck(self.project_dropout(self.project(feats)))
        return self.cls_seg(feats)
