"""Convert torchvision ResNet weights into an mmpretrain ResNet checkpoint.

The seed's ImageNet teachers are torchvision's ResNets (``tv_resnet34``,
V1 weights: 73.31 / 76.13 / 77.37 / 78.31 top-1 for R34/50/101/152). Their
module names equal mmpretrain's ``ResNet(style='pytorch')``, so only the
prefixes change (``backbone.``, ``head.fc``). The output is an MMEngine
checkpoint that loads strictly into ``mmpretrain::resnet/resnet*_8xb32_in1k``.

A config can do the same at load time instead:
``teacher_ckpt='torchvision://resnet50', teacher_ckpt_converter=
'torchvision_resnet'``.

Example::

    python tools/convert_torchvision_resnet.py torchvision://resnet50 r50.pth
    python tools/convert_torchvision_resnet.py resnet50-0676ba61.pth r50.pth
"""
from distkd_mm.utils.convert import (convert_cli, convert_file,
                                     torchvision_resnet_to_mmpretrain)


def convert(src: str, dst: str) -> dict:
    """Convert ``src`` and save it to ``dst``; returns what was saved."""
    return convert_file(
        src, dst, torchvision_resnet_to_mmpretrain, meta_keys=())


if __name__ == '__main__':
    convert_cli('Convert torchvision ResNet weights for mmpretrain',
                'path, URL or torchvision://resnetXX', convert)
