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
from distkd_mm.utils.convert import (cifar_to_mmpretrain, convert_cli,
                                     convert_file)


def convert(src: str, dst: str) -> dict:
    """Convert ``src`` and save it to ``dst``; returns what was saved."""
    return convert_file(
        src, dst, cifar_to_mmpretrain, meta_keys=('epoch', 'accuracy'))


if __name__ == '__main__':
    convert_cli("Convert the seed's CIFAR teacher checkpoints",
                "the seed's checkpoint (CRD format)", convert)
