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
import argparse

import torch

from distkd_mm.utils.checkpoint import extract_state_dict, load_untrusted
from distkd_mm.utils.convert import torchvision_resnet_to_mmpretrain


def convert(src: str, dst: str) -> dict:
    """Convert ``src`` (path, URL or ``torchvision://name``) to ``dst``."""
    state_dict = extract_state_dict(load_untrusted(src))
    out = {
        'meta': {
            'converted_from': src
        },
        'state_dict': torchvision_resnet_to_mmpretrain(state_dict)
    }
    torch.save(out, dst)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description='Convert torchvision ResNet weights for mmpretrain')
    parser.add_argument('src', help='path, URL or torchvision://resnetXX')
    parser.add_argument('dst', help='where to write the MMEngine checkpoint')
    args = parser.parse_args()
    out = convert(args.src, args.dst)
    print(f'{len(out["state_dict"])} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
