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


def get_converter(converter: Optional[Converter]) -> Optional[Callable]:
    """Resolve a converter given by registered name or as a callable."""
    if converter is None or callable(converter):
        return converter
    if isinstance(converter, str):
        func = FUNCTIONS.get(converter)
        if func is not None:
            return func
    raise ValueError('`teacher_ckpt_converter` should be None, a callable '
                     'or a registered name such as "torchvision_resnet" or '
                     f'"cifar_backbone", but got {converter!r}.')


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
