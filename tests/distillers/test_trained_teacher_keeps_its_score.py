"""A trained teacher scores inside a Distiller what it scores on its own,
whatever the student's preprocessing: segmentation (mmseg, IoUMetric) and
detection (mmdet, CocoMetric). The classification case is
tests/hooks/test_distill_hook.py.

Each teacher is trained here for a few seconds on generated images whose
classes are colours, so channel order and mean/std matter. Its own score
comes from its own data preprocessor; the score inside the Distiller from
the teacher gate's evaluation through a real Runner (the student's
preprocessor, then ``Distiller.teacher_inputs``); the score with
``teacher_preprocess='student'`` (the student's batch as it is) shows
that the equality is the mapping's.
"""
import copy
from typing import Callable, List, Sequence

import numpy as np
import pytest
import torch
from distkd_testing import one_term_distiller
from mmengine.config import ConfigDict
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import Runner
from torch.utils.data import DataLoader, Dataset

from distkd_mm.apis.cli import unique_experiment_name
from distkd_mm.hooks import TeacherGateHook

pytest.importorskip('mmdet')
pytest.importorskip('mmseg')
pytest.importorskip('pycocotools')

IMAGENET_RGB = dict(
    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])
BATCH = 8


class GeneratedSet(Dataset):
    """Raw uint8 images (BGR, as the libraries' loaders give them) and
    fresh data samples each time, as a dataset's pipeline makes them."""

    def __init__(self, items: list, make_sample: Callable,
                 classes: Sequence[str]) -> None:
        self.items = items
        self.make_sample = make_sample
        self.metainfo = dict(classes=tuple(classes))

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        image = self.items[index][0]
        return dict(
            inputs=image.clone(),
            data_samples=self.make_sample(index, self.items[index]))


def batches(dataset: GeneratedSet) -> List[dict]:
    return [
        pseudo_collate([dataset[i] for i in range(j, j + BATCH)])
        for j in range(0, len(dataset), BATCH)
    ]


def build(cfg: dict, scope: str) -> torch.nn.Module:
    with DefaultScope.overwrite_default_scope(scope):
        return MODELS.build(copy.deepcopy(cfg))


def train_teacher(cfg: dict, scope: str, dataset: GeneratedSet, iters: int,
                  lr: float, path: str) -> torch.nn.Module:
    """Train ``cfg`` from a fixed seed with AdamW and a one-cycle schedule;
    save its weights at ``path`` as the model zoo does."""
    torch.manual_seed(0)
    model = build(cfg, scope)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=iters, pct_start=0.1)
    train = batches(dataset)
    model.train()
    for i in range(iters):
        data = model.data_preprocessor(
            copy.deepcopy(train[i % len(train)]), True)
        losses = model(**data, mode='loss')
        loss = sum(v for k, v in losses.items() if 'loss' in k)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.)
        optimizer.step()
        schedule.step()
    model.eval()
    torch.save({'meta': {}, 'state_dict': model.state_dict()}, path)
    return model


def own_score(model: torch.nn.Module, dataset: GeneratedSet, metric: dict,
              scope: str) -> dict:
    """The model's metrics on its own data preprocessor's batches."""
    with DefaultScope.overwrite_default_scope(scope):
        evaluator = Evaluator(copy.deepcopy(metric))
    evaluator.dataset_meta = dataset.metainfo
    model.eval()
    with torch.no_grad():
        for batch in batches(dataset):
            data = model.data_preprocessor(copy.deepcopy(batch), False)
            outputs = model(**data, mode='predict')
            evaluator.process(data_samples=outputs, data_batch=batch)
    return evaluator.evaluate(len(dataset))


