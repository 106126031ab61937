"""The seed's CIFAR-100 networks, registered as logit-returning backbones."""
from .mobilenetv2 import CIFARMobileNetV2
from .resnet import CIFARResNet, CIFARResNetV2
from .shufflenet import CIFARShuffleNetV1, CIFARShuffleNetV2
from .wrn import CIFARWideResNet

__all__ = [
    'CIFARMobileNetV2', 'CIFARResNet', 'CIFARResNetV2', 'CIFARShuffleNetV1',
    'CIFARShuffleNetV2', 'CIFARWideResNet'
]
