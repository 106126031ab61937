"""Convert the seed's segmentation checkpoints for the seed-protocol configs.

The seed's Cityscapes rows (DIST_KD ``segmentation/``, CIRKD's networks)
load two kinds of file:

* the teacher, ``deeplabv3_resnet101_citys_best_model.pth`` (a plain state
  dict: ``pretrained.*`` backbone, ``head.*``, ``auxlayer.*``), and
* the students' ImageNet backbone, ``resnet18-imagenet.pth`` (CIRKD's
  deep-stem ResNet-18: un-prefixed ``conv1.*`` ... ``layer4.*``).

Both become MMEngine checkpoints with mmseg ``EncoderDecoder`` keys
(``backbone.*`` of ``ResNetV1s``, ``decode_head.*`` of ``SeedASPPHead`` or
``PSPHead``, ``auxiliary_head.*`` of ``FCNHead``). The teacher loads into
``configs/mmseg/_base_/seed_deeplabv3-r101_teacher_cityscapes.py`` (which
can also read the raw file: ``teacher_ckpt_converter='cirkd_segmentation'``);
the backbone file is the students' ``init_cfg`` (``prefix='backbone.'``).

Example::

    python tools/convert_cirkd_seg.py ckpts/resnet18-imagenet.pth \\
        data/cirkd_ckpts/resnet18-imagenet_mmseg.pth
"""
from distkd_mm.utils.convert import cirkd_to_mmseg, convert_cli, convert_file


def convert(src: str, dst: str) -> dict:
    """Convert ``src`` and save it to ``dst``; returns what was saved."""
    return convert_file(src, dst, cirkd_to_mmseg)


if __name__ == '__main__':
    convert_cli("Convert the seed's segmentation checkpoints (CIRKD format)",
                "the seed's teacher or ImageNet backbone file", convert)
