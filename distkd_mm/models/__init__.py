"""Architectures the seed needs that the OpenMMLab zoos lack.

Importing this package registers them in MMEngine's root ``MODELS``.
"""
from .cifar import (CIFARMobileNetV2, CIFARResNet, CIFARResNetV2,
                    CIFARShuffleNetV1, CIFARShuffleNetV2, CIFARWideResNet)
from .mobilenet_v1 import MobileNetV1

__all__ = [
    'CIFARMobileNetV2', 'CIFARResNet', 'CIFARResNetV2', 'CIFARShuffleNetV1',
    'CIFARShuffleNetV2', 'CIFARWideResNet', 'MobileNetV1'
]
