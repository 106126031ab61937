"""Helpers of the classification recipe tests: configs, batches, models."""
import copy
import functools
import glob
import os.path as osp
from typing import Dict, List

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

import distkd_mm  # noqa: F401
import distkd_mm.datasets  # noqa: F401  (DISTRandAugment)
import distkd_mm.models  # noqa: F401
import distkd_mm.models.heads  # noqa: F401  (DropoutLinearClsHead)
import distkd_mm.optim  # noqa: F401
from distkd_mm.distillers.teacher import teacher_model_cfg

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CONFIG_DIR = osp.join(REPO, 'configs', 'mmpretrain')
CONFIGS = sorted(
    osp.basename(p) for p in glob.glob(osp.join(CONFIG_DIR, '*.py')))

# Test-only shrinking of the largest teachers (the configs are unchanged):
# same model type, fewer layers, so a CPU step stays cheap.
SMALL_SWIN = dict(embed_dims=32, depths=[1, 1, 1, 1], num_heads=[1, 2, 2, 4])
# The input of the train steps: the smallest every net takes (a 1x1 map
# after a ResNet's stride 32). Swin pads its maps smaller than a window.
STEP_SIZE = 32


@functools.lru_cache(maxsize=None)
def _load(name: str) -> Config:
    return Config.fromfile(osp.join(CONFIG_DIR, name))


def load(name: str) -> Config:
    """The config, parsed once per session (each caller gets a copy)."""
    return copy.deepcopy(_load(name))


def input_size(name: str) -> int:
    """The image size of the config's data pipeline."""
    return 32 if 'cifar' in name else 224


def shrink_teacher(teacher) -> dict:
    """The teacher as a model dict, with fewer layers where it is big."""
    model, _ = teacher_model_cfg(teacher)
    backbone = model['backbone']
    if backbone['type'] == 'ResNet' and backbone['depth'] > 50:
        backbone['depth'] = 50
    if backbone['type'] == 'SwinTransformer':
        backbone['arch'] = copy.deepcopy(SMALL_SWIN)
        model['head']['in_channels'] = SMALL_SWIN['embed_dims'] * 8
    model.pop('init_cfg', None)
    return model


def pad_small_maps(model: dict) -> None:
    """Let a Swin backbone take :data:`STEP_SIZE` inputs: it pads feature
    maps smaller than its window (no change at 224 px)."""
    if model['backbone']['type'] == 'SwinTransformer':
        model['backbone']['pad_small_map'] = True


def build_distiller(cfg: Config) -> torch.nn.Module:
    """Build ``cfg.model`` the way the Runner does, without any download,
    for inputs of :data:`STEP_SIZE`."""
    model_cfg = copy.deepcopy(cfg.model)
    model_cfg.teacher_ckpt = None
    model_cfg.teacher = shrink_teacher(model_cfg.teacher)
    pad_small_maps(model_cfg.teacher)
    pad_small_maps(model_cfg.student)
    model_cfg.setdefault('data_preprocessor', cfg.get('data_preprocessor'))
    with DefaultScope.overwrite_default_scope(cfg.default_scope):
        model = MODELS.build(model_cfg)
    # No init_weights(): the step needs no particular initialisation, and
    # MMEngine logs every parameter's initialiser (slow on CPU).
    return model


def make_batch(n: int,
               size: int,
               num_classes: int,
               seed: int = 0) -> Dict[str, List]:
    """A batch as the dataloader yields it: uint8 images + labels."""
    from mmpretrain.structures import DataSample
    g = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
        for _ in range(n)
    ]
    samples = [
        DataSample().set_gt_label(i * 7 % num_classes) for i in range(n)
    ]
    return dict(inputs=inputs, data_samples=samples)
