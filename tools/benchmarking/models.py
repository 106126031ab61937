"""The Distillers of the benchmarked configs, with random weights."""
import os.path as osp
import warnings
from typing import Tuple

import torch

from .tasks import REPO, TEACHER_MODES, Task


def strip_pretrained(cfg: object) -> None:
    """Drop every ``pretrained`` URL and ``Pretrained`` init in a config, so
    nothing can download (the benchmark never needs trained weights)."""
    if isinstance(cfg, dict):
        if isinstance(cfg.get('pretrained'), str):
            cfg['pretrained'] = None
        init = cfg.get('init_cfg')
        if isinstance(init, dict) and init.get('type') == 'Pretrained':
            cfg['init_cfg'] = None
        for value in cfg.values():
            strip_pretrained(value)
    elif isinstance(cfg, (list, tuple)):
        for value in cfg:
            strip_pretrained(value)


def build_distiller(task: Task,
                    size: Tuple[int, int],
                    device: str,
                    mode: str = 'eager') -> torch.nn.Module:
    """The config's Distiller with random weights, on ``device``, its
    teacher run as ``mode`` says (a key of ``TEACHER_MODES``)."""
    from mmengine.config import Config
    from mmengine.registry import MODELS, DefaultScope
    from mmengine.utils import import_modules_from_strings
    cfg = Config.fromfile(osp.join(REPO, task.config))
    import_modules_from_strings(**cfg.get('custom_imports', {}))
    # Modules the configs name (two-stage teachers, segmentation heads).
    import_modules_from_strings(
        ['distkd_mm', 'distkd_mm.distillers.teacher_forward'])
    model_cfg = cfg.model
    model_cfg.teacher_ckpt = None
    model_cfg.teacher_pretrained = False
    model_cfg.update(TEACHER_MODES[mode])
    if 'data_preprocessor' in cfg:  # as the Runner passes it
        model_cfg.setdefault('data_preprocessor', cfg.data_preprocessor)
    strip_pretrained(model_cfg.student)
    preprocessor = model_cfg.student.get('data_preprocessor') or {}
    if 'size' in preprocessor:  # mmseg pads to the crop size
        preprocessor['size'] = size
        # The teacher's config keeps its crop: accept the student's.
        model_cfg.teacher_preprocess = 'normalize_only'
    torch.manual_seed(0)
    scope = cfg.get('default_scope', 'mmengine')
    with warnings.catch_warnings(), \
            DefaultScope.overwrite_default_scope(scope):
        warnings.filterwarnings('ignore', message='.*teacher_ckpt')
        model = MODELS.build(model_cfg)
    return model.to(device).train()
