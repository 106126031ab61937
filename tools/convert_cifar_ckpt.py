"""Convert a teacher checkpoint of the seed's CIFAR-100 release for our nets.

The seed's files (CRD's ``ckpt_epoch_240.pth``: ``epoch``, ``model``,
``accuracy``, ``optimizer``) hold un-prefixed names (``conv1.weight``,
``fc.weight``). Our CIFAR networks are backbones of an mmpretrain
``ImageClassifier``, so the weights move under ``backbone.``; the output is
an MMEngine checkpoint (``meta`` + ``state_dict``) that loads strictly into
the configs' teacher (``teacher_ckpt=out.pth``).

The configs can also read the seed's file directly: they set
``teacher_ckpt_converter='cifar_backbone'``, which applies the same mapping
at load time.

Example::

    python tools/convert_cifar_ckpt.py \\
        cifar_ckpts/resnet32x4_vanilla/ckpt_epoch_240.pth resnet32x4.pth
"""
import argparse
import os.path as osp

import torch

from distkd_mm.utils.checkpoint import extract_state_dict, load_untrusted
from distkd_mm.utils.convert import cifar_to_mmpretrain


def convert(src: str, dst: str) -> dict:
    """Convert ``src`` (the seed's format) and save it to ``dst``."""
    checkpoint = load_untrusted(src)
    state_dict = cifar_to_mmpretrain(extract_state_dict(checkpoint))
    meta = {'converted_from': osp.basename(src)}
    if isinstance(checkpoint, dict):
        for key in ('epoch', 'accuracy'):
            if key in checkpoint and not torch.is_tensor(checkpoint[key]):
                meta[key] = checkpoint[key]
    out = {'meta': meta, 'state_dict': state_dict}
    torch.save(out, dst)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description="Convert the seed's CIFAR teacher checkpoints")
    parser.add_argument('src', help="the seed's checkpoint (CRD format)")
    parser.add_argument('dst', help='where to write the MMEngine checkpoint')
    args = parser.parse_args()
    out = convert(args.src, args.dst)
    print(f'{len(out["state_dict"])} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
