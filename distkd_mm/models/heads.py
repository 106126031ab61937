"""Classification heads the seed's students have and mmpretrain lacks.

Needs mmpretrain, so ``import distkd_mm`` does not import it; configs list
``'distkd_mm.models.heads'`` in ``custom_imports``.
"""
from typing import Tuple

import torch
from mmengine.registry import MODELS
from mmpretrain.models.heads import LinearClsHead
from torch import nn


@MODELS.register_module()
class DropoutLinearClsHead(LinearClsHead):
    """``LinearClsHead`` with dropout before the classifier.

    torchvision's MobileNetV2 (the seed's ``tv_mobilenet_v2`` student) ends
    in ``Dropout(0.2)`` + ``Linear``; mmpretrain's ``LinearClsHead`` has no
    dropout. The linear layer keeps the name ``fc``, so checkpoints and
    DIST taps (``head.fc``) are the same as with ``LinearClsHead``.

    Args:
        dropout_rate (float): Drop probability in [0, 1). Defaults to 0.2.
        **kwargs: Arguments of :class:`mmpretrain.models.LinearClsHead`.
    """

    def __init__(self, dropout_rate: float = 0.2, **kwargs) -> None:
        if not 0 <= dropout_rate < 1:
            raise ValueError('`dropout_rate` should be in [0, 1), but got '
                             f'{dropout_rate}.')
        super().__init__(**kwargs)
        self.dropout = nn.Dropout(dropout_rate)

    def forward(self, feats: Tuple[torch.Tensor]) -> torch.Tensor:
        return self.fc(self.dropout(self.pre_logits(feats)))
