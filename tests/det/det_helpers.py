"""Detection test helpers: generated COCO data, tiny detectors, configs.

A module with a unique name (not ``conftest``) so test files can import it
whatever other ``conftest.py`` files pytest has loaded.
"""
import copy
import functools
import json
import os
import os.path as osp
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from distkd_testing import unformatted
from mmengine.config import Config, ConfigDict
from mmengine.registry import MODELS, DefaultScope

import distkd_mm  # noqa: F401  (registers Distiller, DISTLoss, ...)
# Imported directly so they register even before the package imports them.
import distkd_mm.distillers.connectors  # noqa: F401
import distkd_mm.distillers.teacher_forward  # noqa: F401
import distkd_mm.losses.mimic_loss  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
DET_CONFIGS = osp.join(REPO, 'configs', 'mmdet')
RETINA_DIST = osp.join(DET_CONFIGS,
                       'dist_retinanet-x101_retinanet-r50_8xb2-2x_coco.py')
RETINA_MIMIC = osp.join(
    DET_CONFIGS, 'dist-mimic_retinanet-x101_retinanet-r50_8xb2-2x_coco.py')
FRCNN_DIST = osp.join(
    DET_CONFIGS, 'dist_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_coco.py')
FRCNN_MIMIC = osp.join(
    DET_CONFIGS,
    'dist-mimic_cascade-mask-rcnn-x101_faster-rcnn-r50_8xb2-2x_coco.py')
# Small enough for 2 CPU cores; the generated images are 64-96 px.
SCALE = (96, 64)

# COCO's 80 category ids (1..90 with gaps), in the order of mmdet's classes.
COCO_IDS = [
    i for i in range(1, 91)
    if i not in (12, 26, 29, 30, 45, 66, 68, 69, 71, 83)
]
# (category id, colour, shape) of the objects drawn: person, car, dog.
OBJECTS = [(1, (220, 40, 40), 'rect'), (3, (40, 200, 60), 'circle'),
           (18, (50, 70, 230), 'rect')]
# One image each: a Runner run is one training step and one evaluation.
TRAIN_SIZES = [(64, 80)]
VAL_SIZES = [(96, 88)]