def gate_score(distiller: torch.nn.Module, dataset: GeneratedSet, metric: dict,
               scope: str, work_dir: str) -> dict:
    """The teacher's metrics as the teacher gate measures them before
    training: a real Runner's validation loop, the student's data
    preprocessor, then the Distiller's teacher inputs. The Runner's
    default scope is dropped afterwards (MMEngine keeps the latest as the
    current one), so that later tests build in their own scope."""
    with DefaultScope.overwrite_default_scope(scope):
        runner = Runner(
            model=distiller,
            work_dir=work_dir,
            experiment_name=unique_experiment_name('keeps_score'),
            val_dataloader=DataLoader(
                dataset, batch_size=BATCH, collate_fn=pseudo_collate),
            val_cfg=dict(),
            val_evaluator=copy.deepcopy(metric),
            default_scope=scope,
            log_level='WARNING')
        metrics, images = TeacherGateHook(
            max_eval_batches=None).evaluate_teacher(runner)
    assert images == len(dataset)
    return metrics


def distiller_cfg(student: dict, teacher: dict, ckpt: str, tap: str) -> dict:
    return one_term_distiller(
        student,
        teacher,
        tap,
        tap,
        dict(type='DISTLoss', tau=1.0, loss_weight=1.0),
        teacher_ckpt=ckpt)


# --------------------------------------------------------------- segmentation
# BGR colours of the classes (background, red, green, blue): a pixel's
# class is its colour, so a flipped channel order swaps red and blue.
SEG_CLASSES = ('background', 'red', 'green', 'blue')
SEG_COLOURS = [(30, 30, 30), (40, 40, 210), (40, 200, 40), (210, 40, 40)]
SEG_SIZE = 64


def seg_scenes(n: int, seed: int) -> list:
    """Overlapping rectangles of the three colours on a dark background,
    with pixel noise; the label of a pixel is the colour drawn last."""
    rng = np.random.default_rng(seed)
    scenes = []
    for _ in range(n):
        label = np.zeros((SEG_SIZE, SEG_SIZE), np.int64)
        for k in range(4):
            h, w = (int(v) for v in rng.integers(12, 33, 2))
            y = int(rng.integers(0, SEG_SIZE - h))
            x = int(rng.integers(0, SEG_SIZE - w))
            label[y:y + h, x:x + w] = 1 + k % 3
        image = np.array(SEG_COLOURS, np.int16)[label] + rng.integers(
            -25, 26, (SEG_SIZE, SEG_SIZE, 3))
        image = np.clip(image, 0, 255).astype(np.uint8)
        scenes.append((torch.from_numpy(image).permute(2, 0, 1).contiguous(),
                       torch.from_numpy(label)))
    return scenes


def seg_sample(index: int, item: tuple):
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    shape = (SEG_SIZE, SEG_SIZE)
    sample = SegDataSample(metainfo=dict(img_shape=shape, ori_shape=shape))
    sample.gt_sem_seg = PixelData(data=item[1][None].clone())
    return sample


