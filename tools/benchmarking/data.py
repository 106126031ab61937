"""Synthetic inputs of the real sizes: task batches and dense DIST maps."""
from typing import Tuple

import numpy as np
import torch

# A RetinaNet P3 classification map at 800x1216: N x (9 anchors x 80) x H x W.
DIST_MAP = (2, 720, 100, 168)


def make_batch(kind: str, num: int, size: Tuple[int, int]) -> dict:
    """Random uint8 images and the data samples the library's losses read,
    as a dataloader yields them (before the data preprocessor)."""
    g = torch.Generator().manual_seed(0)
    height, width = size
    inputs = [
        torch.randint(0, 256, (3, height, width), generator=g).byte()
        for _ in range(num)
    ]
    make = dict(cls=_cls_sample, det=_det_sample, seg=_seg_sample)[kind]
    samples = [make(g, height, width) for _ in range(num)]
    return dict(inputs=inputs, data_samples=samples)


def _cls_sample(g: torch.Generator, height: int, width: int):
    from mmpretrain.structures import DataSample
    sample = DataSample(
        metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
    return sample.set_gt_label(int(torch.randint(1000, (), generator=g)))


def _det_sample(g: torch.Generator, height: int, width: int, boxes: int = 3):
    """Boxes, labels and box-shaped masks (a Cascade Mask R-CNN teacher in
    loss mode needs masks; the students ignore them)."""
    from mmdet.structures import DetDataSample
    from mmdet.structures.mask import BitmapMasks
    from mmengine.structures import InstanceData
    side = torch.tensor([width, height])
    corner = torch.rand(boxes, 2, generator=g) * 0.6 * side
    extent = (torch.rand(boxes, 2, generator=g) * 0.3 + 0.1) * side
    bboxes = torch.cat([corner, corner + extent], dim=1)
    masks = np.zeros((boxes, height, width), np.uint8)
    for mask, (x0, y0, x1, y1) in zip(masks, bboxes.int().tolist()):
        mask[y0:y1, x0:x1] = 1
    shape = (height, width)
    sample = DetDataSample(
        metainfo=dict(
            img_shape=shape,
            ori_shape=shape,
            pad_shape=shape,
            scale_factor=(1., 1.)))
    sample.gt_instances = InstanceData(
        bboxes=bboxes,
        labels=torch.randint(80, (boxes, ), generator=g),
        masks=BitmapMasks(masks, height, width))
    return sample


def _seg_sample(g: torch.Generator, height: int, width: int):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    label = torch.randint(19, (1, height, width), generator=g)
    label[:, :height // 8] = 255  # an ignored band, as real masks have
    shape = (height, width)
    sample = SegDataSample(
        metainfo=dict(img_shape=shape, ori_shape=shape, pad_shape=shape))
    sample.gt_sem_seg = PixelData(data=label)
    return sample


def dist_shape(scale: float) -> Tuple[int, ...]:
    """``DIST_MAP`` with its height and width multiplied by ``scale``."""
    n, c, h, w = DIST_MAP
    return n, c, max(1, round(h * scale)), max(1, round(w * scale))


def dist_maps(scale: float, device: str) -> Tuple[torch.Tensor, torch.Tensor]:
    """A student and a teacher map of ``dist_shape(scale)``, the same for
    every variant, so that their results can be compared."""
    g = torch.Generator().manual_seed(0)
    student = torch.randn(dist_shape(scale), generator=g).to(device)
    teacher = torch.randn(dist_shape(scale), generator=g).to(device)
    return student, teacher
