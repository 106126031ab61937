"""Key converters for teacher checkpoints saved by other code bases.

Each converter maps a plain state dict (as :func:`extract_state_dict`
returns it: ``state_dict``/``model`` key taken, ``module.`` stripped) to the
key layout of our model. They are registered in MMEngine's root
``FUNCTIONS`` registry so a config names them:
``Distiller(teacher_ckpt_converter='torchvision_resnet', ...)``.
The same functions back the offline tools in ``tools/``.
"""
import argparse
import re
from collections import OrderedDict
from typing import Callable, Dict, Optional, Union

import torch
from mmengine.registry import FUNCTIONS
from torch import Tensor

from .checkpoint import extract_state_dict, load_untrusted

StateDict = Dict[str, Tensor]
Converter = Union[str, Callable[[StateDict], StateDict]]

_TV_RESNET_KEY = re.compile(
    r'^(conv1|bn1|fc|layer[1-4]\.\d+\.(conv[1-3]|bn[1-3]|downsample\.[01]))'
    r'\.(weight|bias|running_mean|running_var|num_batches_tracked)$')


@FUNCTIONS.register_module(name='torchvision_resnet')
def torchvision_resnet_to_mmpretrain(state_dict: StateDict) -> StateDict:
    """torchvision ``ResNet`` keys -> mmpretrain ``ImageClassifier`` keys.

    torchvision's ResNet (V1 weights, the seed's ``tv_resnet*`` teachers)
    and mmpretrain's ``ResNet(style='pytorch')`` share their module names,
    so only prefixes change: ``fc.*`` becomes ``head.fc.*`` and everything
    else goes under ``backbone.``. Keys already in mmpretrain's layout are
    kept, so converting twice is harmless.

    Raises:
        ValueError: a key belongs to no torchvision ResNet (e.g. a ResNeXt
            or a detection checkpoint was given).
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(('backbone.', 'head.')):
            out[key] = value
        elif not _TV_RESNET_KEY.match(key):
            raise ValueError(
                f'`state_dict` should be a torchvision ResNet, but has the '
                f'key {key!r}; convert only torchvision resnet18/34/50/101/'
                '152 checkpoints with this function.')
        elif key.startswith('fc.'):
            out['head.' + key] = value
        else:
            out['backbone.' + key] = value
    return out


@FUNCTIONS.register_module(name='cifar_backbone')
def cifar_to_mmpretrain(state_dict: StateDict) -> StateDict:
    """The seed's CIFAR checkpoints -> our ``ImageClassifier`` keys.

    The seed's networks hold their classifier, and so do ours (registered as
    backbones returning logits): every key just moves under ``backbone.``.
    Keys already prefixed are kept.
    """
    return OrderedDict(
        (key if key.startswith('backbone.') else 'backbone.' + key, value)
        for key, value in state_dict.items())


# The seed's segmentation checkpoints (CIRKD's networks, DIST_KD
# `segmentation/models`) -> mmseg `EncoderDecoder` keys of ResNetV1s +
# SeedASPPHead / PSPHead + FCNHead. First match wins.
_CIRKD_RULES = (
    # Deep stem: conv1/bn1/conv2/bn2/conv3/bn3 -> stem.0/1/3/4/6/7.
    (r'^conv1\.', 'backbone.stem.0.'),
    (r'^bn1\.', 'backbone.stem.1.'),
    (r'^conv2\.', 'backbone.stem.3.'),
    (r'^bn2\.', 'backbone.stem.4.'),
    (r'^conv3\.', 'backbone.stem.6.'),
    (r'^bn3\.', 'backbone.stem.7.'),
    (r'^(layer[1-4]\.)', r'backbone.\1'),
    # DeepLabV3 head.
    (r'^head\.aspp\.b0\.0\.', 'decode_head.aspp.0.conv.'),
    (r'^head\.aspp\.b0\.1\.', 'decode_head.aspp.0.bn.'),
    (r'^head\.aspp\.b([1-3])\.block\.0\.', r'decode_head.aspp.\1.conv.'),
    (r'^head\.aspp\.b([1-3])\.block\.1\.', r'decode_head.aspp.\1.bn.'),
    (r'^head\.aspp\.b4\.gap\.1\.', 'decode_head.image_pool.1.conv.'),
    (r'^head\.aspp\.b4\.gap\.2\.', 'decode_head.image_pool.1.bn.'),
    (r'^head\.aspp\.project\.0\.', 'decode_head.project.conv.'),
    (r'^head\.aspp\.project\.1\.', 'decode_head.project.bn.'),
    (r'^head\.block\.4\.', 'decode_head.conv_seg.'),
    # PSPNet head: psp.conv1..4 are the pooling branches of bins 1/2/3/6.
    (r'^head\.psp\.conv([1-4])\.0\.', 'decode_head.psp_modules.{}.1.conv.'),
    (r'^head\.psp\.conv([1-4])\.1\.', 'decode_head.psp_modules.{}.1.bn.'),
    (r'^head\.classifier\.', 'decode_head.conv_seg.'),
    # Shared by both heads: the 3x3 conv-BN before the classifier.
    (r'^head\.block\.0\.', 'decode_head.bottleneck.conv.'),
    (r'^head\.block\.1\.', 'decode_head.bottleneck.bn.'),
    # Auxiliary FCN head on layer3.
    (r'^auxlayer\.block\.0\.', 'auxiliary_head.convs.0.conv.'),
    (r'^auxlayer\.block\.1\.', 'auxiliary_head.convs.0.bn.'),
    (r'^auxlayer\.block\.4\.', 'auxiliary_head.conv_seg.'),
)


def _cirkd_key(key: str) -> Optional[str]:
    """The mmseg name of one seed key, or None for the ImageNet ``fc``."""
    bare = key[len('pretrained.'):] if key.startswith('pretrained.') else key
    if bare.startswith('fc.'):
        return None  # the ImageNet classifier of the backbone file
    for pattern, target in _CIRKD_RULES:
        match = re.match(pattern, bare)
        if match is None:
            continue
        if '{}' in target:  # 1-based branch number -> 0-based index
            target = target.format(int(match.group(1)) - 1)
            return target + bare[match.end():]
        return re.sub(pattern, target, bare)
    raise ValueError(
        f'`state_dict` should be a checkpoint of the seed\'s segmentation '
        f'code (CIRKD DeepLabV3/PSPNet or its deep-stem ResNet), but has '
        f'the key {key!r}; convert only those files with this function.')


@FUNCTIONS.register_module(name='cirkd_segmentation')
def cirkd_to_mmseg(state_dict: StateDict) -> StateDict:
    """The seed's segmentation checkpoints -> mmseg ``EncoderDecoder`` keys.

    Reads both files the seed's scripts load: the teacher
    (``deeplabv3_resnet101_citys_best_model.pth``: ``pretrained.*`` for the
    backbone, ``head.*``, ``auxlayer.*``) and the students' ImageNet
    backbone (``resnet18-imagenet.pth``: un-prefixed ResNet keys; its
    ``fc`` is dropped). The targets are :class:`ResNetV1s`,
    :class:`SeedASPPHead` or mmseg's ``PSPHead``, and ``FCNHead``.
    Keys already in mmseg's layout are kept.

    Raises:
        ValueError: a key belongs to none of the seed's networks.
    """
    out = OrderedDict()
    for key, value in state_dict.items():
        if key.startswith(('backbone.', 'decode_head.', 'auxiliary_head.')):
            out[key] = value
            continue
        target = _cirkd_key(key)
        if target is not None:
            out[target] = value
    return out


def get_converter(converter: Optional[Converter]) -> Optional[Callable]:
    """Resolve a converter given by registered name or as a callable."""
    if converter is None or callable(converter):
        return converter
    if isinstance(converter, str):
        func = FUNCTIONS.get(converter)
        if func is not None:
            return func
    raise ValueError('`teacher_ckpt_converter` should be None, a callable '
                     'or a registered name such as "torchvision_resnet", '
                     f'"cifar_backbone" or "cirkd_segmentation", but got '
                     f'{converter!r}.')


def convert_file(src: str,
                 dst: str,
                 converter: Callable[[StateDict], StateDict],
                 meta_keys: tuple = ()) -> dict:
    """Convert the checkpoint ``src`` with ``converter`` and save ``dst``.

    ``src`` is read like a teacher checkpoint (path, URL, zoo scheme; never
    unpickling code). The result is an MMEngine checkpoint; ``meta_keys``
    of the source (e.g. its epoch and accuracy) are kept in its meta.
    """
    checkpoint = load_untrusted(src)
    meta = {'converted_from': src}
    if isinstance(checkpoint, dict):
        meta.update({
            key: checkpoint[key]
            for key in meta_keys
            if key in checkpoint and not torch.is_tensor(checkpoint[key])
        })
    out = dict(meta=meta, state_dict=converter(extract_state_dict(checkpoint)))
    torch.save(out, dst)
    return out


def convert_cli(description: str, src_help: str,
                convert: Callable[[str, str], dict]) -> None:
    """The command line of the tools/convert_*.py scripts."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('src', help=src_help)
    parser.add_argument('dst', help='where to write the MMEngine checkpoint')
    args = parser.parse_args()
    out = convert(args.src, args.dst)
    print(f'{len(out["state_dict"])} tensors written to {args.dst}')