def _draw(img: np.ndarray, rng: np.random.Generator, n_objects: int,
          image_id: int, first_ann_id: int) -> List[dict]:
    """Draw filled shapes on ``img`` and return their COCO annotations."""
    h, w = img.shape[:2]
    anns = []
    for k in range(n_objects):
        cat_id, colour, shape = OBJECTS[(image_id + k) % len(OBJECTS)]
        bw, bh = (int(v) for v in rng.integers(16, min(w, h) // 2 + 1, 2))
        if shape == 'circle':
            bw = bh = min(bw, bh)
        x0 = int(rng.integers(0, w - bw))
        y0 = int(rng.integers(0, h - bh))
        if shape == 'rect':
            img[y0:y0 + bh, x0:x0 + bw] = colour
            area = float(bw * bh)
        else:
            r = bw / 2
            yy, xx = np.mgrid[:h, :w]
            inside = (yy - y0 - r + .5)**2 + (xx - x0 - r + .5)**2 <= r * r
            img[inside] = colour
            area = float(inside.sum())
        anns.append(
            dict(
                id=first_ann_id + k,
                image_id=image_id,
                category_id=cat_id,
                bbox=[x0, y0, bw, bh],
                area=area,
                iscrowd=0))
    return anns


def write_coco(root: str, split: str, sizes: List[tuple], seed: int) -> str:
    """Write ``<root>/<split>/*.png`` and ``annotations/<split>.json``.

    Each image holds two filled shapes (red rectangles "person", green
    discs "car", blue rectangles "dog") on a dark noisy background; the json
    lists all 80 COCO categories with their real ids.
    """
    from mmdet.datasets import CocoDataset
    from PIL import Image
    rng = np.random.default_rng(seed)
    os.makedirs(osp.join(root, split), exist_ok=True)
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    images, anns = [], []
    for image_id, (h, w) in enumerate(sizes, start=1):
        img = rng.integers(0, 50, (h, w, 3), dtype=np.uint8)
        anns += _draw(img, rng, 2, image_id, len(anns) + 1)
        name = f'{split}_{image_id:03d}.png'
        Image.fromarray(img).save(osp.join(root, split, name))
        images.append(dict(id=image_id, file_name=name, height=h, width=w))
    categories = [
        dict(id=i, name=name)
        for i, name in zip(COCO_IDS, CocoDataset.METAINFO['classes'])
    ]
    ann_file = osp.join(root, 'annotations', f'{split}.json')
    with open(ann_file, 'w') as f:
        json.dump(
            dict(images=images, annotations=anns, categories=categories), f)
    return ann_file


def set_resize_scale(pipeline: List[dict], scale: tuple) -> None:
    for step in pipeline:
        if step['type'] == 'Resize':
            step['scale'] = scale


def det_runner_cfg(config: str,
                   coco_root: str,
                   work_dir: str,
                   teacher_ckpt: str,
                   scale: tuple = SCALE) -> Config:
    """Load a detection config, overriding only data and sizes.

    Dataset paths and annotation files point at the generated COCO data,
    images are resized to ``scale``, batches hold 1 image with no worker
    processes, and one epoch (one iteration on the one-image train split)
    is trained and then evaluated. The teacher checkpoint is a local file.
    The students' score threshold drops to 0 so an untrained student still
    returns boxes for CocoMetric to score (and Faster R-CNN tests on 100
    proposals).
    """
    cfg = unformatted(Config.fromfile(config))
    cfg.work_dir = work_dir
    cfg.model.teacher_ckpt = teacher_ckpt
    for name, split in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        loader = cfg[f'{name}_dataloader']
        loader.update(batch_size=1, num_workers=0, persistent_workers=False)
        loader.dataset.update(
            data_root=coco_root,
            ann_file=f'annotations/{split}.json',
            data_prefix=dict(img=f'{split}/'))
        set_resize_scale(loader.dataset.pipeline, scale)
    for name in ('val', 'test'):
        cfg[f'{name}_evaluator'].ann_file = osp.join(coco_root, 'annotations',
                                                     'val.json')
    cfg.train_cfg.max_epochs = 1
    test_cfg = cfg.model.student.test_cfg
    if 'rcnn' in test_cfg:
        test_cfg.rcnn.score_thr = 0.
        # 100 proposals instead of 1000: NMS of 1000 x 80 boxes at score 0
        # would dominate the test's time.
        test_cfg.rpn.update(nms_pre=100, max_per_img=100)
    else:
        test_cfg.score_thr = 0.
    cfg.default_hooks.logger.interval = 1
    if 'teacher_gate' in cfg.default_hooks:
        # Random test teachers would stop at the gate (its own test is
        # tests/hooks/test_teacher_gate.py).
        cfg.default_hooks.teacher_gate.enable = False
    cfg.log_level = 'WARNING'
    cfg.randomness = dict(seed=0)
    return cfg


# ---------------------------------------------------------------- tiny models
def _shrink(cfg: Any) -> Any:
    """Shrink the 256/1024-wide layers of an mmdet model dict to 16/32
    (and GroupNorm from 32 to 4 groups)."""
    if isinstance(cfg, list):
        return [_shrink(c) for c in cfg]
    if not isinstance(cfg, dict):
        return cfg
    out = {}
    for key, value in cfg.items():
        if key in ('in_channels', 'out_channels', 'feat_channels',
                   'conv_out_channels') and value == 256:
            value = 16
        elif key == 'fc_out_channels' and value == 1024:
            value = 32
        elif key == 'num_groups' and value == 32:  # GroupNorm of 16 ch
            value = 4
        out[key] = _shrink(value)
    return out


def tiny_backbone(width: int = 8) -> dict:
    return dict(
        type='ResNet',
        depth=18,
        base_channels=width,
        stem_channels=width,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='BN', requires_grad=True),
        init_cfg=None)


@functools.lru_cache(maxsize=None)
def _recipe_model_cached(recipe: str) -> dict:
    from mmengine.hub import get_config
    return get_config(f'mmdet::{recipe}').model.to_dict()


def _recipe_model(recipe: str) -> dict:
    """An mmdet recipe's model dict (each recipe file parsed once)."""
    return copy.deepcopy(_recipe_model_cached(recipe))


def tiny_detector(recipe: str,
                  num_classes: Optional[int] = None,
                  width: int = 8) -> ConfigDict:
    """A tiny version of an mmdet recipe's model: ResNet-18 at ``width``
    base channels, 16-channel FPN and heads. Same layout, same taps."""
    model = _shrink(_recipe_model(recipe))
    model['backbone'] = tiny_backbone(width)
    model['neck']['in_channels'] = [width * 2**i for i in range(4)]
    model.pop('init_cfg', None)
    head_type = model.get('bbox_head', {}).get('type')
    if head_type in ('FCOSHead', 'ATSSHead', 'GFLHead'):
        # Their default GroupNorm has 32 groups: too many for 16 channels.
        model['bbox_head']['norm_cfg'] = dict(
            type='GN', num_groups=4, requires_grad=True)
    if num_classes is not None:
        _set_num_classes(model, num_classes)
    # mmdet reads `train_cfg.rpn` etc. as attributes.
    return ConfigDict(model)


def _set_num_classes(cfg: Any, num_classes: int) -> None:
    if isinstance(cfg, list):
        for c in cfg:
            _set_num_classes(c, num_classes)
    elif isinstance(cfg, dict):
        for key, value in cfg.items():
            if key == 'num_classes':
                cfg[key] = num_classes
            else:
                _set_num_classes(value, num_classes)


def build_in_mmdet(cfg: dict) -> torch.nn.Module:
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(copy.deepcopy(cfg))


def det_samples(n: int = 2,
                size: tuple = (64, 96),
                num_classes: int = 80,
                seed: int = 0) -> Dict[str, Any]:
    """A raw batch: random uint8 images with two labelled boxes each."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    h, w = size
    inputs, samples = [], []
    for i in range(n):
        inputs.append(torch.randint(0, 256, (3, h, w), generator=g).byte())
        sample = DetDataSample(
            metainfo=dict(
                img_shape=(h, w),
                ori_shape=(h, w),
                scale_factor=(1., 1.),
                pad_shape=(h, w),
                batch_input_shape=(h, w)))
        gt = InstanceData()
        gt.bboxes = torch.tensor([[4., 6., 40., 50.], [30., 20., 90., 60.]])
        gt.labels = torch.tensor([i % num_classes, (i + 2) % num_classes])
        sample.gt_instances = gt
        samples.append(sample)
    return dict(inputs=inputs, data_samples=samples)


# ----------------------------------------------------------------------- spies
class CallSpy:
    """Counts calls of teacher modules (forward hooks) and methods."""

    def __init__(self) -> None:
        self.calls: Dict[str, int] = {}
        self._handles = []

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def modules(self, model: torch.nn.Module, paths: List[str]) -> None:
        named = dict(model.named_modules())
        for path in paths:
            self.calls.setdefault(path, 0)
            self._handles.append(named[path].register_forward_pre_hook(
                lambda m, a, path=path: self._count(path)))

    def methods(self, owner: Any, names: List[str], label: str) -> None:
        for name in names:
            original = getattr(owner, name, None)
            if original is None:
                continue
            key = f'{label}.{name}()'
            self.calls.setdefault(key, 0)

            def wrapper(*args, _orig=original, _key=key, **kwargs):
                self._count(_key)
                return _orig(*args, **kwargs)

            setattr(owner, name, wrapper)