def segmentor(pre: dict, width: int) -> dict:
    """A tiny mmseg EncoderDecoder: two ResNetV1c stages (output stride
    4) and mmseg's FCN decode head."""
    norm = dict(type='BN', requires_grad=True)
    return dict(
        type='EncoderDecoder',
        data_preprocessor=dict(
            type='SegDataPreProcessor',
            pad_val=0,
            seg_pad_val=255,
            size=(SEG_SIZE, SEG_SIZE),
            **pre),
        backbone=dict(
            type='ResNetV1c',
            depth=18,
            stem_channels=width,
            base_channels=width,
            num_stages=2,
            out_indices=(0, 1),
            strides=(1, 1),
            dilations=(1, 1),
            norm_cfg=norm,
            style='pytorch'),
        decode_head=dict(
            type='FCNHead',
            in_channels=width * 2,
            in_index=1,
            channels=16,
            num_convs=1,
            concat_input=False,
            dropout_ratio=0.,
            num_classes=len(SEG_CLASSES),
            norm_cfg=norm,
            align_corners=False,
            loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
        train_cfg=dict(),
        test_cfg=ConfigDict(mode='whole'))


SEG_TEACHER = segmentor(
    dict(mean=[0, 0, 0], std=[255, 255, 255], bgr_to_rgb=False), width=8)
SEG_STUDENT = segmentor(dict(bgr_to_rgb=True, **IMAGENET_RGB), width=4)
IOU = dict(type='IoUMetric', iou_metrics=['mIoU'])


def trained(tmp_path_factory, cfg: dict, scope: str, scenes, sample, classes,
            sizes: tuple, metric: dict) -> tuple:
    """A teacher trained on generated scenes (200 iterations): its
    checkpoint, its validation set and its own score there."""
    path = str(tmp_path_factory.mktemp(scope) / 'teacher.pth')
    train = GeneratedSet(scenes(sizes[0], seed=0), sample, classes)
    val = GeneratedSet(scenes(sizes[1], seed=1), sample, classes)
    model = train_teacher(cfg, scope, train, 200, 3e-3, path)
    return path, val, own_score(model, val, metric, scope)


def inside_and_unmapped(cfg: dict, scope: str, dataset: GeneratedSet,
                        metric: dict, tmp_path) -> tuple:
    """The teacher's scores through the gate of a Distiller built from
    ``cfg``: with its own inputs derived (the mapping logged as a channel
    flip), and with the student's batch as it is."""
    distiller = build(cfg, scope)
    mapping = distiller.teacher_run.inputs.describe_mapping()
    assert 'channel order flipped' in mapping, mapping
    inside = gate_score(distiller, dataset, metric, scope,
                        str(tmp_path / 'own'))
    unmapped = gate_score(
        build(dict(cfg, teacher_preprocess='student'), scope), dataset, metric,
        scope, str(tmp_path / 'student'))
    return inside, unmapped


@pytest.fixture(scope='module')
def seg_teacher(tmp_path_factory) -> tuple:
    """A segmentation teacher trained on BGR pixels in 0..1 (mean 0, std
    255)."""
    return trained(tmp_path_factory, SEG_TEACHER, 'mmseg', seg_scenes,
                   seg_sample, SEG_CLASSES, (64, 16), IOU)


@pytest.mark.slow
def test_a_trained_segmentation_teacher_keeps_its_miou_in_a_distiller(
        seg_teacher, tmp_path):
    path, val, own = seg_teacher
    # Chance is 25 % mIoU at best; the teacher learned the colours.
    assert own['mIoU'] > 80, own
    inside, unmapped = inside_and_unmapped(
        distiller_cfg(SEG_STUDENT, SEG_TEACHER, path, 'decode_head.conv_seg'),
        'mmseg', val, IOU, tmp_path)
    assert abs(inside['mIoU'] - own['mIoU']) <= 1e-6, (inside, own)
    # The student's batch as it is (RGB, ImageNet mean/std): the same
    # teacher falls far, so the equality above is the mapping's.
    assert unmapped['mIoU'] < own['mIoU'] - 30, (unmapped, own)


# ------------------------------------------------------------------ detection
# BGR colours of the two classes: red and blue rectangles.
DET_CLASSES = ('red', 'blue')
DET_COLOURS = [(40, 40, 220), (220, 60, 40)]
# (height, width): none a multiple of 32, so batches are padded.
DET_SIZES = [(64, 80), (72, 88), (80, 64), (88, 72), (70, 94), (94, 70)]


def det_scenes(n: int, seed: int) -> list:
    """One or two noisy rectangles on a noisy grey background."""
    rng = np.random.default_rng(seed)
    scenes = []
    for i in range(n):
        h, w = DET_SIZES[i % len(DET_SIZES)]
        image = rng.integers(60, 110, (h, w, 3)).astype(np.int16)
        boxes, labels = [], []
        for _ in range(int(rng.integers(1, 3))):
            label = int(rng.integers(0, len(DET_CLASSES)))
            bh, bw = (int(v) for v in rng.integers(14, 40, 2))
            y, x = int(rng.integers(0, h - bh)), int(rng.integers(0, w - bw))
            image[y:y + bh,
                  x:x + bw] = np.array(DET_COLOURS[label]) + rng.integers(
                      -20, 21, (bh, bw, 3))
            boxes.append([x, y, x + bw, y + bh])
            labels.append(label)
        image = np.clip(image, 0, 255).astype(np.uint8)
        scenes.append(
            (torch.from_numpy(image).permute(2, 0, 1).contiguous(),
             torch.tensor(boxes, dtype=torch.float32), torch.tensor(labels)))
    return scenes


def det_sample(index: int, item: tuple):
    """A DetDataSample as PackDetInputs makes it; ``instances`` is the
    ground truth CocoMetric reads without an annotation file."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    image, boxes, labels = item
    shape = tuple(image.shape[1:])
    sample = DetDataSample(
        metainfo=dict(
            img_id=index,
            img_shape=shape,
            ori_shape=shape,
            scale_factor=(1., 1.),
            instances=[
                dict(bbox=b.tolist(), bbox_label=int(c), ignore_flag=0)
                for b, c in zip(boxes, labels)
            ]))
    sample.gt_instances = InstanceData(
        bboxes=boxes.clone(), labels=labels.clone())
    return sample


def detector(pre: dict, width: int) -> dict:
    """A tiny mmdet FCOS: ResNet-18 layout at ``width`` base channels,
    16-channel FPN and head, strides 8/16/32."""
    return ConfigDict(
        type='FCOS',
        data_preprocessor=dict(
            type='DetDataPreprocessor', pad_size_divisor=32, **pre),
        backbone=dict(
            type='ResNet',
            depth=18,
            base_channels=width,
            stem_channels=width,
            num_stages=4,
            out_indices=(1, 2, 3),
            norm_cfg=dict(type='BN', requires_grad=True),
            style='pytorch'),
        neck=dict(
            type='FPN',
            in_channels=[width * 2, width * 4, width * 8],
            out_channels=16,
            num_outs=3),
        bbox_head=dict(
            type='FCOSHead',
            num_classes=len(DET_CLASSES),
            in_channels=16,
            stacked_convs=2,
            feat_channels=16,
            strides=[8, 16, 32],
            regress_ranges=((-1, 32), (32, 64), (64, 1e8)),
            norm_cfg=dict(type='GN', num_groups=4, requires_grad=True),
            center_sampling=True,
            center_sample_radius=1.5,
            norm_on_bbox=True,
            centerness_on_reg=True,
            loss_cls=dict(
                type='FocalLoss',
                use_sigmoid=True,
                gamma=2.0,
                alpha=0.25,
                loss_weight=1.0),
            loss_bbox=dict(type='GIoULoss', loss_weight=1.0),
            loss_centerness=dict(
                type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0)),
        test_cfg=dict(
            nms_pre=100,
            min_bbox_size=0,
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=20))


# Teacher pytorch style (RGB, ImageNet mean/std), student caffe style
# (BGR, caffe mean, std 1); both pad to multiples of 32.
DET_TEACHER = detector(dict(bgr_to_rgb=True, **IMAGENET_RGB), width=8)
DET_STUDENT = detector(
    dict(mean=[103.53, 116.28, 123.675], std=[1., 1., 1.]), width=4)
COCO = dict(type='CocoMetric', metric='bbox')


@pytest.fixture(scope='module')
def det_teacher(tmp_path_factory) -> tuple:
    """A pytorch-style FCOS teacher trained on the rectangles."""
    return trained(tmp_path_factory, DET_TEACHER, 'mmdet', det_scenes,
                   det_sample, DET_CLASSES, (96, 24), COCO)


@pytest.mark.slow
def test_a_trained_detection_teacher_keeps_its_map_in_a_distiller(
        det_teacher, tmp_path):
    path, val, own = det_teacher
    key = 'coco/bbox_mAP'
    # A box placed without looking at the image scores ~0 mAP.
    assert own[key] > 0.3, own
    inside, unmapped = inside_and_unmapped(
        distiller_cfg(DET_STUDENT, DET_TEACHER, path, 'bbox_head.conv_cls'),
        'mmdet', val, COCO, tmp_path)
    for name in (key, 'coco/bbox_mAP_50', 'coco/bbox_mAP_75'):
        assert abs(inside[name] - own[name]) <= 1e-6, (inside, own)
    # The caffe student's batch as it is: the same teacher falls far.
    assert unmapped[key] < own[key] / 2, (unmapped, own)
